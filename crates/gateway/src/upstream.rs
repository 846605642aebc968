//! One service's instances: the list (static, or resolved from `dns://` names and refreshed),
//! power-of-two-choices balancing on requests in flight, passive health (an instance that
//! fails `eject_after_failures` times in a row leaves the balancing until a probe of its
//! `/readyz` succeeds) and the service's circuit breaker.
//!
//! The list is read without locks (`arc-swap`); only the refresh task writes it.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use confab_core::breaker::{CircuitBreaker, CircuitState};
use confab_core::config::InstanceEntry;
use rand::Rng;

use crate::routes::Service;

/// One instance of a service.
#[derive(Debug)]
pub struct Instance {
    /// `host:port`.
    pub authority: http::uri::Authority,
    /// `http`, or `https` for an `https://` entry.
    pub scheme: http::uri::Scheme,
    in_flight: AtomicUsize,
    failures: AtomicU32,
    ejected: AtomicBool,
}

impl Instance {
    fn new(authority: http::uri::Authority, tls: bool) -> Self {
        Self {
            authority,
            scheme: if tls {
                http::uri::Scheme::HTTPS
            } else {
                http::uri::Scheme::HTTP
            },
            in_flight: AtomicUsize::new(0),
            failures: AtomicU32::new(0),
            ejected: AtomicBool::new(false),
        }
    }

    /// The URI of `path_and_query` on this instance.
    pub fn uri(
        &self,
        path_and_query: impl Into<http::uri::PathAndQuery>,
    ) -> http::Result<http::Uri> {
        http::Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path_and_query.into())
            .build()
    }

    pub fn is_ejected(&self) -> bool {
        self.ejected.load(Ordering::Relaxed)
    }

    /// Counts a request in flight until the guard is dropped.
    pub fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// Re-admits the instance (a probe of its `/readyz` succeeded).
    pub fn readmit(&self) {
        self.failures.store(0, Ordering::Relaxed);
        self.ejected.store(false, Ordering::Relaxed);
    }
}

