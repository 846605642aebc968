//! Export and import of conversations. Confab's JSON export is lossless (every branch, status
//! and timestamp) and imports back; ChatGPT's `conversations.json` imports too (its reader is
//! in `chatgpt`). Imports are read and checked whole before anything is stored: a bad file is
//! refused with its first problems and where they are, and nothing changes. No I/O here.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::{self, Author, Conversation, Message, MessageStatus, Params};

mod chatgpt;

use chatgpt::{ChatGptConversation, TOO_MANY_NODES, lenient, read_chatgpt};

/// The `format` field of a Confab export.
pub const FORMAT: &str = "confab.conversations";
pub const VERSION: u32 = 1;
/// Problems listed in a refusal, at most.
const MAX_PROBLEMS: usize = 20;

/// A Confab export: conversations with every message of every branch.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Export {
    pub format: String,
    pub version: u32,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "confab_core::id::rfc3339_ms")]
    pub exported_at: i64,
    pub conversations: Vec<ExportedConversation>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportedConversation {
    pub id: Uuid,
    pub title: String,
    pub model: Option<String>,
    pub system_prompt: Option<String>,
    #[serde(default)]
    pub params: Params,
    pub folder: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub pinned: bool,
    #[serde(default)]
    pub archived: bool,
    pub active_leaf_id: Option<Uuid>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "confab_core::id::rfc3339_ms")]
    pub created_at: i64,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "confab_core::id::rfc3339_ms")]
    pub updated_at: i64,
    pub messages: Vec<ExportedMessage>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportedMessage {
    pub id: Uuid,
    pub parent_id: Option<Uuid>,
    pub role: Author,
    pub content: String,
    pub status: MessageStatus,
    pub model: Option<String>,
    pub error: Option<String>,
    pub prompt_tokens: Option<u32>,
    pub completion_tokens: Option<u32>,
    /// The files attached, by reference (their bytes are not in an export; an import keeps
    /// the text and drops the references, which name another account's files).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<crate::domain::Attachment>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "confab_core::id::rfc3339_ms")]
    pub created_at: i64,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "confab_core::id::rfc3339_ms")]
    pub updated_at: i64,
}

impl ExportedConversation {
    pub fn new(conversation: Conversation, messages: Vec<Message>) -> Self {
        Self {
            id: conversation.id,
            title: conversation.title,
            model: conversation.model,
            system_prompt: conversation.system_prompt,
            params: conversation.params,
            folder: conversation.folder,
            tags: conversation.tags,
            pinned: conversation.pinned,
            archived: conversation.archived,
            active_leaf_id: conversation.active_leaf_id,
            created_at: conversation.created_at,
            updated_at: conversation.updated_at,
            messages: messages
                .into_iter()
                .map(|m| ExportedMessage {
                    id: m.id,
                    parent_id: m.parent_id,
                    role: m.role,
                    content: m.content,
                    status: m.status,
                    model: m.model,
                    error: m.error,
                    prompt_tokens: m.prompt_tokens,
                    completion_tokens: m.completion_tokens,
                    attachments: m.attachments,
                    created_at: m.created_at,
                    updated_at: m.updated_at,
                })
                .collect(),
        }
    }
}

/// The active branch of a conversation as Markdown.
pub fn markdown(conversation: &Conversation, path: &[Message]) -> String {
    let title = if conversation.title.is_empty() {
        "Untitled conversation"
    } else {
        &conversation.title
    };
    let mut out = format!("# {title}\n\n");
    if let Some(model) = &conversation.model {
        out.push_str(&format!("Model: {model}\n\n"));
    }
    if let Some(system) = &conversation.system_prompt {
        out.push_str(&format!("> System: {}\n\n", system.replace('\n', "\n> ")));
    }
    for message in path {
        let who = match message.role {
            Author::User => "You",
            Author::Assistant => "Assistant",
        };
        out.push_str(&format!("## {who}\n\n{}\n\n", message.content.trim_end()));
        // Attachments by reference: the file's name, type, size and id in Confab.
        for a in &message.attachments {
            out.push_str(&format!(
                "- Attached: {} ({}, {} bytes; file {})\n",
                a.name, a.content_type, a.size, a.file_id
            ));
        }
        if !message.attachments.is_empty() {
            out.push('\n');
        }
        if message.status != MessageStatus::Complete {
            out.push_str(&format!("*({})*\n\n", message.status.as_str()));
        }
    }
    out
}

/// A conversation ready to store: fresh ids, messages parents first.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    pub conversation: Conversation,
    pub messages: Vec<Message>,
}

