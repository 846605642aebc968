//! The NATS adapters of split mode: [`NatsBus`] carries live events over core NATS, so every
//! replica's subscribers receive what any replica publishes, and [`NatsDurable`] keeps durable
//! events in a JetStream stream read through durable pull consumers.
//!
//! Topics become subjects under a root (`confab.events.<topic>` for live events,
//! `confab.durable.<topic>` for durable ones). Topics are already dot-separated (`user.<id>`),
//! so each dot-separated token is kept as it is when it consists of ASCII letters, digits, `-`
//! and `_`, and every other byte is escaped as `%XX` (an empty token becomes `%`): the mapping
//! is one-to-one and never produces the wildcards `*` and `>` or whitespace.

use std::future::IntoFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use async_nats::jetstream;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::context::ConsumerInfoErrorKind;
use async_nats::jetstream::stream::{RetentionPolicy, StorageType};
use async_nats::{Client, ConnectOptions, Event, RequestErrorKind, Subscriber};
use async_trait::async_trait;
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use tokio::sync::watch;

use crate::{BusError, Delivery, DurableEvents, Envelope, EventBus, Received};

/// The subject root of live events.
const EVENTS_ROOT: &str = "confab.events";

pub(crate) fn unavailable(error: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(error.to_string())
}

/// Appends one topic token to a subject, escaped (see the module documentation).
fn push_token(subject: &mut String, token: &str) {
    if token.is_empty() {
        subject.push('%');
        return;
    }
    for byte in token.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            subject.push(char::from(byte));
        } else {
            subject.push_str(&format!("%{byte:02X}"));
        }
    }
}

/// The subject of `topic` under `root`: `root.<escaped tokens of topic>`.
pub(crate) fn subject_for(root: &str, topic: &str) -> String {
    let mut subject = String::with_capacity(root.len() + topic.len() + 8);
    subject.push_str(root);
    for token in topic.split('.') {
        subject.push('.');
        push_token(&mut subject, token);
    }
    subject
}

/// A name for JetStream (streams, consumers) made of `name`: ASCII letters, digits, `-` and
/// `_` are kept, every other byte becomes `~XX`, so distinct names stay distinct.
pub(crate) fn js_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("~{byte:02X}"));
        }
    }
    if out.is_empty() {
        out.push('~');
    }
    out
}

/// Waits for an answer from the server to a request sent now. The server handles a
/// connection's operations in order, so everything sent before was processed by then.
/// (`Client::flush` only writes out the client's buffer.) Nobody answers on a fresh inbox, so
/// the answer is the server's "no responders".
pub(crate) async fn round_trip(client: &Client) -> Result<(), BusError> {
    match client
        .request(client.new_inbox(), Vec::<u8>::new().into())
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == RequestErrorKind::NoResponders => Ok(()),
        Err(e) => Err(unavailable(e)),
    }
}

/// Connects with the options every Confab client uses; `on_event` sees the connection's
/// events (reconnections, slow consumers).
async fn connect_client(
    url: &str,
    on_event: impl Fn(Event) + Send + Sync + 'static,
) -> Result<Client, BusError> {
    let on_event = Arc::new(on_event);
    ConnectOptions::new()
        .name("confab")
        .connection_timeout(Duration::from_secs(5))
        .event_callback(move |event| {
            let on_event = Arc::clone(&on_event);
            async move { on_event(event) }
        })
        .connect(url)
        .await
        .map_err(|e| BusError::Unavailable(format!("connecting to NATS at {url}: {e}")))
}

/// [`EventBus`] over core NATS: a topic is a subject, `publish` is a NATS publish and each
/// `subscribe` is a NATS subscription, so events reach the subscribers of every process
/// connected to the same NATS server or cluster.
///
/// Delivery is at-most-once, like the in-process bus. When a subscriber may have missed
/// events it receives `Received::Lagged(0)` (zero: the number is unknown) and should
/// resynchronise from the API. That happens after the connection to NATS dropped and came
/// back (the client reconnects and resubscribes by itself; what was published meanwhile is
/// lost), and when NATS reports a slow consumer on this connection (a subscription's buffer
/// of 65,536 messages overflowed; NATS names the subscription only by an internal id, so every
/// subscriber of the connection is told, which costs a spare resync at worst).
#[derive(Clone)]
pub struct NatsBus {
    client: Client,
    /// Counts the moments when subscribers may have missed events.
    gaps: watch::Receiver<u64>,
}