/// A request in flight on an instance.
#[derive(Debug)]
pub struct InFlight(Arc<Instance>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One service: its instances and its circuit.
#[derive(Debug)]
pub struct Upstream {
    pub service: Service,
    entries: Vec<InstanceEntry>,
    instances: ArcSwap<Vec<Arc<Instance>>>,
    pub breaker: CircuitBreaker,
    open_for: Duration,
    eject_after: u32,
    /// How many times the `dns://` entries were resolved (for tests and the log).
    resolutions: AtomicU64,
}

impl Upstream {
    pub fn new(
        service: Service,
        entries: Vec<InstanceEntry>,
        breaker: CircuitBreaker,
        open_for: Duration,
        eject_after: u32,
    ) -> Self {
        let statics = entries
            .iter()
            .filter_map(|entry| match entry {
                InstanceEntry::Static { authority, tls } => Some((authority.parse().ok()?, *tls)),
                InstanceEntry::Dns { .. } => None,
            })
            .map(|(authority, tls)| Arc::new(Instance::new(authority, tls)))
            .collect();
        Self {
            service,
            entries,
            instances: ArcSwap::from_pointee(statics),
            breaker,
            open_for,
            eject_after,
            resolutions: AtomicU64::new(0),
        }
    }

    pub fn has_dns(&self) -> bool {
        self.entries
            .iter()
            .any(|e| matches!(e, InstanceEntry::Dns { .. }))
    }

    pub fn instances(&self) -> Arc<Vec<Arc<Instance>>> {
        self.instances.load_full()
    }

    pub fn resolutions(&self) -> u64 {
        self.resolutions.load(Ordering::Relaxed)
    }

    pub fn ejected(&self) -> usize {
        self.instances
            .load()
            .iter()
            .filter(|i| i.is_ejected())
            .count()
    }

    /// Seconds until an open circuit lets a probe through (at least 1), for `Retry-After`.
    pub fn retry_after_secs(&self) -> u64 {
        self.open_for.as_secs().max(1)
    }

    pub fn circuit(&self) -> CircuitState {
        self.breaker.state()
    }

    /// Picks an instance: two at random, the one with fewer requests in flight, skipping
    /// ejected ones, `avoid` (the instance a retry failed on) and `down` (those that refused
    /// this request's connection) when another exists. With every instance skipped, a live one
    /// that only failed the last attempt (a pooled connection the instance had just closed) is
    /// better than one that refused: only when none is left does `down` come back in.
    pub fn pick(
        &self,
        avoid: Option<&Arc<Instance>>,
        down: &[Arc<Instance>],
    ) -> Option<Arc<Instance>> {
        let list = self.instances.load();
        let is_down = |i: &Arc<Instance>| down.iter().any(|d| Arc::ptr_eq(d, i));
        let usable = |i: &Arc<Instance>| {
            !i.is_ejected() && avoid.is_none_or(|a| !Arc::ptr_eq(a, i)) && !is_down(i)
        };
        match list.len() {
            0 => None,
            1 => list.first().cloned(),
            n => {
                let mut rng = rand::thread_rng();
                let a = rng.gen_range(0..n);
                let b = (a + rng.gen_range(1..n)) % n;
                let (first, second) = (&list[a], &list[b]);
                let chosen = match (usable(first), usable(second)) {
                    (true, true) => {
                        if second.in_flight.load(Ordering::Relaxed)
                            < first.in_flight.load(Ordering::Relaxed)
                        {
                            second
                        } else {
                            first
                        }
                    }
                    (true, false) => first,
                    (false, true) => second,
                    // Both unusable: any usable one, else one neither ejected nor down, else
                    // (all ejected) `first` anyway, so a lone instance that came back is
                    // found by traffic as well as by probes.
                    (false, false) => {
                        let ring = || list.iter().cycle().skip(a).take(n);
                        ring()
                            .find(|i| usable(i))
                            .or_else(|| ring().find(|i| !i.is_ejected() && !is_down(i)))
                            .unwrap_or(first)
                    }
                };
                Some(chosen.clone())
            }
        }
    }

    /// Records an attempt's outcome on the instance (ejecting it after too many failures in a
    /// row). Returns whether the instance was ejected by this failure.
    pub fn record_instance(&self, instance: &Instance, success: bool) -> bool {
        if success {
            if instance.failures.load(Ordering::Relaxed) != 0 {
                instance.failures.store(0, Ordering::Relaxed);
            }
            return false;
        }
        let failures = instance.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if failures >= self.eject_after && !instance.ejected.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                service = self.service.name(),
                instance = %instance.authority,
                failures,
                "instance ejected after consecutive failures"
            );
            return true;
        }
        false
    }

    /// Resolves the `dns://` entries again and replaces the list, keeping the state of
    /// instances that are still there.
    pub async fn resolve(&self) {
        if !self.has_dns() {
            return;
        }
        // Each instance with whether it is dialled over TLS.
        let mut wanted: Vec<(http::uri::Authority, bool)> = Vec::new();
        let mut seen = HashSet::new();
        for entry in &self.entries {
            match entry {
                InstanceEntry::Static { authority, tls } => {
                    if let Ok(a) = authority.parse::<http::uri::Authority>()
                        && seen.insert(a.to_string())
                    {
                        wanted.push((a, *tls));
                    }
                }
                InstanceEntry::Dns { host, port } => {
                    match tokio::net::lookup_host((host.as_str(), *port)).await {
                        Ok(addrs) => {
                            for addr in addrs {
                                let text = authority_of(addr);
                                if seen.insert(text.clone())
                                    && let Ok(a) = text.parse()
                                {
                                    wanted.push((a, false));
                                }
                            }
                        }
                        Err(e) => {
                            // Keep what this name resolved to before: a DNS hiccup must not
                            // empty the list.
                            tracing::warn!(service = self.service.name(), %host, error = %e, "cannot resolve an upstream name");
                            for instance in self.instances.load().iter() {
                                if seen.insert(instance.authority.to_string()) {
                                    wanted.push((
                                        instance.authority.clone(),
                                        instance.scheme == http::uri::Scheme::HTTPS,
                                    ));
                                }
                            }
                        }
                    }
                }
            }
        }
        let current = self.instances.load_full();
        let next: Vec<Arc<Instance>> = wanted
            .into_iter()
            .map(|(authority, tls)| {
                current
                    .iter()
                    .find(|i| i.authority == authority)
                    .cloned()
                    .unwrap_or_else(|| Arc::new(Instance::new(authority, tls)))
            })
            .collect();
        let changed = next.len() != current.len()
            || next
                .iter()
                .zip(current.iter())
                .any(|(a, b)| !Arc::ptr_eq(a, b));
        if changed {
            tracing::info!(
                service = self.service.name(),
                instances = next.len(),
                "upstream instances changed"
            );
            self.instances.store(Arc::new(next));
        }
        self.resolutions.fetch_add(1, Ordering::Relaxed);
    }
}

