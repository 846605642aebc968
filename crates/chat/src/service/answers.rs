//! Answers: sending a message (stored with its `streaming` answer before any model is called),
//! regenerating one, generating on a tracked task with checkpoints, stopping, and following
//! an answer from any offset.

use std::sync::Arc;

use confab_core::auth::Principal;
use confab_model_client::types::{ChatEvent, SamplingParams};
use futures::StreamExt;
use futures::stream::BoxStream;
use tracing::Instrument;
use uuid::Uuid;

use super::{ChatError, ChatService, not_found};
use crate::domain::{
    self, Author, Conversation, Generation, Message, MessageStatus, Params, Turn, fit_history,
};
use crate::events::{MessageCompleted, MessageCreated, MessageDelta, Typing};
use crate::live::{Follow, LiveAnswer};
use crate::ports::{Ask, Ending, ModelError, NewMessage};

/// A message to send.
#[derive(Debug, Clone)]
pub struct SendInput {
    pub content: String,
    /// Continue from this message; `None`: from the conversation's active leaf (or from the
    /// top with `from_root`). Editing a message is sending new content with the edited
    /// message's parent.
    pub parent_id: Option<Uuid>,
    /// With no `parent_id`: a new first message (a sibling of the conversation's first
    /// message), instead of continuing from the active leaf.
    pub from_root: bool,
    /// Ask this model instead of the conversation's.
    pub model: Option<String>,
    /// The sender's files to attach (at most [`domain::MAX_ATTACHMENTS`]).
    pub attachments: Vec<Uuid>,
}

/// What sending a message started.
#[derive(Debug, Clone)]
pub struct Sent {
    pub user_message: Message,
    pub assistant_message: Message,
}

/// What an answer that failed says about it: the error's safe message (stored with the
/// message and shown to the user); the internal detail — upstream bodies, provider URLs,
/// file paths — goes to the log only.
fn answer_failure(message_id: Uuid, e: &ModelError) -> String {
    tracing::warn!(message = %message_id, code = e.code(), detail = e.internal().unwrap_or_default(), error = %e, "answer failed");
    e.public_message()
}

impl ChatService {
    /// Stores the user's message, creates the answer and starts generating it.
    pub async fn send(
        self: &Arc<Self>,
        principal: &Principal,
        conversation_id: Uuid,
        input: SendInput,
    ) -> Result<Sent, ChatError> {
        let content = input.content.trim().to_owned();
        if content.is_empty() && input.attachments.is_empty() {
            return Err(ChatError::invalid(
                "empty_message",
                "the message has no content",
            ));
        }
        if let Some(p) = domain::too_long("content", &content, domain::MAX_MESSAGE_CHARS) {
            return Err(ChatError::invalid("message_too_long", p));
        }
        let model_override = domain::optional_text(input.model);
        self.check_model(model_override.as_deref()).await?;
        let conversation = self.conversation(principal, conversation_id).await?;
        let attachments = self.attachments(principal, &input.attachments).await?;
        let parent_id = match input.parent_id {
            Some(parent) => {
                let parent = self
                    .store
                    .message(principal.user_id, conversation_id, parent)
                    .await
                    .map_err(not_found("no such message in this conversation"))?;
                Some(parent.id)
            }
            None if input.from_root => None,
            None => conversation.active_leaf_id,
        };
        let model = self.pick_model(&conversation, model_override).await?;
        // The history is the path to the parent, then this message.
        let mut history = match parent_id {
            Some(parent) => self.turns_to(principal, conversation_id, parent).await?,
            None => Vec::new(),
        };
        history.push(Turn {
            role: Author::User,
            content: content.clone(),
            attachments: attachments.clone(),
        });
        let ask = self
            .ask(principal, &conversation, history, model.clone())
            .await?;
        let now = confab_core::now_ms();
        let question = NewMessage {
            id: confab_core::id::new_id(),
            conversation_id,
            parent_id,
            role: Author::User,
            content,
            status: MessageStatus::Complete,
            model: None,
            attachments,
            now,
        };
        let answer = NewMessage {
            id: confab_core::id::new_id(),
            conversation_id,
            parent_id: Some(question.id),
            role: Author::Assistant,
            content: String::new(),
            status: MessageStatus::Streaming,
            model: Some(model),
            attachments: Vec::new(),
            now,
        };
        // Both rows in one transaction, before any model call.
        let mut stored = self
            .store
            .add_messages(principal.user_id, conversation_id, vec![question, answer])
            .await
            .map_err(not_found("no such conversation"))?
            .into_iter();
        let (Some(user_message), Some(assistant_message)) = (stored.next(), stored.next()) else {
            return Err(ChatError::Store(confab_store::StoreError::NotFound));
        };
        if conversation.title.is_empty() {
            let title = domain::provisional_title(&domain::title_source(
                &user_message.content,
                &user_message.attachments,
            ));
            self.store
                .retitle(principal.user_id, conversation_id, "", &title, now)
                .await?;
        }
        self.publish(&MessageCreated {
            user_id: principal.user_id,
            message: user_message.clone(),
        })
        .await;
        self.launch(principal, &conversation, assistant_message.clone(), ask)
            .await;
        self.publish_conversation(principal.user_id, conversation_id)
            .await;
        Ok(Sent {
            user_message,
            assistant_message,
        })
    }

