//! The API gateway of a split deployment (`confab serve --services gateway`): the single entry
//! point that routes by path prefix to the services (`routes`), authenticates at the edge and
//! limits rates (`edge`), forwards with timeouts, a circuit breaker per service, retries,
//! balancing and passive health (`proxy`, `upstream`), caches public GETs (`cache`), serves
//! one OpenAPI document merged from the services' with deprecation headers (`openapi`), and
//! counts all of it per service (`metrics`).
//!
//! The composition root builds it with [`Gateway::new`], merges the ops routes into the
//! router it returns and wraps the whole in `confab_core::http::apply_common_layers`.

pub mod cache;
pub mod edge;
pub mod error;
pub mod headers;
pub mod metrics;
pub mod openapi;
pub mod proxy;
pub mod routes;
pub mod upstream;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use confab_cache::{Cache, RateLimiter};
use confab_core::auth::{DynAuthenticator, ServiceTokens};
use confab_core::breaker::{BreakerSettings, CircuitBreaker, CircuitState};
use confab_core::config::{GatewayConfig, InstanceEntry};
use confab_core::http::{NotReady, ReadinessCheck};
use confab_core::metrics::MetricsBuilder;
use confab_core::service_tls::ServiceTls;
use http::{StatusCode, header};
use http_body_util::BodyExt;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use error::GatewayError;
pub use routes::Service;

use crate::edge::Limits;
use crate::metrics::GatewayMetrics;
use crate::openapi::ApiDocs;
use crate::proxy::{HttpClient, Shared};
use crate::upstream::Upstream;

/// The largest OpenAPI document read from a service.
const MAX_OPENAPI_BYTES: usize = 8 << 20;

/// What the gateway needs from the composition root.
pub struct GatewayDeps<'a> {
    /// Checks credentials at the edge: JWTs with the auth service's JWKS, API keys with the
    /// auth service (behind a short cache).
    pub authenticator: DynAuthenticator,
    /// Mints the service tokens that replace API keys on their way to the services.
    pub service_tokens: ServiceTokens,
    /// Rate limits shared by every gateway (Redis in split mode).
    pub limiter: Arc<dyn RateLimiter>,
    /// The response cache (Redis in split mode).
    pub cache: Arc<dyn Cache>,
    /// Where the gateway registers its metrics and its scrape hook.
    pub metrics: &'a mut MetricsBuilder,
    /// Background work (DNS refresh, health probes, OpenAPI refresh, WebSocket pumps).
    pub tasks: TaskTracker,
    pub shutdown: CancellationToken,
    /// What answers paths outside the API (the web UI).
    pub fallback: Router,
    /// The trust for `https://` upstreams (`services.ca_file`, `services.require_tls`).
    pub tls: ServiceTls,
}

/// A handle on a running gateway (its state, for readiness, tests and the CLI).
#[derive(Clone)]
pub struct Gateway {
    shared: Arc<Shared>,
    /// What each serving thread's own pool connects with (`Gateway::lane`).
    connector: HttpsConnector<HttpConnector>,
    max_idle_per_instance: usize,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").finish_non_exhaustive()
    }
}

