//! The contract suite of the [`DurableEvents`] port, run here against [`SqlOutbox`] on the
//! backend under test, one test per case (`cargo nextest run -p confab-bus events::`).
//!
//! To run it against another adapter, from another module of this test binary:
//!
//! ```ignore
//! let make: Make<dyn DurableEvents> = Arc::new(|| Box::pin(async {
//!     Ok(Fixture { port: Arc::new(MyEvents::connect(..).await?) as Arc<dyn DurableEvents>, guard: Box::new(()) })
//! }));
//! crate::events::durable_events_contract(make).await;
//! ```
//!
//! or pick cases from [`durable_events_cases`]. Every case uses topics and consumer names of
//! its own, so cases may share one server.

use std::sync::Arc;
use std::time::Duration;

use confab_bus::{Delivery, DurableEvents, Envelope, SqlOutbox, ack_all};
use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::json;
use uuid::Uuid;

use crate::{Fixture, Make, suite};

/// A fresh [`SqlOutbox`] on the backend under test.
pub async fn sql_fixture() -> anyhow::Result<Fixture<dyn DurableEvents>> {
    let (db, guard) = crate::test_db().await?;
    Ok(Fixture {
        port: Arc::new(SqlOutbox::new(db)),
        guard: Box::new(guard),
    })
}

/// Runs every case against fixtures from `make`.
#[cfg_attr(
    not(feature = "nats"),
    expect(dead_code, reason = "used by the NATS adapters' module")
)]
pub async fn durable_events_contract(make: Make<dyn DurableEvents>) {
    crate::run_cases("durable_events", make, durable_events_cases()).await;
}

suite!(dyn DurableEvents, durable_events_cases, sql, crate::events::sql_fixture;
    new_consumer_gets_everything_in_order,
    two_consumers_each_get_all,
    prefix_filter,
    ack_then_consume_again_resumes_after_it,
    unacked_events_come_again,
    acks_out_of_order_keep_the_highest,
    live_events_arrive,
    a_batch_is_published_in_order_and_acked_at_once,
);

/// A topic prefix no other case uses.
fn prefix(name: &str) -> String {
    format!("t{}.{name}.", Uuid::now_v7().simple())
}

fn consumer(name: &str) -> String {
    format!("{name}_{}", Uuid::now_v7().simple())
}

async fn publish(events: &dyn DurableEvents, topic: &str, n: i64) {
    events
        .publish(Envelope::new(topic, "test.event", json!({ "n": n })))
        .await
        .unwrap();
}

async fn next(stream: &mut BoxStream<'static, Result<Delivery, confab_bus::BusError>>) -> Delivery {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("an event within 10 s")
        .expect("the stream goes on")
        .expect("no error")
}

/// Nothing more arrives for a while.
async fn quiet(stream: &mut BoxStream<'static, Result<Delivery, confab_bus::BusError>>) {
    if let Ok(item) = tokio::time::timeout(Duration::from_millis(300), stream.next()).await {
        panic!("unexpected {item:?}");
    }
}

fn n(delivery: &Delivery) -> i64 {
    delivery.event.data["n"].as_i64().unwrap()
}

pub async fn new_consumer_gets_everything_in_order(f: Fixture<dyn DurableEvents>) {
    let events = f.port;
    let p = prefix("order");
    for i in 1..=5 {
        publish(&*events, &format!("{p}a"), i).await;
    }
    let mut stream = events.consume(&consumer("c"), &p).await.unwrap();
    let mut last_seq = 0;
    for i in 1..=5 {
        let d = next(&mut stream).await;
        assert_eq!(n(&d), i);
        assert_eq!(d.event.topic, format!("{p}a"));
        assert_eq!(d.event.kind, "test.event");
        assert!(d.seq > last_seq, "sequence numbers increase");
        last_seq = d.seq;
        d.ack().await.unwrap();
    }
    quiet(&mut stream).await;
}

pub async fn two_consumers_each_get_all(f: Fixture<dyn DurableEvents>) {
    let events = f.port;
    let p = prefix("two");
    for i in 1..=3 {
        publish(&*events, &format!("{p}x"), i).await;
    }
    let mut one = events.consume(&consumer("one"), &p).await.unwrap();
    let mut two = events.consume(&consumer("two"), &p).await.unwrap();
    for i in 1..=3 {
        let d = next(&mut one).await;
        assert_eq!(n(&d), i);
        d.ack().await.unwrap();
    }
    for i in 1..=3 {
        let d = next(&mut two).await;
        assert_eq!(n(&d), i);
        d.ack().await.unwrap();
    }
}