    /// A new answer to the user message that `message_id` answers (or to `message_id` itself
    /// when it is a user message): a sibling branch of the old answer.
    pub async fn regenerate(
        self: &Arc<Self>,
        principal: &Principal,
        conversation_id: Uuid,
        message_id: Uuid,
        model: Option<String>,
    ) -> Result<Message, ChatError> {
        let model_override = domain::optional_text(model);
        self.check_model(model_override.as_deref()).await?;
        let conversation = self.conversation(principal, conversation_id).await?;
        let message = self
            .store
            .message(principal.user_id, conversation_id, message_id)
            .await
            .map_err(not_found("no such message in this conversation"))?;
        let question = match message.role {
            Author::User => message.id,
            Author::Assistant => message.parent_id.ok_or_else(|| {
                ChatError::invalid("nothing_to_answer", "this answer has no question above it")
            })?,
        };
        let model = self.pick_model(&conversation, model_override).await?;
        self.start_answer(principal, &conversation, question, model)
            .await
    }

    /// The turns on the path from the root to `leaf`, empty messages left out.
    async fn turns_to(
        &self,
        principal: &Principal,
        conversation_id: Uuid,
        leaf: Uuid,
    ) -> Result<Vec<Turn>, ChatError> {
        Ok(self
            .store
            .lineage(principal.user_id, conversation_id, leaf)
            .await?
            .into_iter()
            .filter(|m| !(m.content.is_empty() && m.attachments.is_empty()))
            .map(|m| Turn {
                role: m.role,
                content: m.content,
                attachments: m.attachments,
            })
            .collect())
    }

    /// The sampling of an answer: the conversation's parameters, and the configured defaults
    /// (`chat.default_temperature`, `chat.default_top_p`) for those it leaves unset.
    fn sampling(&self, params: &Params) -> SamplingParams {
        SamplingParams {
            temperature: params
                .temperature
                .unwrap_or(self.settings.default_temperature),
            top_p: params.top_p.unwrap_or(self.settings.default_top_p),
            max_tokens: params.max_tokens,
            stop: Vec::new(),
            seed: params.seed,
        }
    }

    /// What to ask `model`: the conversation's system prompt and parameters, and as much of
    /// `history` as fits its context window, the kept turns' attachments read.
    async fn ask(
        &self,
        principal: &Principal,
        conversation: &Conversation,
        history: Vec<Turn>,
        model: String,
    ) -> Result<Ask, ChatError> {
        let context = self
            .models
            .context_tokens(&model)
            .await
            .unwrap_or(self.settings.default_context_tokens);
        let reserve = conversation
            .params
            .max_tokens
            .map_or(self.settings.answer_reserve_tokens, |m| m as usize)
            .min(context / 2);
        let (system, mut turns) = fit_history(
            conversation.system_prompt.as_deref(),
            &history,
            context,
            reserve,
        );
        let images = self
            .read_attachments(principal.user_id, &mut turns, context)
            .await?;
        Ok(Ask {
            model,
            system,
            turns,
            images,
            params: self.sampling(&conversation.params),
        })
    }

