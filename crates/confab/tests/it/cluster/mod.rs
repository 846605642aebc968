//! The cluster tests (issue 15, "Proving it on this machine"): the real binary as separate
//! processes on loopback — two gateways, auth, two chat, two inference, admin, seo and files —
//! on one
//! PostgreSQL, one Redis and one NATS, driven through the gateways, with faults.
//!
//! They run when `TEST_BACKEND=postgres`, `TEST_NATS_URL` and `TEST_REDIS_URL` are set
//! (scripts/test.sh's PostgreSQL pass); otherwise each says it is skipped and why. Every test
//! starts its own cluster (a fresh database, NATS namespace and Redis key prefix) through
//! [`Cluster::start`]; every child is killed when the cluster is dropped. The nextest group
//! `confab-cluster` (.config/nextest.toml) runs them one at a time.
#![expect(clippy::print_stderr, reason = "the cluster tests print their figures")]

mod chat_kill;
mod circuit;
mod flows;
mod inference_kill;
mod nats_restart;
mod ports;
mod postgres_restart;
mod redis_restart;
mod sdk;
mod servers;
mod traces;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use confab_testkit::{ConfabProcess, SpawnOptions};
use reqwest::Method;
use serde_json::{Value, json};

use crate::binary::bin;
use crate::common::{PASSWORD, Response};
pub(crate) use ports::{free_addr, release};

/// Every process of the cluster: its name and its `--services`.
pub(crate) const NODES: &[(&str, &str)] = &[
    ("auth", "auth"),
    ("admin", "admin"),
    ("inf1", "inference"),
    ("inf2", "inference"),
    ("chat1", "chat"),
    ("chat2", "chat"),
    ("seo", "seo"),
    ("files", "files"),
    ("gw1", "gateway"),
    ("gw2", "gateway"),
];

/// The servers the cluster shares.
#[derive(Debug, Clone)]
pub(crate) struct Deps {
    /// A PostgreSQL server's URL whose user may create databases.
    pub postgres: String,
    pub nats: String,
    pub redis: String,
}

impl Deps {
    /// The servers scripts/test.sh started, or `None` (saying why) when the cluster cannot run.
    pub(crate) fn from_env(test: &str) -> Option<Self> {
        if std::env::var("TEST_BACKEND").as_deref() != Ok("postgres") {
            eprintln!(
                "{test}: skipped, the cluster runs with TEST_BACKEND=postgres (scripts/test.sh's \
                 PostgreSQL pass, which also starts NATS and Redis)"
            );
            return None;
        }
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        match (
            var("TEST_POSTGRES_URL"),
            var("TEST_NATS_URL"),
            var("TEST_REDIS_URL"),
        ) {
            (Some(postgres), Some(nats), Some(redis)) => Some(Self {
                postgres,
                nats,
                redis,
            }),
            (postgres, nats, redis) => {
                let missing: Vec<&str> = [
                    ("TEST_POSTGRES_URL", postgres.is_none()),
                    ("TEST_NATS_URL", nats.is_none()),
                    ("TEST_REDIS_URL", redis.is_none()),
                ]
                .into_iter()
                .filter_map(|(name, gone)| gone.then_some(name))
                .collect();
                eprintln!(
                    "{test}: skipped, {} not set (scripts/test.sh starts them)",
                    missing.join(", ")
                );
                None
            }
        }
    }
}

