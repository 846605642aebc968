//! Forwarding one request: the edge checks, the response cache, then attempts on the service's
//! instances (circuit breaker, balancing, timeout to response headers, retries before anything
//! reached the client: for idempotent requests, and for any request whose connection was
//! refused), and the answer streamed back, or a WebSocket
//! handshake whose two upgraded connections are then joined with back-pressure.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use confab_cache::{Cache, RateLimiter};
use confab_core::ApiError;
use confab_core::auth::{DynAuthenticator, ServiceTokens};
use confab_core::error::ErrorLog;
use confab_core::extract::ClientIp;
use confab_core::http::RequestId;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Body as _, Frame, Incoming, SizeHint};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::cache::{self, Cached};
use crate::edge::{self, Limits, Source};
use crate::error::{bad_gateway, gateway_timeout, refuse, service_unavailable};
use crate::headers;
use crate::metrics::{GatewayMetrics, Refusal};
use crate::openapi::ApiDocs;
use crate::routes::{self, Flavor, Service, Target};
use crate::upstream::{InFlight, Instance, Outcome, Upstream};

/// A request body this size or smaller is kept so the request can be sent again (any request
/// whose connection was refused; an idempotent one after other failures too).
const REPLAYABLE_BODY: u64 = 64 * 1024;

/// The pooled client to the services' instances: plain HTTP, or HTTPS for `https://` entries
/// (trusting the system's roots and `services.ca_file`; HTTPS only under
/// `services.require_tls`).
pub type HttpClient = Client<HttpsConnector<HttpConnector>, Body>;

/// Everything a request needs: one per serving thread (`Gateway::lane`), the state behind
/// the `Arc`s shared by all of them.
pub struct Shared {
    pub upstreams: Vec<Option<Arc<Upstream>>>,
    pub client: HttpClient,
    pub authenticator: DynAuthenticator,
    pub tokens: ServiceTokens,
    pub limiter: Arc<dyn RateLimiter>,
    pub cache: Arc<dyn Cache>,
    pub limits: Limits,
    pub response_timeout: Duration,
    pub retries: u32,
    pub cache_max_body: usize,
    pub cache_max_ttl: Duration,
    pub jwks_ttl: Duration,
    pub metrics: GatewayMetrics,
    /// The merged OpenAPI document, one for every serving thread.
    pub docs: Arc<ArcSwap<ApiDocs>>,
    pub fallback: Router,
    pub tasks: TaskTracker,
    pub shutdown: CancellationToken,
}

impl Shared {
    pub fn upstream(&self, service: Service) -> Option<&Arc<Upstream>> {
        self.upstreams.get(service.index()).and_then(Option::as_ref)
    }
}

/// The handler behind every path the gateway does not answer itself.
pub async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    match routes::classify(request.uri().path()) {
        Target::Web => match shared.fallback.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        },
        Target::Refused => {
            shared.metrics.refused(Refusal::NotFound);
            ApiError::not_found("no such route").into_response()
        }
        Target::UnknownApi(flavor) => {
            shared.metrics.refused(Refusal::NotFound);
            refuse(flavor, ApiError::not_found("no such route"))
        }
        Target::Upstream {
            service,
            public,
            flavor,
        } => forward(&shared, request, service, public, flavor).await,
    }
}

fn is_websocket(request: &Request) -> bool {
    request.uri().path() == routes::WEBSOCKET
        && request
            .headers()
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE
    )
}

