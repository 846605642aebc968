//! Fault f: PostgreSQL restarted under the cluster (a server of this test's own). While it is
//! down every service's `/readyz` answers 503 `not_ready`; once it is back the services
//! recover by themselves, without a restart, and nothing stored before is lost.

use std::time::{Duration, Instant};

use super::servers::OwnPostgres;
use super::{Cluster, Deps, Options, answer_text, until};

/// The processes that use the database.
const BACKENDS: [&str; 8] = [
    "auth", "admin", "inf1", "inf2", "chat1", "chat2", "seo", "files",
];

#[tokio::test]
async fn cluster_recovers_from_a_postgres_restart() {
    let Some(deps) = Deps::from_env("cluster_recovers_from_a_postgres_restart") else {
        return;
    };
    let postgres = OwnPostgres::start().await;
    let deps = Deps {
        postgres: postgres.url.clone(),
        ..deps
    };
    // Waiting for a connection is bounded by the pool's acquire timeout: 2 s here.
    let cluster = Cluster::start(
        &deps,
        Options {
            config: "[database]\nacquire_timeout_secs = 2\n".into(),
            ..Options::default()
        },
    )
    .await;
    let ada = cluster.user("gw1", "ada@example.com").await;
    let conversation = cluster.conversation("gw1", &ada, "s").await;
    let events = cluster.send("gw2", &ada, &conversation, "before").await;
    assert_eq!(answer_text(&events), "You said: before. Fine.");

    postgres.stop().await;
    let stopped = Instant::now();
    let noticing = futures::future::join_all(BACKENDS.map(|node| {
        let cluster = &cluster;
        async move {
            let (message, waited) = until(
                &format!("{node} reports not_ready"),
                Duration::from_secs(20),
                || async {
                    let response = cluster
                        .client
                        .get(cluster.url(node, "/readyz"))
                        .timeout(Duration::from_secs(10))
                        .send()
                        .await
                        .ok()?;
                    let response = crate::common::Response::read(response).await;
                    (response.status == 503).then(|| response.assert_error(503, "not_ready"))
                },
            )
            .await;
            assert!(message.contains("database"), "{node}: {message}");
            (node, waited.as_millis())
        }
    }));
    // A request that needs the database fails while it is down (and does not hang).
    let request = async {
        let sent = Instant::now();
        let during = cluster
            .get("gw1", "/api/v1/conversations", Some(&ada.token))
            .await;
        (during, sent.elapsed().as_millis())
    };
    let (noticed, (during, during_ms)) = tokio::join!(noticing, request);
    assert!(during.status.is_server_error(), "{}", during.text);
    eprintln!(
        "postgres down: not_ready on every service {noticed:?} ms; a conversation list \
         answered {} in {during_ms} ms",
        during.status
    );

    postgres.start_again().await;
    let back = Instant::now();
    let down_ms = stopped.elapsed().as_millis();
    let mut recovered = Vec::new();
    for node in BACKENDS {
        let waited = cluster.wait_ready(node, Duration::from_secs(30)).await;
        recovered.push((node, waited.as_millis()));
    }
    // Everything works again, and what was stored before is there.
    let bob = cluster.user("gw2", "bob@example.com").await;
    let other = cluster.conversation("gw2", &bob, "s").await;
    let events = cluster.send("gw1", &bob, &other, "after").await;
    assert_eq!(answer_text(&events), "You said: after. Fine.");
    let events = cluster.send("gw1", &ada, &conversation, "again").await;
    assert_eq!(answer_text(&events), "You said: again. Fine.");
    let messages = cluster
        .get(
            "gw2",
            &format!("/api/v1/conversations/{conversation}/messages"),
            Some(&ada.token),
        )
        .await;
    assert_eq!(messages.status, 200, "{}", messages.text);
    assert_eq!(messages.body["items"].as_array().unwrap().len(), 4);
    eprintln!(
        "postgres back after {down_ms} ms down: ready again {recovered:?} ms after its \
         return; working end to end {} ms after it",
        back.elapsed().as_millis()
    );
}
