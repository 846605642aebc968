//! The metrics users need (issue 16): a running all-in-one process exports the names the
//! dashboards and alerts in deploy/ query that belong to it, with values that follow what
//! happens, and `confab --version` names the commit. The split processes' share is checked
//! by deploy/tests/prometheus_live.sh (a real Prometheus scraping them).

use std::time::{Duration, Instant};

use crate::binary::bin;
use confab_core::config::{ProviderConfig, ProviderKind};

use crate::common::{PASSWORD, TestApp};

/// Whether `text` has a sample of `name` (`name{…} v` or `name v`).
fn has_sample(text: &str, name: &str) -> bool {
    text.lines().any(|l| {
        l.strip_prefix(name)
            .is_some_and(|rest| rest.starts_with(['{', ' ']))
    })
}

/// Whether `text` declares the family `name` (samples may come later, with the first job
/// or cache lookup).
fn has_family(text: &str, name: &str) -> bool {
    text.lines()
        .any(|l| l.starts_with(&format!("# TYPE {name} ")))
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
    for family in [
        "confab_jobs",
        "confab_job_queue_age_seconds",
        "confab_job_runs",
        "confab_cache_requests",
    ] {
        assert!(has_family(&text, family), "no family {family}: {text}");
    }
    // No NATS in the all-in-one process: nothing to report about it.
    assert!(!text.contains("confab_nats_up"), "{text}");
    assert_eq!(text.matches("# EOF").count(), 1, "{text}");
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
    let open = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(open.contains("confab_sse_streams_active 1"), "{open}");
    stream.text().await.unwrap();
    let closed = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(closed.contains("confab_sse_streams_active 0"), "{closed}");
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
