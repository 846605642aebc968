//! The standard Prometheus process metrics (`process_resident_memory_bytes`,
//! `process_cpu_seconds_total`, `process_open_fds`, …, without the `confab_` prefix), read from
//! `/proc/self` at every scrape by a [`Collector`]; on systems without `/proc` nothing is
//! reported.

use std::path::Path;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// What `/proc/self` says about this process.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub threads: u64,
    /// Unix seconds.
    pub start_time: f64,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
}

/// The fields of `/proc/self/stat` this needs, in clock ticks and pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatFields {
    pub utime_ticks: u64,
    pub stime_ticks: u64,
    pub threads: u64,
    /// Since boot, in clock ticks.
    pub start_ticks: u64,
    pub vsize_bytes: u64,
    pub rss_pages: u64,
}

/// Reads `/proc/<pid>/stat`. The command name (field 2) is in parentheses and may hold spaces
/// and parentheses itself, so the fields are counted after the last `)`.
pub fn parse_stat(text: &str) -> Option<StatFields> {
    let rest = &text[text.rfind(')')? + 1..];
    // `rest` starts at field 3 (state): field n is at index n - 3.
    let fields: Vec<&str> = rest.split_ascii_whitespace().take(22).collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    Some(StatFields {
        utime_ticks: field(14)?,
        stime_ticks: field(15)?,
        threads: field(20)?,
        start_ticks: field(22)?,
        vsize_bytes: field(23)?,
        rss_pages: field(24)?,
    })
}

/// The boot time (Unix seconds) from `/proc/stat`'s `btime` line.
pub fn parse_boot_time(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// The soft limit of open files from `/proc/<pid>/limits` (`None` when unlimited).
pub fn parse_max_fds(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Reads the stats of this process; `None` without `/proc`.
pub fn read_self() -> Option<ProcessStats> {
    let proc = Path::new("/proc");
    let stat = parse_stat(&std::fs::read_to_string(proc.join("self/stat")).ok()?)?;
    let ticks = rustix::param::clock_ticks_per_second().max(1) as f64;
    let page = rustix::param::page_size() as u64;
    let boot = std::fs::read_to_string(proc.join("stat"))
        .ok()
        .and_then(|t| parse_boot_time(&t))
        .unwrap_or(0);
    let open_fds = std::fs::read_dir(proc.join("self/fd"))
        .ok()
        .map(|dir| dir.count() as u64);
    let max_fds = std::fs::read_to_string(proc.join("self/limits"))
        .ok()
        .and_then(|t| parse_max_fds(&t));
    Some(ProcessStats {
        cpu_seconds: (stat.utime_ticks + stat.stime_ticks) as f64 / ticks,
        resident_bytes: stat.rss_pages.saturating_mul(page),
        virtual_bytes: stat.vsize_bytes,
        threads: stat.threads,
        start_time: boot as f64 + stat.start_ticks as f64 / ticks,
        open_fds,
        max_fds,
    })
}

/// Reports [`ProcessStats`] at every scrape. Register it in a registry without a prefix
/// ([`super::MetricsBuilder::finish`] does).
#[derive(Debug, Default)]
pub struct ProcessCollector;

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: f64) -> std::fmt::Result {
    let gauge = ConstGauge::new(value);
    gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let Some(stats) = read_self() else {
            return Ok(());
        };
        let cpu = ConstCounter::new(stats.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            None,
            cpu.metric_type(),
        )?)?;
        let e = &mut encoder;
        gauge(
            e,
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            stats.resident_bytes as f64,
        )?;
        gauge(
            e,
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes",
            stats.virtual_bytes as f64,
        )?;
        gauge(
            e,
            "process_threads",
            "Number of OS threads in the process",
            stats.threads as f64,
        )?;
        gauge(
            e,
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch in seconds",
            stats.start_time,
        )?;
        if let Some(open) = stats.open_fds {
            gauge(
                e,
                "process_open_fds",
                "Number of open file descriptors",
                open as f64,
            )?;
        }
        if let Some(max) = stats.max_fds {
            gauge(
                e,
                "process_max_fds",
                "Maximum number of open file descriptors",
                max as f64,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stat_after_a_name_with_spaces_and_parentheses() {
        // Fields 3.. of a real line; the name is `a) (b c`.
        let line = "4242 (a) (b c) S 1 4242 4242 0 -1 4194560 2000 0 0 0 150 50 0 0 20 0 7 0 \
                    123456 2097152000 5000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1";
        let stat = parse_stat(line).unwrap();
        assert_eq!(
            stat,
            StatFields {
                utime_ticks: 150,
                stime_ticks: 50,
                threads: 7,
                start_ticks: 123_456,
                vsize_bytes: 2_097_152_000,
                rss_pages: 5000,
            }
        );
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) S 1 2"), None);
    }

    #[test]
    fn reads_boot_time_and_the_open_files_limit() {
        assert_eq!(
            parse_boot_time("cpu  1 2 3\nbtime 1700000000\nprocesses 9\n"),
            Some(1_700_000_000)
        );
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max cpu time              unlimited            unlimited            seconds   \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(parse_max_fds(limits), Some(1024));
        assert_eq!(
            parse_max_fds("Max open files            unlimited            unlimited   files"),
            None
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_memory_threads_and_files() {
        let stats = read_self().unwrap();
        assert!(stats.resident_bytes > 1024 * 1024, "{stats:?}");
        assert!(stats.threads >= 1);
        assert!(stats.open_fds.unwrap() >= 3);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(stats.start_time > now - 86_400.0 && stats.start_time <= now + 1.0);
    }
}
