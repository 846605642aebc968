//! The metrics users need (issue 16): a running all-in-one process exports the names the
//! dashboards and alerts in deploy/ query that belong to it, with values that follow what
//! happens, and `confab --version` names the commit. The split processes' share is checked
//! by deploy/tests/prometheus_live.sh (a real Prometheus scraping them).

use std::time::{Duration, Instant};

use confab_bus::{JobQueue, NewJob, SqlJobQueue};
use confab_core::config::{ProviderConfig, ProviderKind};
use serde_json::json;

use crate::binary::bin;
use crate::common::{PASSWORD, SCRIPTED_MODEL, TestApp};

/// The value of the sample `series` (`name{labels}` exactly as rendered, or `name`).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

async fn scrape(app: &TestApp) -> String {
    app.client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Scrapes until `ready` holds (the database-read gauges refresh every 5 s), at most 20 s.
async fn scrape_until(app: &TestApp, what: &str, ready: impl Fn(&str) -> bool) -> String {
    let started = Instant::now();
    loop {
        let text = scrape(app).await;
        if ready(&text) {
            return text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{what} not within 20 s: {text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Whether `text` has a sample of `name` (`name{…} v` or `name v`).
fn has_sample(text: &str, name: &str) -> bool {
    text.lines().any(|l| {
        l.strip_prefix(name)
            .is_some_and(|rest| rest.starts_with(['{', ' ']))
    })
}

#[tokio::test]
async fn all_in_one_exports_the_metrics_users_need() {
    let app = TestApp::start().await;
    // An audit entry, so the chain has a length to report.
    app.register("ada@example.com").await;
    let scrape = || async {
        app.client
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    // The audit chain is read every few seconds, not at every scrape.
    let started = Instant::now();
    let text = loop {
        let text = scrape().await;
        let length = text
            .lines()
            .find_map(|l| l.strip_prefix("confab_audit_chain_length "))
            .and_then(|v| v.trim().parse::<i64>().ok());
        if length.is_some_and(|n| n >= 1) {
            break text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no audit chain length within 15 s: {text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let build = format!(
        "confab_build_info{{version=\"{}\",commit=\"{}\"}} 1",
        confab::build_info::VERSION,
        confab::build_info::COMMIT
    );
    assert!(text.contains(&build), "{build}: {text}");
    for name in [
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_max_fds",
        "process_threads",
        "process_start_time_seconds",
        "confab_sse_streams_active",
        "confab_websockets_active",
        "confab_data_dir_available_bytes",
        "confab_data_dir_capacity_bytes",
        "confab_audit_chain_length",
    ] {
        assert!(has_sample(&text, name), "no sample of {name}: {text}");
    }
    // Every job kind from 0 (a cache's series come with its first lookup: none here).
    for kind in confab::jobs::KINDS {
        for series in [
            format!(r#"confab_jobs{{kind="{kind}",state="queued"}}"#),
            format!(r#"confab_jobs{{kind="{kind}",state="running"}}"#),
            format!(r#"confab_job_queue_age_seconds{{kind="{kind}"}}"#),
            format!(r#"confab_job_runs_total{{kind="{kind}",outcome="failed"}}"#),
        ] {
            assert_eq!(sample(&text, &series), Some(0.0), "{series}: {text}");
        }
    }
    // No NATS in the all-in-one process: nothing to report about it.
    assert!(!text.contains("confab_nats_up"), "{text}");
    assert_eq!(text.matches("# EOF").count(), 1, "{text}");
}

/// Jobs by kind and state, how long the oldest due one waited, how runs ended, and cache
/// lookups follow what happens; a kind the code does not know is counted as `other`.
#[tokio::test]
async fn jobs_runs_and_cache_lookups_are_counted() {
    let app = TestApp::start().await;
    let queue = SqlJobQueue::new(app.db.clone());
    let minute_ago = confab_core::now_ms() - 60_000;
    // Nobody here runs `test.parked`: they wait, the oldest due for a minute by now.
    for at in [minute_ago, minute_ago + 30_000] {
        queue
            .enqueue(NewJob::new("test.parked", json!({})).run_after(at))
            .await
            .unwrap();
    }
    // Not due for an hour: queued, but not waiting yet.
    queue
        .enqueue(NewJob::new("test.parked", json!({})).run_after(confab_core::now_ms() + 3_600_000))
        .await
        .unwrap();
    // A title job whose payload the handler refuses: it fails for good at once.
    queue
        .enqueue(NewJob::new("chat.title", json!({"bad": true})).max_attempts(1))
        .await
        .unwrap();
    let text = scrape_until(&app, "the parked jobs and the failed run", |t| {
        sample(t, r#"confab_jobs{kind="other",state="queued"}"#) == Some(3.0)
            && sample(
                t,
                r#"confab_job_runs_total{kind="chat.title",outcome="failed"}"#,
            ) == Some(1.0)
            && sample(t, r#"confab_jobs{kind="chat.title",state="queued"}"#) == Some(0.0)
    })
    .await;
    assert_eq!(
        sample(&text, r#"confab_jobs{kind="other",state="running"}"#),
        Some(0.0),
        "{text}"
    );
    let waited = sample(&text, r#"confab_job_queue_age_seconds{kind="other"}"#).unwrap();
    assert!((60.0..120.0).contains(&waited), "{waited}: {text}");
    assert!(!text.contains("test.parked"), "{text}");

    // The exact-match answer cache: a deterministic request misses, then hits.
    app.register("ada@example.com").await;
    let (token, _) = app.login("ada@example.com", PASSWORD).await;
    for _ in 0..2 {
        let answer = app
            .post(
                "/v1/chat/completions",
                Some(&token),
                json!({
                    "model": SCRIPTED_MODEL,
                    "temperature": 0,
                    "messages": [{"role": "user", "content": "cache me"}]
                }),
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text);
    }
    let text = scrape(&app).await;
    for result in ["hit", "miss"] {
        let series = format!(
            r#"confab_cache_requests_total{{cache="inference_answers",result="{result}"}}"#
        );
        assert_eq!(sample(&text, &series), Some(1.0), "{series}: {text}");
    }
}

/// A server-sent event stream counts in `confab_sse_streams_active` while it is open.
#[tokio::test]
async fn an_open_event_stream_is_counted() {
    let app = TestApp::start_with(|c| {
        // A second to hold the stream open.
        let mut slow = ProviderConfig::new("slow", ProviderKind::Scripted, &["scripted-slow"]);
        slow.reply = Some("w ".repeat(20));
        slow.delay_ms = 50;
        c.inference.providers.push(slow);
    })
    .await;
    app.register("ada@example.com").await;
    let (token, _) = app.login("ada@example.com", PASSWORD).await;
    let stream = app
        .client
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(&token)
        .json(&serde_json::json!({
            "model": "scripted-slow",
            "stream": true,
            "messages": [{"role": "user", "content": "hello"}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let open = scrape(&app).await;
    assert!(open.contains("confab_sse_streams_active 1"), "{open}");
    stream.text().await.unwrap();
    let closed = scrape(&app).await;
    assert!(closed.contains("confab_sse_streams_active 0"), "{closed}");
}

/// `confab_websockets_active` follows the real-time connections open on this process.
#[tokio::test]
async fn open_websockets_are_counted() {
    let app = TestApp::start().await;
    app.register("ada@example.com").await;
    let (token, _) = app.login("ada@example.com", PASSWORD).await;
    let url = format!("ws://{}/api/v1/ws?access_token={token}", app.addr);
    let mut sockets = Vec::new();
    for _ in 0..2 {
        let (socket, response) = tokio_tungstenite::connect_async(&url).await.unwrap();
        assert_eq!(response.status(), 101);
        sockets.push(socket);
    }
    scrape_until(&app, "two sockets", |t| {
        sample(t, "confab_websockets_active") == Some(2.0)
    })
    .await;
    let mut closed = sockets.pop().unwrap();
    closed.close(None).await.unwrap();
    // Read until the server's close comes back.
    while let Some(Ok(_)) = futures::StreamExt::next(&mut closed).await {}
    scrape_until(&app, "one socket after a close", |t| {
        sample(t, "confab_websockets_active") == Some(1.0)
    })
    .await;
    drop(sockets);
    scrape_until(&app, "no socket after a drop", |t| {
        sample(t, "confab_websockets_active") == Some(0.0)
    })
    .await;
}

#[tokio::test]
async fn version_names_the_commit() {
    let out = tokio::process::Command::new(bin())
        .arg("--version")
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let commit = confab::build_info::COMMIT;
    assert_eq!(
        text.trim(),
        format!("confab {} (commit {commit})", confab::build_info::VERSION)
    );
    assert!(
        commit == "unknown"
            || (commit.len() == 12 && commit.bytes().all(|b| b.is_ascii_hexdigit())),
        "{commit}"
    );
    // Built from a checkout without `GIT_COMMIT`, it is the checkout's commit.
    if option_env!("GIT_COMMIT").is_some() {
        return;
    }
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    if let Ok(head) = head
        && head.status.success()
    {
        assert_eq!(commit, String::from_utf8_lossy(&head.stdout).trim());
    }
}