/// What a test changes in the cluster's configuration.
#[derive(Debug, Default)]
pub(crate) struct Options {
    /// TOML merged into every process's configuration (tables merge key by key); `@{node}`
    /// stands for a node's base URL, here and in `node_config`.
    pub config: String,
    /// TOML merged into one process's configuration only, by node name.
    pub node_config: Vec<(&'static str, String)>,
}

/// `@{name}` in `text` becomes that node's base URL (`http://127.0.0.1:port`).
fn expand(text: &str, addrs: &BTreeMap<&str, SocketAddr>) -> String {
    let mut text = text.to_owned();
    for (name, addr) in addrs {
        text = text.replace(&format!("@{{{name}}}"), &format!("http://{addr}"));
    }
    text
}

/// One process of the cluster.
struct Node {
    services: &'static str,
    addr: SocketAddr,
    config: PathBuf,
    data: PathBuf,
    process: Option<ConfabProcess>,
}

/// A running cluster. Dropping it kills every process.
pub(crate) struct Cluster {
    pub database_url: String,
    pub client: reqwest::Client,
    nodes: BTreeMap<&'static str, Node>,
    _dir: tempfile::TempDir,
}

/// The deployment's shared secret (tests only).
const SERVICE_TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789";

/// Creates a fresh database on the server at `admin_url` and returns its URL.
pub(crate) async fn fresh_database(admin_url: &str) -> String {
    confab_testkit::create_postgres_database_on(admin_url, "confab_cluster")
        .await
        .expect("the PostgreSQL server creates a database")
}

/// Merges `patch` into `base`, tables key by key.
fn merge(base: &mut toml::Table, patch: toml::Table) {
    for (key, value) in patch {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(inner)), toml::Value::Table(more)) => merge(inner, more),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

impl Cluster {
    /// Migrates a fresh database, starts every process of [`NODES`] and waits until each
    /// answers `/readyz` with 200.
    pub(crate) async fn start(deps: &Deps, options: Options) -> Self {
        let started = Instant::now();
        let dir = tempfile::tempdir().unwrap();
        let database_url = fresh_database(&deps.postgres).await;
        // At most 32 characters: the random end of a UUIDv7.
        let id = uuid::Uuid::now_v7().simple().to_string();
        let namespace = format!("cluster{}", &id[16..]);
        let addrs: BTreeMap<&str, SocketAddr> =
            NODES.iter().map(|(name, _)| (*name, free_addr())).collect();
        let url = |name: &str| format!("http://{}", addrs[name]);
        let base = json!({
            "database": {"url": database_url, "auto_migrate": false, "max_connections": 4},
            "bus": {"nats_url": deps.nats, "nats_namespace": namespace, "job_poll_ms": 200},
            "redis": {"url": deps.redis, "key_prefix": namespace},
            "services": {
                "token": SERVICE_TOKEN,
                "auth_url": url("auth"),
                "admin_url": url("admin"),
            },
            // Attached files: the files node's internal routes (the gateway forwards none).
            "chat": {
                "inference_url": url("gw1"),
                "files_url": url("files"),
                "auto_titles": false,
                "answer_lease_secs": 3,
            },
            "inference": {
                "default_model": "s",
                "providers": [{
                    "name": "script", "kind": "scripted", "models": ["s"],
                    "reply": "You said: {last}. Fine.", "delay_ms": 20
                }],
            },
            "gateway": {
                "upstreams": {
                    "auth": [url("auth")],
                    "admin": [url("admin")],
                    "inference": [url("inf1"), url("inf2")],
                    "chat": [url("chat1"), url("chat2")],
                    "seo": [url("seo")],
                    "files": [url("files")],
                },
            },
        });
        let mut base: toml::Table = serde_json::from_value(base).unwrap();
        let patch: toml::Table =
            toml::from_str(&expand(&options.config, &addrs)).expect("options.config");
        merge(&mut base, patch);
        let mut nodes = BTreeMap::new();
        for (name, services) in NODES {
            let mut config = base.clone();
            for (node, patch) in &options.node_config {
                if node == name {
                    merge(
                        &mut config,
                        toml::from_str(&expand(patch, &addrs)).expect("node_config"),
                    );
                }
            }
            let path = dir.path().join(format!("{name}.toml"));
            std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
            let data = dir.path().join(name);
            std::fs::create_dir_all(&data).unwrap();
            nodes.insert(
                *name,
                Node {
                    services,
                    addr: addrs[name],
                    config: path,
                    data,
                    process: None,
                },
            );
        }
        let mut cluster = Self {
            database_url,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            nodes,
            _dir: dir,
        };
        cluster.migrate().await;
        let names: Vec<&'static str> = NODES.iter().map(|(n, _)| *n).collect();
        let spawned = futures::future::join_all(names.iter().map(|n| cluster.spawn(n))).await;
        for (name, process) in names.iter().zip(spawned) {
            cluster.nodes.get_mut(name).unwrap().process = Some(process);
        }
        for name in &names {
            cluster.wait_ready(name, Duration::from_secs(60)).await;
        }
        eprintln!(
            "cluster: {} processes ready in {:.1} s",
            names.len(),
            started.elapsed().as_secs_f64()
        );
        cluster
    }