    /// Creates the `streaming` answer under `question` and starts generating it.
    async fn start_answer(
        self: &Arc<Self>,
        principal: &Principal,
        conversation: &Conversation,
        question: Uuid,
        model: String,
    ) -> Result<Message, ChatError> {
        let history = self.turns_to(principal, conversation.id, question).await?;
        let ask = self
            .ask(principal, conversation, history, model.clone())
            .await?;
        let answer = self
            .store
            .add_message(
                principal.user_id,
                NewMessage {
                    id: confab_core::id::new_id(),
                    conversation_id: conversation.id,
                    parent_id: Some(question),
                    role: Author::Assistant,
                    content: String::new(),
                    status: MessageStatus::Streaming,
                    model: Some(model),
                    attachments: Vec::new(),
                    now: confab_core::now_ms(),
                },
            )
            .await
            .map_err(not_found("no such conversation"))?;
        self.launch(principal, conversation, answer.clone(), ask)
            .await;
        Ok(answer)
    }

    /// Announces a stored `streaming` answer and generates it on a tracked task.
    async fn launch(
        self: &Arc<Self>,
        principal: &Principal,
        conversation: &Conversation,
        answer: Message,
        ask: Ask,
    ) {
        self.publish(&MessageCreated {
            user_id: principal.user_id,
            message: answer.clone(),
        })
        .await;
        let live = self
            .live
            .start(answer.id, principal.user_id, &self.shutdown);
        let this = self.clone();
        let principal = principal.clone();
        let id = answer.id;
        // Only a conversation the user left untitled gets a title from the model.
        let first_exchange = conversation.active_leaf_id.is_none() && conversation.title.is_empty();
        let conversation_id = conversation.id;
        // The generation outlives the request: its span keeps the request's id for the logs
        // and, when traces are exported, continues the request's trace.
        let span = tracing::info_span!(
            "answer",
            request_id = confab_core::http::current_request_id().as_deref(),
            message_id = %id,
        );
        self.tasks.spawn(
            async move {
                let ended = this
                    .generate(&principal, conversation_id, id, ask, &live)
                    .await;
                if ended == MessageStatus::Complete && first_exchange && this.settings.auto_titles {
                    this.queue_title(&principal, conversation_id).await;
                }
            }
            .instrument(span),
        );
    }

