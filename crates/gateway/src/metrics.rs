//! The gateway's metrics, per upstream service (the label is a name from the closed set in
//! `routes::Service`, never a path or a client's value): requests by status class, latency to
//! response headers, retries, circuit state and ejected instances, plus refusals at the edge.
//!
//! Every series is created up front, so the request path touches only atomics.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::routes::Service;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabel {
    service: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabels {
    service: &'static str,
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// Why the gateway answered a request itself.
#[derive(Debug, Clone, Copy)]
pub enum Refusal {
    Unauthenticated,
    RateLimited,
    CircuitOpen,
    NotFound,
}

impl Refusal {
    const ALL: [Refusal; 4] = [
        Refusal::Unauthenticated,
        Refusal::RateLimited,
        Refusal::CircuitOpen,
        Refusal::NotFound,
    ];

    fn name(self) -> &'static str {
        match self {
            Refusal::Unauthenticated => "unauthenticated",
            Refusal::RateLimited => "rate_limited",
            Refusal::CircuitOpen => "circuit_open",
            Refusal::NotFound => "not_found",
        }
    }
}

/// The status classes counted: 1xx (WebSocket upgrades) to 5xx, and `error` for an answer
/// that never came (connection refused, timeout).
const CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "error"];

/// One service's series.
#[derive(Debug, Clone)]
struct PerService {
    requests: [Counter; 6],
    latency: Histogram,
    retries: Counter,
    circuit: Gauge,
    ejected: Gauge,
}

/// Handles on the gateway's series.
#[derive(Debug, Clone)]
pub struct GatewayMetrics {
    services: Arc<Vec<PerService>>,
    refusals: [Counter; 4],
    rate_limiter_unavailable: Counter,
}

impl GatewayMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let requests = Family::<ClassLabels, Counter>::default();
        let latency = Family::<ServiceLabel, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.0001, 2.0, 18))) as fn() -> Histogram,
        );
        let retries = Family::<ServiceLabel, Counter>::default();
        let circuit = Family::<ServiceLabel, Gauge>::default();
        let ejected = Family::<ServiceLabel, Gauge>::default();
        let refusals = Family::<ReasonLabel, Counter>::default();
        let unavailable = Counter::default();
        registry.register(
            "gateway_upstream_requests",
            "Requests forwarded per upstream service, by status class (error: no answer)",
            requests.clone(),
        );
        registry.register(
            "gateway_upstream_latency_seconds",
            "Time from forwarding to the upstream's response headers, per service",
            latency.clone(),
        );
        registry.register(
            "gateway_upstream_retries",
            "Attempts repeated per upstream service",
            retries.clone(),
        );
        registry.register(
            "gateway_circuit_state",
            "Circuit breaker per upstream service: 0 closed, 1 half-open, 2 open",
            circuit.clone(),
        );
        registry.register(
            "gateway_ejected_instances",
            "Instances ejected from the balancing per upstream service",
            ejected.clone(),
        );
        registry.register(
            "gateway_refusals",
            "Requests the gateway answered itself, by reason",
            refusals.clone(),
        );
        registry.register(
            "gateway_rate_limiter_unavailable",
            "Rate-limit checks let through because the limiter was unavailable",
            unavailable.clone(),
        );
        let services = Service::ALL
            .iter()
            .map(|service| {
                let name = service.name();
                PerService {
                    requests: CLASSES.map(|class| {
                        requests
                            .get_or_create(&ClassLabels {
                                service: name,
                                class,
                            })
                            .clone()
                    }),
                    latency: latency
                        .get_or_create(&ServiceLabel { service: name })
                        .clone(),
                    retries: retries
                        .get_or_create(&ServiceLabel { service: name })
                        .clone(),
                    circuit: circuit
                        .get_or_create(&ServiceLabel { service: name })
                        .clone(),
                    ejected: ejected
                        .get_or_create(&ServiceLabel { service: name })
                        .clone(),
                }
            })
            .collect();
        Self {
            services: Arc::new(services),
            refusals: Refusal::ALL.map(|r| {
                refusals
                    .get_or_create(&ReasonLabel { reason: r.name() })
                    .clone()
            }),
            rate_limiter_unavailable: unavailable,
        }
    }

    /// An answer (`status`) or none (`None`) from `service`, `seconds` after forwarding.
    pub fn observe(&self, service: Service, status: Option<u16>, seconds: f64) {
        let Some(per) = self.services.get(service.index()) else {
            return;
        };
        let class = match status {
            Some(s) => usize::from((s / 100).clamp(1, 5)) - 1,
            None => 5,
        };
        if let Some(counter) = per.requests.get(class) {
            counter.inc();
        }
        if status.is_some() {
            per.latency.observe(seconds);
        }
    }

    pub fn retried(&self, service: Service) {
        if let Some(per) = self.services.get(service.index()) {
            per.retries.inc();
        }
    }

    pub fn refused(&self, reason: Refusal) {
        if let Some(counter) = self.refusals.get(reason as usize) {
            counter.inc();
        }
    }

    pub fn limiter_unavailable(&self) {
        self.rate_limiter_unavailable.inc();
    }

    /// Copies circuit states and ejected counts into their gauges (before a scrape).
    pub fn set_health(&self, service: Service, circuit: i64, ejected: usize) {
        if let Some(per) = self.services.get(service.index()) {
            per.circuit.set(circuit);
            per.ejected.set(i64::try_from(ejected).unwrap_or(i64::MAX));
        }
    }
}