async fn forward(
    shared: &Shared,
    request: Request,
    service: Service,
    public: bool,
    flavor: Flavor,
) -> Response {
    let Some(upstream) = shared.upstream(service) else {
        shared.metrics.refused(Refusal::NotFound);
        return refuse(
            flavor,
            ApiError::not_found(format!(
                "the {} service is not part of this deployment",
                service.name()
            )),
        );
    };
    let websocket = is_websocket(&request);
    let (mut parts, body) = request.into_parts();

    let caller = match edge::authenticate(
        &shared.authenticator,
        &shared.tokens,
        &parts.headers,
        parts.uri.query(),
        websocket,
        public,
    )
    .await
    {
        Ok(caller) => caller,
        Err(error) => {
            shared.metrics.refused(Refusal::Unauthenticated);
            return refuse(flavor, error);
        }
    };
    let ip = parts.extensions.get::<ClientIp>().map(|c| c.0);
    let limit = edge::check_limits(
        &shared.limiter,
        shared.limits,
        ip,
        caller.principal.as_ref(),
        &shared.metrics,
    )
    .await;
    if let Some(decision) = limit.filter(|d| !d.allowed) {
        shared.metrics.refused(Refusal::RateLimited);
        let retry = decision
            .retry_after
            .map_or(1, |d| d.as_secs_f64().ceil() as u64);
        let mut response = refuse(flavor, ApiError::rate_limited(retry));
        edge::rate_headers(response.headers_mut(), &decision);
        return response;
    }

    // Headers added to whatever the service answers.
    let mut extra = HeaderMap::new();
    if let Some(decision) = &limit {
        edge::rate_headers(&mut extra, decision);
    }
    {
        let docs = shared.docs.load();
        if let Some(found) = docs.deprecation(&parts.method, parts.uri.path()) {
            extra.insert("deprecation", found.deprecation.clone());
            if let Some(sunset) = &found.sunset {
                extra.insert("sunset", sunset.clone());
            }
            if let Some(link) = &found.link {
                extra.insert(header::LINK, link.clone());
            }
        }
    }

    let cache_key = (parts.method == Method::GET
        && public
        && !caller.credentialed
        && !shared.cache_max_ttl.is_zero())
    .then(|| {
        let pq = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        format!("gw:resp:{pq}")
    });
    // The validators a cached answer is compared with.
    let mut conditional = HeaderMap::new();
    if let Some(key) = &cache_key {
        if let Some(stored) = shared.cache.get(key).await
            && let Some(hit) = Cached::decode(&stored)
        {
            return cached_response(&hit, &parts.headers, extra, "hit");
        }
        for value in parts.headers.get_all(header::IF_NONE_MATCH) {
            conditional.append(header::IF_NONE_MATCH, value.clone());
        }
    }

    // The request for the services.
    let mut path_and_query = parts
        .uri
        .path_and_query()
        .map_or_else(|| http::uri::PathAndQuery::from_static("/"), Clone::clone);
    if let Some((value, source)) = caller.replace {
        parts.headers.insert(header::AUTHORIZATION, value);
        if source == Source::Query {
            let query = edge::without_query_token(path_and_query.query().unwrap_or(""));
            let text = if query.is_empty() {
                parts.uri.path().to_owned()
            } else {
                format!("{}?{query}", parts.uri.path())
            };
            if let Ok(pq) = text.parse() {
                path_and_query = pq;
            }
        }
    }
    let host = parts.headers.remove(header::HOST).or_else(|| {
        parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });
    headers::strip_hop_by_hop(&mut parts.headers, websocket);
    let peer = parts
        .extensions
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    headers::set_forwarded(&mut parts.headers, peer, host);
    if let Some(RequestId(id)) = parts.extensions.get::<RequestId>()
        && let Ok(value) = HeaderValue::from_str(id)
    {
        parts
            .headers
            .insert(confab_core::http::REQUEST_ID_HEADER, value);
    }
    // Exported traces: the service's span becomes a child of this request's; otherwise the
    // caller's trace goes on with a new span id.
    if !confab_core::telemetry::otel::inject(&mut parts.headers) {
        let traceparent = headers::next_traceparent(parts.headers.get(&headers::TRACEPARENT));
        parts.headers.insert(headers::TRACEPARENT, traceparent);
    }
    let client_upgrade = websocket
        .then(|| parts.extensions.remove::<hyper::upgrade::OnUpgrade>())
        .flatten();

    // Whether the body can be sent again: small and known. An idempotent request is retried
    // after any failure; another only when its connection was refused (it never left).
    let idempotent = idempotent(&parts.method);
    let hint = body.size_hint();
    let mut replay: Option<Bytes> = None;
    let mut streaming = Some(body);
    if shared.retries > 0 && hint.exact().is_some_and(|n| n <= REPLAYABLE_BODY) {
        if hint.exact() == Some(0) {
            replay = Some(Bytes::new());
        } else if let Some(body) = streaming.take() {
            match body.collect().await {
                Ok(collected) => replay = Some(collected.to_bytes()),
                Err(e) => {
                    return refuse(
                        flavor,
                        ApiError::bad_request("invalid_body", format!("cannot read the body: {e}")),
                    );
                }
            }
        }
    }
    let attempts = if replay.is_some() {
        shared.retries + 1
    } else {
        1
    };

    // The circuit judges the service by requests, not attempts: one that an instance failed
    // and another answered is a success (the failing instance is ejected by its own count),
    // and a half-open circuit's probe is the whole request, retries included.
    if !upstream.breaker.allow() {
        shared.metrics.refused(Refusal::CircuitOpen);
        return refuse(
            flavor,
            service_unavailable(service.name(), upstream.retry_after_secs()),
        );
    }
    let mut probe = Outcome::new(upstream);
    let mut avoid: Option<Arc<Instance>> = None;
    let mut down: Vec<Arc<Instance>> = Vec::new();
    let mut last_error = None;
    for attempt in 0..attempts {
        if attempt > 0 {
            shared.metrics.retried(service);
        }
        let Some(instance) = upstream.pick(avoid.as_ref(), &down) else {
            last_error = Some(service_unavailable(service.name(), 1));
            break;
        };
        let last = attempt + 1 == attempts;
        let body = match (&replay, streaming.take()) {
            (Some(bytes), _) => Body::from(bytes.clone()),
            (None, Some(body)) => body,
            (None, None) => Body::empty(),
        };
        let Ok(uri) = instance.uri(path_and_query.clone()) else {
            probe.settle(true);
            return refuse(
                flavor,
                ApiError::bad_request("bad_request", "malformed path"),
            );
        };
        let mut outgoing = http::Request::new(body);
        *outgoing.method_mut() = parts.method.clone();
        *outgoing.uri_mut() = uri;
        *outgoing.headers_mut() = if last {
            std::mem::take(&mut parts.headers)
        } else {
            parts.headers.clone()
        };
        let in_flight = instance.start();
        let started = Instant::now();
        let answer =
            tokio::time::timeout(shared.response_timeout, shared.client.request(outgoing)).await;
        let elapsed = started.elapsed().as_secs_f64();
        match answer {
            Ok(Ok(response)) => {
                let status = response.status();
                shared
                    .metrics
                    .observe(service, Some(status.as_u16()), elapsed);
                let failed = matches!(
                    status,
                    StatusCode::BAD_GATEWAY
                        | StatusCode::SERVICE_UNAVAILABLE
                        | StatusCode::GATEWAY_TIMEOUT
                );
                upstream.record_instance(&instance, !failed);
                if failed && !last && idempotent {
                    avoid = Some(instance);
                    continue;
                }
                if failed {
                    probe.failed(Some(&instance), &down);
                } else {
                    probe.settle(true);
                }
                return relay(
                    shared,
                    response,
                    in_flight,
                    extra,
                    &conditional,
                    cache_key,
                    parts.uri.path(),
                    client_upgrade,
                )
                .await;
            }
            Ok(Err(error)) => {
                shared.metrics.observe(service, None, elapsed);
                upstream.record_instance(&instance, false);
                tracing::debug!(service = service.name(), instance = %instance.authority, %error, "upstream attempt failed");
                let refused = error.is_connect();
                last_error = Some(bad_gateway(
                    service.name(),
                    format!("{}: {error}", instance.authority),
                ));
                // A request that may have reached the instance is not sent twice.
                if !idempotent && !refused {
                    avoid = Some(instance);
                    break;
                }
                if refused {
                    down.push(instance.clone());
                }
            }
            Err(_) => {
                shared.metrics.observe(service, None, elapsed);
                upstream.record_instance(&instance, false);
                last_error = Some(gateway_timeout(service.name()));
                if !idempotent {
                    avoid = Some(instance);
                    break;
                }
            }
        }
        avoid = Some(instance);
    }
    probe.failed(avoid.as_ref(), &down);
    let error = last_error.unwrap_or_else(|| service_unavailable(service.name(), 1));
    refuse(flavor, error)
}

