//! The middleware every route runs through, and the health and metrics routes.
//!
//! One `request_context` middleware, outermost, does what each request needs once: it assigns
//! or accepts the request id (`x-request-id`), resolves the client's address, opens the
//! request's span (so every log line carries the id and the trace id; a child of the caller's
//! W3C trace context when traces are exported), wraps bare error responses in the error
//! envelope, logs failures once, records metrics by route template, and sets security headers.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderName, HeaderValue, Method, StatusCode, header};
use serde::Serialize;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::timeout::TimeoutLayer;
use tracing::Instrument;

use crate::config::{Secret, ServerConfig};
use crate::error::{ApiError, ErrorLog, code_for_status, message_for_status};
use crate::extract::ClientIp;
use crate::metrics::{HttpLabels, Metrics};
use crate::net::ProxyTrust;
use crate::telemetry::otel;

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served on this task, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// The request's id, as a request extension.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// What the request middleware needs.
#[derive(Debug, Clone)]
pub struct HttpContext {
    pub metrics: Arc<Metrics>,
    /// Whose `X-Forwarded-For` is believed (`server.trust_proxy_headers`,
    /// `server.trusted_proxies`).
    pub proxies: ProxyTrust,
    /// Send `Strict-Transport-Security` (the public URL is https).
    pub hsts: bool,
}

/// Why a dependency is not ready; the detail goes to the log, never to the caller.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotReady(pub String);

/// Readiness of one dependency (the database, later the bus or cache).
#[async_trait::async_trait]
pub trait ReadinessCheck: Send + Sync {
    fn name(&self) -> &'static str;
    async fn check(&self) -> Result<(), NotReady>;
}

/// Wraps `router` in the common middleware stack.
pub fn apply_common_layers(router: Router, ctx: HttpContext, server: &ServerConfig) -> Router {
    let mut router = router
        .layer(DefaultBodyLimit::max(server.body_limit_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(server.request_timeout_secs),
        ));
    if let Some(cors) = cors_layer(&server.cors_origins) {
        router = router.layer(cors);
    }
    router.layer(middleware::from_fn_with_state(ctx, request_context))
}

fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        // Same origin only: send no CORS headers at all, so browsers refuse cross-origin reads.
        return None;
    }
    let origins: Vec<HeaderValue> = origins.iter().filter_map(|o| o.parse().ok()).collect();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                REQUEST_ID_HEADER,
                HeaderName::from_static("x-csrf-token"),
            ])
            .expose_headers([REQUEST_ID_HEADER, header::RETRY_AFTER])
            .allow_credentials(true)
            .max_age(Duration::from_secs(600)),
    )
}

fn incoming_request_id(request: &Request) -> Option<String> {
    let value = request.headers().get(&REQUEST_ID_HEADER)?.to_str().ok()?;
    let ok = !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    ok.then(|| value.to_owned())
}

/// The connected peer's address (none for requests made in-process).
fn peer_ip(request: &Request) -> Option<IpAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

fn client_ip(request: &Request, peer: Option<IpAddr>, proxies: &ProxyTrust) -> Option<IpAddr> {
    if !proxies.enabled() {
        return peer;
    }
    let forwarded = request
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok());
    proxies.client_ip(peer, forwarded)
}