impl NatsBus {
    /// Connects to the NATS server at `url` (`nats://host:4222`; several, comma-separated,
    /// for a cluster). Fails when no server answers; after that, lost connections are
    /// re-established in the background.
    pub async fn connect(url: &str) -> Result<Self, BusError> {
        let (gap_sender, gaps) = watch::channel(0_u64);
        let disconnected = AtomicBool::new(false);
        let client = connect_client(url, move |event| match event {
            Event::Disconnected => disconnected.store(true, Ordering::SeqCst),
            // The first `Connected` is the initial connection, not a gap.
            Event::Connected if disconnected.swap(false, Ordering::SeqCst) => {
                gap_sender.send_modify(|n| *n += 1);
            }
            Event::SlowConsumer(_) => gap_sender.send_modify(|n| *n += 1),
            _ => {}
        })
        .await?;
        Ok(Self { client, gaps })
    }

    /// The connection, to share with [`NatsDurable::new`] and
    /// [`crate::NatsJobQueue::new`] (one connection per process is enough).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Whether the connection to the server is up now (`confab_nats_up`).
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Waits until the server has processed everything this connection sent so far:
    /// publications, and subscriptions made with [`EventBus::subscribe`] (they are sent when
    /// `subscribe` returns). A subscription is certain to see another connection's next
    /// publication only after this.
    pub async fn flush(&self) -> Result<(), BusError> {
        round_trip(&self.client).await
    }
}

impl std::fmt::Debug for NatsBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsBus")
            .field("state", &self.client.connection_state())
            .finish_non_exhaustive()
    }
}

/// Where a subscription stands.
enum Subscription {
    /// Its subscribe command could not be queued at once (the client's queue was full).
    Starting {
        subscribing: BoxFuture<'static, Result<Subscriber, async_nats::SubscribeError>>,
        live: LiveParts,
    },
    Live(Box<Live>),
}

/// What a subscription stream needs besides the NATS subscriber.
struct LiveParts {
    client: Client,
    gaps: watch::Receiver<u64>,
}

struct Live {
    subscriber: Subscriber,
    parts: LiveParts,
    /// False once the gap counter's sender is gone (the client closed).
    watch_gaps: bool,
}

impl Live {
    async fn next(mut self: Box<Self>) -> Option<(Received, Subscription)> {
        loop {
            tokio::select! {
                changed = self.parts.gaps.changed(), if self.watch_gaps => {
                    if changed.is_err() {
                        self.watch_gaps = false;
                        continue;
                    }
                    self.parts.gaps.mark_unchanged();
                    // The resubscription after a reconnect is queued before this round trip,
                    // so once it returns the server routes new events to us again: the
                    // subscriber's resync cannot miss what follows it.
                    let _ = round_trip(&self.parts.client).await;
                    return Some((Received::Lagged(0), Subscription::Live(self)));
                }
                message = self.subscriber.next() => {
                    let message = message?;
                    // Anything else on our subjects is not ours to interpret: skip it.
                    if let Ok(event) = serde_json::from_slice::<Envelope>(&message.payload) {
                        return Some((Received::Event(event), Subscription::Live(self)));
                    }
                }
            }
        }
    }
}

#[async_trait]
impl EventBus for NatsBus {
    async fn publish(&self, event: Envelope) -> Result<(), BusError> {
        let payload = serde_json::to_vec(&event).map_err(unavailable)?;
        self.client
            .publish(subject_for(EVENTS_ROOT, &event.topic), payload.into())
            .await
            .map_err(unavailable)
    }

    fn subscribe(&self, topic: &str) -> BoxStream<'static, Received> {
        let subject = subject_for(EVENTS_ROOT, topic);
        let client = self.client.clone();
        let mut gaps = self.gaps.clone();
        gaps.mark_unchanged();
        let mut subscribing: BoxFuture<'static, _> = {
            let client = client.clone();
            Box::pin(async move { client.subscribe(subject).await })
        };
        // Queue the subscribe command now rather than at the first poll, so that an event
        // this process publishes after `subscribe` returns reaches the new subscriber. The
        // future only sends on the client's command channel, which is ready unless full.
        let parts = LiveParts { client, gaps };
        let start = match subscribing
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(Ok(subscriber)) => Some(Subscription::Live(Box::new(Live {
                subscriber,
                parts,
                watch_gaps: true,
            }))),
            // The client is closed or the subject invalid: an ended stream.
            Poll::Ready(Err(_)) => None,
            Poll::Pending => Some(Subscription::Starting {
                subscribing,
                live: parts,
            }),
        };
        futures::stream::unfold(start, |state| async move {
            let live = match state? {
                Subscription::Live(live) => live,
                Subscription::Starting { subscribing, live } => Box::new(Live {
                    subscriber: subscribing.await.ok()?,
                    parts: live,
                    watch_gaps: true,
                }),
            };
            let (received, next) = live.next().await?;
            Some((received, Some(next)))
        })
        .boxed()
    }
}

