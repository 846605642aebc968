//! The servers loadgen may load (loopback only), a `--sides` file's sides, and the schedule
//! that hands each due request of an interleaved run to one of them.

use std::time::Duration;

use anyhow::{Context, bail};
use http::Uri;

/// A server to load, with the headers its requests add.
pub(crate) struct Side {
    pub(crate) name: String,
    pub(crate) url: Uri,
    pub(crate) headers: Vec<String>,
}

/// One side of a `--sides` file.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SideSpec {
    name: String,
    url: String,
    #[serde(default)]
    headers: Vec<String>,
}

/// The sides of a `--sides` file: 1 to 16, each on a loopback http:// URL.
pub(crate) fn load(path: &std::path::Path) -> anyhow::Result<Vec<Side>> {
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let specs: Vec<SideSpec> = serde_json::from_slice(&text).with_context(|| {
        format!(
            "{} is not a list of {{\"name\", \"url\", \"headers\"}}",
            path.display()
        )
    })?;
    if specs.is_empty() || specs.len() > 16 {
        bail!("{}: between 1 and 16 sides", path.display());
    }
    specs
        .into_iter()
        .map(|spec| {
            let url: Uri = spec
                .url
                .parse()
                .with_context(|| format!("side {}: {:?} is not a URL", spec.name, spec.url))?;
            checked_url(&url)?;
            Ok(Side {
                name: spec.name,
                url,
                headers: spec.headers,
            })
        })
        .collect()
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
fn is_loopback(host: &str) -> bool {
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
