//! [`EventBus`] in one process: a broadcast channel per topic, so an event wakes only the
//! subscribers of its topic, each of which may fall behind by the channel's capacity before it
//! is told it lagged.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use parking_lot::Mutex;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::{BusError, Envelope, EventBus, Received};

#[derive(Debug, Clone)]
pub struct MemoryBus {
    inner: Arc<Topics>,
}

#[derive(Debug)]
struct Topics {
    /// Events a subscriber may fall behind, per topic.
    capacity: usize,
    channels: Mutex<Channels>,
}

#[derive(Debug, Default)]
struct Channels {
    by_topic: HashMap<String, broadcast::Sender<Envelope>>,
    /// Topics held when channels without subscribers are swept next (see `subscribe`).
    sweep_at: usize,
}

/// The fewest topics held before channels without subscribers are swept.
const SWEEP_MIN: usize = 64;

impl MemoryBus {
    /// `capacity`: events of one topic a subscriber may fall behind before it is told it
    /// lagged. Each topic with subscribers holds a buffer of that many events.
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Topics {
                capacity: capacity.max(16),
                channels: Mutex::new(Channels {
                    by_topic: HashMap::new(),
                    sweep_at: SWEEP_MIN,
                }),
            }),
        }
    }

    /// Topics that have a channel now (for tests: channels go when their subscribers do).
    pub fn topics(&self) -> usize {
        self.inner.channels.lock().by_topic.len()
    }
}

impl Default for MemoryBus {
    /// 1,024 events per topic: one user's answers streaming in several tabs stay far below it,
    /// and a topic's buffer is allocated only while it has subscribers.
    fn default() -> Self {
        Self::new(1024)
    }
}

#[async_trait]
impl EventBus for MemoryBus {
    async fn publish(&self, event: Envelope) -> Result<(), BusError> {
        let mut channels = self.inner.channels.lock();
        let Some(sender) = channels.by_topic.get(&event.topic) else {
            return Ok(());
        };
        if sender.receiver_count() == 0 {
            // Nobody listens any more: the topic's channel goes.
            channels.by_topic.remove(&event.topic);
        } else {
            // Sending fails only when nobody listens, checked above under the same lock.
            let _ = sender.send(event);
        }
        Ok(())
    }

    fn subscribe(&self, topic: &str) -> BoxStream<'static, Received> {
        let receiver = {
            let mut channels = self.inner.channels.lock();
            // Channels of topics nobody follows any more go in a sweep whenever the number of
            // topics doubled since the last one: amortised constant work per subscription.
            if channels.by_topic.len() >= channels.sweep_at {
                channels.by_topic.retain(|_, s| s.receiver_count() > 0);
                channels.sweep_at = (channels.by_topic.len() * 2).max(SWEEP_MIN);
            }
            let capacity = self.inner.capacity;
            channels
                .by_topic
                .entry(topic.to_owned())
                .or_insert_with(|| broadcast::channel(capacity).0)
                .subscribe()
        };
        BroadcastStream::new(receiver)
            .map(|item| match item {
                Ok(event) => Received::Event(event),
                Err(BroadcastStreamRecvError::Lagged(n)) => Received::Lagged(n),
            })
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll, Wake, Waker};

    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn subscribers_get_their_topic_and_hear_when_they_lag() {
        let bus = MemoryBus::new(16);
        let mut mine = bus.subscribe("user.a");
        bus.publish(Envelope::new("user.b", "x", json!(1)))
            .await
            .unwrap();
        bus.publish(Envelope::new("user.a", "y", json!(2)))
            .await
            .unwrap();
        match mine.next().await {
            Some(Received::Event(e)) => assert_eq!((e.kind.as_str(), e.data), ("y", json!(2))),
            other => panic!("{other:?}"),
        }
        for i in 0..40 {
            bus.publish(Envelope::new("user.a", "z", json!(i)))
                .await
                .unwrap();
        }
        assert!(matches!(mine.next().await, Some(Received::Lagged(n)) if n > 0));
    }

    /// Counts how often a task would have been woken.
    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// With one channel for every topic, each event woke every subscriber (which then threw
    /// it away): a socket per user meant every event woke every socket.
    #[tokio::test]
    async fn an_event_wakes_only_the_subscribers_of_its_topic() {
        let bus = MemoryBus::new(16);
        let mut other = bus.subscribe("user.b");
        let mut mine = bus.subscribe("user.a");
        let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(mine.poll_next_unpin(&mut cx).is_pending());
        for i in 0..100 {
            bus.publish(Envelope::new("user.b", "x", json!(i)))
                .await
                .unwrap();
        }
        assert_eq!(counter.0.load(Ordering::SeqCst), 0, "woken for user.b");
        // Nor did it fill this subscriber's buffer: nothing to skip, nothing lagged.
        assert!(mine.poll_next_unpin(&mut cx).is_pending());
        bus.publish(Envelope::new("user.a", "y", json!(1)))
            .await
            .unwrap();
        assert!(counter.0.load(Ordering::SeqCst) >= 1);
        match mine.poll_next_unpin(&mut cx) {
            Poll::Ready(Some(Received::Event(e))) => assert_eq!(e.kind, "y"),
            other => panic!("{other:?}"),
        }
        // The other subscriber lagged on its own topic, by itself.
        assert!(matches!(other.next().await, Some(Received::Lagged(n)) if n > 0));
    }

    #[tokio::test]
    async fn channels_go_with_their_subscribers() {
        let bus = MemoryBus::new(16);
        for i in 0..1_000 {
            drop(bus.subscribe(&format!("user.{i}")));
        }
        // Swept as the number of topics doubles: never far above what is followed.
        assert!(bus.topics() <= 2 * SWEEP_MIN, "{} topics", bus.topics());
        let mut kept = bus.subscribe("user.kept");
        let gone = bus.subscribe("user.gone");
        drop(gone);
        // Publishing to a topic nobody follows drops its channel at once.
        bus.publish(Envelope::new("user.gone", "x", json!(0)))
            .await
            .unwrap();
        bus.publish(Envelope::new("user.kept", "x", json!(1)))
            .await
            .unwrap();
        assert!(matches!(kept.next().await, Some(Received::Event(e)) if e.data == json!(1)));
    }
}
