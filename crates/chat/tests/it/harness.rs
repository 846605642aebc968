//! The chat service's test harness: a scripted `ModelClient` (each call plays the next script
//! and records its request), accounts that are all active, the in-memory bus, and the SQL
//! store on the backend under test; replicas share the store, the bus and the open sockets'
//! membership port.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use confab_bus::MemoryBus;
use confab_cache::{Membership, MemoryMembership};
use confab_chat::domain::{ConversationInput, Message};
use confab_chat::ports::{Accounts, AccountsError, FileAccess};
use confab_chat::service::{Follow, SendInput};
use confab_chat::{ChatDeps, ChatService, ChatSettings};
use confab_core::auth::{Credential, Principal, Role};
use confab_model_client::types::{
    ChatEvent, ChatRequest, ChatStream, EmbedRequest, Embeddings, FinishReason, ModelInfo, Usage,
};
use confab_model_client::{ModelClient, ModelError};
use futures::StreamExt;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

/// What one model call does.
#[derive(Debug, Clone)]
pub enum Step {
    Delta(&'static str),
    /// The final event, with usage.
    Finish,
    Fail(ModelError),
    /// Nothing more until the call is cancelled.
    Hang,
}

/// A model that plays one script per call, in order, and records every request.
pub struct ScriptedModel {
    pub scripts: Mutex<VecDeque<Vec<Step>>>,
    pub requests: Mutex<Vec<ChatRequest>>,
    /// The context window it reports (4,096 tokens unless a test widens it).
    pub context_tokens: Mutex<usize>,
}

impl Default for ScriptedModel {
    fn default() -> Self {
        Self {
            scripts: Mutex::default(),
            requests: Mutex::default(),
            context_tokens: Mutex::new(4096),
        }
    }
}

impl ScriptedModel {
    pub fn script(&self, steps: Vec<Step>) {
        self.scripts.lock().push_back(steps);
    }

    pub fn calls(&self) -> usize {
        self.requests.lock().len()
    }
}

#[async_trait]
impl ModelClient for ScriptedModel {
    async fn models(&self) -> Result<Vec<ModelInfo>, ModelError> {
        Ok(vec![ModelInfo {
            id: "scripted".into(),
            default: true,
            context_tokens: Some(*self.context_tokens.lock()),
        }])
    }

    async fn chat(
        &self,
        _principal: &Principal,
        request: ChatRequest,
        _cancel: CancellationToken,
    ) -> Result<ChatStream, ModelError> {
        self.requests.lock().push(request);
        let steps = self.scripts.lock().pop_front().unwrap_or_default();
        let mut events = Vec::new();
        let mut hang = false;
        for step in steps {
            match step {
                Step::Delta(text) => events.push(Ok(ChatEvent::Delta(text.into()))),
                Step::Finish => events.push(Ok(ChatEvent::Finished {
                    reason: FinishReason::Stop,
                    usage: Usage {
                        prompt_tokens: 7,
                        completion_tokens: 3,
                        total_tokens: 10,
                    },
                })),
                Step::Fail(e) => events.push(Err(e)),
                Step::Hang => hang = true,
            }
        }
        let events = futures::stream::iter(events);
        Ok(if hang {
            events.chain(futures::stream::pending()).boxed()
        } else {
            events.boxed()
        })
    }

    async fn embed(
        &self,
        _principal: &Principal,
        _request: EmbedRequest,
    ) -> Result<Embeddings, ModelError> {
        Err(ModelError::Unsupported("no embeddings here".into()))
    }
}

pub struct AllActive;

#[async_trait]
impl Accounts for AllActive {
    async fn is_active(&self, _user_id: Uuid) -> Result<bool, AccountsError> {
        Ok(true)
    }
}

pub struct Harness {
    pub service: Arc<ChatService>,
    pub model: Arc<ScriptedModel>,
    pub events: Arc<MemoryBus>,
    pub store: Arc<confab_chat::SqlChatStore>,
    pub tasks: TaskTracker,
    pub shutdown: CancellationToken,
    pub user: Principal,
    /// Every user's open sockets, shared with this harness's replicas.
    pub sockets: Arc<dyn Membership>,
    _db: Option<confab_testkit::TestDb>,
}

impl Harness {
    pub async fn new(settings: ChatSettings) -> Self {
        Self::with_sockets(settings, Arc::new(MemoryMembership::new(1_000))).await
    }

