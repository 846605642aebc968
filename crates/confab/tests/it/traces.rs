//! OpenTelemetry traces from the real binary: an OTLP/HTTP receiver in the test (the
//! protobuf `ExportTraceServiceRequest` decoded with opentelemetry-proto's types) sees one
//! trace from the caller's `traceparent` through the request's span, the GenAI model span and
//! the call to the upstream provider, whose `traceparent` carries it on; the spans still
//! queued at SIGTERM are flushed. The cluster's test (one trace across the gateway, chat and
//! inference processes) is `cluster/traces.rs`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use confab_testkit::fake_openai::{Behavior, FakeOpenAi};
use confab_testkit::{ConfabProcess, TestDb};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use parking_lot::Mutex;
use prost::Message;
use serde_json::json;

use crate::binary::{bin, write_config};
use crate::common::PASSWORD;

/// OTLP's span kinds (`Span.SpanKind`).
pub(crate) const KIND_SERVER: i32 = 2;
pub(crate) const KIND_CLIENT: i32 = 3;

/// One span as the receiver got it.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    /// The resource's `service.name`.
    pub service: String,
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub name: String,
    pub kind: i32,
    pub attributes: BTreeMap<String, String>,
}

/// An OTLP/HTTP trace receiver on 127.0.0.1 (`POST /v1/traces`, protobuf), keeping every span.
pub(crate) struct Receiver {
    pub addr: SocketAddr,
    spans: Arc<Mutex<Vec<Received>>>,
    batches: tokio::sync::watch::Receiver<usize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct Sink {
    spans: Arc<Mutex<Vec<Received>>>,
    batches: Arc<tokio::sync::watch::Sender<usize>>,
}

fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn attributes(list: &[KeyValue]) -> BTreeMap<String, String> {
    list.iter()
        .map(|kv| (kv.key.clone(), text(kv.value.as_ref())))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn export(State(sink): State<Sink>, body: bytes::Bytes) -> Response {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            "not an ExportTraceServiceRequest",
        )
            .into_response();
    };
    let mut received = Vec::new();
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .as_ref()
            .and_then(|r| attributes(&r.attributes).remove("service.name"))
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                received.push(Received {
                    service: service.clone(),
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    name: span.name,
                    kind: span.kind,
                    attributes: attributes(&span.attributes),
                });
            }
        }
    }
    sink.spans.lock().extend(received);
    sink.batches.send_modify(|n| *n += 1);
    (
        [(axum::http::header::CONTENT_TYPE, "application/x-protobuf")],
        ExportTraceServiceResponse::default().encode_to_vec(),
    )
        .into_response()
}

impl Receiver {
    pub(crate) async fn start() -> Self {
        let (sender, batches) = tokio::sync::watch::channel(0);
        let sink = Sink {
            spans: Arc::new(Mutex::new(Vec::new())),
            batches: Arc::new(sender),
        };
        let spans = sink.spans.clone();
        let app = Router::new()
            .route("/v1/traces", post(export))
            .with_state(sink);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            spans,
            batches,
            task,
        }
    }

    /// The base URL to configure as `telemetry.otlp_endpoint`.
    pub(crate) fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every span received so far.
    pub(crate) fn spans(&self) -> Vec<Received> {
        self.spans.lock().clone()
    }

    /// Waits (woken by each export) until `done` holds for the spans received, for at most
    /// `within`; panics, showing what came, otherwise.
    pub(crate) async fn until(
        &mut self,
        what: &str,
        within: Duration,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let spans = self.spans();
            if done(&spans) {
                return spans;
            }
            let changed = tokio::time::timeout_at(deadline, self.batches.changed()).await;
            if !matches!(changed, Ok(Ok(()))) {
                let seen: Vec<(String, String, String)> = spans
                    .iter()
                    .map(|s| (s.service.clone(), s.name.clone(), s.trace_id.clone()))
                    .collect();
                panic!("{what}: not within {within:?}; spans seen: {seen:#?}");
            }
        }
    }
}

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";
const REFUSED_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";