pub async fn prefix_filter(f: Fixture<dyn DurableEvents>) {
    let events = f.port;
    let p = prefix("filter");
    publish(&*events, &format!("{p}x.1"), 1).await;
    publish(&*events, &format!("{p}y.1"), 2).await;
    publish(&*events, &format!("{p}x.2"), 3).await;
    let mut xs = events
        .consume(&consumer("x"), &format!("{p}x."))
        .await
        .unwrap();
    let first = next(&mut xs).await;
    assert_eq!(
        (n(&first), first.event.topic.clone()),
        (1, format!("{p}x.1"))
    );
    first.ack().await.unwrap();
    let second = next(&mut xs).await;
    assert_eq!(n(&second), 3);
    second.ack().await.unwrap();
    quiet(&mut xs).await;
}

pub async fn ack_then_consume_again_resumes_after_it(f: Fixture<dyn DurableEvents>) {
    let events = f.port;
    let p = prefix("resume");
    let name = consumer("resume");
    for i in 1..=4 {
        publish(&*events, &format!("{p}a"), i).await;
    }
    {
        let mut stream = events.consume(&name, &p).await.unwrap();
        for i in 1..=2 {
            let d = next(&mut stream).await;
            assert_eq!(n(&d), i);
            d.ack().await.unwrap();
        }
    }
    let mut stream = events.consume(&name, &p).await.unwrap();
    assert_eq!(n(&next(&mut stream).await), 3);
}

pub async fn unacked_events_come_again(f: Fixture<dyn DurableEvents>) {
    let events = f.port;
    let p = prefix("unacked");
    let name = consumer("unacked");
    for i in 1..=3 {
        publish(&*events, &format!("{p}a"), i).await;
    }
    {
        let mut stream = events.consume(&name, &p).await.unwrap();
        let first = next(&mut stream).await;
        assert_eq!(n(&first), 1);
        first.ack().await.unwrap();
        assert_eq!(n(&next(&mut stream).await), 2);
        assert_eq!(n(&next(&mut stream).await), 3);
    }
    let mut stream = events.consume(&name, &p).await.unwrap();
    let again = next(&mut stream).await;
    assert_eq!(n(&again), 2, "the unacknowledged come again");
    again.ack().await.unwrap();
    let again = next(&mut stream).await;
    assert_eq!(n(&again), 3);
    again.ack().await.unwrap();
}

pub async fn acks_out_of_order_keep_the_highest(f: Fixture<dyn DurableEvents>) {
    let events = f.port;
    let p = prefix("out_of_order");
    let name = consumer("ooo");
    for i in 1..=3 {
        publish(&*events, &format!("{p}a"), i).await;
    }
    {
        let mut stream = events.consume(&name, &p).await.unwrap();
        let first = next(&mut stream).await;
        let second = next(&mut stream).await;
        second.ack().await.unwrap();
        first.ack().await.unwrap();
    }
    let mut stream = events.consume(&name, &p).await.unwrap();
    assert_eq!(n(&next(&mut stream).await), 3);
}

pub async fn live_events_arrive(f: Fixture<dyn DurableEvents>) {
    let events = f.port;
    let p = prefix("live");
    let mut stream = events.consume(&consumer("live"), &p).await.unwrap();
    quiet(&mut stream).await;
    let publisher = {
        let events = Arc::clone(&events);
        let topic = format!("{p}a");
        async move {
            for i in 1..=3 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                publish(&*events, &topic, i).await;
            }
        }
    };
    let receiver = async {
        let mut got = Vec::new();
        for _ in 0..3 {
            let d = next(&mut stream).await;
            got.push(n(&d));
            d.ack().await.unwrap();
        }
        got
    };
    let ((), got) = tokio::join!(publisher, receiver);
    assert_eq!(got, vec![1, 2, 3]);
}

