//! [`EventBus`] in one process: a broadcast channel that every subscriber reads, keeping
//! the events of its topic.

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::{BusError, Envelope, EventBus, Received};

#[derive(Debug, Clone)]
pub struct MemoryBus {
    sender: broadcast::Sender<Envelope>,
}

impl MemoryBus {
    /// `capacity`: events a subscriber may fall behind before it is told it lagged.
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(16));
        Self { sender }
    }
}

impl Default for MemoryBus {
    fn default() -> Self {
        Self::new(4096)
    }
}

#[async_trait]
impl EventBus for MemoryBus {
    async fn publish(&self, event: Envelope) -> Result<(), BusError> {
        // An error only means nobody listens now.
        let _ = self.sender.send(event);
        Ok(())
    }

    fn subscribe(&self, topic: &str) -> BoxStream<'static, Received> {
        let topic = topic.to_owned();
        BroadcastStream::new(self.sender.subscribe())
            .filter_map(move |item| {
                let keep = match item {
                    Ok(event) if event.topic == topic => Some(Received::Event(event)),
                    Ok(_) => None,
                    Err(BroadcastStreamRecvError::Lagged(n)) => Some(Received::Lagged(n)),
                };
                futures::future::ready(keep)
            })
            .boxed()
    }
}

#[cfg(test)]
mod tests {
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
}