fn cached_response(
    hit: &Cached,
    request: &HeaderMap,
    extra: HeaderMap,
    state: &'static str,
) -> Response {
    let mut response = if cache::not_modified(request, &hit.etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = Response::new(Body::from(hit.body.clone()));
        if let Some(ct) = &hit.content_type {
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, ct.clone());
        }
        response
    };
    let headers = response.headers_mut();
    headers.insert(header::ETAG, hit.etag.clone());
    if let Some(cc) = &hit.cache_control {
        headers.insert(header::CACHE_CONTROL, cc.clone());
    }
    headers.insert("x-cache", HeaderValue::from_static(state));
    headers.extend(extra);
    response
}

/// Sends the service's answer on: streamed (with the instance counted in flight until the body
/// ends), cached when it may be, or a WebSocket joined to the client.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site; the parts of one request"
)]
async fn relay(
    shared: &Shared,
    mut response: http::Response<Incoming>,
    in_flight: InFlight,
    extra: HeaderMap,
    request_headers: &HeaderMap,
    cache_key: Option<String>,
    path: &str,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> Response {
    let status = response.status();
    if status == StatusCode::SWITCHING_PROTOCOLS {
        if let Some(client) = client_upgrade {
            let upstream = hyper::upgrade::on(&mut response);
            join_upgraded(shared, client, upstream, in_flight);
        }
        let (mut parts, _) = response.into_parts();
        headers::strip_hop_by_hop(&mut parts.headers, true);
        parts.headers.extend(extra);
        return Response::from_parts(parts, Body::empty());
    }
    let (mut parts, body) = response.into_parts();
    headers::strip_hop_by_hop(&mut parts.headers, false);
    if status.is_client_error() || status.is_server_error() {
        // The service wrote its own error body; the request middleware must not rewrite it.
        parts.extensions.insert(ErrorLog {
            code: "upstream".into(),
            detail: None,
        });
    }
    let ttl = cache_key.as_ref().and_then(|_| {
        let default = (path == "/.well-known/jwks.json").then_some(shared.jwks_ttl);
        cache::ttl_for(status, &parts.headers, default, shared.cache_max_ttl)
    });
    let small = body
        .size_hint()
        .exact()
        .is_some_and(|n| n <= shared.cache_max_body as u64);
    if let (Some(key), Some(ttl), true) = (cache_key, ttl, small) {
        let limited = http_body_util::Limited::new(body, shared.cache_max_body);
        let bytes = match limited.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) => {
                return refuse(
                    Flavor::Envelope,
                    bad_gateway("upstream", format!("reading a cacheable answer: {e}")),
                );
            }
        };
        drop(in_flight);
        let stored = Cached {
            content_type: parts.headers.get(header::CONTENT_TYPE).cloned(),
            cache_control: parts.headers.get(header::CACHE_CONTROL).cloned(),
            etag: cache::etag_of(&bytes),
            body: bytes,
        };
        shared.cache.set(key, stored.encode(), ttl).await;
        let mut response = cached_response(&stored, request_headers, extra, "miss");
        // Anything else the service said (its own headers) stays.
        for (name, value) in &parts.headers {
            if !response.headers().contains_key(name) && name != header::CONTENT_LENGTH {
                response.headers_mut().insert(name.clone(), value.clone());
            }
        }
        return response;
    }
    parts.headers.extend(extra);
    Response::from_parts(
        parts,
        Body::new(Streamed {
            inner: body,
            _in_flight: in_flight,
        }),
    )
}

/// Joins the client's and the service's upgraded connections on a tracked task;
/// `copy_bidirectional` reads one side only as fast as the other takes it (back-pressure).
fn join_upgraded(
    shared: &Shared,
    client: hyper::upgrade::OnUpgrade,
    upstream: hyper::upgrade::OnUpgrade,
    in_flight: InFlight,
) {
    let shutdown = shared.shutdown.clone();
    shared.tasks.spawn(async move {
        let _in_flight = in_flight;
        let (client, upstream) = match futures::future::try_join(client, upstream).await {
            Ok(pair) => pair,
            Err(e) => {
                tracing::debug!(error = %e, "a WebSocket upgrade did not complete");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let mut upstream = TokioIo::new(upstream);
        tokio::select! {
            () = shutdown.cancelled() => {}
            copied = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {
                if let Err(e) = copied {
                    tracing::debug!(error = %e, "a proxied WebSocket ended with an error");
                }
            }
        }
    });
}

/// A service's body streamed to the client, frame by frame as it comes; the instance counts
/// the request in flight until the body ends or the client goes away.
struct Streamed {
    inner: Incoming,
    _in_flight: InFlight,
}

impl hyper::body::Body for Streamed {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
