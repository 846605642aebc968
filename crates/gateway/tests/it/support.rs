//! The test harness: fake upstream services, a credential checker and a rate limiter standing
//! in for the auth service and Redis, and a gateway served the way the composition root
//! serves it (ops routes merged, common layers, `ConnectInfo`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use confab_cache::{Decision, MemoryCache, Rate, RateLimiter, Unavailable};
use confab_core::auth::{
    AuthFailure, Authenticator, Credential, Principal, Role, Scope, ServiceTokens,
};
use confab_core::config::{GatewayConfig, ServerConfig};
use confab_core::http::{HttpContext, apply_common_layers, ops_router};
use confab_core::metrics::{Metrics, MetricsBuilder};
use confab_core::net::ProxyTrust;
use confab_core::service_tls::ServiceTls;
use confab_gateway::{Gateway, GatewayDeps};
use futures::StreamExt;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

pub const SECRET: [u8; 32] = [42; 32];

/// Credentials for tests: `jwt-<uuid>` is a session of that user, `cfk_<uuid>` an API key
/// (scopes chat and inference) of the user with the same id; anything else is invalid.
pub struct TestAuth;

#[async_trait]
impl Authenticator for TestAuth {
    async fn authenticate(&self, bearer: &str) -> Result<Principal, AuthFailure> {
        if let Some(id) = bearer.strip_prefix("jwt-") {
            let user_id = id.parse().map_err(|_| AuthFailure::Invalid)?;
            return Ok(Principal {
                user_id,
                role: Role::User,
                credential: Credential::Session {
                    session_id: Uuid::nil(),
                },
            });
        }
        if let Some(id) = bearer.strip_prefix("cfk_") {
            let id: Uuid = id.parse().map_err(|_| AuthFailure::Invalid)?;
            return Ok(Principal {
                user_id: id,
                role: Role::User,
                credential: Credential::ApiKey {
                    key_id: id,
                    scopes: vec![Scope::Chat, Scope::Inference],
                },
            });
        }
        Err(AuthFailure::Invalid)
    }
}

/// A fixed allowance per key (the burst), never refilled within a test.
#[derive(Default)]
pub struct CountingLimiter {
    used: Mutex<HashMap<String, u32>>,
}

#[async_trait]
impl RateLimiter for CountingLimiter {
    async fn check(&self, key: &str, rate: Rate, cost: u32) -> Result<Decision, Unavailable> {
        let mut used = self.used.lock();
        let count = used.entry(key.to_owned()).or_default();
        let allowed = *count + cost <= rate.burst;
        if allowed {
            *count += cost;
        }
        Ok(Decision {
            allowed,
            limit: rate.burst,
            remaining: rate.burst - *count,
            reset_after: Duration::from_secs(60),
            retry_after: (!allowed).then_some(Duration::from_secs(20)),
        })
    }
}

/// What a fake service does and has seen.
pub struct FakeState {
    pub name: String,
    pub hits: AtomicUsize,
    /// Answer 503 on the data routes (and on `/readyz`).
    pub failing: AtomicBool,
    /// Lets the SSE answer finish.
    pub release: Notify,
    pub openapi: Mutex<Value>,
}

