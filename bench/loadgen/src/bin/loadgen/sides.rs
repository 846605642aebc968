//! The servers loadgen may load (loopback only), a `--sides` file's sides, and the schedule
//! that hands each due request of an interleaved run to one of them.

use std::time::Duration;

use anyhow::bail;
use http::Uri;

/// One side of a `--sides` file.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SideSpec {
    pub(crate) name: String,
    pub(crate) url: String,
    #[serde(default)]
    pub(crate) headers: Vec<String>,
}

/// Which side request *i*, due at `due` after the start, goes to: slices of `slice` in
/// cycles that visit every side once, each cycle in its own random order.
pub(crate) struct Schedule {
    slice: Duration,
    cycles: Vec<Vec<usize>>,
    sides: usize,
}

impl Schedule {
    pub(crate) fn new(sides: usize, slice: Duration, length: Duration) -> anyhow::Result<Self> {
        use rand::seq::SliceRandom;
        if slice.is_zero() || slice > Duration::from_secs(60) {
            bail!("--slice-ms must be between 1 and 60000");
        }
        let per_cycle = slice.as_secs_f64() * sides as f64;
        let cycles = (length.as_secs_f64() / per_cycle).ceil() as usize + 1;
        let mut rng = rand::thread_rng();
        let cycles = (0..cycles)
            .map(|_| {
                let mut order: Vec<usize> = (0..sides).collect();
                order.shuffle(&mut rng);
                order
            })
            .collect();
        Ok(Self {
            slice,
            cycles,
            sides,
        })
    }

    pub(crate) fn side(&self, due: Duration) -> usize {
        let slot = (due.as_nanos() / self.slice.as_nanos().max(1)) as usize;
        self.cycles
            .get(slot / self.sides)
            .and_then(|order| order.get(slot % self.sides))
            .copied()
            .unwrap_or(0)
    }
}

/// Load goes only to servers on this machine.
pub(crate) fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A URL that may be loaded: http:// on a loopback host.
pub(crate) fn checked_url(url: &Uri) -> anyhow::Result<()> {
    if url.scheme_str() != Some("http") {
        bail!("{url}: only http:// URLs are supported");
    }
    if !is_loopback(url.host().unwrap_or_default()) {
        bail!("{url}: only loopback hosts (127.0.0.0/8, localhost, [::1]) may be loaded");
    }
    Ok(())
}
