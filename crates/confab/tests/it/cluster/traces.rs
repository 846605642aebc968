//! One trace across the processes (issue 16): a message sent through a gateway with a
//! caller's `traceparent` is one trace in the spans every process exports to an OTLP/HTTP
//! receiver in the test — the gateway's request span, the chat service's, the gateway's again
//! for chat's call to inference, the inference service's with its GenAI model span, and the
//! call to the upstream provider, whose `traceparent` names that last span.

use std::collections::BTreeMap;
use std::time::Duration;

use confab_testkit::fake_openai::{Behavior, FakeOpenAi};
use serde_json::json;

use super::{Cluster, Deps, Options, answer_text, sse_events};
use crate::traces::{KIND_CLIENT, KIND_SERVER, Received, Receiver};

const TRACE: &str = "5c3e0f8a9b1d4e7f8a2b3c4d5e6f7a8b";
const CALLER_SPAN: &str = "a1b2c3d4e5f60718";

/// The spans from `span_id` up to the caller's span, nearest the caller first; `None` while
/// a link is missing (not exported yet).
fn chain<'a>(spans: &'a [Received], span_id: &str) -> Option<Vec<&'a Received>> {
    let by_id: BTreeMap<&str, &Received> = spans
        .iter()
        .filter(|s| s.trace_id == TRACE)
        .map(|s| (s.span_id.as_str(), s))
        .collect();
    let mut links = Vec::new();
    let mut next = span_id;
    while next != CALLER_SPAN {
        let span = by_id.get(next)?;
        links.push(*span);
        assert!(links.len() < 64, "a cycle in the spans: {links:#?}");
        next = &span.parent_span_id;
    }
    links.reverse();
    Some(links)
}

#[tokio::test]
async fn cluster_one_trace_runs_from_the_gateway_through_chat_and_inference_upstream() {
    let Some(deps) = Deps::from_env(
        "cluster_one_trace_runs_from_the_gateway_through_chat_and_inference_upstream",
    ) else {
        return;
    };
    let mut receiver = Receiver::start().await;
    let upstream = FakeOpenAi::start(Behavior::Answer("traced words back".into()))
        .await
        .unwrap();
    let config = format!(
        r#"
[telemetry]
otlp_endpoint = "{}"

[inference]
providers = [
  {{ name = "script", kind = "scripted", models = ["s"], reply = "You said: {{last}}. Fine.", delay_ms = 20 }},
  {{ name = "up", kind = "openai", base_url = "{}", models = ["gpt-x"], timeout_secs = 10 }},
]
"#,
        receiver.endpoint(),
        upstream.url()
    );
    let cluster = Cluster::start(
        &deps,
        Options {
            config,
            ..Options::default()
        },
    )
    .await;
    let ada = cluster.user("gw1", "ada@example.com").await;
    let conversation = cluster.conversation("gw1", &ada, "gpt-x").await;

    let response = cluster
        .client
        .post(cluster.url(
            "gw1",
            &format!("/api/v1/conversations/{conversation}/messages"),
        ))
        .bearer_auth(&ada.token)
        .header("traceparent", format!("00-{TRACE}-{CALLER_SPAN}-01"))
        .json(&json!({"content": "follow me"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let events = sse_events(&response.text().await.unwrap());
    assert!(
        answer_text(&events).contains("traced"),
        "the upstream's answer: {events:?}"
    );

    // The upstream provider was called within the caller's trace.
    let onward = upstream.last_traceparent().expect("a traceparent upstream");
    let parts: Vec<&str> = onward.split('-').collect();
    assert_eq!(parts.len(), 4, "{onward}");
    assert_eq!(parts[1], TRACE, "{onward}");
    let upstream_parent = parts[2].to_owned();

    // Every span from the caller's down to the one that called the upstream reaches the
    // receiver (each process exports in batches, every few seconds).
    let spans = receiver
        .until(
            "the chain of spans from the caller to the upstream call",
            Duration::from_secs(30),
            |spans| chain(spans, &upstream_parent).is_some(),
        )
        .await;
    let links = chain(&spans, &upstream_parent).unwrap();
    let described: Vec<(&str, &str)> = links
        .iter()
        .map(|s| (s.service.as_str(), s.name.as_str()))
        .collect();

    // Which processes the trace went through, in order.
    let mut hops: Vec<&str> = links.iter().map(|s| s.service.as_str()).collect();
    hops.dedup();
    assert_eq!(
        hops,
        [
            "confab-gateway",
            "confab-chat",
            "confab-gateway",
            "confab-inference"
        ],
        "{described:#?}"
    );
    // Each process's first span is the server span of the request it got.
    let firsts: Vec<&Received> = links
        .iter()
        .enumerate()
        .filter(|(i, s)| *i == 0 || links[i - 1].service != s.service)
        .map(|(_, s)| *s)
        .collect();
    for span in &firsts {
        assert_eq!(span.kind, KIND_SERVER, "{span:#?}");
        assert!(
            span.attributes.contains_key("http.response.status_code"),
            "{span:#?}"
        );
    }
    // The gateways matched no route of their own (they proxy): their spans carry the method.
    assert_eq!(firsts[0].name, "POST", "{described:#?}");
    assert_eq!(
        firsts[1].name, "POST /api/v1/conversations/{id}/messages",
        "{described:#?}"
    );
    assert_eq!(firsts[2].name, "POST", "{described:#?}");
    assert_eq!(
        firsts[3].name, "POST /v1/chat/completions",
        "{described:#?}"
    );
    // Chat's call to the inference service is a client span of its own.
    let chat_call = links
        .iter()
        .rev()
        .find(|s| s.service == "confab-chat")
        .unwrap();
    assert_eq!(chat_call.kind, KIND_CLIENT, "{described:#?}");
    assert_eq!(chat_call.name, "POST /v1/chat/completions");

    // In the inference service: the model span with the GenAI attributes, and under it the
    // call to the upstream, the span the upstream was told about.
    let call = links.last().unwrap();
    assert_eq!(call.service, "confab-inference");
    assert_eq!(call.kind, KIND_CLIENT);
    assert_eq!(call.name, "POST /v1/chat/completions");
    let model = links
        .iter()
        .find(|s| s.attributes.contains_key("gen_ai.operation.name"))
        .unwrap_or_else(|| panic!("no model span: {described:#?}"));
    assert_eq!(model.service, "confab-inference");
    assert_eq!(call.parent_span_id, model.span_id);
    let attr = |name: &str| model.attributes.get(name).map(String::as_str);
    assert_eq!(attr("gen_ai.operation.name"), Some("chat"));
    assert_eq!(attr("gen_ai.request.model"), Some("gpt-x"));
    assert_eq!(attr("gen_ai.system"), Some("up"));
    // A span is exported once, when it ends: the model span's with the stream, so with
    // its usage and finish reason.
    assert_eq!(attr("gen_ai.response.finish_reasons"), Some("stop"));
    assert!(
        attr("gen_ai.usage.output_tokens").is_some_and(|n| n.parse::<u32>().is_ok_and(|n| n > 0)),
        "{model:#?}"
    );
}