/// A fake service on 127.0.0.1.
pub struct Fake {
    pub addr: SocketAddr,
    /// `http`, or `https` for [`Fake::serve_tls`].
    scheme: &'static str,
    pub state: Arc<FakeState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Fake {
    pub async fn start(name: &str) -> Fake {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(name, listener)
    }

    pub fn serve(name: &str, listener: tokio::net::TcpListener) -> Fake {
        Self::serve_on(name, listener, "http")
    }

    /// The fake over HTTPS, with the certificate `acceptor` holds.
    pub fn serve_tls(
        name: &str,
        listener: tokio::net::TcpListener,
        acceptor: tokio_rustls::TlsAcceptor,
    ) -> Fake {
        Self::serve_on(
            name,
            TlsListener {
                tcp: listener,
                acceptor,
            },
            "https",
        )
    }

    fn serve_on<L>(name: &str, listener: L, scheme: &'static str) -> Fake
    where
        L: axum::serve::Listener<Addr = SocketAddr>,
    {
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(FakeState {
            name: name.to_owned(),
            hits: AtomicUsize::new(0),
            failing: AtomicBool::new(false),
            release: Notify::new(),
            openapi: Mutex::new(json!({
                "openapi": "3.1.0",
                "info": {"title": name},
                "paths": {format!("/api/v1/{name}/x"): {"get": {}}},
                "tags": [{"name": name}]
            })),
        });
        let app = Router::new()
            .route("/readyz", get(readyz))
            .route("/api/openapi.json", get(openapi))
            .route("/v1/chat/completions", post(sse))
            .route("/api/v1/ws", get(socket))
            .route("/api/v1/conversations/partial", get(partial))
            .route("/api/v1/shared/{token}", get(shared_page))
            .route("/.well-known/jwks.json", get(jwks))
            .fallback(any(echo))
            .with_state(state.clone());
        #[expect(
            clippy::disallowed_methods,
            reason = "a test server that lives as long as the test"
        )]
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Fake {
            addr,
            scheme,
            state,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    pub fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }

    pub fn fail(&self, failing: bool) {
        self.state.failing.store(failing, Ordering::SeqCst);
    }
}

/// Completes TLS handshakes on a TCP listener's connections, one at a time (a client that
/// refuses the certificate is skipped).
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(stream) = self.acceptor.accept(tcp).await {
                return (stream, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

async fn readyz(State(state): State<Arc<FakeState>>) -> Response {
    if state.failing.load(Ordering::SeqCst) {
        http::StatusCode::SERVICE_UNAVAILABLE.into_response()
    } else {
        "ready".into_response()
    }
}

async fn openapi(State(state): State<Arc<FakeState>>) -> Response {
    axum::Json(state.openapi.lock().clone()).into_response()
}

/// Answers with what it received: its name, the method, URI, body and headers.
async fn echo(State(state): State<Arc<FakeState>>, request: Request) -> Response {
    state.hits.fetch_add(1, Ordering::SeqCst);
    if state.failing.load(Ordering::SeqCst) {
        return (http::StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
    }
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let headers: serde_json::Map<String, Value> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or(""))))
        .collect();
    let mut response = axum::Json(json!({
        "instance": state.name,
        "method": parts.method.as_str(),
        "uri": parts.uri.to_string(),
        "body": String::from_utf8_lossy(&body),
        "headers": headers,
    }))
    .into_response();
    response
        .headers_mut()
        .insert("keep-alive", http::HeaderValue::from_static("timeout=5"));
    response
}

/// An SSE answer: the first event at once, the second only when the test releases it.
async fn sse(State(state): State<Arc<FakeState>>) -> Response {
    state.hits.fetch_add(1, Ordering::SeqCst);
    let first = futures::stream::once(async { Ok::<_, std::io::Error>("data: first\n\n") });
    let rest = futures::stream::once(async move {
        state.release.notified().await;
        Ok("data: second\n\ndata: [DONE]\n\n")
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(first.chain(rest)))
        .unwrap()
}

/// Headers and a first chunk, then (once the test releases it) the connection breaks.
async fn partial(State(state): State<Arc<FakeState>>) -> Response {
    state.hits.fetch_add(1, Ordering::SeqCst);
    let first = futures::stream::once(async { Ok(bytes::Bytes::from_static(b"partial")) });
    let broken = futures::stream::once(async move {
        state.release.notified().await;
        Err(std::io::Error::other("broken"))
    });
    Response::new(Body::from_stream(first.chain(broken)))
}

async fn shared_page(State(state): State<Arc<FakeState>>) -> Response {
    state.hits.fetch_add(1, Ordering::SeqCst);
    (
        [("cache-control", "public, max-age=60")],
        format!("shared page {}", state.hits.load(Ordering::SeqCst)),
    )
        .into_response()
}

async fn jwks(State(state): State<Arc<FakeState>>) -> Response {
    state.hits.fetch_add(1, Ordering::SeqCst);
    axum::Json(json!({"keys": []})).into_response()
}

/// Echoes text and binary messages; "close" makes it close.
async fn socket(State(state): State<Arc<FakeState>>, request: Request) -> Response {
    state.hits.fetch_add(1, Ordering::SeqCst);
    let authorization = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let query = request.uri().query().unwrap_or("").to_owned();
    let (mut parts, _) = request.into_parts();
    let Ok(upgrade) =
        <WebSocketUpgrade as axum::extract::FromRequestParts<()>>::from_request_parts(
            &mut parts,
            &(),
        )
        .await
    else {
        return http::StatusCode::UPGRADE_REQUIRED.into_response();
    };
    upgrade.on_upgrade(move |mut socket: WebSocket| async move {
        let hello = json!({"authorization": authorization, "query": query}).to_string();
        if socket.send(Message::Text(hello.into())).await.is_err() {
            return;
        }
        while let Some(Ok(message)) = socket.recv().await {
            match message {
                Message::Text(text) if text.as_str() == "close" => {
                    let _ = socket.send(Message::Close(None)).await;
                    break;
                }
                Message::Close(_) => break,
                Message::Ping(_) | Message::Pong(_) => {}
                echo => {
                    if socket.send(echo).await.is_err() {
                        break;
                    }
                }
            }
        }
    })
}

/// A gateway served on 127.0.0.1.
pub struct TestGateway {
    pub addr: SocketAddr,
    pub gateway: Gateway,
    pub metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.shutdown.cancel();
        self.task.abort();
    }
}

impl TestGateway {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// A config with short times, limits off, and `services` as the upstreams.
pub fn config(services: &[(&str, Vec<String>)]) -> GatewayConfig {
    let mut config = GatewayConfig {
        connect_timeout_ms: 500,
        response_timeout_ms: 3_000,
        breaker_open_ms: 300,
        probe_interval_ms: 50,
        dns_refresh_ms: 50,
        ip_per_minute: 0,
        user_per_minute: 0,
        key_per_minute: 0,
        ..GatewayConfig::default()
    };
    for (service, urls) in services {
        let slot = match *service {
            "auth" => &mut config.upstreams.auth,
            "chat" => &mut config.upstreams.chat,
            "inference" => &mut config.upstreams.inference,
            "admin" => &mut config.upstreams.admin,
            "seo" => &mut config.upstreams.seo,
            other => panic!("no service {other}"),
        };
        slot.clone_from(urls);
    }
    config
}

pub async fn start_gateway(config: &GatewayConfig) -> TestGateway {
    start_with(config, Arc::new(CountingLimiter::default())).await
}

pub async fn start_with(config: &GatewayConfig, limiter: Arc<dyn RateLimiter>) -> TestGateway {
    start_trusting(config, limiter, ServiceTls::default()).await
}

/// A gateway whose client to `https://` upstreams trusts `tls`.
pub async fn start_trusting(
    config: &GatewayConfig,
    limiter: Arc<dyn RateLimiter>,
    tls: ServiceTls,
) -> TestGateway {
    let mut builder = MetricsBuilder::new();
    let tasks = TaskTracker::new();
    let shutdown = CancellationToken::new();
    let fallback = Router::new().fallback(|| async { "the web UI" });
    let (gateway, router) = Gateway::new(
        GatewayDeps {
            authenticator: Arc::new(TestAuth),
            service_tokens: ServiceTokens::new(&SECRET).unwrap(),
            limiter,
            cache: Arc::new(MemoryCache::new(1_000)),
            metrics: &mut builder,
            tasks,
            shutdown: shutdown.clone(),
            fallback,
            tls,
        },
        config,
    )
    .await
    .unwrap();
    let metrics = builder.finish();
    let server = ServerConfig::default();
    let router = apply_common_layers(
        router.merge(ops_router(metrics.clone(), vec![gateway.readiness()], None)),
        HttpContext {
            metrics: metrics.clone(),
            proxies: ProxyTrust::none(),
            hsts: false,
        },
        &server,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    #[expect(
        clippy::disallowed_methods,
        reason = "a test server that lives as long as the test"
    )]
    let task = tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    TestGateway {
        addr,
        gateway,
        metrics,
        shutdown,
        task,
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

pub fn jwt(user: Uuid) -> String {
    format!("Bearer jwt-{user}")
}

/// GETs `url` with `auth` and reads the JSON answer.
pub async fn get_json(url: &str, auth: Option<&str>) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = client().get(url);
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

/// Waits (bounded) until `done` holds.
pub async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
