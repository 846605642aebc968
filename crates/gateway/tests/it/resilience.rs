//! What the gateway does when services fail: retries (idempotent requests, and any whose
//! connection was refused; never after a byte was relayed), the circuit breaker's cycle,
//! balancing, ejection and re-admission, DNS entries.

use std::time::{Duration, Instant};

use confab_core::breaker::CircuitState;
use confab_gateway::Service;
use uuid::Uuid;

use crate::support::*;

#[tokio::test]
async fn idempotent_requests_are_retried_on_another_instance_others_never() {
    let sick = Fake::start("sick").await;
    let well = Fake::start("well").await;
    sick.fail(true);
    let mut settings = config(&[("chat", vec![sick.url(), well.url()])]);
    settings.eject_after_failures = 100;
    settings.breaker_failures = 100;
    settings.breaker_min_requests = 1000;
    let gw = start_gateway(&settings).await;
    let user = jwt(Uuid::now_v7());
    for _ in 0..10 {
        let (status, _, body) = get_json(&gw.url("/api/v1/conversations"), Some(&user)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["instance"], "well");
    }
    assert!(sick.hits() > 0, "the balancing did try the sick instance");
    // A POST that meets the sick instance is answered with its 503, not retried.
    let before = (sick.hits(), well.hits());
    let mut refused = 0;
    for _ in 0..20 {
        let response = client()
            .post(gw.url("/api/v1/conversations"))
            .header("authorization", &user)
            .body("{}")
            .send()
            .await
            .unwrap();
        if response.status() == 503 {
            refused += 1;
        }
    }
    let sent = (sick.hits() - before.0) + (well.hits() - before.1);
    assert_eq!(sent, 20, "each POST went out exactly once");
    assert_eq!(refused, sick.hits() - before.0);
    assert!(refused > 0);
}

/// The circuit is the service's: POSTs failed by one sick instance (not retried) while another
/// answers eject that instance and leave the circuit closed; once no other instance is in
/// play, the failures count and open it.
#[tokio::test]
async fn one_sick_instance_does_not_open_the_services_circuit() {
    let sick = Fake::start("sick").await;
    let well = Fake::start("well").await;
    sick.fail(true);
    let mut settings = config(&[("chat", vec![sick.url(), well.url()])]);
    settings.eject_after_failures = 3;
    settings.breaker_failures = 2;
    settings.breaker_min_requests = 4;
    settings.breaker_error_rate = 0.1;
    let gw = start_gateway(&settings).await;
    let user = jwt(Uuid::now_v7());
    let post = || async {
        client()
            .post(gw.url("/api/v1/conversations"))
            .header("authorization", &user)
            .body("{}")
            .send()
            .await
            .unwrap()
            .status()
    };
    let mut statuses = Vec::new();
    for _ in 0..30 {
        statuses.push(post().await.as_u16());
    }
    assert!(
        sick.hits() >= 2,
        "the sick instance met some POSTs: {statuses:?}"
    );
    assert_eq!(
        gw.gateway.circuit(Service::Chat),
        Some(CircuitState::Closed)
    );
    assert!(
        statuses.iter().rev().take(10).all(|s| *s == 200),
        "once ejected, the sick instance gets nothing: {statuses:?}"
    );
    // Both sick: the instances are ejected, then the failures are the service's.
    well.fail(true);
    let mut opened = false;
    for _ in 0..20 {
        post().await;
        if gw.gateway.circuit(Service::Chat) == Some(CircuitState::Open) {
            opened = true;
            break;
        }
    }
    assert!(opened, "with no instance left the circuit opens");
}