    /// Generates one answer to its end, checkpointing, and records how it ended.
    async fn generate(
        &self,
        principal: &Principal,
        conversation_id: Uuid,
        id: Uuid,
        ask: Ask,
        live: &LiveAnswer,
    ) -> MessageStatus {
        let user = principal.user_id;
        let typing = |active: bool| Typing {
            user_id: user,
            conversation_id,
            message_id: id,
            who: Author::Assistant,
            active,
        };
        self.publish(&typing(true)).await;
        let mut offset = 0usize;
        let mut content = String::new();
        let mut saved = 0usize;
        let mut saved_at = std::time::Instant::now();
        let mut usage = None;
        let mut failure: Option<String> = None;
        let mut tick = tokio::time::interval(self.settings.checkpoint_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        match self
            .models
            .chat(principal, ask.into_request(), live.cancel.clone())
            .await
        {
            Err(e) => failure = Some(answer_failure(id, &e)),
            Ok(mut stream) => loop {
                tokio::select! {
                    event = stream.next() => match event {
                        Some(Ok(ChatEvent::Delta(text))) => {
                            content.push_str(&text);
                            live.append(&text);
                            let length = text.chars().count();
                            self.publish(&MessageDelta {
                                user_id: user,
                                conversation_id,
                                message_id: id,
                                offset,
                                content: text,
                            }).await;
                            offset += length;
                        }
                        Some(Ok(ChatEvent::Finished { usage: u, .. })) => usage = Some(u),
                        Some(Ok(ChatEvent::Started)) => {}
                        Some(Err(e)) => {
                            failure = Some(answer_failure(id, &e));
                            break;
                        }
                        None => break,
                    },
                    _ = tick.tick() => {
                        // A changed text is saved; among replicas an unchanged one is saved
                        // too, every quarter lease, to show this replica still generates it.
                        let heartbeat_due = self
                            .settings
                            .answer_lease
                            .is_some_and(|lease| saved_at.elapsed() >= lease / 4);
                        if content.len() != saved || heartbeat_due {
                            if let Err(e) = self.store.checkpoint(user, id, &content, confab_core::now_ms()).await {
                                tracing::warn!(message = %id, error = %e, "checkpoint failed");
                            } else {
                                saved = content.len();
                                saved_at = std::time::Instant::now();
                            }
                        }
                    }
                    () = live.cancel.cancelled() => break,
                }
            },
        }
        let (status, error) = Generation {
            stop_requested: live.stop_requested(),
            cancelled: live.cancel.is_cancelled(),
            failure,
            finished: usage.is_some(),
        }
        .ending();
        let ending = Ending {
            status,
            content,
            error: error.clone(),
            prompt_tokens: usage.map(|u| u.prompt_tokens),
            completion_tokens: usage.map(|u| u.completion_tokens),
            now: confab_core::now_ms(),
        };
        // Saved before readers are told, so a reader that then reads the row sees the end.
        let saved = self.store.finish(user, id, ending).await;
        live.end(status, error);
        self.live.remove(id);
        match saved {
            Ok(message) => {
                self.publish(&MessageCompleted {
                    user_id: user,
                    message,
                })
                .await;
            }
            Err(e) => {
                tracing::error!(message = %id, error = %e, "cannot save the end of an answer");
            }
        }
        self.publish(&typing(false)).await;
        status
    }

    /// Asks an answer being generated to stop; what was generated is kept as `stopped`.
    pub async fn stop(
        &self,
        principal: &Principal,
        conversation_id: Uuid,
        message_id: Uuid,
    ) -> Result<(), ChatError> {
        let message = self
            .store
            .message(principal.user_id, conversation_id, message_id)
            .await
            .map_err(not_found("no such message in this conversation"))?;
        match self.live.get(message_id) {
            Some(live) => {
                live.request_stop();
                Ok(())
            }
            // Another replica generates it.
            None if message.status == MessageStatus::Streaming
                && self.settings.answer_lease.is_some() =>
            {
                self.request_stop_elsewhere(principal.user_id, message_id)
                    .await;
                Ok(())
            }
            None => Err(ChatError::Conflict(
                "not_streaming",
                format!(
                    "this answer is not being generated (it is {})",
                    message.status.as_str()
                ),
            )),
        }
    }

    /// An answer from character `offset` on: live while it is generated, then its end; or,
    /// for a finished answer, the rest of its saved text and its end (see [`crate::live`]).
    pub async fn follow(
        &self,
        principal: &Principal,
        conversation_id: Uuid,
        message_id: Uuid,
        offset: usize,
    ) -> Result<BoxStream<'static, Follow>, ChatError> {
        let message = self
            .store
            .message(principal.user_id, conversation_id, message_id)
            .await
            .map_err(not_found("no such message in this conversation"))?;
        if message.role != Author::Assistant {
            return Err(ChatError::invalid(
                "not_an_answer",
                "only an assistant's message can be followed",
            ));
        }
        let live = self.live.get(message_id);
        let followed = match (live, self.settings.answer_lease) {
            // Generated by another replica: its events and checkpoints.
            (None, Some(lease)) if message.status == MessageStatus::Streaming => {
                crate::live::follow_elsewhere(
                    self.store.clone(),
                    self.events.as_ref(),
                    principal.user_id,
                    message,
                    offset,
                    lease / 4,
                )
                .await
            }
            (live, _) => {
                crate::live::follow(self.store.clone(), live, principal.user_id, message, offset)
                    .await
            }
        };
        followed.map_err(|e| match e {
            crate::live::FollowError::Offset { length } => ChatError::invalid(
                "invalid_offset",
                format!("offset {offset} is past the answer's {length} characters so far"),
            ),
            crate::live::FollowError::Store(e) => {
                not_found("no such message in this conversation")(e)
            }
        })
    }
}