    /// `confab migrate` for every backend service, as an operator runs it once.
    async fn migrate(&self) {
        let node = &self.nodes["auth"];
        let output = tokio::process::Command::new(bin())
            .args([
                "migrate",
                "--services",
                "auth,chat,inference,admin,seo,files",
            ])
            .arg("--data-dir")
            .arg(&node.data)
            .env("CONFAB_CONFIG", &node.config)
            .output()
            .await
            .unwrap();
        assert!(
            output.status.success(),
            "confab migrate: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    async fn spawn(&self, name: &str) -> ConfabProcess {
        let node = &self.nodes[name];
        let config = node.config.to_str().unwrap();
        release(node.addr);
        ConfabProcess::spawn_with(
            bin(),
            &node.data,
            &SpawnOptions {
                services: Some(node.services.to_owned()),
                listen: Some(node.addr),
                start_timeout: Duration::from_secs(60),
            },
            &[("CONFAB_CONFIG", config)],
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: {e:#}"))
    }

    /// The address of a node (it keeps it across restarts).
    pub(crate) fn addr(&self, name: &str) -> SocketAddr {
        self.nodes[name].addr
    }

    pub(crate) fn url(&self, name: &str, path: &str) -> String {
        format!("http://{}{path}", self.addr(name))
    }

    /// Polls `/readyz` until 200; panics after `within`. Returns how long it took.
    pub(crate) async fn wait_ready(&self, name: &str, within: Duration) -> Duration {
        let started = Instant::now();
        let mut last = String::new();
        while started.elapsed() < within {
            match self
                .client
                .get(self.url(name, "/readyz"))
                .timeout(Duration::from_secs(2))
                .send()
                .await
            {
                Ok(r) if r.status() == 200 => return started.elapsed(),
                Ok(r) => last = format!("{}: {}", r.status(), r.text().await.unwrap_or_default()),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{name} was not ready within {within:?}: {last}");
    }

    /// The log lines a running node wrote since the last call (for diagnostics).
    pub(crate) fn logs(&mut self, name: &str) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(process) = self.nodes.get_mut(name).unwrap().process.as_mut() {
            while let Ok(line) = process.logs.try_recv() {
                lines.push(line);
            }
        }
        lines
    }

    /// The names of a running node's threads (`/proc/PID/task/*/comm`).
    pub(crate) fn threads(&self, name: &str) -> Vec<String> {
        let process = self.nodes[name].process.as_ref().expect("running");
        let pid = process.child.id().expect("not reaped");
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .unwrap()
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .map(|comm| comm.trim().to_owned())
            .collect()
    }

    /// Kills a node with SIGKILL.
    pub(crate) async fn kill(&mut self, name: &str) {
        let process = self.nodes.get_mut(name).unwrap().process.take();
        process.expect("running").kill().await.unwrap();
    }

    /// Starts a stopped node again on its address.
    pub(crate) async fn restart(&mut self, name: &str) {
        assert!(self.nodes[name].process.is_none(), "{name} is running");
        let process = self.spawn(name).await;
        self.nodes.get_mut(name).unwrap().process = Some(process);
    }

    /// One request to a node, its body read.
    pub(crate) async fn call(
        &self,
        method: Method,
        node: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut request = self.client.request(method, self.url(node, path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        Response::read(response).await
    }

    pub(crate) async fn get(&self, node: &str, path: &str, token: Option<&str>) -> Response {
        self.call(Method::GET, node, path, token, None).await
    }

    pub(crate) async fn post(
        &self,
        node: &str,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> Response {
        self.call(Method::POST, node, path, token, Some(body)).await
    }

    /// Registers `email` through `via` and signs in; the access token and the user's id.
    pub(crate) async fn user(&self, via: &str, email: &str) -> User {
        let name = email.split('@').next().unwrap_or("user");
        let registered = self
            .post(
                via,
                "/api/v1/auth/register",
                None,
                json!({"email": email, "password": PASSWORD, "name": name}),
            )
            .await;
        assert_eq!(registered.status, 201, "{}", registered.text);
        let id = registered.body["user"]["id"].as_str().unwrap().to_owned();
        let login = self
            .post(
                via,
                "/api/v1/auth/login",
                None,
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(login.status, 200, "{}", login.text);
        User {
            id,
            token: login.body["access_token"].as_str().unwrap().to_owned(),
        }
    }

    /// An API key of `user` with `scopes`, made through `via`.
    pub(crate) async fn api_key(&self, via: &str, user: &User, scopes: &[&str]) -> String {
        let created = self
            .post(
                via,
                "/api/v1/auth/api-keys",
                Some(&user.token),
                json!({"name": format!("key-{}", uuid::Uuid::now_v7().simple()), "scopes": scopes}),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.text);
        created.body["key"].as_str().unwrap().to_owned()
    }

    /// A new conversation of `user` with `model`, through `via`; its id.
    pub(crate) async fn conversation(&self, via: &str, user: &User, model: &str) -> String {
        let created = self
            .post(
                via,
                "/api/v1/conversations",
                Some(&user.token),
                json!({"model": model}),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.text);
        created.body["id"].as_str().unwrap().to_owned()
    }

    /// Sends a message through `via` and reads the whole SSE answer.
    pub(crate) async fn send(
        &self,
        via: &str,
        user: &User,
        conversation: &str,
        content: &str,
    ) -> Vec<(String, Value)> {
        let response = self
            .post(
                via,
                &format!("/api/v1/conversations/{conversation}/messages"),
                Some(&user.token),
                json!({"content": content}),
            )
            .await;
        assert_eq!(
            response.status, 200,
            "send through {via} to conversation {conversation}: {}",
            response.text
        );
        sse_events(&response.text)
    }
}

/// A signed-in user.
#[derive(Debug, Clone)]
pub(crate) struct User {
    pub id: String,
    pub token: String,
}

/// The events of an SSE body: each `event:` name (`message` when absent) and its JSON data.
pub(crate) fn sse_events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter_map(|block| {
            let data = block.lines().find_map(|l| l.strip_prefix("data: "))?;
            let name = block
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap_or("message");
            let value = serde_json::from_str(data).unwrap_or(Value::String(data.to_owned()));
            Some((name.to_owned(), value))
        })
        .collect()
}

/// The answer text of chat SSE events (their `delta`s).
pub(crate) fn answer_text(events: &[(String, Value)]) -> String {
    events
        .iter()
        .filter(|(name, _)| name == "delta")
        .filter_map(|(_, data)| data["content"].as_str())
        .collect()
}

/// Polls `check` every 100 ms until it returns `Some`, for at most `within`; how long it took.
pub(crate) async fn until<T, F, Fut>(what: &str, within: Duration, mut check: F) -> (T, Duration)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return (value, started.elapsed());
        }
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `/api/v1/ws` on `node` with `token`.
pub(crate) async fn socket(cluster: &Cluster, node: &str, token: &str) -> Socket {
    let url = format!("ws://{}/api/v1/ws?access_token={token}", cluster.addr(node));
    let (socket, response) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(url),
    )
    .await
    .expect("the socket opens within 10 s")
    .unwrap();
    assert_eq!(response.status(), 101);
    socket
}

/// The next JSON event on the socket, or `None` after `wait` without one.
pub(crate) async fn next_event(socket: &mut Socket, wait: Duration) -> Option<Value> {
    use futures::StreamExt;
    loop {
        let frame = tokio::time::timeout(wait, socket.next())
            .await
            .ok()??
            .ok()?;
        if let tokio_tungstenite::tungstenite::Message::Text(text) = frame {
            return serde_json::from_str(text.as_str()).ok();
        }
    }
}

/// Events until one of type `kind` for which `matches` holds arrives (each within `wait`).
pub(crate) async fn events_until(
    socket: &mut Socket,
    kind: &str,
    wait: Duration,
    matches: impl Fn(&Value) -> bool,
) -> Vec<Value> {
    let mut seen = Vec::new();
    while let Some(event) = next_event(socket, wait).await {
        let done = event["type"] == kind && matches(&event);
        seen.push(event);
        if done {
            return seen;
        }
    }
    let types: Vec<&Value> = seen.iter().map(|e| &e["type"]).collect();
    panic!("no {kind} event within {wait:?} of the last; saw {types:?}");
}
