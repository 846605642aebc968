//! The chat service: conversations (title, model, system prompt, parameters, folder, tags,
//! pinned, archived), messages stored one row each as a tree (edits and regenerations are
//! branches), answers generated on tracked tasks that outlive the client and are checkpointed
//! while they stream, re-attachable streams, and presets.

pub mod actions;
pub mod api;
pub mod domain;
pub mod events;
pub mod live;
pub mod ports;
pub mod service;
pub mod store;
pub mod transfer;

pub use api::{ChatState, router};
pub use service::{
    ChatDeps, ChatError, ChatService, ChatSettings, TITLE_JOB, TitleError, TitleJob,
};
pub use store::{SqlChatStore, migrations};
