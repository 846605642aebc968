//! Fault c: a service stopped entirely (seo). The gateway's circuit for it opens: fast 503s
//! `service_unavailable` with `Retry-After`, not timeouts; once the service is back on its
//! port the circuit closes within 30 s.

use std::time::{Duration, Instant};

use super::{Cluster, Deps, Options, until};

#[tokio::test]
async fn cluster_gateway_circuit_opens_and_closes_around_a_stopped_service() {
    let Some(deps) =
        Deps::from_env("cluster_gateway_circuit_opens_and_closes_around_a_stopped_service")
    else {
        return;
    };
    // The gateway's defaults: 5 failures open the circuit for 5 s; ejected instances are
    // probed every 2 s.
    let mut cluster = Cluster::start(&deps, Options::default()).await;
    let ada = cluster.user("gw1", "ada@example.com").await;
    let projects = "/api/v1/seo/projects";
    let listed = cluster.get("gw1", projects, Some(&ada.token)).await;
    assert_eq!(listed.status, 200, "{}", listed.text);

    cluster.kill("seo").await;
    let stopped = Instant::now();
    // Requests fail (the instance refuses connections) until the circuit opens.
    let mut failures = Vec::new();
    let (response, first_open) = loop {
        assert!(
            stopped.elapsed() < Duration::from_secs(20),
            "the circuit did not open within 20 s: {failures:?}"
        );
        let sent = Instant::now();
        let response = cluster.get("gw1", projects, Some(&ada.token)).await;
        let took = sent.elapsed();
        if response.status == 503 && response.header("retry-after").is_some() {
            break (response, took);
        }
        failures.push((response.status.as_u16(), took.as_millis()));
    };
    response.assert_error(503, "service_unavailable");
    // While open: fast answers, every one 503 with Retry-After.
    let mut latencies = Vec::new();
    for _ in 0..20 {
        let sent = Instant::now();
        let response = cluster.get("gw1", projects, Some(&ada.token)).await;
        latencies.push(sent.elapsed());
        response.assert_error(503, "service_unavailable");
        let retry: u64 = response.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=30).contains(&retry), "Retry-After {retry}");
    }
    latencies.sort();
    let p50 = latencies[latencies.len() / 2];
    let max = *latencies.last().unwrap();
    eprintln!(
        "circuit: {} failed requests before it opened ({failures:?} as status, ms), \
         opened {} ms after the stop (first 503 in {:.2} ms); while open 503 in p50 {:.2} ms, \
         max {:.2} ms",
        failures.len(),
        stopped.elapsed().as_millis(),
        first_open.as_secs_f64() * 1000.0,
        p50.as_secs_f64() * 1000.0,
        max.as_secs_f64() * 1000.0,
    );
    assert!(
        max < Duration::from_millis(500),
        "an open circuit answers at once, not after a timeout: {max:?}"
    );
    // A failure before the circuit opened is a refused connection, never a wait.
    assert!(failures.iter().all(|(_, ms)| *ms < 2000), "{failures:?}");

    cluster.restart("seo").await;
    let back = Instant::now();
    let (_, closed_in) = until("the circuit closes", Duration::from_secs(30), || async {
        let response = cluster.get("gw1", projects, Some(&ada.token)).await;
        (response.status == 200).then_some(())
    })
    .await;
    eprintln!(
        "circuit: closed {} ms after seo was back ({} ms after it listened)",
        closed_in.as_millis(),
        back.elapsed().as_millis()
    );
    let listed = cluster.get("gw2", projects, Some(&ada.token)).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
}
