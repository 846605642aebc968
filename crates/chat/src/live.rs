//! Answers being generated in this process: their text so far, a signal for every change, and
//! the switch that stops them. Any number of readers follow one answer from any offset
//! ([`follow`]); a reader that falls behind loses nothing (it reads from the shared text, not a
//! queue).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use confab_bus::{EventBus, Received, user_topic};

use confab_store::StoreError;
use futures::StreamExt;
use futures::stream::BoxStream;
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::domain::{Message, MessageStatus};
use crate::events::{MessageCompleted, MessageDelta};
use crate::ports::ChatStore;

/// The state of one answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub content: String,
    /// `Streaming` until the answer ends.
    pub status: MessageStatus,
    pub error: Option<String>,
}

/// One answer in progress.
#[derive(Debug)]
pub struct LiveAnswer {
    /// The owner: only their requests stop it.
    pub user: Uuid,
    state: watch::Sender<Snapshot>,
    pub cancel: CancellationToken,
    /// Set when the user asked to stop (rather than the process shutting down).
    stop_requested: Mutex<bool>,
}

impl LiveAnswer {
    pub fn append(&self, text: &str) {
        self.state.send_modify(|s| s.content.push_str(text));
    }

    pub fn end(&self, status: MessageStatus, error: Option<String>) {
        self.state.send_modify(|s| {
            s.status = status;
            s.error = error;
        });
    }

    pub fn snapshot(&self) -> Snapshot {
        self.state.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<Snapshot> {
        self.state.subscribe()
    }

    pub fn request_stop(&self) {
        *self.stop_requested.lock() = true;
        self.cancel.cancel();
    }

    pub fn stop_requested(&self) -> bool {
        *self.stop_requested.lock()
    }
}

/// Every answer this process is generating, by message id.
#[derive(Debug, Default)]
pub struct LiveAnswers {
    answers: Mutex<HashMap<Uuid, Arc<LiveAnswer>>>,
}

impl LiveAnswers {
    /// Registers an answer; `shutdown` cancels it too.
    pub fn start(&self, id: Uuid, user: Uuid, shutdown: &CancellationToken) -> Arc<LiveAnswer> {
        let (state, _) = watch::channel(Snapshot {
            content: String::new(),
            status: MessageStatus::Streaming,
            error: None,
        });
        let answer = Arc::new(LiveAnswer {
            user,
            state,
            cancel: shutdown.child_token(),
            stop_requested: Mutex::new(false),
        });
        self.answers.lock().insert(id, answer.clone());
        answer
    }

    pub fn get(&self, id: Uuid) -> Option<Arc<LiveAnswer>> {
        self.answers.lock().get(&id).cloned()
    }

    /// Forgets an answer once it is saved; readers holding it still see its last state.
    pub fn remove(&self, id: Uuid) {
        self.answers.lock().remove(&id);
    }

