//! Fault a: a chat replica killed with SIGKILL while answers stream. The answers end
//! `interrupted` with their last checkpoint within the lease; clients re-attach through the
//! gateway to the other replica and read the final text; new messages keep working.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;

use super::{Cluster, Deps, Options, answer_text, sse_events};

const STREAMS: usize = 5;
const WORDS: usize = 200;

/// The text of the complete `delta` events in an SSE body read so far.
fn streamed(raw: &str) -> String {
    match raw.rfind("\n\n") {
        Some(end) => answer_text(&sse_events(&raw[..end])),
        None => String::new(),
    }
}

#[tokio::test]
async fn cluster_survives_a_chat_replica_killed_mid_answer() {
    let Some(deps) = Deps::from_env("cluster_survives_a_chat_replica_killed_mid_answer") else {
        return;
    };
    let words: Vec<String> = (0..WORDS).map(|i| format!("w{i}")).collect();
    let reply = words.join(" ");
    let mut cluster = Cluster::start(
        &deps,
        Options {
            // 200 words, 20 ms apart: each answer streams for about 4 s.
            config: format!(
                r#"
                [inference]
                providers = [{{ name = "long", kind = "scripted", models = ["long"], reply = "{reply}", delay_ms = 20 }}]
                [inference.concurrency]
                user_requests = 0
                "#
            ),
            // Answers are sent through gw1 to chat1; gw2 balances over both replicas.
            node_config: vec![("gw1", "[gateway.upstreams]\nchat = [\"@{chat1}\"]\n".into())],
        },
    )
    .await;
    let ada = cluster.user("gw1", "ada@example.com").await;
    let mut conversations = Vec::new();
    for _ in 0..STREAMS {
        conversations.push(cluster.conversation("gw1", &ada, "long").await);
    }
    let seen: Vec<Arc<parking_lot::Mutex<String>>> = (0..STREAMS).map(|_| Arc::default()).collect();
    let mut readers = Vec::new();
    for (i, conversation) in conversations.iter().enumerate() {
        let response = cluster
            .client
            .post(cluster.url(
                "gw1",
                &format!("/api/v1/conversations/{conversation}/messages"),
            ))
            .bearer_auth(&ada.token)
            .json(&json!({"content": format!("question {i}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let text = seen[i].clone();
        readers.push(tokio::spawn(async move {
            let mut body = response.bytes_stream();
            while let Some(Ok(chunk)) = body.next().await {
                text.lock().push_str(&String::from_utf8_lossy(&chunk));
            }
        }));
    }
    // The answers stream for a while; note what the clients had 0.7 s before the kill (the
    // 0.5 s checkpoint interval and some slack), then kill chat1 without warning.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let before: Vec<String> = seen.iter().map(|t| streamed(&t.lock())).collect();
    tokio::time::sleep(Duration::from_millis(700)).await;
    cluster.kill("chat1").await;
    let killed = Instant::now();
    for reader in readers {
        tokio::time::timeout(Duration::from_secs(10), reader)
            .await
            .expect("the cut streams end")
            .unwrap();
    }
    let cut: Vec<String> = seen.iter().map(|t| t.lock().clone()).collect();
    let unfinished = cut
        .iter()
        .filter(|raw| !sse_events(raw).iter().any(|(n, _)| n == "done"))
        .count();
    assert_eq!(
        unfinished, STREAMS,
        "every answer was still streaming at the kill"
    );
    assert!(
        before.iter().all(|t| !t.is_empty()),
        "every answer had begun"
    );

    // Each client re-attaches through gw2 (chat2, once the gateway stops picking chat1) and
    // reads the answer to its end: `interrupted`, with the last checkpoint's text.
    let reattached =
        futures::future::join_all(cut.iter().zip(&conversations).map(|(raw, conversation)| {
            let events = sse_events(raw);
            let answer = events[0].1["assistant_message"]["id"]
                .as_str()
                .unwrap()
                .to_owned();
            let cluster = &cluster;
            let ada = &ada;
            async move {
                let response = cluster
                    .get(
                        "gw2",
                        &format!("/api/v1/conversations/{conversation}/messages/{answer}/stream"),
                        Some(&ada.token),
                    )
                    .await;
                (response, killed.elapsed())
            }
        }))
        .await;
    let mut ended_after = Vec::new();
    for (i, (response, after)) in reattached.iter().enumerate() {
        assert_eq!(response.status, 200, "{}", response.text);
        let events = sse_events(&response.text);
        let (last, done) = events.last().expect("events");
        assert_eq!(last, "done", "{}", response.text);
        assert_eq!(done["status"], "interrupted", "{done}");
        let content = done["content"].as_str().unwrap();
        assert_eq!(
            answer_text(&events),
            content,
            "the re-attached text is the saved text"
        );
        assert!(reply.starts_with(content), "{content}");
        assert!(
            content.starts_with(&before[i]),
            "answer {i} lost more than a checkpoint: saved {content:?}, the client had {:?} \
             0.7 s before the kill",
            before[i]
        );
        ended_after.push(after.as_millis());
    }
    let lease_ms: u128 = 3000;
    assert!(
        ended_after.iter().all(|ms| *ms < lease_ms * 3),
        "interrupted within the lease (3 s) and a sweep: {ended_after:?} ms"
    );
    let kept: Vec<usize> = reattached
        .iter()
        .map(|(r, _)| {
            sse_events(&r.text)
                .last()
                .and_then(|(_, d)| d["content"].as_str().map(|c| c.split(' ').count()))
                .unwrap_or(0)
        })
        .collect();
    eprintln!(
        "chat kill: {STREAMS} answers cut; re-attached through gw2, ended interrupted \
         {ended_after:?} ms after the kill, keeping {kept:?} of {WORDS} words"
    );

    // New messages keep working through gw2 (sent together: each answer takes 4 s).
    let started = Instant::now();
    let answers =
        futures::future::join_all(conversations.iter().enumerate().map(|(i, conversation)| {
            let cluster = &cluster;
            let ada = &ada;
            async move {
                cluster
                    .post(
                        "gw2",
                        &format!("/api/v1/conversations/{conversation}/messages"),
                        Some(&ada.token),
                        json!({"content": format!("again {i}")}),
                    )
                    .await
            }
        }))
        .await;
    let mut failed = 0;
    for response in answers {
        if response.status != 200 {
            failed += 1;
            eprintln!(
                "chat kill: a new message failed: {} {}",
                response.status, response.text
            );
            continue;
        }
        let events = sse_events(&response.text);
        assert_eq!(events.last().unwrap().1["status"], "complete");
        assert_eq!(answer_text(&events), reply);
    }
    eprintln!(
        "chat kill: {} of {STREAMS} new messages answered through gw2 in {} ms ({failed} failed)",
        STREAMS - failed,
        started.elapsed().as_millis()
    );
    assert_eq!(failed, 0, "new messages after the kill failed");
}