impl Gateway {
    /// Builds the gateway: its upstreams (resolving `dns://` entries once), the pooled client,
    /// the background tasks, and the router (`/api/openapi.json`, and every other path by
    /// the routing table). The caller merges `confab_core::http::ops_router` into the router
    /// and wraps it in `apply_common_layers`, served with `ConnectInfo<SocketAddr>`.
    pub async fn new(
        deps: GatewayDeps<'_>,
        config: &GatewayConfig,
    ) -> Result<(Gateway, Router), GatewayError> {
        let breaker = BreakerSettings {
            failures: config.breaker_failures,
            min_requests: config.breaker_min_requests,
            error_rate: config.breaker_error_rate,
            open_for: Duration::from_millis(config.breaker_open_ms),
            window_secs: config.breaker_window_secs,
        };
        let mut upstreams = Vec::with_capacity(Service::ALL.len());
        for service in Service::ALL {
            let configured = config
                .upstreams
                .all()
                .into_iter()
                .find(|(name, _)| *name == service.name())
                .map(|(_, entries)| entries.to_vec())
                .unwrap_or_default();
            if configured.is_empty() {
                tracing::info!(
                    service = service.name(),
                    "no instances configured: its routes answer 404"
                );
                upstreams.push(None);
                continue;
            }
            let entries = configured
                .iter()
                .map(|e| InstanceEntry::parse(e))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|reason| GatewayError::Upstream {
                    service: service.name(),
                    reason,
                })?;
            let upstream = Upstream::new(
                service,
                entries,
                CircuitBreaker::new(breaker),
                breaker.open_for,
                config.eject_after_failures,
            );
            upstream.resolve().await;
            upstreams.push(Some(Arc::new(upstream)));
        }

        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_millis(config.connect_timeout_ms)));
        connector.set_keepalive(Some(Duration::from_secs(60)));
        // `https://` entries: the TLS connector takes the URI's scheme from here.
        connector.enforce_http(false);
        let tls = deps
            .tls
            .rustls_client_config()
            .map_err(|e| GatewayError::Tls(e.to_string()))?;
        let builder = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config((*tls).clone());
        let connector = if deps.tls.require_tls() {
            builder.https_only()
        } else {
            builder.https_or_http()
        }
        .enable_http1()
        .wrap_connector(connector);
        let client = pooled(connector.clone(), config.max_idle_per_instance);

        let metrics = GatewayMetrics::register(deps.metrics.registry());
        let shared = Arc::new(Shared {
            upstreams,
            client,
            authenticator: deps.authenticator,
            tokens: deps.service_tokens,
            limiter: deps.limiter,
            cache: deps.cache,
            limits: Limits::from_config(config),
            response_timeout: Duration::from_millis(config.response_timeout_ms),
            retries: config.retries,
            cache_max_body: config.cache_max_body_bytes,
            cache_max_ttl: Duration::from_secs(config.cache_max_ttl_secs),
            jwks_ttl: Duration::from_secs(config.jwks_ttl_secs),
            metrics: metrics.clone(),
            docs: Arc::new(ArcSwap::from_pointee(ApiDocs::default())),
            fallback: deps.fallback,
            tasks: deps.tasks.clone(),
            shutdown: deps.shutdown.clone(),
        });
        let scraped = shared.clone();
        deps.metrics.on_scrape(move || {
            for upstream in scraped.upstreams.iter().flatten() {
                let circuit = match upstream.circuit() {
                    CircuitState::Closed => 0,
                    CircuitState::HalfOpen => 1,
                    CircuitState::Open => 2,
                };
                scraped
                    .metrics
                    .set_health(upstream.service, circuit, upstream.ejected());
            }
        });
        let gateway = Gateway {
            shared,
            connector,
            max_idle_per_instance: config.max_idle_per_instance,
        };
        gateway.start_tasks(config, &deps.tasks, deps.shutdown);
        let router = routes(gateway.shared.clone());
        Ok((gateway, router))
    }

    /// The router of one more serving thread: the same upstreams, circuits, credentials,
    /// metrics and OpenAPI document as every other, but its own pool of connections to the
    /// instances (made on that thread when it first needs them) and the limiter and cache it
    /// is given (each thread its own Redis connection), so a request's work, and the
    /// connections' tasks that do it, stay on the thread that accepted the request.
    pub fn lane(&self, limiter: Arc<dyn RateLimiter>, cache: Arc<dyn Cache>) -> Router {
        let s = &self.shared;
        routes(Arc::new(Shared {
            upstreams: s.upstreams.clone(),
            client: pooled(self.connector.clone(), self.max_idle_per_instance),
            authenticator: s.authenticator.clone(),
            tokens: s.tokens.clone(),
            limiter,
            cache,
            limits: s.limits,
            response_timeout: s.response_timeout,
            retries: s.retries,
            cache_max_body: s.cache_max_body,
            cache_max_ttl: s.cache_max_ttl,
            jwks_ttl: s.jwks_ttl,
            metrics: s.metrics.clone(),
            docs: s.docs.clone(),
            fallback: s.fallback.clone(),
            tasks: s.tasks.clone(),
            shutdown: s.shutdown.clone(),
        }))
    }

    fn start_tasks(
        &self,
        config: &GatewayConfig,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) {
        let every = |ms: u64| Duration::from_millis(ms.max(1));
        let dns = self.shared.upstreams.iter().flatten().any(|u| u.has_dns());
        if dns {
            let shared = self.shared.clone();
            repeat(
                tasks,
                shutdown.clone(),
                every(config.dns_refresh_ms),
                move || {
                    let shared = shared.clone();
                    async move {
                        for upstream in shared.upstreams.iter().flatten() {
                            upstream.resolve().await;
                        }
                    }
                },
            );
        }
        let shared = self.shared.clone();
        repeat(
            tasks,
            shutdown.clone(),
            every(config.probe_interval_ms),
            move || {
                let shared = shared.clone();
                async move { probe_ejected(&shared).await }
            },
        );
        let gateway = self.clone();
        repeat(
            tasks,
            shutdown,
            Duration::from_secs(config.openapi_refresh_secs.max(1)),
            move || {
                let gateway = gateway.clone();
                async move {
                    gateway.refresh_openapi().await;
                }
            },
        );
    }

    /// Fetches every service's OpenAPI document again and merges them; returns how many
    /// services answered. Runs at start and every `gateway.openapi_refresh_secs`.
    pub async fn refresh_openapi(&self) -> usize {
        let mut documents = Vec::new();
        for upstream in self.shared.upstreams.iter().flatten() {
            match fetch_json(&self.shared, upstream, "/api/openapi.json").await {
                Ok(doc) => documents.push(doc),
                Err(reason) => tracing::debug!(
                    service = upstream.service.name(),
                    %reason,
                    "cannot fetch the service's OpenAPI document"
                ),
            }
        }
        let count = documents.len();
        if count > 0 {
            self.shared
                .docs
                .store(Arc::new(openapi::merge(&documents, SystemTime::now())));
        }
        count
    }

    /// The instances of `service` now (`host:port`), ejected ones included.
    pub fn instances(&self, service: Service) -> Vec<String> {
        self.shared
            .upstream(service)
            .map(|u| {
                u.instances()
                    .iter()
                    .map(|i| i.authority.to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// How many times `service`'s `dns://` entries were resolved.
    pub fn resolutions(&self, service: Service) -> u64 {
        self.shared.upstream(service).map_or(0, |u| u.resolutions())
    }

    /// The circuit of `service`, if it is deployed.
    pub fn circuit(&self, service: Service) -> Option<CircuitState> {
        self.shared.upstream(service).map(|u| u.circuit())
    }

    /// Ready while every deployed service has at least one instance known (the gateway still
    /// answers other services' routes when one is down; its circuit reports that).
    pub fn readiness(&self) -> Arc<dyn ReadinessCheck> {
        Arc::new(Readiness(self.shared.clone()))
    }
}

struct Readiness(Arc<Shared>);

#[async_trait::async_trait]
impl ReadinessCheck for Readiness {
    fn name(&self) -> &'static str {
        "upstreams"
    }

    async fn check(&self) -> Result<(), NotReady> {
        for upstream in self.0.upstreams.iter().flatten() {
            if upstream.instances().is_empty() {
                return Err(NotReady(format!(
                    "no instance of the {} service is known",
                    upstream.service.name()
                )));
            }
        }
        Ok(())
    }
}

/// `/api/openapi.json`, and every other path by the routing table.
fn routes(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/openapi.json", get(openapi_document))
        .fallback(proxy::handle)
        .with_state(shared)
}

/// A pool of keep-alive connections to the instances; each connection's task runs on the
/// runtime of the request that opened it.
fn pooled(connector: HttpsConnector<HttpConnector>, max_idle_per_instance: usize) -> HttpClient {
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(max_idle_per_instance)
        .build(connector)
}

/// Runs `work` every `period` on a tracked task until shutdown.
fn repeat<F, Fut>(tasks: &TaskTracker, shutdown: CancellationToken, period: Duration, work: F)
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = work() => {}
            }
        }
    });
}