    pub fn len(&self) -> usize {
        self.answers.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The part of `text` after its first `offset` characters (Unicode scalar values), or `None`
/// when `text` is shorter than that.
pub fn after_chars(text: &str, offset: usize) -> Option<&str> {
    if offset == 0 {
        return Some(text);
    }
    match text.char_indices().nth(offset) {
        Some((byte, _)) => Some(&text[byte..]),
        None => (text.chars().count() == offset).then_some(""),
    }
}

/// What a reader of an answer receives.
#[derive(Debug, Clone, PartialEq)]
pub enum Follow {
    /// Text from character `offset` on.
    Delta { offset: usize, content: String },
    /// The answer ended; the message as saved.
    Done(Box<Message>),
}

/// Why an answer cannot be followed.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// The offset is past the text so far (`length` characters).
    #[error("the offset is past the answer's {length} characters so far")]
    Offset { length: usize },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The answer `message` (of `user`'s, as first read) from character `offset` on: while it is
/// `live`, its text as it grows and then its end; otherwise — finished, or left by a process
/// that died — the rest of its saved text and its end.
pub async fn follow(
    store: Arc<dyn ChatStore>,
    live: Option<Arc<LiveAnswer>>,
    user: Uuid,
    message: Message,
    offset: usize,
) -> Result<BoxStream<'static, Follow>, FollowError> {
    let (conversation_id, message_id) = (message.conversation_id, message.id);
    let Some(live) = live else {
        // The saved row is the whole story. Read it again: the answer may have ended since
        // the first read, and its row is saved before it stops being live.
        let message = store.message(user, conversation_id, message_id).await?;
        return finished(message, offset);
    };
    let snapshot = live.snapshot();
    if after_chars(&snapshot.content, offset).is_none() {
        return Err(FollowError::Offset {
            length: snapshot.content.chars().count(),
        });
    }
    let receiver = live.subscribe();
    let state = (receiver, offset, false);
    Ok(
        futures::stream::unfold(state, move |(mut receiver, mut sent, ended)| {
            let store = store.clone();
            let message = message.clone();
            async move {
                if ended {
                    return None;
                }
                loop {
                    let snapshot = receiver.borrow_and_update().clone();
                    let total = snapshot.content.chars().count();
                    let mut events = Vec::new();
                    if total > sent {
                        let rest = after_chars(&snapshot.content, sent).unwrap_or_default();
                        events.push(Follow::Delta {
                            offset: sent,
                            content: rest.to_owned(),
                        });
                        sent = total;
                    }
                    if snapshot.status.is_final() {
                        let message = store
                            .message(user, conversation_id, message_id)
                            .await
                            .ok()
                            .unwrap_or_else(|| Message {
                                content: snapshot.content.clone(),
                                status: snapshot.status,
                                error: snapshot.error.clone(),
                                ..message.clone()
                            });
                        events.push(Follow::Done(Box::new(message)));
                        return Some((futures::stream::iter(events), (receiver, sent, true)));
                    }
                    if !events.is_empty() {
                        return Some((futures::stream::iter(events), (receiver, sent, false)));
                    }
                    if receiver.changed().await.is_err() {
                        // The answer's owner went away without an end: read the row.
                        let message = store.message(user, conversation_id, message_id).await;
                        let events = message
                            .map(|m| vec![Follow::Done(Box::new(m))])
                            .unwrap_or_default();
                        return Some((futures::stream::iter(events), (receiver, sent, true)));
                    }
                }
            }
        })
        .flatten()
        .boxed(),
    )
}

/// A finished answer from character `offset` on: the rest of its text and its end.
fn finished(message: Message, offset: usize) -> Result<BoxStream<'static, Follow>, FollowError> {
    let rest = after_chars(&message.content, offset)
        .ok_or_else(|| FollowError::Offset {
            length: message.content.chars().count(),
        })?
        .to_owned();
    let mut events = Vec::with_capacity(2);
    if !rest.is_empty() {
        events.push(Follow::Delta {
            offset,
            content: rest,
        });
    }
    events.push(Follow::Done(Box::new(message)));
    Ok(futures::stream::iter(events).boxed())
}

/// The answer `message` from character `offset` on while another replica generates it: its
/// saved text, then the `message.delta` events on the owner's topic, then its end (the
/// `message.completed` event, or the row found final — the answer of a replica that died is
/// marked `interrupted` by the others, which publish its end). A gap (missed events, a
/// subscriber that fell behind) is filled from the row, which is read again every `poll`
/// while nothing arrives.
pub async fn follow_elsewhere(
    store: Arc<dyn ChatStore>,
    events: &dyn EventBus,
    user: Uuid,
    message: Message,
    offset: usize,
    poll: Duration,
) -> Result<BoxStream<'static, Follow>, FollowError> {
    let (conversation_id, message_id) = (message.conversation_id, message.id);
    // Subscribed before the row is read, so nothing published after the read is missed.
    let subscription = events.subscribe(&user_topic(user));
    let row = store.message(user, conversation_id, message_id).await?;
    if row.status.is_final() {
        return finished(row, offset);
    }
    if after_chars(&row.content, offset).is_none() {
        return Err(FollowError::Offset {
            length: row.content.chars().count(),
        });
    }
    let mut reader = Remote {
        store,
        user,
        conversation_id,
        message_id,
        sent: offset,
        poll,
        done: false,
    };
    let first = reader.unsent_of(&row.content);
    Ok(futures::stream::iter(first)
        .chain(
            futures::stream::unfold((reader, subscription), |(mut reader, mut sub)| async move {
                if reader.done {
                    return None;
                }
                let events = reader.next(&mut sub).await;
                Some((futures::stream::iter(events), (reader, sub)))
            })
            .flatten(),
        )
        .boxed())
}

/// The state of one reader of an answer generated elsewhere.
struct Remote {
    store: Arc<dyn ChatStore>,
    user: Uuid,
    conversation_id: Uuid,
    message_id: Uuid,
    /// Characters sent so far.
    sent: usize,
    poll: Duration,
    done: bool,
}

impl Remote {
    /// The part of `text` (the answer from its start) not sent yet.
    fn unsent_of(&mut self, text: &str) -> Vec<Follow> {
        self.send(after_chars(text, self.sent))
    }

