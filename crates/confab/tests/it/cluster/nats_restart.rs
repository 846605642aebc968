//! Fault e: NATS restarted under the cluster (a server of this test's own, its JetStream store
//! kept). No job or durable event is lost: a user deletion asked just before the stop and one
//! asked while it is down (if accepted) complete, and every usage event of completions made
//! before, during and after arrives in the admin service's statistics; live events resume on
//! a WebSocket opened before the restart.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use super::servers::OwnNats;
use super::{Cluster, Deps, Options, User, events_until, socket, until};

/// `n` completions with `key` through alternating gateways; how many succeeded.
async fn completions(cluster: &Cluster, key: &str, n: usize) -> usize {
    let mut ok = 0;
    for i in 0..n {
        let response = cluster
            .post(
                ["gw1", "gw2"][i % 2],
                "/v1/chat/completions",
                Some(key),
                json!({"model": "s", "messages": [{"role": "user", "content": "x"}]}),
            )
            .await;
        if response.status == 200 {
            ok += 1;
        } else {
            eprintln!(
                "nats: a completion failed: {} {}",
                response.status, response.text
            );
        }
    }
    ok
}

async fn delete(cluster: &Cluster, root: &User, user: &User) -> (u16, Option<String>) {
    let deleted = cluster
        .call(
            Method::DELETE,
            "gw1",
            &format!("/api/v1/auth/users/{}", user.id),
            Some(&root.token),
            None,
        )
        .await;
    let job = deleted.body["job_id"].as_str().map(str::to_owned);
    (deleted.status.as_u16(), job)
}

#[tokio::test]
async fn cluster_recovers_from_a_nats_restart() {
    let Some(deps) = Deps::from_env("cluster_recovers_from_a_nats_restart") else {
        return;
    };
    let mut nats = OwnNats::start().await;
    let deps = Deps {
        nats: nats.url(),
        ..deps
    };
    let cluster = Cluster::start(&deps, Options::default()).await;
    let root = cluster.user("gw1", "root@example.com").await;
    let ada = cluster.user("gw1", "ada@example.com").await;
    let bob = cluster.user("gw2", "bob@example.com").await;
    let dave = cluster.user("gw2", "dave@example.com").await;
    let carol = cluster.user("gw1", "carol@example.com").await;
    for user in [&bob, &dave] {
        let conversation = cluster.conversation("gw1", user, "s").await;
        cluster.send("gw2", user, &conversation, "mine").await;
    }
    let key = cluster.api_key("gw1", &carol, &["inference"]).await;
    let mut socket = socket(&cluster, "gw2", &ada.token).await;
    let mut made = completions(&cluster, &key, 5).await;

    // Bob's deletion is accepted just before NATS stops; Dave's is asked while it is down.
    let (status, bob_job) = delete(&cluster, &root, &bob).await;
    assert_eq!(status, 202);
    nats.stop().await;
    let stopped = Instant::now();
    made += completions(&cluster, &key, 5).await;
    let (dave_status, dave_job) = delete(&cluster, &root, &dave).await;
    // Accepted (the job is queued) or refused as unavailable, to be asked again.
    assert!([202, 503].contains(&dave_status), "{dave_status}");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    nats.start_again().await;
    let down_ms = stopped.elapsed().as_millis();
    let back = Instant::now();
    made += completions(&cluster, &key, 5).await;
    eprintln!(
        "nats down {down_ms} ms: {made} of 15 completions answered around it; a deletion \
         asked while down answered {dave_status}"
    );

    // Every accepted deletion finishes.
    let mut jobs = vec![("bob", bob_job.unwrap(), &bob)];
    if dave_status == 202 {
        jobs.push(("dave", dave_job.unwrap(), &dave));
    }
    for (name, job, user) in &jobs {
        let (job, _) = until(
            &format!("{name}'s purge"),
            Duration::from_secs(90),
            || async {
                let job = cluster
                    .get(
                        "gw2",
                        &format!("/api/v1/admin/jobs/{job}"),
                        Some(&root.token),
                    )
                    .await;
                (job.body["state"] == "succeeded" || job.body["state"] == "failed")
                    .then_some(job.body)
            },
        )
        .await;
        assert_eq!(job["state"], "succeeded", "{job}");
        let pool = sqlx::PgPool::connect(&cluster.database_url).await.unwrap();
        let (left,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM conversations WHERE user_id = $1")
                .bind(&user.id)
                .fetch_one(&pool)
                .await
                .unwrap();
        pool.close().await;
        assert_eq!(left, 0, "{name}'s conversations are gone");
        eprintln!(
            "nats: {name}'s purge succeeded, seen {} ms after NATS returned",
            back.elapsed().as_millis()
        );
    }

    // Every completion's usage event reaches the admin service's statistics.
    let ((), _) = until(
        "every usage event arrives",
        Duration::from_secs(60),
        || async {
            let pool = sqlx::PgPool::connect(&cluster.database_url).await.ok()?;
            let counted: Option<(i64,)> = sqlx::query_as(
                "SELECT COALESCE(SUM(requests), 0)::BIGINT FROM usage_daily WHERE user_id = $1",
            )
            .bind(&carol.id)
            .fetch_one(&pool)
            .await
            .ok();
            pool.close().await;
            let counted = counted?.0;
            (counted == made as i64).then_some(())
        },
    )
    .await;
    eprintln!(
        "nats: all {made} usage events counted {} ms after NATS returned",
        back.elapsed().as_millis()
    );

    // Live events resume on the socket opened before the restart.
    let conversation = cluster.conversation("gw1", &ada, "s").await;
    let sent = Instant::now();
    let (events, seen) = tokio::join!(
        cluster.send("gw1", &ada, &conversation, "after"),
        events_until(
            &mut socket,
            "message.completed",
            Duration::from_secs(20),
            |e| { e["data"]["message"]["conversation_id"] == conversation.as_str() }
        )
    );
    let answer = &events.last().unwrap().1;
    assert_eq!(answer["status"], "complete");
    let completed = seen.last().unwrap();
    assert_eq!(completed["data"]["message"]["id"], answer["id"]);
    eprintln!(
        "nats: live events resumed on the old socket ({} events, {} ms)",
        seen.len(),
        sent.elapsed().as_millis()
    );
}
