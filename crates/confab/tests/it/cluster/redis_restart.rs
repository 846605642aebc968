//! Fault d: Redis restarted under the cluster (a server of this test's own). Requests keep
//! working while it is down (limits fall back to each process, caches miss); once it is back
//! every gateway uses it again, and a key's limit is again one count across both gateways.

use std::time::{Duration, Instant};

use serde_json::json;

use super::servers::OwnRedis;
use super::{Cluster, Deps, Options, User, until};

const KEY_BURST: usize = 4;

/// Requests with a fresh key, alternating gateways, until both refused one: how many passed.
async fn shared_limit(cluster: &Cluster, ada: &User) -> usize {
    let key = cluster.api_key("gw1", ada, &["inference"]).await;
    let mut passed = 0;
    let mut refused = [false, false];
    for i in 0..(3 * KEY_BURST) {
        let via = ["gw1", "gw2"][i % 2];
        let response = cluster.get(via, "/v1/models", Some(&key)).await;
        match response.status.as_u16() {
            200 => passed += 1,
            429 => refused[i % 2] = true,
            other => panic!("{via}: {other} {}", response.text),
        }
        if refused == [true, true] {
            break;
        }
    }
    passed
}

/// Whether a process's `/metrics` says Redis answers.
async fn redis_up(cluster: &Cluster, node: &str) -> bool {
    let metrics = cluster.get(node, "/metrics", None).await;
    metrics.text.lines().any(|l| l == "confab_redis_up 1")
}

#[tokio::test]
async fn cluster_recovers_from_a_redis_restart() {
    let Some(deps) = Deps::from_env("cluster_recovers_from_a_redis_restart") else {
        return;
    };
    let mut redis = OwnRedis::start().await;
    let deps = Deps {
        redis: redis.url(),
        ..deps
    };
    let cluster = Cluster::start(
        &deps,
        Options {
            config: format!("[gateway]\nkey_per_minute = {KEY_BURST}\nkey_burst = {KEY_BURST}\n"),
            ..Options::default()
        },
    )
    .await;
    let ada = cluster.user("gw1", "ada@example.com").await;
    let before = shared_limit(&cluster, &ada).await;
    assert!((KEY_BURST..=KEY_BURST + 1).contains(&before), "{before}");
    for node in ["gw1", "gw2", "auth"] {
        assert!(redis_up(&cluster, node).await, "{node} uses Redis");
    }

    redis.stop().await;
    let stopped = Instant::now();
    // While Redis is down: sign-ins, chats and completions go on.
    let key = cluster.api_key("gw2", &ada, &["inference"]).await;
    let conversation = cluster.conversation("gw1", &ada, "s").await;
    let mut sent = 0;
    let mut failed = Vec::new();
    let mut limited = 0;
    while stopped.elapsed() < Duration::from_secs(3) {
        sent += 3;
        let login = cluster
            .post(
                ["gw1", "gw2"][sent % 2],
                "/api/v1/auth/login",
                None,
                json!({"email": "ada@example.com", "password": crate::common::PASSWORD}),
            )
            .await;
        // The per-address sign-in throttle (per process now) may answer 429: an answer.
        if login.status == 429 {
            limited += 1;
        } else if login.status != 200 {
            failed.push(format!("login {}", login.status));
        }
        let completion = cluster
            .post(
                ["gw2", "gw1"][sent % 2],
                "/v1/chat/completions",
                Some(&key),
                json!({"model": "s", "messages": [{"role": "user", "content": "x"}]}),
            )
            .await;
        // Each gateway counts the key on its own now: 429 is an answer, not an error.
        if completion.status == 429 {
            limited += 1;
        } else if completion.status != 200 {
            failed.push(format!("completion {}", completion.status));
        }
        let listed = cluster
            .get(
                "gw1",
                &format!("/api/v1/conversations/{conversation}"),
                Some(&ada.token),
            )
            .await;
        if listed.status != 200 {
            failed.push(format!("conversation {}", listed.status));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "redis down: {sent} requests in {} ms, {limited} limited (429), {} failed {failed:?}",
        stopped.elapsed().as_millis(),
        failed.len()
    );
    assert!(
        failed.is_empty(),
        "Redis down degrades, never breaks: {failed:?}"
    );

    redis.start_again().await;
    let back = Instant::now();
    let mut recovered = Vec::new();
    for node in ["gw1", "gw2", "auth"] {
        let ((), waited) = until(
            &format!("{node} uses Redis again"),
            Duration::from_secs(30),
            || async {
                // Redis is used (and found again) by traffic: a signed-in request through the
                // gateways (their limits), a sign-in to auth (its throttles).
                if node == "auth" {
                    let body = json!({"email": "ada@example.com", "password": "wrong"});
                    cluster.post("gw1", "/api/v1/auth/login", None, body).await;
                } else {
                    cluster.get(node, "/api/v1/auth/me", Some(&ada.token)).await;
                }
                redis_up(&cluster, node).await.then_some(())
            },
        )
        .await;
        recovered.push((node, waited.as_millis()));
    }
    let after = shared_limit(&cluster, &ada).await;
    eprintln!(
        "redis back: up again on {recovered:?} ms; a key's limit across gateways {before} \
         before, {after} after ({} ms after the return)",
        back.elapsed().as_millis()
    );
    assert!((KEY_BURST..=KEY_BURST + 1).contains(&after), "{after}");
}