    /// A harness whose open sockets are counted in `sockets` (Redis, for replicas).
    pub async fn with_sockets(settings: ChatSettings, sockets: Arc<dyn Membership>) -> Self {
        Self::with_ports(settings, sockets, Arc::new(confab_chat::ports::NoFiles)).await
    }

    /// A harness whose attachments are read through `files`.
    pub async fn with_files(settings: ChatSettings, files: Arc<dyn FileAccess>) -> Self {
        Self::with_ports(settings, Arc::new(MemoryMembership::new(1_000)), files).await
    }

    async fn with_ports(
        settings: ChatSettings,
        sockets: Arc<dyn Membership>,
        files: Arc<dyn FileAccess>,
    ) -> Self {
        let (store, db) = crate::store::store().await;
        let mut harness = Self::over_with(
            Arc::new(store),
            Arc::new(MemoryBus::default()),
            settings,
            Uuid::now_v7(),
            sockets,
            files,
        );
        harness._db = Some(db);
        harness
    }

    /// Another replica of the chat service: the same database and bus, its own model,
    /// tasks and answers, for the same user.
    pub fn replica(&self, settings: ChatSettings) -> Self {
        Self::over(
            self.store.clone(),
            self.events.clone(),
            settings,
            self.user.user_id,
            self.sockets.clone(),
        )
    }

    pub fn over(
        store: Arc<confab_chat::SqlChatStore>,
        events: Arc<MemoryBus>,
        settings: ChatSettings,
        user_id: Uuid,
        sockets: Arc<dyn Membership>,
    ) -> Self {
        let files = Arc::new(confab_chat::ports::NoFiles);
        Self::over_with(store, events, settings, user_id, sockets, files)
    }

    fn over_with(
        store: Arc<confab_chat::SqlChatStore>,
        events: Arc<MemoryBus>,
        settings: ChatSettings,
        user_id: Uuid,
        sockets: Arc<dyn Membership>,
        files: Arc<dyn FileAccess>,
    ) -> Self {
        let model = Arc::new(ScriptedModel::default());
        let tasks = TaskTracker::new();
        let shutdown = CancellationToken::new();
        let service = ChatService::new(
            ChatDeps {
                store: store.clone(),
                models: model.clone(),
                accounts: Arc::new(AllActive),
                events: events.clone(),
                jobs: None,
                tasks: tasks.clone(),
                shutdown: shutdown.clone(),
                sockets: sockets.clone(),
                files,
            },
            settings,
        );
        let user = Principal {
            user_id,
            role: Role::User,
            credential: Credential::Session {
                session_id: Uuid::now_v7(),
            },
        };
        Self {
            service,
            model,
            events,
            store,
            tasks,
            shutdown,
            user,
            sockets,
            _db: None,
        }
    }

    pub async fn conversation(&self, input: ConversationInput) -> Uuid {
        self.service
            .create_conversation(&self.user, input)
            .await
            .unwrap()
            .id
    }

    pub async fn send(&self, conversation: Uuid, content: &str) -> (Message, Message) {
        let sent = self
            .service
            .send(
                &self.user,
                conversation,
                SendInput {
                    content: content.into(),
                    parent_id: None,
                    from_root: false,
                    model: None,
                    attachments: Vec::new(),
                },
            )
            .await
            .unwrap();
        (sent.user_message, sent.assistant_message)
    }

    /// Waits for every answer (and title) being generated to end.
    pub async fn settle(&self) {
        self.tasks.close();
        tokio::time::timeout(Duration::from_secs(10), self.tasks.wait())
            .await
            .expect("the answers end");
        self.tasks.reopen();
    }

    /// The answer as followed to its end.
    pub async fn followed(&self, conversation: Uuid, answer: Uuid) -> Message {
        let mut events = self
            .service
            .follow(&self.user, conversation, answer, 0)
            .await
            .unwrap();
        while let Some(event) = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("the answer ends")
        {
            if let Follow::Done(message) = event {
                return *message;
            }
        }
        panic!("the stream ended without the answer's end");
    }
}

pub fn quiet_settings() -> ChatSettings {
    ChatSettings {
        auto_titles: false,
        ..ChatSettings::default()
    }
}