/// The breaker's record of one attempt. An attempt dropped before its outcome (the client went
/// away) that was the half-open probe counts as failed, so the circuit is never left waiting
/// for a probe that will not report.
pub(crate) struct Outcome<'a> {
    upstream: &'a Upstream,
    settled: bool,
}

impl<'a> Outcome<'a> {
    pub(crate) fn new(upstream: &'a Upstream) -> Self {
        Self {
            upstream,
            settled: false,
        }
    }

    /// Records the request's outcome, once: later calls change nothing.
    pub(crate) fn settle(&mut self, success: bool) {
        if !self.settled {
            self.settled = true;
            self.upstream.breaker.record(success);
        }
    }

    /// Settles a failed request. It counts against the service only when `last` (the instance
    /// it failed on last) was the last one in play: every other instance is ejected or refused
    /// this request. A failure with another instance still usable is that instance's own; its
    /// count ejects it, and one replica's crash does not close the whole service. A half-open
    /// circuit's probe always counts.
    pub(crate) fn failed(&mut self, last: Option<&Arc<Instance>>, down: &[Arc<Instance>]) {
        if self.settled {
            return;
        }
        let others_in_play = self.upstream.instances().iter().any(|i| {
            last.is_some_and(|l| !Arc::ptr_eq(l, i))
                && !i.is_ejected()
                && !down.iter().any(|d| Arc::ptr_eq(d, i))
        });
        if others_in_play && self.upstream.breaker.state() != CircuitState::HalfOpen {
            self.settled = true;
        } else {
            self.settle(false);
        }
    }
}

impl Drop for Outcome<'_> {
    fn drop(&mut self) {
        if !self.settled && self.upstream.breaker.state() == CircuitState::HalfOpen {
            self.upstream.breaker.record(false);
        }
    }
}

fn authority_of(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(v4) => format!("{}:{}", v4.ip(), v4.port()),
        SocketAddr::V6(v6) => format!("[{}]:{}", v6.ip(), v6.port()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_core::breaker::BreakerSettings;

    fn upstream(entries: &[&str]) -> Upstream {
        Upstream::new(
            Service::Chat,
            entries
                .iter()
                .map(|e| InstanceEntry::parse(e).unwrap())
                .collect(),
            CircuitBreaker::new(BreakerSettings {
                failures: 5,
                min_requests: 10,
                error_rate: 0.5,
                open_for: Duration::from_secs(1),
                window_secs: 10,
            }),
            Duration::from_secs(1),
            2,
        )
    }

    #[test]
    fn balancing_prefers_fewer_in_flight_and_skips_ejected_instances() {
        let up = upstream(&["http://127.0.0.1:1", "http://127.0.0.1:2"]);
        let list = up.instances();
        let busy = list[0].start();
        for _ in 0..50 {
            assert_eq!(up.pick(None, &[]).unwrap().authority, list[1].authority);
        }
        drop(busy);
        assert!(!up.record_instance(&list[1], false));
        assert!(up.record_instance(&list[1], false), "ejected at the second");
        assert_eq!(up.ejected(), 1);
        for _ in 0..50 {
            assert_eq!(up.pick(None, &[]).unwrap().authority, list[0].authority);
        }
        // A retry avoids the instance that failed, even when it is the better one.
        list[1].readmit();
        for _ in 0..50 {
            assert_eq!(
                up.pick(Some(&list[0]), &[]).unwrap().authority,
                list[1].authority
            );
        }
        // After a refusal by one and a dropped connection on the other, the third attempt
        // goes back to the live one, not to the one that refused.
        for _ in 0..50 {
            assert_eq!(
                up.pick(Some(&list[1]), std::slice::from_ref(&list[0]))
                    .unwrap()
                    .authority,
                list[1].authority
            );
        }
    }

    #[tokio::test]
    async fn dns_entries_resolve_and_keep_instance_state() {
        let up = upstream(&["dns://localhost:4321", "http://10.0.0.1:80"]);
        assert_eq!(up.instances().len(), 1);
        up.resolve().await;
        let first = up.instances();
        assert!(
            first
                .iter()
                .any(|i| i.authority.as_str() == "127.0.0.1:4321"),
            "{first:?}"
        );
        up.resolve().await;
        let second = up.instances();
        assert!(Arc::ptr_eq(&first, &second), "nothing changed");
        assert_eq!(up.resolutions(), 2);
    }
}