    /// `rest`, the text after what was sent, as the next piece (nothing when empty).
    fn send(&mut self, rest: Option<&str>) -> Vec<Follow> {
        match rest {
            Some(rest) if !rest.is_empty() => {
                let event = Follow::Delta {
                    offset: self.sent,
                    content: rest.to_owned(),
                };
                self.sent += rest.chars().count();
                vec![event]
            }
            _ => Vec::new(),
        }
    }

    /// What the saved row adds, and its end when it is final.
    async fn read_row(&mut self) -> Vec<Follow> {
        let Ok(row) = self
            .store
            .message(self.user, self.conversation_id, self.message_id)
            .await
        else {
            // Gone (deleted with its conversation) or unreadable now: a later poll decides.
            return Vec::new();
        };
        let mut events = self.unsent_of(&row.content);
        if row.status.is_final() {
            events.push(Follow::Done(Box::new(row)));
            self.done = true;
        }
        events
    }

    /// Waits for the next thing to tell the reader.
    async fn next(&mut self, subscription: &mut BoxStream<'static, Received>) -> Vec<Follow> {
        loop {
            let received = tokio::select! {
                received = subscription.next() => received,
                () = tokio::time::sleep(self.poll) => return self.read_row().await,
            };
            let envelope = match received {
                Some(Received::Event(envelope)) => envelope,
                Some(Received::Lagged(_)) => return self.read_row().await,
                None => {
                    // The bus closed the subscription: poll the row from now on.
                    tokio::time::sleep(self.poll).await;
                    return self.read_row().await;
                }
            };
            if let Some(delta) = envelope.decode::<MessageDelta>() {
                if delta.message_id != self.message_id {
                    continue;
                }
                if delta.offset > self.sent {
                    // Something between was missed: the row has it (or will).
                    return self.read_row().await;
                }
                let skip = self.sent - delta.offset;
                let events = self.send(after_chars(&delta.content, skip));
                if !events.is_empty() {
                    return events;
                }
            } else if let Some(completed) = envelope.decode::<MessageCompleted>()
                && completed.message.id == self.message_id
            {
                let mut events = self.unsent_of(&completed.message.content);
                events.push(Follow::Done(Box::new(completed.message)));
                self.done = true;
                return events;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_count_characters() {
        assert_eq!(after_chars("héllo", 0), Some("héllo"));
        assert_eq!(after_chars("héllo", 2), Some("llo"));
        assert_eq!(after_chars("héllo", 5), Some(""));
        assert_eq!(after_chars("héllo", 6), None);
        assert_eq!(after_chars("🦊a", 1), Some("a"));
    }

    #[tokio::test]
    async fn readers_see_every_change_and_the_end() {
        let live = LiveAnswers::default();
        let id = Uuid::now_v7();
        let answer = live.start(id, Uuid::now_v7(), &CancellationToken::new());
        let mut reader = answer.subscribe();
        answer.append("Hel");
        answer.append("lo");
        reader.changed().await.unwrap();
        assert_eq!(reader.borrow_and_update().content, "Hello");
        answer.end(MessageStatus::Complete, None);
        reader.changed().await.unwrap();
        assert_eq!(reader.borrow().status, MessageStatus::Complete);
        answer.request_stop();
        assert!(answer.cancel.is_cancelled() && answer.stop_requested());
        live.remove(id);
        assert!(live.is_empty());
    }
}
