//! The NATS adapters against a real server: the live bus across connections (as two replicas
//! would use it) and JetStream durable events. Each test runs when `TEST_NATS_URL` names a
//! server with JetStream (`scripts/test.sh` starts one) and passes with a note otherwise.

use std::sync::Arc;
use std::time::Duration;

use confab_bus::{
    BusError, Delivery, DurableEvents, Envelope, EventBus, JobQueue, JobState, NatsBus,
    NatsDurable, NatsDurableConfig, NatsJobQueue, NatsJobsConfig, NewJob, Received,
};
use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::json;
use uuid::Uuid;

use crate::{Fixture, Make};

/// The server under test, or `None` (after a note) when none was given.
#[expect(
    clippy::print_stderr,
    reason = "the note says why a test passed without running"
)]
pub(crate) fn nats_url(test: &str) -> Option<String> {
    match std::env::var("TEST_NATS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("{test}: skipped, TEST_NATS_URL is not set (scripts/test.sh starts NATS)");
            None
        }
    }
}

/// A topic no other test uses.
fn fresh_topic(name: &str) -> String {
    format!("{name}.{}", Uuid::now_v7())
}

const WAIT: Duration = Duration::from_secs(5);

async fn next_event(stream: &mut BoxStream<'static, Received>) -> Envelope {
    match tokio::time::timeout(WAIT, stream.next()).await {
        Ok(Some(Received::Event(event))) => event,
        other => panic!("expected an event, got {other:?}"),
    }
}

/// Nothing more arrives within a short while.
async fn quiet(stream: &mut BoxStream<'static, Received>) {
    if let Ok(item) = tokio::time::timeout(Duration::from_millis(300), stream.next()).await {
        panic!("expected nothing, got {item:?}");
    }
}

#[tokio::test]
async fn nats_bus_delivers_to_subscribers_on_other_connections() {
    let Some(url) = nats_url("nats_bus_delivers_to_subscribers_on_other_connections") else {
        return;
    };
    let publisher = NatsBus::connect(&url).await.unwrap();
    let first = NatsBus::connect(&url).await.unwrap();
    let second = NatsBus::connect(&url).await.unwrap();
    let topic = fresh_topic("user");
    let mut a = first.subscribe(&topic);
    let mut b = second.subscribe(&topic);
    first.flush().await.unwrap();
    second.flush().await.unwrap();

    for i in 0..3 {
        publisher
            .publish(Envelope::new(&topic, "message.delta", json!({ "i": i })))
            .await
            .unwrap();
    }
    for stream in [&mut a, &mut b] {
        for i in 0..3 {
            let event = next_event(stream).await;
            assert_eq!(
                (event.topic.as_str(), event.kind.as_str(), &event.data),
                (topic.as_str(), "message.delta", &json!({ "i": i }))
            );
        }
    }
}

#[tokio::test]
async fn nats_bus_keeps_topics_apart() {
    let Some(url) = nats_url("nats_bus_keeps_topics_apart") else {
        return;
    };
    let bus = NatsBus::connect(&url).await.unwrap();
    let mine = fresh_topic("user");
    // Topics that differ only in characters NATS reserves must not meet either.
    let base = fresh_topic("odd");
    let star = format!("{base}.*");
    let spaced = format!("{base}.a b");
    let mut mine_stream = bus.subscribe(&mine);
    let mut star_stream = bus.subscribe(&star);
    let mut spaced_stream = bus.subscribe(&spaced);

    bus.publish(Envelope::new(fresh_topic("user"), "other", json!(0)))
        .await
        .unwrap();
    bus.publish(Envelope::new(format!("{base}.x"), "x", json!(1)))
        .await
        .unwrap();
    bus.publish(Envelope::new(&spaced, "spaced", json!(2)))
        .await
        .unwrap();
    bus.publish(Envelope::new(&mine, "mine", json!(3)))
        .await
        .unwrap();
    bus.publish(Envelope::new(&star, "star", json!(4)))
        .await
        .unwrap();

    assert_eq!(next_event(&mut mine_stream).await.kind, "mine");
    assert_eq!(next_event(&mut spaced_stream).await.kind, "spaced");
    assert_eq!(next_event(&mut star_stream).await.kind, "star");
    quiet(&mut mine_stream).await;
    quiet(&mut spaced_stream).await;
    quiet(&mut star_stream).await;
}