/// The most nodes one ChatGPT conversation's `mapping` may hold. Real conversations hold a few
/// hundred; the cap bounds the work and memory of one import whatever the file claims.
pub const MAX_MAPPING_NODES: usize = 20_000;

/// Why an upload was not imported.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ImportError {
    /// The file is not one the importer reads, or breaks a rule: each problem with its place
    /// (`conversations[2].messages[5].parent_id`), at most 20.
    #[error("{}", .0.first().map_or("", String::as_str))]
    Invalid(Vec<String>),
    /// The file holds more than the importer takes; refused while it was read.
    #[error("{0}")]
    TooLarge(String),
}

/// Problems found in a file, each with its place (`conversations[2].messages[5].parent_id`).
#[derive(Debug, Default)]
struct Problems(Vec<String>);

impl Problems {
    fn add(&mut self, at: impl AsRef<str>, what: impl AsRef<str>) {
        if self.0.len() < MAX_PROBLEMS {
            self.0.push(format!("{}: {}", at.as_ref(), what.as_ref()));
        }
    }

    fn into_result<T>(self, value: T) -> Result<T, ImportError> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(ImportError::Invalid(self.0))
        }
    }
}

/// Only the `format` of an object: read first, without building the rest, to choose the reader.
#[derive(Deserialize)]
struct Probe {
    #[serde(default, deserialize_with = "lenient")]
    format: Option<String>,
}

/// A JSON error as a problem: where the text is not JSON, or where it does not fit the format.
fn json_problem(e: serde_path_to_error::Error<serde_json::Error>) -> ImportError {
    let (path, inner) = (e.path().to_string(), e.into_inner());
    if inner.to_string().contains(TOO_MANY_NODES) {
        return ImportError::TooLarge(format!("{path}: {inner}"));
    }
    if inner.is_syntax() || inner.is_eof() {
        return ImportError::Invalid(vec![format!(
            "not JSON: {inner} (line {}, column {})",
            inner.line(),
            inner.column()
        )]);
    }
    ImportError::Invalid(vec![format!("{path}: {inner}")])
}

/// Reads an uploaded file: a Confab export or ChatGPT's `conversations.json`. Returns the
/// conversations to store, or every problem found (at most 20), each with where it is.
///
/// The file is read straight into typed values (never a generic JSON tree, which took twenty
/// times the file's size), and a ChatGPT `mapping` over [`MAX_MAPPING_NODES`] stops the read
/// as soon as it is seen. Every step after it is linear in the file. This is CPU work: the
/// service runs it on a blocking thread.
pub fn read_import(bytes: &[u8], now: i64) -> Result<Vec<Imported>, ImportError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
    match first {
        Some(b'{') => {
            let probe: Probe =
                serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(bytes))
                    .map_err(json_problem)?;
            if probe.format.as_deref() == Some(FORMAT) {
                let export: Export = serde_path_to_error::deserialize(
                    &mut serde_json::Deserializer::from_slice(bytes),
                )
                .map_err(json_problem)?;
                return read_confab(export);
            }
        }
        Some(b'[') => {
            let conversations: Vec<ChatGptConversation> =
                serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(bytes))
                    .map_err(json_problem)?;
            return read_chatgpt(conversations, now);
        }
        _ => {
            // Not an object or an array: say why in JSON's terms when it is not JSON at all.
            if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                return Err(ImportError::Invalid(vec![format!(
                    "not JSON: {e} (line {}, column {})",
                    e.line(),
                    e.column()
                )]));
            }
        }
    }
    Err(ImportError::Invalid(vec![format!(
        "unknown format: expected a Confab export (\"format\": \"{FORMAT}\") or ChatGPT's conversations.json (an array of conversations)"
    )]))
}

