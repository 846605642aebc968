//! The app on port 0, and small HTTP helpers.

use std::net::SocketAddr;

use confab::app::{self, App};
use confab_core::config::Config;
use confab_testkit::TestDb;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub const PASSWORD: &str = "correct horse battery";
pub const SCRIPTED_MODEL: &str = "scripted-echo";

/// A test configuration on the backend under test.
pub async fn test_config() -> (Config, TestDb) {
    let db = TestDb::new().await.expect("test database");
    let mut config = Config::default();
    config.data_dir = db.dir.path().to_path_buf();
    config.database.url = Some(confab_core::config::Secret::new(db.url.clone()));
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.auth.ip_rate_limit_per_minute = 100_000;
    config.auth.ip_rate_limit_burst = 100_000;
    // A deterministic model for API tests; no local models (the data dir has none).
    let mut scripted = confab_core::config::ProviderConfig::new(
        "scripted",
        confab_core::config::ProviderKind::Scripted,
        &[SCRIPTED_MODEL],
    );
    scripted.reply = Some("You said: {last}".into());
    config.inference.providers = vec![scripted];
    (config, db)
}

/// A running app on a real socket.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub auth: std::sync::Arc<confab_auth::AuthService>,
    pub chat: std::sync::Arc<confab_chat::ChatService>,
    pub events: std::sync::Arc<dyn confab_bus::EventBus>,
    pub durable: std::sync::Arc<dyn confab_bus::DurableEvents>,
    pub db: confab_store::Db,
    /// The URL of `db`, for a second replica on the same database.
    pub database_url: String,
    stop: CancellationToken,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    _db: TestDb,
}

impl TestApp {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let (mut config, db) = test_config().await;
        tweak(&mut config);
        let app = app::build(&config).await.expect("app builds");
        Self::serve(app, config, db).await
    }

    pub async fn serve(app: App, _config: Config, db: TestDb) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let auth = app.auth.clone();
        let chat = app.chat.clone();
        let events = app.events.clone();
        let durable = app.durable.clone();
        let store = app.db.clone();
        let signal = stop.clone();
        let server = tokio::spawn(confab::server::serve(
            app.into_process(),
            listener,
            std::time::Duration::from_secs(5),
            async move { signal.cancelled().await },
        ));
        Self {
            addr,
            client: reqwest::Client::builder()
                .cookie_store(true)
                .build()
                .unwrap(),
            auth,
            chat,
            events,
            durable,
            db: store,
            database_url: db.url.clone(),
            stop,
            server,
            _db: db,
        }
    }

    /// The data directory (the SQLite file, the local blob store).
    pub fn data_dir(&self) -> &std::path::Path {
        self._db.dir.path()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends a request with an optional bearer token and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        Response::from(request.send().await.expect("request sent")).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        self.call(Method::POST, path, token, Some(body)).await
    }

    /// Registers a user and returns the response body (with tokens when active).
    pub async fn register(&self, email: &str) -> Value {
        let response = self
            .post(
                "/api/v1/auth/register",
                None,
                json!({"email": email, "password": PASSWORD, "name": email.split('@').next().unwrap()}),
            )
            .await;
        assert_eq!(response.status, StatusCode::CREATED, "{}", response.body);
        response.body
    }

    /// Logs in and returns `(access_token, refresh_token)`.
    pub async fn login(&self, email: &str, password: &str) -> (String, String) {
        let response = self
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
        (
            response.body["access_token"].as_str().unwrap().to_owned(),
            response.body["refresh_token"].as_str().unwrap().to_owned(),
        )
    }

    /// Posts a chat completion and reads the whole body as text (for SSE streams).
    pub async fn chat_text(&self, key: &str, body: &Value) -> String {
        self.client
            .post(self.url("/v1/chat/completions"))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .expect("request sent")
            .text()
            .await
            .expect("body read")
    }

    pub async fn stop(self) {
        self.stop.cancel();
        self.server.await.unwrap().unwrap();
    }

    /// Stops the server and starts a new one over the same database and `config`, as a
    /// process restart would.
    pub async fn restart(self, config: &Config) -> Self {
        self.stop.cancel();
        self.server.await.unwrap().unwrap();
        let app = app::build(config).await.expect("app builds");
        Self::serve(app, config.clone(), self._db).await
    }
}

/// A response with its body read.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Response {
    /// Reads a response sent by hand (for requests that need their own headers).
    pub async fn read(response: reqwest::Response) -> Self {
        Self::from(response).await
    }

    async fn from(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            status,
            headers,
            body,
            text,
        }
    }

    /// Asserts an error envelope with this status and code, and returns its message.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) -> String {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        assert_eq!(self.body["error"]["code"], code, "{}", self.text);
        let request_id = self.body["error"]["request_id"]
            .as_str()
            .unwrap_or_default();
        assert!(!request_id.is_empty(), "no request id: {}", self.text);
        assert_eq!(
            self.headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok()),
            Some(request_id),
            "the header and the body name the same request"
        );
        self.body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    }
}

/// Parses an SSE body into its `data:` payloads.
pub fn sse_data(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter_map(|event| {
            event
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .map(str::to_owned)
        })
        .collect()
}