/// A POST whose connection is refused (an instance that died) never reached it: it goes to
/// another instance, so only requests in flight at a crash fail.
#[tokio::test]
async fn a_post_whose_connection_is_refused_goes_to_another_instance() {
    let well = Fake::start("well").await;
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let mut settings = config(&[("chat", vec![dead, well.url()])]);
    settings.eject_after_failures = 100;
    settings.breaker_failures = 100;
    settings.breaker_min_requests = 1000;
    let gw = start_gateway(&settings).await;
    let user = jwt(Uuid::now_v7());
    for _ in 0..20 {
        let response = client()
            .post(gw.url("/api/v1/conversations"))
            .header("authorization", &user)
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    assert_eq!(well.hits(), 20, "each POST reached the live instance once");
}

#[tokio::test]
async fn nothing_is_retried_once_bytes_reached_the_client() {
    let one = Fake::start("one").await;
    let two = Fake::start("two").await;
    let gw = start_gateway(&config(&[("chat", vec![one.url(), two.url()])])).await;
    let response = client()
        .get(gw.url("/api/v1/conversations/partial"))
        .header("authorization", jwt(Uuid::now_v7()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the headers were relayed");
    // Now the service breaks its answer (whichever instance took it).
    one.state.release.notify_one();
    two.state.release.notify_one();
    assert!(
        response.bytes().await.is_err(),
        "the broken body reaches the client as broken"
    );
    assert_eq!(one.hits() + two.hits(), 1, "and it was not sent again");
}

#[tokio::test]
async fn the_circuit_opens_answers_fast_then_probes_and_closes() {
    let chat = Fake::start("chat").await;
    chat.fail(true);
    let mut settings = config(&[("chat", vec![chat.url()])]);
    settings.breaker_failures = 3;
    settings.breaker_open_ms = 400;
    settings.retries = 0;
    settings.eject_after_failures = 100;
    let gw = start_gateway(&settings).await;
    let user = jwt(Uuid::now_v7());
    for _ in 0..3 {
        let (status, _, _) = get_json(&gw.url("/api/v1/conversations"), Some(&user)).await;
        assert_eq!(status, 503);
    }
    assert_eq!(gw.gateway.circuit(Service::Chat), Some(CircuitState::Open));
    let started = Instant::now();
    let (status, headers, body) = get_json(&gw.url("/api/v1/conversations"), Some(&user)).await;
    let took = started.elapsed();
    assert_eq!(status, 503);
    assert_eq!(body["error"]["code"], "service_unavailable", "{body}");
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(chat.hits(), 3, "an open circuit does not reach the service");
    println!("open circuit answered in {took:?}");
    assert!(took < Duration::from_millis(200), "{took:?}");

    // The service returns; after the pause one probe passes and closes the circuit.
    chat.fail(false);
    let gateway = gw.gateway.clone();
    eventually("the circuit to half-open", || {
        gateway.circuit(Service::Chat) == Some(CircuitState::HalfOpen)
    })
    .await;
    let (status, _, _) = get_json(&gw.url("/api/v1/conversations"), Some(&user)).await;
    assert_eq!(status, 200);
    assert_eq!(
        gw.gateway.circuit(Service::Chat),
        Some(CircuitState::Closed)
    );
    let metrics = gw.metrics.render();
    assert!(
        metrics.contains("confab_gateway_circuit_state{service=\"chat\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("confab_gateway_upstream_requests_total{service=\"chat\",class=\"5xx\"} 3")
    );
    assert!(metrics.contains("confab_gateway_refusals_total{reason=\"circuit_open\"} 1"));
}

#[tokio::test]
async fn requests_spread_over_instances_and_an_ejected_one_returns_after_a_probe() {
    let one = Fake::start("one").await;
    let two = Fake::start("two").await;
    let mut settings = config(&[("chat", vec![one.url(), two.url()])]);
    settings.eject_after_failures = 2;
    settings.breaker_failures = 100;
    settings.breaker_min_requests = 1000;
    let gw = start_gateway(&settings).await;
    let user = jwt(Uuid::now_v7());
    for _ in 0..40 {
        let (status, _, _) = get_json(&gw.url("/api/v1/conversations"), Some(&user)).await;
        assert_eq!(status, 200);
    }
    println!("balanced: one {} two {}", one.hits(), two.hits());
    assert!(one.hits() >= 5 && two.hits() >= 5);

    // `two` fails (and fails its readiness): ejected after two failures, retried on `one`.
    two.fail(true);
    for _ in 0..20 {
        let (status, _, body) = get_json(&gw.url("/api/v1/conversations"), Some(&user)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["instance"], "one");
    }
    let metrics = gw.metrics.render();
    assert!(
        metrics.contains("confab_gateway_ejected_instances{service=\"chat\"} 1"),
        "{metrics}"
    );
    let hits_while_ejected = two.hits();
    for _ in 0..10 {
        get_json(&gw.url("/api/v1/conversations"), Some(&user)).await;
    }
    assert_eq!(
        two.hits(),
        hits_while_ejected,
        "an ejected instance gets no traffic"
    );
    // It recovers: the next probe of its /readyz re-admits it.
    two.fail(false);
    let metrics = gw.metrics.clone();
    eventually("re-admission", || {
        metrics
            .render()
            .contains("confab_gateway_ejected_instances{service=\"chat\"} 0")
    })
    .await;
    for _ in 0..40 {
        get_json(&gw.url("/api/v1/conversations"), Some(&user)).await;
    }
    assert!(two.hits() > hits_while_ejected + 3, "traffic came back");
}

#[tokio::test]
async fn dns_entries_are_resolved_and_resolved_again() {
    let chat = Fake::start("chat").await;
    let port = chat.addr.port();
    let mut settings = config(&[("chat", vec![format!("dns://localhost:{port}")])]);
    settings.dns_refresh_ms = 50;
    let gw = start_gateway(&settings).await;
    let instances = gw.gateway.instances(Service::Chat);
    assert!(
        instances.contains(&format!("127.0.0.1:{port}")),
        "{instances:?}"
    );
    let (status, _, body) =
        get_json(&gw.url("/api/v1/conversations"), Some(&jwt(Uuid::now_v7()))).await;
    assert_eq!(status, 200, "{body}");
    let first = gw.gateway.resolutions(Service::Chat);
    let gateway = gw.gateway.clone();
    eventually("a second resolution", || {
        gateway.resolutions(Service::Chat) >= first + 2
    })
    .await;
}