#[tokio::test]
async fn nats_bus_subscription_is_live_when_subscribe_returns() {
    let Some(url) = nats_url("nats_bus_subscription_is_live_when_subscribe_returns") else {
        return;
    };
    let bus = NatsBus::connect(&url).await.unwrap();
    let topic = fresh_topic("user");
    // No flush and no poll between subscribing and publishing on the same connection.
    let mut events = bus.subscribe(&topic);
    bus.publish(Envelope::new(&topic, "first", json!(null)))
        .await
        .unwrap();
    assert_eq!(next_event(&mut events).await.kind, "first");
    // Dropping the stream unsubscribes; the connection goes on serving others.
    drop(events);
    let mut again = bus.subscribe(&topic);
    bus.publish(Envelope::new(&topic, "second", json!(null)))
        .await
        .unwrap();
    assert_eq!(next_event(&mut again).await.kind, "second");
}

/// A NATS server of this test's own (core NATS only), to stop and start again.
struct OwnServer {
    binary: String,
    port: u16,
    child: Option<tokio::process::Child>,
}

impl OwnServer {
    /// Starts `nats-server` on a free port; `None` when the binary is not found.
    async fn start() -> Option<Self> {
        let binary = [
            "nats-server",
            "/usr/sbin/nats-server",
            "/usr/local/bin/nats-server",
        ]
        .into_iter()
        .find(|candidate| {
            std::process::Command::new(candidate)
                .arg("--version")
                .output()
                .is_ok_and(|out| out.status.success())
        })?
        .to_owned();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = Self {
            binary,
            port,
            child: None,
        };
        server.run().await;
        Some(server)
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the process and waits until it accepts connections.
    async fn run(&mut self) {
        let child = tokio::process::Command::new(&self.binary)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "nats-server did not start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }
}

#[tokio::test]
async fn nats_bus_tells_subscribers_to_resync_after_a_reconnect() {
    if nats_url("nats_bus_tells_subscribers_to_resync_after_a_reconnect").is_none() {
        return;
    }
    let Some(mut server) = OwnServer::start().await else {
        panic!("nats-server not found although TEST_NATS_URL is set");
    };
    let bus = NatsBus::connect(&server.url()).await.unwrap();
    let topic = fresh_topic("user");
    let mut events = bus.subscribe(&topic);
    bus.publish(Envelope::new(&topic, "before", json!(null)))
        .await
        .unwrap();
    assert_eq!(next_event(&mut events).await.kind, "before");

    server.stop().await;
    server.run().await;
    // After the client reconnects and resubscribes, the subscriber hears that it may have
    // missed events; then events flow again.
    match tokio::time::timeout(Duration::from_secs(15), events.next()).await {
        Ok(Some(Received::Lagged(0))) => {}
        other => panic!("expected Lagged(0), got {other:?}"),
    }
    let other = NatsBus::connect(&server.url()).await.unwrap();
    other
        .publish(Envelope::new(&topic, "after", json!(null)))
        .await
        .unwrap();
    assert_eq!(next_event(&mut events).await.kind, "after");
    server.stop().await;
}

/// A stream of its own (name and subjects) for one test, deleted at the end.
struct DurableFixture {
    durable: NatsDurable,
}

impl DurableFixture {
    async fn new(url: &str) -> Self {
        let id = Uuid::now_v7().simple().to_string();
        let config = NatsDurableConfig {
            stream: format!("TEST_EVENTS_{id}"),
            subject_root: format!("test.durable.{id}"),
            ack_wait: Duration::from_secs(30),
            ..NatsDurableConfig::default()
        };
        let client = async_nats::connect(url).await.unwrap();
        Self {
            durable: NatsDurable::new(client, config).await.unwrap(),
        }
    }

    async fn cleanup(self) {
        let stream = self.durable.config().stream.clone();
        let _ = self.durable.context().delete_stream(stream).await;
    }
}

async fn next_delivery(stream: &mut BoxStream<'static, Result<Delivery, BusError>>) -> Delivery {
    match tokio::time::timeout(WAIT, stream.next()).await {
        Ok(Some(Ok(delivery))) => delivery,
        Ok(Some(Err(e))) => panic!("consume failed: {e}"),
        Ok(None) => panic!("the stream ended"),
        Err(_) => panic!("no delivery within {WAIT:?}"),
    }
}

#[tokio::test]
async fn nats_durable_resumes_right_after_the_last_ack_in_order() {
    let Some(url) = nats_url("nats_durable_resumes_right_after_the_last_ack_in_order") else {
        return;
    };
    let fixture = DurableFixture::new(&url).await;
    let durable = &fixture.durable;
    for i in 0..5 {
        durable
            .publish(Envelope::new(format!("usage.{i}"), "usage", json!(i)))
            .await
            .unwrap();
    }
    let mut first = durable.consume("usage.read-model", "usage.").await.unwrap();
    let mut seqs = Vec::new();
    for i in 0..3 {
        let delivery = next_delivery(&mut first).await;
        assert_eq!(delivery.event.data, json!(i));
        seqs.push(delivery.seq);
        if i < 2 {
            delivery.ack().await.unwrap();
        }
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    drop(first);

    // The unacknowledged third event comes again at once (not after the 30 s ack wait),
    // followed by the rest, in order.
    let mut second = durable.consume("usage.read-model", "usage.").await.unwrap();
    for i in 2..5 {
        let delivery = next_delivery(&mut second).await;
        assert_eq!(delivery.event.data, json!(i));
        if i == 2 {
            assert_eq!(delivery.seq, seqs[2]);
        }
        delivery.ack().await.unwrap();
    }
    drop(second);

    // Everything is acknowledged: a new reader waits for new events only.
    let mut third = durable.consume("usage.read-model", "usage.").await.unwrap();
    durable
        .publish(Envelope::new("usage.5", "usage", json!(5)))
        .await
        .unwrap();
    assert_eq!(next_delivery(&mut third).await.event.data, json!(5));
    drop(third);
    fixture.cleanup().await;
}

#[tokio::test]
async fn nats_durable_filters_prefixes_that_end_inside_a_token() {
    let Some(url) = nats_url("nats_durable_filters_prefixes_that_end_inside_a_token") else {
        return;
    };
    let fixture = DurableFixture::new(&url).await;
    let durable = &fixture.durable;
    for topic in [
        "usage",
        "other.1",
        "usage.x",
        "usagefoo",
        "use",
        "usage.y.z",
    ] {
        durable
            .publish(Envelope::new(topic, "t", json!(topic)))
            .await
            .unwrap();
    }
    let mut loose = durable.consume("loose", "usage").await.unwrap();
    for topic in ["usage", "usage.x", "usagefoo", "usage.y.z"] {
        let delivery = next_delivery(&mut loose).await;
        assert_eq!(delivery.event.topic, topic);
        delivery.ack().await.unwrap();
    }
    let mut dotted = durable.consume("dotted", "usage.").await.unwrap();
    for topic in ["usage.x", "usage.y.z"] {
        let delivery = next_delivery(&mut dotted).await;
        assert_eq!(delivery.event.topic, topic);
        delivery.ack().await.unwrap();
    }
    let mut everything = durable.consume("all of it", "").await.unwrap();
    for _ in 0..6 {
        next_delivery(&mut everything).await.ack().await.unwrap();
    }
    // A consumer name is bound to its prefix.
    assert!(durable.consume("dotted", "other.").await.is_err());
    drop((loose, dotted, everything));
    fixture.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_durable_passes_the_durable_events_contract() {
    let Some(url) = nats_url("nats_durable_passes_the_durable_events_contract") else {
        return;
    };
    // One stream for every case: each case uses topics and consumer names of its own.
    let fixture = DurableFixture::new(&url).await;
    let durable: Arc<dyn DurableEvents> = Arc::new(fixture.durable.clone());
    let make: Make<dyn DurableEvents> = Arc::new(move || {
        let port = Arc::clone(&durable);
        Box::pin(async move {
            Ok(Fixture {
                port,
                guard: Box::new(()),
            })
        })
    });
    crate::events::durable_events_contract(make).await;
    fixture.cleanup().await;
}

/// A job queue with a stream and bucket of its own, deleted by [`cleanup_jobs`].
async fn job_queue(url: &str) -> NatsJobQueue {
    let id = Uuid::now_v7().simple().to_string();
    let config = NatsJobsConfig {
        stream: format!("TEST_JOBS_{id}"),
        subject_root: format!("test.jobs.{id}"),
        bucket: format!("test_jobs_{id}"),
        ..NatsJobsConfig::default()
    };
    let client = async_nats::connect(url).await.unwrap();
    NatsJobQueue::new(client, config).await.unwrap()
}

async fn cleanup_jobs(queue: &NatsJobQueue) {
    let context = queue.context();
    let _ = context.delete_stream(&queue.config().stream).await;
    let _ = context.delete_key_value(&queue.config().bucket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_job_queue_passes_the_job_queue_contract() {
    let Some(url) = nats_url("nats_job_queue_passes_the_job_queue_contract") else {
        return;
    };
    // One stream and bucket for every case: each case uses job kinds of its own.
    let queue = job_queue(&url).await;
    let port: Arc<dyn JobQueue> = Arc::new(queue.clone());
    let make: Make<dyn JobQueue> = Arc::new(move || {
        let port = Arc::clone(&port);
        Box::pin(async move {
            Ok(Fixture {
                port,
                guard: Box::new(()),
            })
        })
    });
    crate::jobs::job_queue_contract(make).await;
    cleanup_jobs(&queue).await;
}

/// How many dispatches the queue's work-queue stream holds.
async fn dispatches(queue: &NatsJobQueue) -> u64 {
    let mut stream = queue
        .context()
        .get_stream(&queue.config().stream)
        .await
        .unwrap();
    stream.info().await.unwrap().state.messages
}

/// Waits (up to 5 s) until the stream holds `expected` dispatches: the server removes an
/// acknowledged message from a work-queue stream asynchronously.
async fn assert_dispatches(queue: &NatsJobQueue, expected: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let held = dispatches(queue).await;
        if held == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stream holds {held} dispatches, expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn nats_job_queue_leaves_no_dispatch_behind() {
    let Some(url) = nats_url("nats_job_queue_leaves_no_dispatch_behind") else {
        return;
    };
    let queue = job_queue(&url).await;
    let long = Duration::from_secs(60);
    let id = queue
        .enqueue(NewJob::new("pull", json!(1)).max_attempts(3))
        .await
        .unwrap()
        .id;
    assert_dispatches(&queue, 1).await;

    // A retried attempt swaps the lease's dispatch for a fresh one.
    let lease = queue.lease(&["pull"], "w", long).await.unwrap().unwrap();
    queue
        .fail(&lease, "flaky", true, Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    assert_dispatches(&queue, 1).await;

    // Success removes it.
    let lease = queue.lease(&["pull"], "w", long).await.unwrap().unwrap();
    assert_eq!((lease.job.id, lease.job.attempts), (id, 2));
    assert!(queue.complete(&lease, json!("ok")).await.unwrap());
    assert_dispatches(&queue, 0).await;

    // A cancelled queued job's dispatch goes when a worker next looks.
    let id = queue
        .enqueue(NewJob::new("pull", json!(2)))
        .await
        .unwrap()
        .id;
    queue.cancel(id).await.unwrap();
    assert!(queue.lease(&["pull"], "w", long).await.unwrap().is_none());
    assert_dispatches(&queue, 0).await;

    // A retried job runs again from a dispatch of its own.
    queue.retry(id).await.unwrap();
    let lease = queue.lease(&["pull"], "w", long).await.unwrap().unwrap();
    assert_eq!(lease.job.id, id);
    assert!(queue.cancelled(&lease).await.unwrap());
    assert_dispatches(&queue, 0).await;
    cleanup_jobs(&queue).await;
}

#[tokio::test]
async fn nats_job_queue_survives_a_worker_that_vanished_mid_lease() {
    let Some(url) = nats_url("nats_job_queue_survives_a_worker_that_vanished_mid_lease") else {
        return;
    };
    // Two processes' queues over the same stream and bucket; the first one's worker dies
    // holding a lease (nothing more is heard from it).
    let first = job_queue(&url).await;
    let client = async_nats::connect(&url).await.unwrap();
    let second = NatsJobQueue::new(client, first.config().clone())
        .await
        .unwrap();
    let id = first
        .enqueue(NewJob::new("ingest", json!(null)).max_attempts(2))
        .await
        .unwrap()
        .id;
    let short = Duration::from_millis(300);
    let lost = first
        .lease(&["ingest"], "w1", short)
        .await
        .unwrap()
        .unwrap();
    drop(first);
    assert!(
        second
            .lease(&["ingest"], "w2", short)
            .await
            .unwrap()
            .is_none()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let retaken = second
        .lease(&["ingest"], "w2", short)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((retaken.job.id, retaken.job.attempts), (id, 2));
    assert_ne!(retaken.token, lost.token);
    // The second attempt's worker dies too: no attempts left, the job fails for good.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        second
            .lease(&["ingest"], "w3", short)
            .await
            .unwrap()
            .is_none()
    );
    let job = second.get(id).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.error.as_deref(), Some("lease expired after 2 attempts"));
    assert_dispatches(&second, 0).await;
    cleanup_jobs(&second).await;
}
