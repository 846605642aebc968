//! Export and import of conversations. Confab's JSON export is lossless (every branch, status
//! and timestamp) and imports back; ChatGPT's `conversations.json` imports too. Imports are
//! read and checked whole before anything is stored: a bad file is refused with its first
//! problems and where they are, and nothing changes. No I/O here.
//!
//! Longer than the usual 600 lines because the two import formats share one set of problems,
//! limits and checks, and their tests (about 230 lines) exercise them side by side; the
//! ChatGPT reader is the candidate to move into a module of its own when this grows.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::{self, Author, Conversation, Message, MessageStatus, Params};

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

/// A value of the expected type, or `None` for anything else (`null`, a string where a number
/// was expected…): ChatGPT's exports vary, and a field the importer can do without should not
/// refuse the file.
fn lenient<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    // Only small scalar fields use this, so buffering one value costs little.
    let value = serde_json::Value::deserialize(deserializer)?;
    Ok(serde_json::from_value(value).ok())
}

/// One conversation of ChatGPT's `conversations.json`, with only the fields read.
#[derive(Debug, Deserialize)]
struct ChatGptConversation {
    #[serde(default, deserialize_with = "lenient")]
    title: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    create_time: Option<f64>,
    #[serde(default, deserialize_with = "lenient")]
    update_time: Option<f64>,
    #[serde(default, deserialize_with = "lenient")]
    current_node: Option<String>,
    #[serde(default)]
    mapping: Option<Mapping>,
}

/// The nodes of a conversation by id; reading stops at [`MAX_MAPPING_NODES`].
#[derive(Debug, Default)]
struct Mapping(Vec<(String, ChatGptNode)>);

/// Part of the error that stops reading an over-size mapping (the reader recognises it).
const TOO_MANY_NODES: &str = "nodes: at most";

impl<'de> Deserialize<'de> for Mapping {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Nodes;
        impl<'de> serde::de::Visitor<'de> for Nodes {
            type Value = Mapping;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of nodes by id")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Mapping, A::Error> {
                let mut nodes = Vec::new();
                while let Some(entry) = map.next_entry::<String, ChatGptNode>()? {
                    if nodes.len() == MAX_MAPPING_NODES {
                        return Err(serde::de::Error::custom(format!(
                            "more than {MAX_MAPPING_NODES} {TOO_MANY_NODES} {MAX_MAPPING_NODES} \
                             are imported in one conversation; split the file"
                        )));
                    }
                    nodes.push(entry);
                }
                Ok(Mapping(nodes))
            }
        }
        deserializer.deserialize_map(Nodes)
    }
}

#[derive(Debug, Default, Deserialize)]
struct ChatGptNode {
    #[serde(default, deserialize_with = "lenient")]
    parent: Option<String>,
    #[serde(default)]
    message: Option<ChatGptMessage>,
}

#[derive(Debug, Default, Deserialize)]
struct ChatGptMessage {
    #[serde(default)]
    author: Option<ChatGptAuthor>,
    #[serde(default, deserialize_with = "lenient")]
    create_time: Option<f64>,
    #[serde(default)]
    content: Option<ChatGptContent>,
    #[serde(default)]
    metadata: Option<ChatGptMetadata>,
}