/// Asks each ejected instance's `/readyz`; a 200 re-admits it.
async fn probe_ejected(shared: &Shared) {
    for upstream in shared.upstreams.iter().flatten() {
        for instance in upstream.instances().iter().filter(|i| i.is_ejected()) {
            let Ok(uri) = instance.uri(http::uri::PathAndQuery::from_static("/readyz")) else {
                continue;
            };
            let mut request = http::Request::new(Body::empty());
            *request.uri_mut() = uri;
            let answer =
                tokio::time::timeout(shared.response_timeout, shared.client.request(request)).await;
            if let Ok(Ok(response)) = answer
                && response.status() == StatusCode::OK
            {
                instance.readmit();
                tracing::info!(
                    service = upstream.service.name(),
                    instance = %instance.authority,
                    "instance re-admitted after a successful readiness probe"
                );
            }
        }
    }
}

/// GETs `path` from one of `upstream`'s instances and reads it as JSON (bounded).
async fn fetch_json(
    shared: &Shared,
    upstream: &Upstream,
    path: &'static str,
) -> Result<serde_json::Value, String> {
    let instance = upstream.pick(None, &[]).ok_or("no instance")?;
    let uri = instance
        .uri(http::uri::PathAndQuery::from_static(path))
        .map_err(|e| e.to_string())?;
    let mut request = http::Request::new(Body::empty());
    *request.uri_mut() = uri;
    let response = tokio::time::timeout(shared.response_timeout, shared.client.request(request))
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    if response.status() != StatusCode::OK {
        return Err(format!("status {}", response.status()));
    }
    let body = http_body_util::Limited::new(response.into_body(), MAX_OPENAPI_BYTES)
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    serde_json::from_slice(&body).map_err(|e| e.to_string())
}

/// `/api/openapi.json`: the merged document.
async fn openapi_document(State(shared): State<Arc<Shared>>) -> Response {
    let docs = shared.docs.load();
    if docs.sources == 0 {
        return confab_core::ApiError::unavailable("no service's OpenAPI document fetched yet")
            .into_response();
    }
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from(docs.json.clone()),
    )
        .into_response()
}