/// Settings of [`NatsDurable`].
#[derive(Debug, Clone, PartialEq)]
pub struct NatsDurableConfig {
    /// The JetStream stream holding the events.
    pub stream: String,
    /// Events of topic `t` are stored on subject `<subject_root>.<t>`.
    pub subject_root: String,
    /// How long events are kept, acknowledged or not (limits retention).
    pub max_age: Duration,
    /// How long a delivered event may stay unacknowledged before it is delivered again.
    pub ack_wait: Duration,
}

impl Default for NatsDurableConfig {
    fn default() -> Self {
        Self {
            stream: "CONFAB_EVENTS".to_owned(),
            subject_root: "confab.durable".to_owned(),
            max_age: Duration::from_secs(7 * 24 * 3600),
            ack_wait: Duration::from_secs(30),
        }
    }
}

/// [`DurableEvents`] over JetStream: one stream (`CONFAB_EVENTS`, subjects
/// `confab.durable.>`, file storage, kept `max_age`) and one durable pull consumer per
/// consumer name, filtered to the consumer's topic prefix, with explicit acknowledgements.
/// [`Delivery::seq`] is the stream sequence; an acknowledgement is confirmed by the server
/// before `ack` returns (a double ack), so an acknowledged event is not delivered again.
///
/// JetStream filters by whole subject tokens, so a prefix that ends inside a token (`usage`
/// rather than `usage.`) is filtered by the tokens before it, and the rest in this process:
/// events of other topics are acknowledged and skipped.
///
/// Restarts: JetStream would redeliver the events a stopped reader left unacknowledged
/// only after `ack_wait`, and out of order with newer ones. So when [`DurableEvents::consume`]
/// finds its consumer with unacknowledged events and no reader waiting on it, it recreates
/// the consumer at its acknowledgement floor: the stream resumes, in order, right after the
/// last event below which everything was acknowledged (an event acknowledged above the floor
/// may come again: delivery is at-least-once anyway).
#[derive(Clone)]
pub struct NatsDurable {
    context: jetstream::Context,
    stream: jetstream::stream::Stream,
    config: NatsDurableConfig,
}

