//! Fault b: an inference replica killed with SIGKILL under load. Requests through the gateway
//! fail over to the other replica; at most the requests in flight at the kill fail.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use super::{Cluster, Deps, Options, sse_events};

const WORKERS: usize = 6;

/// One request's fate.
#[derive(Debug, Clone)]
struct Outcome {
    started: Instant,
    ended: Instant,
    /// The replica that answered (its reply names it), or `None` when the request failed.
    replica: Option<&'static str>,
    detail: String,
}

#[tokio::test]
async fn cluster_fails_over_when_an_inference_replica_is_killed() {
    let Some(deps) = Deps::from_env("cluster_fails_over_when_an_inference_replica_is_killed")
    else {
        return;
    };
    // Each replica's scripted model names it; ten words 20 ms apart take about 200 ms.
    let provider = |name: &str| {
        format!(
            "[inference]\nproviders = [{{ name = \"script\", kind = \"scripted\", models = [\"s\"], \
             reply = \"{name} says one two three four five six seven eight\", delay_ms = 20 }}]\n"
        )
    };
    let mut cluster = Cluster::start(
        &deps,
        Options {
            config: "[gateway]\nip_per_minute = 0\nuser_per_minute = 0\nkey_per_minute = 0\n\
                     [inference.concurrency]\nuser_requests = 0\n"
                .into(),
            node_config: vec![("inf1", provider("one")), ("inf2", provider("two"))],
        },
    )
    .await;
    let ada = cluster.user("gw1", "ada@example.com").await;
    let key = cluster.api_key("gw1", &ada, &["inference"]).await;
    let url = cluster.url("gw1", "/v1/chat/completions");
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for worker in 0..WORKERS {
        let client = cluster.client.clone();
        let (url, key, stop) = (url.clone(), key.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let stream = (worker + i) % 2 == 0;
                i += 1;
                let started = Instant::now();
                let body = json!({"model": "s", "stream": stream,
                                  "messages": [{"role": "user", "content": "hi"}]});
                let result = client.post(&url).bearer_auth(&key).json(&body).send().await;
                let (replica, detail) = match result {
                    Err(e) => (None, e.to_string()),
                    Ok(response) => {
                        let status = response.status();
                        match response.text().await {
                            Err(e) => (None, format!("{status}: body cut: {e}")),
                            Ok(text) if status != 200 => (None, format!("{status}: {text}")),
                            Ok(text) => {
                                let answer = if stream {
                                    let events = sse_events(&text);
                                    let done =
                                        events.last().is_some_and(|(_, d)| d == &json!("[DONE]"));
                                    let text: String = events
                                        .iter()
                                        .filter_map(|(_, d)| {
                                            d["choices"][0]["delta"]["content"].as_str()
                                        })
                                        .collect();
                                    if done { text } else { String::new() }
                                } else {
                                    serde_json::from_str::<serde_json::Value>(&text)
                                        .ok()
                                        .and_then(|v| {
                                            v["choices"][0]["message"]["content"]
                                                .as_str()
                                                .map(str::to_owned)
                                        })
                                        .unwrap_or_default()
                                };
                                if answer == "one says one two three four five six seven eight" {
                                    (Some("inf1"), String::new())
                                } else if answer
                                    == "two says one two three four five six seven eight"
                                {
                                    (Some("inf2"), String::new())
                                } else {
                                    (None, format!("incomplete answer: {text}"))
                                }
                            }
                        }
                    }
                };
                outcomes.push(Outcome {
                    started,
                    ended: Instant::now(),
                    replica,
                    detail,
                });
            }
            outcomes
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Requests that end after the signal and began before the process was gone were in flight;
    // those that began after it was gone were sent to a dead replica.
    let killed = Instant::now();
    cluster.kill("inf1").await;
    let gone = Instant::now();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut outcomes = Vec::new();
    for worker in workers {
        outcomes.extend(
            tokio::time::timeout(Duration::from_secs(30), worker)
                .await
                .expect("the workers stop")
                .unwrap(),
        );
    }
    let before: Vec<&Outcome> = outcomes.iter().filter(|o| o.ended < killed).collect();
    let in_flight = outcomes
        .iter()
        .filter(|o| o.started < gone && o.ended >= killed)
        .count();
    let failed_in_flight = outcomes
        .iter()
        .filter(|o| o.started < gone && o.ended >= killed && o.replica.is_none())
        .count();
    let after: Vec<&Outcome> = outcomes.iter().filter(|o| o.started >= gone).collect();
    let failed_after: Vec<&Outcome> = after
        .iter()
        .copied()
        .filter(|o| o.replica.is_none())
        .collect();
    let served = |set: &[&Outcome], name| set.iter().filter(|o| o.replica == Some(name)).count();
    eprintln!(
        "inference kill: before the kill {} requests ({} by inf1, {} by inf2, {} failed); \
         {in_flight} in flight at the kill, {failed_in_flight} of them failed; after it {} \
         requests, {} by inf2, {} by inf1, {} failed {:?}; the kill took {} ms",
        before.len(),
        served(&before, "inf1"),
        served(&before, "inf2"),
        before.iter().filter(|o| o.replica.is_none()).count(),
        after.len(),
        served(&after, "inf2"),
        served(&after, "inf1"),
        failed_after.len(),
        failed_after
            .iter()
            .map(|o| o.detail.as_str())
            .collect::<Vec<_>>(),
        (gone - killed).as_millis(),
    );
    assert!(
        before.iter().all(|o| o.replica.is_some()),
        "nothing failed before the kill"
    );
    assert!(
        served(&before, "inf1") > 0 && served(&before, "inf2") > 0,
        "both replicas served"
    );
    assert!(failed_in_flight <= in_flight);
    assert_eq!(served(&after, "inf1"), 0);
    // A request sent after the kill never fails: a refused connection goes to the other
    // instance (the gateway retries it, whatever the method).
    if !failed_after.is_empty() {
        for line in cluster.logs("gw1") {
            if line.contains("\"ERROR\"") || line.contains("bad_gateway") {
                eprintln!("gw1: {line}");
            }
        }
    }
    assert!(
        failed_after.is_empty(),
        "requests sent after the kill failed: only those in flight may"
    );
    let tail: Vec<&&Outcome> = after
        .iter()
        .filter(|o| o.started >= gone + Duration::from_millis(500))
        .collect();
    assert!(!tail.is_empty());
    assert!(
        tail.iter().all(|o| o.replica == Some("inf2")),
        "every request from 0.5 s after the kill is served by inf2"
    );
}