#[tokio::test]
async fn one_trace_runs_from_the_callers_traceparent_to_the_upstream_provider() {
    let mut receiver = Receiver::start().await;
    let upstream = FakeOpenAi::start(Behavior::Answer("hello from upstream".into()))
        .await
        .unwrap();
    let db = TestDb::new().await.unwrap();
    let config = write_config(
        &db,
        &format!(
            "[telemetry]\notlp_endpoint = \"{}\"\n\n[inference]\nproviders = [{{ name = \"up\", kind = \"openai\", base_url = \"{}\", models = [\"gpt-x\"], timeout_secs = 10 }}]\n",
            receiver.endpoint(),
            upstream.url()
        ),
    );
    let env = [
        ("CONFAB_DATABASE__URL", db.url.as_str()),
        ("CONFAB_CONFIG", config.as_str()),
    ];
    let server = ConfabProcess::spawn(bin(), db.dir.path(), &env)
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let registered = client
        .post(server.url("/api/v1/auth/register"))
        .json(&json!({"email": "ada@example.com", "password": PASSWORD, "name": "Ada"}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let token = registered.json::<serde_json::Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = client
        .post(server.url("/api/v1/auth/api-keys"))
        .bearer_auth(&token)
        .json(&json!({"name": "k", "scopes": ["inference"]}))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();

    let answer = client
        .post(server.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .header("traceparent", format!("00-{TRACE}-{CALLER_SPAN}-01"))
        .json(&json!({"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "hello from upstream"
    );
    // The upstream provider was called within the trace, from a span of this process.
    let onward = upstream.last_traceparent().expect("a traceparent upstream");
    let parts: Vec<&str> = onward.split('-').collect();
    assert_eq!(parts.len(), 4, "{onward}");
    assert_eq!(parts[1], TRACE, "{onward}");
    assert_ne!(parts[2], CALLER_SPAN, "{onward}");

    let refused = client
        .post(server.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .header(
            "traceparent",
            format!("00-{REFUSED_TRACE}-{CALLER_SPAN}-01"),
        )
        .json(&json!({"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert!(refused.status().is_client_error(), "{}", refused.status());

    // SIGTERM flushes what is still queued.
    let (status, mut logs) = server.terminate_with_logs().await.unwrap();
    assert!(status.success(), "{status:?}");
    let spans = receiver
        .until("the request's spans", Duration::from_secs(20), |spans| {
            spans.iter().any(|s| {
                s.trace_id == TRACE && s.attributes.contains_key("gen_ai.usage.output_tokens")
            })
        })
        .await;
    let ours: Vec<&Received> = spans.iter().filter(|s| s.trace_id == TRACE).collect();
    assert!(ours.iter().all(|s| s.service == "confab-all"), "{ours:#?}");
    let request = ours
        .iter()
        .find(|s| s.kind == KIND_SERVER && s.name == "POST /v1/chat/completions")
        .unwrap_or_else(|| panic!("no server span: {ours:#?}"));
    assert_eq!(request.parent_span_id, CALLER_SPAN);
    assert_eq!(request.attributes["http.response.status_code"], "200");
    let model = ours
        .iter()
        .find(|s| s.attributes.contains_key("gen_ai.operation.name"))
        .unwrap_or_else(|| panic!("no model span: {ours:#?}"));
    let attr = |name: &str| model.attributes.get(name).map(String::as_str);
    assert_eq!(attr("gen_ai.operation.name"), Some("chat"));
    assert_eq!(attr("gen_ai.request.model"), Some("gpt-x"));
    assert_eq!(attr("gen_ai.system"), Some("up"));
    assert_eq!(attr("gen_ai.response.finish_reasons"), Some("stop"));
    assert_eq!(attr("gen_ai.usage.input_tokens"), Some("3"));
    assert_eq!(attr("gen_ai.usage.output_tokens"), Some("3"));
    assert_eq!(model.kind, KIND_CLIENT);
    // The model span sits under the request's; the upstream call under the model span, and
    // it is the span the upstream was told about.
    let call = ours
        .iter()
        .find(|s| s.span_id == parts[2])
        .unwrap_or_else(|| panic!("no span {}: {ours:#?}", parts[2]));
    assert_eq!(call.kind, KIND_CLIENT);
    assert_eq!(call.name, "POST /v1/chat/completions");
    assert_eq!(call.parent_span_id, model.span_id);
    let mut up = model.parent_span_id.clone();
    while up != request.span_id {
        let parent = ours
            .iter()
            .find(|s| s.span_id == up)
            .unwrap_or_else(|| panic!("the model span is not under the request's: {ours:#?}"));
        up.clone_from(&parent.parent_span_id);
    }

    // The logs name the trace: a refused request's line (logged at info) carries its id.
    let mut lines = Vec::new();
    while let Ok(Some(line)) = tokio::time::timeout(Duration::from_secs(5), logs.recv()).await {
        lines.push(line);
    }
    assert!(
        lines
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .any(|v| v["span"]["name"] == "request" && v["span"]["trace_id"] == REFUSED_TRACE),
        "no log line with the trace id: {lines:#?}"
    );
}