/// The SQL outbox's retention: events every consumer has passed go; the rest stay.
#[tokio::test]
async fn sql_prune_keeps_what_a_consumer_still_needs() {
    let (db, _guard) = crate::test_db().await.unwrap();
    let outbox = SqlOutbox::new(db);
    let p = prefix("prune");
    for i in 1..=3 {
        publish(&outbox, &format!("{p}a"), i).await;
    }
    {
        let mut stream = outbox.consume("slow", &p).await.unwrap();
        let first = next(&mut stream).await;
        first.ack().await.unwrap();
        let mut fast = outbox.consume("fast", &p).await.unwrap();
        for _ in 1..=3 {
            next(&mut fast).await.ack().await.unwrap();
        }
    }
    assert_eq!(outbox.position("fast").await.unwrap(), 3);
    let pruned = outbox.prune(confab_core::now_ms() + 1_000).await.unwrap();
    assert_eq!(pruned, 1, "only what the slow consumer acknowledged");
    let mut stream = outbox.consume("slow", &p).await.unwrap();
    assert_eq!(n(&next(&mut stream).await), 2);
}

/// A consumer of a rare topic reads past other topics' events a window at a time, gets its
/// own, and saves how far it has looked: it neither rescans the log nor holds back `prune`.
#[tokio::test]
async fn sql_a_rare_topic_reads_past_others_and_does_not_hold_back_pruning() {
    let (db, _guard) = crate::test_db().await.unwrap();
    let outbox = SqlOutbox::new(db).with_reading(8, Duration::ZERO);
    let busy = prefix("busy");
    let rare = prefix("rare");
    for i in 1..=40 {
        publish(&outbox, &format!("{busy}x"), i).await;
    }
    publish(&outbox, &format!("{rare}x"), 41).await;
    for i in 42..=60 {
        publish(&outbox, &format!("{busy}x"), i).await;
    }
    let mut stream = outbox.consume("rare", &rare).await.unwrap();
    let got = next(&mut stream).await;
    assert_eq!(n(&got), 41);
    got.ack().await.unwrap();
    // Reading on (nothing more of its topic) takes it past the busy events to the head.
    quiet(&mut stream).await;
    assert_eq!(outbox.position("rare").await.unwrap(), 60);
    drop(stream);
    let pruned = outbox.prune(confab_core::now_ms() + 1_000).await.unwrap();
    assert_eq!(pruned, 60, "no event is held back for the rare consumer");
    // A new event of its topic still reaches it, after a restart too.
    publish(&outbox, &format!("{rare}x"), 61).await;
    let mut stream = outbox.consume("rare", &rare).await.unwrap();
    assert_eq!(n(&next(&mut stream).await), 61);
}

pub async fn a_batch_is_published_in_order_and_acked_at_once(f: Fixture<dyn DurableEvents>) {
    let events = f.port;
    let p = prefix("batch");
    let name = consumer("batch");
    events.publish_all(Vec::new()).await.unwrap();
    publish(&*events, &format!("{p}a"), 0).await;
    // Two topics interleaved, 300 events: more than one read of the SQL adapter.
    let batch: Vec<Envelope> = (1..=300)
        .map(|i| {
            let topic = if i % 3 == 0 { "b" } else { "a" };
            Envelope::new(format!("{p}{topic}"), "test.event", json!({ "n": i }))
        })
        .collect();
    events.publish_all(batch).await.unwrap();
    publish(&*events, &format!("{p}a"), 301).await;
    {
        let mut stream = events.consume(&name, &format!("{p}a")).await.unwrap();
        let mut got = Vec::new();
        let mut deliveries = Vec::new();
        let mut last_seq = 0;
        for _ in 0..150 {
            let d = next(&mut stream).await;
            assert!(d.seq > last_seq, "sequence numbers increase");
            last_seq = d.seq;
            got.push(n(&d));
            deliveries.push(d);
        }
        assert_eq!(got, topic_a(150), "topic a's events, in publishing order");
        ack_all(deliveries).await.unwrap();
        ack_all(Vec::new()).await.unwrap();
    }
    let mut stream = events.consume(&name, &format!("{p}a")).await.unwrap();
    let d = next(&mut stream).await;
    assert_eq!(
        n(&d),
        topic_a(151)[150],
        "what ack_all acknowledged does not come again"
    );
}

/// The first `count` numbers of topic a in the batch case.
fn topic_a(count: usize) -> Vec<i64> {
    (0..=301)
        .filter(|i| *i == 0 || *i == 301 || i % 3 != 0)
        .take(count)
        .collect()
}
