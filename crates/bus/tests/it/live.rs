//! The contract suite of the [`EventBus`] port (live events), run here against [`MemoryBus`],
//! one test per case (`cargo nextest run -p confab-bus live::`). Another adapter runs it with
//! [`event_bus_contract`] or picks cases from [`event_bus_cases`]; every case uses topics of
//! its own, so cases may share one server.

use std::sync::Arc;
use std::time::Duration;

use confab_bus::{Envelope, EventBus, MemoryBus, Received};
use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::json;
use uuid::Uuid;

use crate::{Fixture, Make, suite};

/// A [`MemoryBus`] small enough for the lag case to overflow it quickly.
pub async fn memory_fixture() -> anyhow::Result<Fixture<dyn EventBus>> {
    Ok(Fixture {
        port: Arc::new(MemoryBus::new(16)),
        guard: Box::new(()),
    })
}

/// Runs every case against fixtures from `make`.
#[expect(dead_code, reason = "used by other adapters' modules")]
pub async fn event_bus_contract(make: Make<dyn EventBus>) {
    crate::run_cases("event_bus", make, event_bus_cases()).await;
}

suite!(dyn EventBus, event_bus_cases, memory, crate::live::memory_fixture;
    subscribers_get_only_their_topic,
    every_subscriber_of_a_topic_gets_each_event_in_order,
    publishing_to_nobody_is_fine,
    a_slow_subscriber_lags_alone,
    a_dropped_subscription_can_be_taken_again,
);

fn topic(name: &str) -> String {
    format!("t{}.{name}", Uuid::now_v7().simple())
}

async fn next(stream: &mut BoxStream<'static, Received>) -> Received {
    tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("an event within 5 s")
        .expect("the stream goes on")
}

/// Nothing arrives for a moment.
async fn quiet(stream: &mut BoxStream<'static, Received>) {
    let got = tokio::time::timeout(Duration::from_millis(200), stream.next()).await;
    assert!(got.is_err(), "unexpected {got:?}");
}

fn event(topic: &str, n: i64) -> Envelope {
    Envelope::new(topic, "test.event", json!({ "n": n }))
}

fn n(received: Received) -> i64 {
    match received {
        Received::Event(e) => e.data["n"].as_i64().unwrap(),
        other => panic!("{other:?}"),
    }
}

pub async fn subscribers_get_only_their_topic(f: Fixture<dyn EventBus>) {
    let (a, b) = (topic("a"), topic("b"));
    let mut on_a = f.port.subscribe(&a);
    f.port.publish(event(&b, 1)).await.unwrap();
    f.port.publish(event(&a, 2)).await.unwrap();
    assert_eq!(n(next(&mut on_a).await), 2);
    quiet(&mut on_a).await;
}

pub async fn every_subscriber_of_a_topic_gets_each_event_in_order(f: Fixture<dyn EventBus>) {
    let t = topic("fan");
    let mut first = f.port.subscribe(&t);
    let mut second = f.port.subscribe(&t);
    for i in 0..5 {
        f.port.publish(event(&t, i)).await.unwrap();
    }
    for stream in [&mut first, &mut second] {
        for i in 0..5 {
            assert_eq!(n(next(stream).await), i);
        }
    }
}

pub async fn publishing_to_nobody_is_fine(f: Fixture<dyn EventBus>) {
    f.port.publish(event(&topic("none"), 1)).await.unwrap();
}

/// A subscriber that does not read is told how many it missed; one that reads, on the same
/// topic or another, misses nothing.
pub async fn a_slow_subscriber_lags_alone(f: Fixture<dyn EventBus>) {
    let (t, other) = (topic("slow"), topic("other"));
    let mut slow = f.port.subscribe(&t);
    let mut fast = f.port.subscribe(&t);
    let mut elsewhere = f.port.subscribe(&other);
    for i in 0..200 {
        f.port.publish(event(&t, i)).await.unwrap();
        assert_eq!(n(next(&mut fast).await), i);
    }
    f.port.publish(event(&other, 7)).await.unwrap();
    assert_eq!(n(next(&mut elsewhere).await), 7);
    assert!(matches!(next(&mut slow).await, Received::Lagged(missed) if missed > 0));
}

pub async fn a_dropped_subscription_can_be_taken_again(f: Fixture<dyn EventBus>) {
    let t = topic("again");
    drop(f.port.subscribe(&t));
    f.port.publish(event(&t, 1)).await.unwrap();
    let mut again = f.port.subscribe(&t);
    f.port.publish(event(&t, 2)).await.unwrap();
    assert_eq!(n(next(&mut again).await), 2);
}