impl std::fmt::Debug for NatsDurable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsDurable")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl NatsDurable {
    /// Connects to NATS at `url` and sets up the stream with the default settings.
    pub async fn connect(url: &str) -> Result<Self, BusError> {
        let client = connect_client(url, |_| {}).await?;
        Self::new(client, NatsDurableConfig::default()).await
    }

    /// Sets up the stream on an existing connection (creating it, or updating its settings).
    pub async fn new(client: Client, config: NatsDurableConfig) -> Result<Self, BusError> {
        let context = jetstream::new(client);
        let stream_config = jetstream::stream::Config {
            name: config.stream.clone(),
            subjects: vec![format!("{}.>", config.subject_root)],
            storage: StorageType::File,
            retention: RetentionPolicy::Limits,
            max_age: config.max_age,
            description: Some("Confab durable events".to_owned()),
            ..Default::default()
        };
        context
            .create_or_update_stream(stream_config)
            .await
            .map_err(|e| {
                BusError::Unavailable(format!("JetStream stream {}: {e}", config.stream))
            })?;
        let stream = context
            .get_stream(&config.stream)
            .await
            .map_err(unavailable)?;
        Ok(Self {
            context,
            stream,
            config,
        })
    }

    /// The filter subject for a topic prefix: the prefix's complete tokens, then `>`.
    fn filter_for(&self, topic_prefix: &str) -> String {
        match topic_prefix.rsplit_once('.') {
            Some((complete, _)) => {
                format!("{}.>", subject_for(&self.config.subject_root, complete))
            }
            None => format!("{}.>", self.config.subject_root),
        }
    }

    /// The durable consumer `name` with `filter`, created when missing and recreated at its
    /// acknowledgement floor when a previous reader left events unacknowledged.
    async fn consumer(
        &self,
        name: &str,
        filter: &str,
    ) -> Result<jetstream::consumer::PullConsumer, BusError> {
        let mut config = pull::Config {
            durable_name: Some(name.to_owned()),
            filter_subject: filter.to_owned(),
            ack_policy: AckPolicy::Explicit,
            deliver_policy: DeliverPolicy::All,
            ack_wait: self.config.ack_wait,
            ..Default::default()
        };
        match self.stream.consumer_info(name).await {
            Ok(info) => {
                if info.config.filter_subject != filter {
                    return Err(BusError::Unavailable(format!(
                        "durable consumer {name} exists for another topic prefix \
                         (subject {}, not {filter})",
                        info.config.filter_subject
                    )));
                }
                if info.num_ack_pending > 0 && info.num_waiting == 0 {
                    self.stream
                        .delete_consumer(name)
                        .await
                        .map_err(unavailable)?;
                    config.deliver_policy = DeliverPolicy::ByStartSequence {
                        start_sequence: info.ack_floor.stream_sequence + 1,
                    };
                    return self
                        .stream
                        .create_consumer(config)
                        .await
                        .map_err(unavailable);
                }
                self.stream.get_consumer(name).await.map_err(unavailable)
            }
            Err(e) if e.kind() == ConsumerInfoErrorKind::NotFound => self
                .stream
                .create_consumer(config)
                .await
                .map_err(unavailable),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// The JetStream context, for tests and tools.
    pub fn context(&self) -> &jetstream::Context {
        &self.context
    }

    /// The settings it runs with.
    pub fn config(&self) -> &NatsDurableConfig {
        &self.config
    }
}

/// Turns one JetStream message into a delivery, or `None` when it is not for this consumer
/// (acknowledged, or terminated when it is not an event at all).
async fn delivery(
    message: jetstream::Message,
    topic_prefix: &str,
) -> Option<Result<Delivery, BusError>> {
    let seq = match message.info() {
        Ok(info) => info.stream_sequence,
        Err(e) => return Some(Err(unavailable(e))),
    };
    let event = match serde_json::from_slice::<Envelope>(&message.payload) {
        Ok(event) => event,
        Err(_) => {
            // Not an event: delivering it again would not help.
            let _ = message.ack_with(jetstream::AckKind::Term).await;
            return None;
        }
    };
    if !event.topic.starts_with(topic_prefix) {
        return match message.double_ack().await {
            Ok(()) => None,
            Err(e) => Some(Err(unavailable(e))),
        };
    }
    Some(Ok(Delivery::new(event, seq, move || {
        Box::pin(async move { message.double_ack().await.map_err(unavailable) })
    })))
}

#[async_trait]
impl DurableEvents for NatsDurable {
    async fn publish(&self, event: Envelope) -> Result<(), BusError> {
        let payload = serde_json::to_vec(&event).map_err(unavailable)?;
        let subject = subject_for(&self.config.subject_root, &event.topic);
        self.context
            .publish(subject, payload.into())
            .await
            .map_err(unavailable)?
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Sends the whole batch, then waits for the stream's acknowledgements together: one
    /// round trip for the batch instead of one per event. One connection keeps the order.
    async fn publish_all(&self, events: Vec<Envelope>) -> Result<(), BusError> {
        let mut acks = Vec::with_capacity(events.len());
        for event in &events {
            let payload = serde_json::to_vec(event).map_err(unavailable)?;
            let subject = subject_for(&self.config.subject_root, &event.topic);
            acks.push(
                self.context
                    .publish(subject, payload.into())
                    .await
                    .map_err(unavailable)?
                    .into_future(),
            );
        }
        futures::future::try_join_all(acks)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn consume(
        &self,
        consumer: &str,
        topic_prefix: &str,
    ) -> Result<BoxStream<'static, Result<Delivery, BusError>>, BusError> {
        let name = js_name(consumer);
        let filter = self.filter_for(topic_prefix);
        let consumer = self.consumer(&name, &filter).await?;
        let messages = consumer.messages().await.map_err(unavailable)?;
        let prefix: Arc<str> = Arc::from(topic_prefix);
        Ok(messages
            .filter_map(move |item| {
                let prefix = Arc::clone(&prefix);
                async move {
                    match item {
                        Ok(message) => delivery(message, &prefix).await,
                        Err(e) => Some(Err(unavailable(e))),
                    }
                }
            })
            .boxed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_escape_what_nats_reserves() {
        assert_eq!(
            subject_for("confab.events", "user.0192f0c1-aaaa"),
            "confab.events.user.0192f0c1-aaaa"
        );
        assert_eq!(subject_for("r", "jobs"), "r.jobs");
        assert_eq!(subject_for("r", "a b.*.>"), "r.a%20b.%2A.%3E");
        assert_eq!(subject_for("r", ""), "r.%");
        assert_eq!(subject_for("r", "a..b."), "r.a.%.b.%");
        // `%` itself is escaped, so an escaped topic cannot collide with a literal one.
        assert_ne!(subject_for("r", "%20"), subject_for("r", " "));
        assert_eq!(subject_for("r", "é"), "r.%C3%A9");
    }

    #[test]
    fn names_keep_to_what_jetstream_allows() {
        assert_eq!(js_name("usage_read-model"), "usage_read-model");
        assert_eq!(js_name("a.b c"), "a~2Eb~20c");
        assert_eq!(js_name(""), "~");
        assert_ne!(js_name("~2E"), js_name("."));
    }
}