async fn request_context(
    State(ctx): State<HttpContext>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let id = incoming_request_id(&request).unwrap_or_else(|| crate::id::new_id().to_string());
    request.extensions_mut().insert(RequestId(id.clone()));
    let peer = peer_ip(&request);
    if let Some(ip) = client_ip(&request, peer, &ctx.proxies) {
        request.extensions_mut().insert(ClientIp(ip));
    }
    // `X-Forwarded-Proto` decides whether cookies are `Secure`; only our own proxies may say
    // it, so from anyone else it is dropped before a handler can read it.
    if !ctx.proxies.trusts_peer(peer) {
        request.headers_mut().remove("x-forwarded-proto");
    }
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %method,
        route = %route,
        trace_id = tracing::field::Empty,
        otel.name = tracing::field::Empty,
        otel.kind = tracing::field::Empty,
        http.route = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
    );
    trace_request(&span, &request, &method, &route);
    let traced = otel::enabled().then(|| span.clone());

    let response = REQUEST_ID
        .scope(id.clone(), async move {
            let response = next.run(request).await;
            let response = envelope_bare_errors(response).await;
            log_outcome(&response, started);
            response
        })
        .instrument(span)
        .await;

    let mut response = response;
    let status = response.status();
    if let Some(span) = traced {
        span.record("http.response.status_code", status.as_u16());
    }
    ctx.metrics.observe_request(
        HttpLabels {
            method: method.to_string(),
            route,
            status: status.as_u16(),
        },
        started.elapsed().as_secs_f64(),
    );
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&id) {
        headers.insert(REQUEST_ID_HEADER, value);
    }
    for (name, value) in &SECURITY_HEADERS {
        if !headers.contains_key(name) {
            headers.insert(name.clone(), value.clone());
        }
    }
    if ctx.hsts {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    response
}

/// Joins the request's span to the caller's trace (W3C `traceparent`) and names the trace in
/// the logs: the exported span's trace id when tracing is on, else the caller's.
fn trace_request(span: &tracing::Span, request: &Request, method: &Method, route: &str) {
    if otel::enabled() {
        otel::set_parent(span, request.headers());
        // OpenTelemetry's HTTP conventions: `{method} {route}`, or the method alone when no
        // route matched (the gateway's proxy, a 404), never the raw path.
        if route == "unmatched" {
            span.record("otel.name", method.as_str());
        } else {
            span.record("otel.name", format!("{method} {route}"));
            span.record("http.route", route);
        }
        span.record("otel.kind", "server");
        if let Some(trace) = otel::trace_id(span) {
            span.record("trace_id", trace);
        }
    } else if let Some(trace) = request
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(crate::telemetry::traceparent_trace_id)
    {
        span.record("trace_id", trace);
    }
}

static SECURITY_HEADERS: [(HeaderName, HeaderValue); 7] = [
    (
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    ),
    (
        HeaderName::from_static("x-frame-options"),
        HeaderValue::from_static("DENY"),
    ),
    (
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("no-referrer"),
    ),
    (
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    ),
    (
        HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    ),
    (
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static(
            "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'",
        ),
    ),
    (
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
    ),
];

/// Error responses made outside our handlers (unknown route, wrong method, timeouts, axum's own
/// extractor rejections) get the same envelope as ours, keeping their text as the message.
async fn envelope_bare_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.extensions().get::<ErrorLog>().is_some()
    {
        return response;
    }
    let is_text = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    let (parts, body) = response.into_parts();
    let mut message = message_for_status(status);
    if is_text
        && status.is_client_error()
        && let Ok(bytes) = axum::body::to_bytes(body, 4096).await
    {
        let text = String::from_utf8_lossy(&bytes).trim().to_owned();
        if !text.is_empty() {
            message = text;
        }
    }
    let mut error = ApiError::new(status, code_for_status(status), message);
    if let Some(retry) = parts
        .headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok()?.parse().ok())
    {
        error = error.with_retry_after(retry);
    }
    let mut new = error.into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            new.headers_mut().insert(name.clone(), value.clone());
        }
    }
    new
}

fn log_outcome(response: &Response, started: Instant) {
    let status = response.status().as_u16();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let log = response.extensions().get::<ErrorLog>();
    let code = log.map_or("", |l| l.code.as_ref());
    let detail = log.and_then(|l| l.detail.as_deref()).unwrap_or("");
    if response.status().is_server_error() {
        tracing::error!(status, latency_ms, code, detail, "request failed");
    } else if response.status().is_client_error() {
        tracing::info!(status, latency_ms, code, detail, "request refused");
    } else {
        tracing::debug!(status, latency_ms, "request served");
    }
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    failing: Vec<String>,
}

