//! `confab_data_dir_available_bytes` and `confab_data_dir_capacity_bytes`: the file system
//! holding the data directory, read with `statvfs` at every scrape.

use std::path::PathBuf;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;

/// Space on the file system of one directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskSpace {
    /// What an unprivileged writer may still use.
    pub available: u64,
    pub capacity: u64,
}

/// The space of the file system holding `path`; `None` when it cannot be read.
pub fn disk_space(path: &std::path::Path) -> Option<DiskSpace> {
    let stat = rustix::fs::statvfs(path).ok()?;
    let unit = if stat.f_frsize > 0 {
        stat.f_frsize
    } else {
        stat.f_bsize
    };
    Some(DiskSpace {
        available: stat.f_bavail.saturating_mul(unit),
        capacity: stat.f_blocks.saturating_mul(unit),
    })
}

/// Reports the data directory's space at every scrape (nothing while it cannot be read).
#[derive(Debug)]
pub struct DataDirCollector {
    pub path: PathBuf,
}

impl Collector for DataDirCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let Some(space) = disk_space(&self.path) else {
            return Ok(());
        };
        for (name, help, value) in [
            (
                "data_dir_available_bytes",
                "Bytes available to Confab on the data directory's file system",
                space.available,
            ),
            (
                "data_dir_capacity_bytes",
                "Size in bytes of the data directory's file system",
                space.capacity,
            ),
        ] {
            let gauge = ConstGauge::new(value as f64);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_has_space_and_a_missing_one_none() {
        let dir = tempfile::tempdir().unwrap();
        let space = disk_space(dir.path()).unwrap();
        assert!(space.capacity > 0);
        assert!(space.available <= space.capacity);
        assert_eq!(disk_space(&dir.path().join("missing")), None);
    }
}