/// Orders messages so that every parent comes before its children, and gives them fresh ids.
/// Returns `None` (after noting it) when parents are missing or form a cycle.
fn fresh_tree(
    at: &str,
    messages: Vec<Message>,
    problems: &mut Problems,
) -> Option<(Vec<Message>, HashMap<Uuid, Uuid>)> {
    let ids: HashSet<Uuid> = messages.iter().map(|m| m.id).collect();
    if ids.len() != messages.len() {
        problems.add(at, "two messages have the same id");
        return None;
    }
    for (i, m) in messages.iter().enumerate() {
        if let Some(parent) = m.parent_id
            && !ids.contains(&parent)
        {
            problems.add(
                format!("{at}[{i}].parent_id"),
                format!("no message {parent} in this conversation"),
            );
        }
    }
    let mut children: HashMap<Option<Uuid>, Vec<usize>> = HashMap::new();
    for (i, m) in messages.iter().enumerate() {
        children.entry(m.parent_id).or_default().push(i);
    }
    let mut order = Vec::with_capacity(messages.len());
    // Depth first, siblings in their given order (pushed reversed onto the stack).
    let mut stack: Vec<usize> = children.get(&None).cloned().unwrap_or_default();
    stack.reverse();
    while let Some(i) = stack.pop() {
        order.push(i);
        if let Some(kids) = children.get(&Some(messages[i].id)) {
            stack.extend(kids.iter().rev().copied());
        }
    }
    if order.len() != messages.len() {
        problems.add(
            at,
            "some messages are not reachable from a first message (a cycle?)",
        );
        return None;
    }
    let renamed: HashMap<Uuid, Uuid> = messages
        .iter()
        .map(|m| (m.id, confab_core::id::new_id()))
        .collect();
    let mut slots: Vec<Option<Message>> = messages.into_iter().map(Some).collect();
    let ordered = order
        .into_iter()
        .filter_map(|i| slots[i].take())
        .map(|mut m| {
            m.id = renamed[&m.id];
            m.parent_id = m.parent_id.map(|p| renamed[&p]);
            m
        })
        .collect();
    Some((ordered, renamed))
}

fn read_confab(export: Export) -> Result<Vec<Imported>, ImportError> {
    let mut problems = Problems::default();
    if export.version != VERSION {
        problems.add(
            "version",
            format!(
                "version {} is not known; expected {VERSION}",
                export.version
            ),
        );
    }
    let mut out = Vec::new();
    for (c, conversation) in export.conversations.into_iter().enumerate() {
        let at = format!("conversations[{c}]");
        // The same normalising and limits as creating and changing a conversation.
        let title = conversation.title.trim().to_owned();
        let model = domain::optional_text(conversation.model);
        let system_prompt = domain::optional_text(conversation.system_prompt);
        let folder = domain::optional_text(conversation.folder);
        let tags = domain::Fields {
            title: Some(&title),
            model: model.as_deref(),
            system_prompt: system_prompt.as_deref(),
            folder: folder.as_deref(),
            params: Some(&conversation.params),
            tags: Some(&conversation.tags),
            ..domain::Fields::default()
        }
        .check()
        .unwrap_or_else(|found| {
            for p in found {
                problems.add(&at, p);
            }
            None
        })
        .unwrap_or_default();
        let new_id = confab_core::id::new_id();
        let mut messages = Vec::with_capacity(conversation.messages.len());
        for (i, m) in conversation.messages.into_iter().enumerate() {
            let at = format!("{at}.messages[{i}]");
            if let Some(p) = domain::too_long("content", &m.content, domain::MAX_MESSAGE_CHARS) {
                problems.add(format!("{at}.content"), p);
            }
            if let Some(p) = m
                .model
                .as_deref()
                .and_then(|v| domain::too_long("model", v, domain::MAX_MODEL_CHARS))
            {
                problems.add(format!("{at}.model"), p);
            }
            if let Some(p) = m
                .error
                .as_deref()
                .and_then(|v| domain::too_long("error", v, domain::MAX_ERROR_CHARS))
            {
                problems.add(format!("{at}.error"), p);
            }
            messages.push(Message {
                id: m.id,
                conversation_id: new_id,
                parent_id: m.parent_id,
                role: m.role,
                content: m.content,
                // Nothing imported is still being generated.
                status: if m.status == MessageStatus::Streaming {
                    MessageStatus::Interrupted
                } else {
                    m.status
                },
                model: m.model,
                error: m.error,
                prompt_tokens: m.prompt_tokens,
                completion_tokens: m.completion_tokens,
                // A file is not imported with a reference to it: the ids name files of
                // the exporting account, which this one may not have.
                attachments: Vec::new(),
                created_at: m.created_at,
                updated_at: m.updated_at,
            });
        }
        let Some((messages, renamed)) =
            fresh_tree(&format!("{at}.messages"), messages, &mut problems)
        else {
            continue;
        };
        let active_leaf_id = match conversation.active_leaf_id {
            Some(leaf) => match renamed.get(&leaf) {
                Some(new) => Some(*new),
                None => {
                    problems.add(format!("{at}.active_leaf_id"), format!("no message {leaf}"));
                    None
                }
            },
            None => None,
        };
        out.push(Imported {
            conversation: Conversation {
                id: new_id,
                title,
                model,
                system_prompt,
                params: conversation.params,
                folder,
                tags,
                pinned: conversation.pinned,
                archived: conversation.archived,
                active_leaf_id,
                created_at: conversation.created_at,
                updated_at: conversation.updated_at,
            },
            messages,
        });
    }
    problems.into_result(out)
}

#[cfg(test)]
mod tests;