#[derive(Debug, Default, Deserialize)]
struct ChatGptAuthor {
    #[serde(default, deserialize_with = "lenient")]
    role: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct ChatGptContent {
    #[serde(default)]
    parts: Option<Vec<Part>>,
}

/// A part of a message: text is kept; anything else (an image's description) is skipped
/// without being built.
#[derive(Debug)]
enum Part {
    Text(String),
    Other,
}

impl<'de> Deserialize<'de> for Part {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PartVisitor;
        impl<'de> serde::de::Visitor<'de> for PartVisitor {
            type Value = Part;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a part of a message")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Part, E> {
                Ok(Part::Text(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Part, E> {
                Ok(Part::Text(v))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Part, E> {
                Ok(Part::Other)
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Part, E> {
                Ok(Part::Other)
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Part, E> {
                Ok(Part::Other)
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Part, E> {
                Ok(Part::Other)
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Part, E> {
                Ok(Part::Other)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Part, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Part::Other)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Part, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Part::Other)
            }
        }
        deserializer.deserialize_any(PartVisitor)
    }
}

#[derive(Debug, Default, Deserialize)]
struct ChatGptMetadata {
    #[serde(default, deserialize_with = "lenient")]
    model_slug: Option<String>,
}

/// Each node's nearest kept ancestor (the closest node above it that holds a message),
/// found once per node: a walk up stops at the first node already answered, and every node
/// it passed gets the same answer, so the walks of a whole mapping take at most one step per
/// node. A cycle (a walk reaching a node of its own path) ends the walk with no ancestor.
struct Ancestry<'a> {
    parents: HashMap<&'a str, Option<&'a str>>,
    kept: &'a HashMap<&'a str, Uuid>,
    known: HashMap<&'a str, Walked<'a>>,
    /// Steps taken up the tree in all walks (for the tests' bound).
    steps: usize,
}

#[derive(Clone, Copy)]
enum Walked<'a> {
    /// On the walk in progress: reaching it again is a cycle.
    OnPath,
    Done(Option<&'a str>),
}

impl<'a> Ancestry<'a> {
    fn new(mapping: &'a Mapping, kept: &'a HashMap<&'a str, Uuid>) -> Self {
        Self {
            parents: mapping
                .0
                .iter()
                .map(|(id, node)| (id.as_str(), node.parent.as_deref()))
                .collect(),
            kept,
            known: HashMap::new(),
            steps: 0,
        }
    }

    /// The nearest kept ancestor of `node` (not `node` itself), if any.
    fn nearest(&mut self, node: &'a str) -> Option<Uuid> {
        let found = self.nearest_node(node)?;
        self.kept.get(found).copied()
    }

    fn nearest_node(&mut self, node: &'a str) -> Option<&'a str> {
        if let Some(Walked::Done(found)) = self.known.get(node) {
            return *found;
        }
        let mut path = vec![node];
        self.known.insert(node, Walked::OnPath);
        let mut current = node;
        let found = loop {
            let Some(parent) = self.parents.get(current).copied().flatten() else {
                break None;
            };
            self.steps += 1;
            if self.kept.contains_key(parent) {
                break Some(parent);
            }
            match self.known.get(parent) {
                Some(Walked::Done(found)) => break *found,
                Some(Walked::OnPath) => break None,
                None => {}
            }
            // A parent the mapping does not hold has no ancestors.
            if !self.parents.contains_key(parent) {
                break None;
            }
            self.known.insert(parent, Walked::OnPath);
            path.push(parent);
            current = parent;
        };
        // None of the nodes passed is kept (the walk stops at the first kept one), so they
        // all share the answer.
        for passed in path {
            self.known.insert(passed, Walked::Done(found));
        }
        found
    }
}

fn seconds_to_ms(seconds: Option<f64>) -> Option<i64> {
    seconds.map(|s| (s * 1000.0) as i64)
}

/// ChatGPT's export: conversations whose `mapping` holds a tree of nodes (`parent`,
/// `children`, `message` with `author.role` and `content.parts`). System, tool and empty
/// nodes are skipped, their children attached to the nearest kept ancestor; the branch
/// `current_node` ends is the active one.
fn read_chatgpt(
    conversations: Vec<ChatGptConversation>,
    now: i64,
) -> Result<Vec<Imported>, ImportError> {
    let mut problems = Problems::default();
    let mut out = Vec::new();
    for (c, conversation) in conversations.into_iter().enumerate() {
        let at = format!("[{c}]");
        let Some(mapping) = &conversation.mapping else {
            problems.add(
                format!("{at}.mapping"),
                "missing: not a ChatGPT conversation",
            );
            continue;
        };
        let title = conversation
            .title
            .as_deref()
            .unwrap_or_default()
            .trim()
            .chars()
            .take(domain::MAX_TITLE_CHARS)
            .collect::<String>();
        let created_at = seconds_to_ms(conversation.create_time).unwrap_or(now);
        let updated_at = seconds_to_ms(conversation.update_time).unwrap_or(created_at);
        let new_id = confab_core::id::new_id();
        // Keep the nodes that hold a user's or assistant's text, with fresh ids.
        let mut kept: HashMap<&str, Uuid> = HashMap::new();
        let mut texts: Vec<(&str, Author, String, i64, Option<&str>)> = Vec::new();
        for (node_id, node) in &mapping.0 {
            let Some(message) = &node.message else {
                continue;
            };
            let role = match message.author.as_ref().and_then(|a| a.role.as_deref()) {
                Some("user") => Author::User,
                Some("assistant") => Author::Assistant,
                _ => continue,
            };
            let text: String = message
                .content
                .as_ref()
                .and_then(|c| c.parts.as_ref())
                .map(|parts| {
                    parts
                        .iter()
                        .filter_map(|p| match p {
                            Part::Text(t) => Some(t.as_str()),
                            Part::Other => None,
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .unwrap_or_default();
            if text.trim().is_empty() {
                continue;
            }
            let model = match role {
                Author::Assistant => message
                    .metadata
                    .as_ref()
                    .and_then(|m| m.model_slug.as_deref()),
                Author::User => None,
            };
            let place = format!("{at}.mapping.{node_id}");
            if let Some(p) = domain::too_long("content", &text, domain::MAX_MESSAGE_CHARS) {
                problems.add(&place, p);
            }
            if let Some(p) =
                model.and_then(|m| domain::too_long("model", m, domain::MAX_MODEL_CHARS))
            {
                problems.add(&place, p);
            }
            let when = seconds_to_ms(message.create_time).unwrap_or(created_at);
            if kept
                .insert(node_id.as_str(), confab_core::id::new_id())
                .is_some()
            {
                problems.add(&place, "two nodes have this id");
                continue;
            }
            texts.push((node_id.as_str(), role, text, when, model));
        }
        // The same limits as a conversation made here (the title is cut to fit instead).
        if let Err(found) = (domain::Fields {
            title: Some(&title),
            ..domain::Fields::default()
        })
        .check()
        {
            for p in found {
                problems.add(&at, p);
            }
        }
        let mut ancestry = Ancestry::new(mapping, &kept);
        let mut messages = Vec::with_capacity(texts.len());
        for (node_id, role, text, when, model) in texts {
            messages.push(Message {
                id: kept.get(node_id).copied().unwrap_or_default(),
                conversation_id: new_id,
                parent_id: ancestry.nearest(node_id),
                role,
                content: text,
                status: MessageStatus::Complete,
                model: model.map(str::to_owned),
                error: None,
                prompt_tokens: None,
                completion_tokens: None,
                created_at: when,
                updated_at: when,
            });
        }
        // Siblings in their original order: by time.
        messages.sort_by_key(|m| (m.created_at, m.id));
        let active_leaf_id = conversation
            .current_node
            .as_deref()
            .and_then(|node| kept.get(node).copied().or_else(|| ancestry.nearest(node)));
        let Some((messages, renamed)) =
            fresh_tree(&format!("{at}.mapping"), messages, &mut problems)
        else {
            continue;
        };
        out.push(Imported {
            conversation: Conversation {
                id: new_id,
                title,
                model: None,
                system_prompt: None,
                params: Params::default(),
                folder: None,
                tags: Vec::new(),
                pinned: false,
                archived: false,
                active_leaf_id: active_leaf_id.and_then(|leaf| renamed.get(&leaf).copied()),
                created_at,
                updated_at,
            },
            messages,
        });
    }
    problems.into_result(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHATGPT: &str = r#"[{
      "title": "Fox facts", "create_time": 1700000000.5, "update_time": 1700000100.0,
      "current_node": "a2",
      "mapping": {
        "root": {"id": "root", "message": null, "parent": null, "children": ["sys"]},
        "sys": {"id": "sys", "message": {"author": {"role": "system"}, "content": {"content_type": "text", "parts": [""]}}, "parent": "root", "children": ["u1"]},
        "u1": {"id": "u1", "message": {"author": {"role": "user"}, "create_time": 1700000001.0, "content": {"content_type": "text", "parts": ["Tell me about foxes"]}}, "parent": "sys", "children": ["a1", "a2"]},
        "a1": {"id": "a1", "message": {"author": {"role": "assistant"}, "create_time": 1700000002.0, "content": {"content_type": "text", "parts": ["Foxes are canids."]}, "metadata": {"model_slug": "gpt-4o"}}, "parent": "u1", "children": []},
        "a2": {"id": "a2", "message": {"author": {"role": "assistant"}, "create_time": 1700000003.0, "content": {"content_type": "text", "parts": ["Foxes are small canids."]}}, "parent": "u1", "children": []}
      }
    }]"#;

    #[test]
    fn chatgpt_trees_import_with_their_branches() {
        let imported = read_import(CHATGPT.as_bytes(), 0).unwrap();
        assert_eq!(imported.len(), 1);
        let c = &imported[0];
        assert_eq!(c.conversation.title, "Fox facts");
        assert_eq!(c.conversation.created_at, 1_700_000_000_500);
        assert_eq!(c.messages.len(), 3);
        let question = &c.messages[0];
        assert_eq!((question.role, question.parent_id), (Author::User, None));
        assert!(
            c.messages[1..]
                .iter()
                .all(|m| m.parent_id == Some(question.id))
        );
        assert_eq!(c.messages[1].model.as_deref(), Some("gpt-4o"));
        assert_eq!(c.conversation.active_leaf_id, Some(c.messages[2].id));
    }

    fn problems(bytes: &[u8]) -> Vec<String> {
        match read_import(bytes, 0) {
            Err(ImportError::Invalid(problems)) => problems,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_files_are_refused_with_places() {
        let found = problems(b"{\"format\": \"confab.conversations\", \"version\": 1, \"exported_at\": \"2026-01-01T00:00:00Z\", \"conversations\": [{\"id\": \"0190f6a0-0000-7000-8000-000000000001\", \"title\": \"t\", \"model\": null, \"system_prompt\": null, \"folder\": null, \"active_leaf_id\": null, \"created_at\": \"2026-01-01T00:00:00Z\", \"updated_at\": \"2026-01-01T00:00:00Z\", \"messages\": [{\"id\": \"0190f6a0-0000-7000-8000-000000000002\", \"parent_id\": \"0190f6a0-0000-7000-8000-000000000009\", \"role\": \"user\", \"content\": \"hi\", \"status\": \"complete\", \"model\": null, \"error\": null, \"prompt_tokens\": null, \"completion_tokens\": null, \"created_at\": \"2026-01-01T00:00:00Z\", \"updated_at\": \"2026-01-01T00:00:00Z\"}]}]}");
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].starts_with("conversations[0].messages[0].parent_id"),
            "{found:?}"
        );
        let found = problems(
            b"{\"format\": \"confab.conversations\", \"version\": 1, \"conversations\": 3}",
        );
        assert!(
            found[0].contains("exported_at") || found[0].contains("conversations"),
            "{found:?}"
        );
        assert!(problems(b"not json")[0].starts_with("not JSON"));
        assert!(problems(b"{\"a\": ")[0].starts_with("not JSON"));
        assert!(problems(b"{\"a\": 1}")[0].starts_with("unknown format"));
        assert!(problems(b"3")[0].starts_with("unknown format"));
        let problems = problems(b"[{\"title\": \"x\"}]");
        assert_eq!(
            problems,
            vec!["[0].mapping: missing: not a ChatGPT conversation"]
        );
    }

    /// A mapping of `n` nodes: `n / 2` messages, each under its own node of a chain of empty
    /// nodes that loops back on itself (`c0 → c1 → … → c(n/2-1) → c0`).
    fn cyclic_mapping(n: usize) -> String {
        let half = n / 2;
        let mut nodes = Vec::with_capacity(n);
        for i in 0..half {
            nodes.push(format!(
                r#""c{i}": {{"message": null, "parent": "c{}"}}"#,
                (i + 1) % half
            ));
            nodes.push(format!(
                r#""m{i}": {{"message": {{"author": {{"role": "user"}}, "create_time": {i}, "content": {{"parts": ["hi {i}"]}}}}, "parent": "c{i}"}}"#
            ));
        }
        format!(
            r#"[{{"title": "loop", "mapping": {{{}}}}}]"#,
            nodes.join(",")
        )
    }

    /// Each message used to walk its parent chain up to `mapping.len()` steps: a cycle made a
    /// 16,000-node file take seconds. Every node is now walked once.
    #[test]
    fn the_ancestor_walk_is_linear_even_around_a_cycle() {
        let text = cyclic_mapping(16_000);
        let conversations: Vec<ChatGptConversation> = serde_json::from_str(&text).unwrap();
        let mapping = conversations[0].mapping.as_ref().unwrap();
        assert_eq!(mapping.0.len(), 16_000);
        let kept: HashMap<&str, Uuid> = mapping
            .0
            .iter()
            .filter(|(id, _)| id.starts_with('m'))
            .map(|(id, _)| (id.as_str(), Uuid::now_v7()))
            .collect();
        let mut ancestry = Ancestry::new(mapping, &kept);
        for id in kept.keys() {
            // Their ancestors are empty nodes on a loop: none is kept.
            assert_eq!(ancestry.nearest(id), None);
        }
        assert!(ancestry.nearest("c7").is_none());
        // One step per node at most (plus the step that finds each walk's end); before the
        // fix this was about 8,000 × 16,000.
        assert!(
            ancestry.steps <= 16_000 + kept.len(),
            "{} steps for 16,000 nodes",
            ancestry.steps
        );
        // The whole import of that file ends, each message a first message.
        let imported = read_import(text.as_bytes(), 0).unwrap();
        assert_eq!(imported[0].messages.len(), 8_000);
        assert!(imported[0].messages.iter().all(|m| m.parent_id.is_none()));
    }

    #[test]
    fn kept_ancestors_skip_empty_nodes_and_a_message_in_a_loop_is_refused() {
        let mapping = Mapping(
            [
                ("root", None, false),
                ("u1", Some("root"), true),
                ("tool", Some("u1"), false),
                ("a1", Some("tool"), true),
                ("x", Some("y"), true),
                ("y", Some("x"), false),
            ]
            .into_iter()
            .map(|(id, parent, _)| {
                (
                    id.to_owned(),
                    ChatGptNode {
                        parent: parent.map(str::to_owned),
                        message: None,
                    },
                )
            })
            .collect(),
        );
        let kept: HashMap<&str, Uuid> = ["u1", "a1", "x"]
            .into_iter()
            .map(|id| (id, Uuid::now_v7()))
            .collect();
        let mut ancestry = Ancestry::new(&mapping, &kept);
        assert_eq!(ancestry.nearest("u1"), None);
        assert_eq!(ancestry.nearest("a1"), Some(kept["u1"]));
        assert_eq!(ancestry.nearest("tool"), Some(kept["u1"]));
        // `x` is its own nearest kept ancestor through `y`: the tree check then refuses it.
        assert_eq!(ancestry.nearest("x"), Some(kept["x"]));
    }

    /// An over-size mapping is refused while it is read: the file after the node over the cap
    /// is not even looked at (here it is not JSON, and that is not what is reported).
    #[test]
    fn an_over_size_mapping_is_refused_before_it_is_read_whole() {
        let nodes: Vec<String> = (0..=MAX_MAPPING_NODES)
            .map(|i| format!(r#""n{i}": {{"message": null, "parent": null}}"#))
            .collect();
        let text = format!(
            r#"[{{"title": "big", "mapping": {{{}, this is not JSON"#,
            nodes.join(",")
        );
        match read_import(text.as_bytes(), 0) {
            Err(ImportError::TooLarge(message)) => {
                assert!(message.starts_with("[0].mapping"), "{message}");
                assert!(message.contains("at most 20000"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        // At the cap, it is read.
        let nodes: Vec<String> = (0..MAX_MAPPING_NODES)
            .map(|i| format!(r#""n{i}": {{"message": null, "parent": null}}"#))
            .collect();
        let text = format!(
            r#"[{{"title": "big", "mapping": {{{}}}}}]"#,
            nodes.join(",")
        );
        assert_eq!(
            read_import(text.as_bytes(), 0).unwrap()[0].messages.len(),
            0
        );
    }

    /// A Confab file goes through the same limits as the API: a 100,000-character system
    /// prompt, a 10,000-character folder and a 5,000-character model were stored before.
    #[test]
    fn confab_imports_keep_the_field_limits() {
        let export = |system: usize, folder: usize, model: usize, tags: usize| {
            let tags: Vec<String> = (0..tags).map(|i| format!("t{i}")).collect();
            serde_json::json!({
                "format": FORMAT, "version": 1, "exported_at": "2026-01-01T00:00:00Z",
                "conversations": [{
                    "id": "0190f6a0-0000-7000-8000-000000000001", "title": "  t  ",
                    "model": "m".repeat(model), "system_prompt": "s".repeat(system),
                    "folder": "f".repeat(folder), "tags": tags, "active_leaf_id": null,
                    "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
                    "messages": []
                }]
            })
            .to_string()
        };
        let problems = match read_import(export(100_000, 10_000, 5_000, 21).as_bytes(), 0) {
            Err(ImportError::Invalid(problems)) => problems,
            other => panic!("{other:?}"),
        };
        assert_eq!(problems.len(), 4, "{problems:?}");
        for field in ["system_prompt", "folder", "model"] {
            assert!(
                problems
                    .iter()
                    .any(|p| p.starts_with(&format!("conversations[0]: {field} is"))),
                "{field}: {problems:?}"
            );
        }
        assert!(problems.contains(&"conversations[0]: at most 20 tags, got 21".to_owned()));
        let imported = read_import(export(20_000, 100, 200, 20).as_bytes(), 0).unwrap();
        // Normalised as the API does: the title trimmed.
        assert_eq!(imported[0].conversation.title, "t");
    }
}