#[derive(Clone)]
struct OpsState {
    metrics: Arc<Metrics>,
    checks: Arc<Vec<Arc<dyn ReadinessCheck>>>,
    /// `server.metrics_token`: when set, `/metrics` needs `Authorization: Bearer <it>`.
    metrics_token: Option<Secret>,
}

/// `/healthz` (the process answers), `/readyz` (its dependencies answer) and `/metrics`
/// (public, or behind `metrics_token`).
pub fn ops_router(
    metrics: Arc<Metrics>,
    checks: Vec<Arc<dyn ReadinessCheck>>,
    metrics_token: Option<Secret>,
) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .with_state(OpsState {
            metrics,
            checks: Arc::new(checks),
            metrics_token,
        })
}

/// Compares in time that does not depend on where the inputs first differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn healthz() -> impl IntoResponse {
    axum::Json(Health {
        status: "ok",
        failing: Vec::new(),
    })
}

async fn readyz(State(state): State<OpsState>) -> Response {
    let mut failing = Vec::new();
    for check in state.checks.iter() {
        let outcome = tokio::time::timeout(Duration::from_secs(2), check.check()).await;
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => {
                tracing::warn!(dependency = check.name(), %reason, "readiness check failed");
                failing.push(check.name().to_owned());
            }
            Err(_) => {
                tracing::warn!(dependency = check.name(), "readiness check timed out");
                failing.push(check.name().to_owned());
            }
        }
    }
    if failing.is_empty() {
        axum::Json(Health {
            status: "ready",
            failing,
        })
        .into_response()
    } else {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            format!("not ready: {} unreachable", failing.join(", ")),
        )
        .into_response()
    }
}

async fn render_metrics(State(state): State<OpsState>, headers: http::HeaderMap) -> Response {
    if let Some(token) = &state.metrics_token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if !presented.is_some_and(|p| same_secret(p.as_bytes(), token.expose().as_bytes())) {
            let mut refused = ApiError::unauthorized(
                "the metrics need `Authorization: Bearer <server.metrics_token>`",
            )
            .into_response();
            refused.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"metrics\""),
            );
            return refused;
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        Body::from(state.metrics.render()),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use tower::ServiceExt;

    /// Answers with the `X-Forwarded-Proto` the handler saw, or `none`.
    async fn seen_proto(headers: http::HeaderMap) -> String {
        headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none")
            .to_owned()
    }

    async fn proto_seen(proxies: ProxyTrust, peer: &str) -> String {
        let ctx = HttpContext {
            metrics: crate::metrics::MetricsBuilder::new().finish(),
            proxies,
            hsts: false,
        };
        let router = Router::new()
            .route("/", get(seen_proto))
            .layer(middleware::from_fn_with_state(ctx, request_context));
        let mut request = Request::builder()
            .uri("/")
            .header("x-forwarded-proto", "https")
            .body(Body::empty())
            .unwrap();
        let peer: SocketAddr = peer.parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(peer));
        let response = router.oneshot(request).await.unwrap();
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        String::from_utf8(body.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn forwarded_proto_is_believed_only_from_a_trusted_proxy() {
        let listed = || ProxyTrust::proxies(vec!["10.0.0.0/8".parse().unwrap()]);
        assert_eq!(proto_seen(listed(), "10.1.2.3:4000").await, "https");
        assert_eq!(proto_seen(listed(), "192.0.2.9:4000").await, "none");
        assert_eq!(
            proto_seen(ProxyTrust::none(), "10.1.2.3:4000").await,
            "none"
        );
        // No list: the connected peer is the one proxy.
        assert_eq!(
            proto_seen(ProxyTrust::proxies(Vec::new()), "192.0.2.9:4000").await,
            "https"
        );
    }
}
