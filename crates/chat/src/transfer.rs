//! Export and import of conversations. Confab's JSON export is lossless (every branch, status
//! and timestamp) and imports back; ChatGPT's `conversations.json` imports too. Imports are
//! read and checked whole before anything is stored: a bad file is refused with its first
//! problems and where they are, and nothing changes. No I/O here.

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

/// Problems found in a file, each with its place (`conversations[2].messages[5].parent_id`).
#[derive(Debug, Default)]
struct Problems(Vec<String>);

impl Problems {
    fn add(&mut self, at: impl AsRef<str>, what: impl AsRef<str>) {
        if self.0.len() < MAX_PROBLEMS {
            self.0.push(format!("{}: {}", at.as_ref(), what.as_ref()));
        }
    }
}

/// Reads an uploaded file: a Confab export or ChatGPT's `conversations.json`. Returns the
/// conversations to store, or every problem found (at most 20), each with where it is.
pub fn read_import(bytes: &[u8], now: i64) -> Result<Vec<Imported>, Vec<String>> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        vec![format!(
            "not JSON: {e} (line {}, column {})",
            e.line(),
            e.column()
        )]
    })?;
    if value.get("format").and_then(|f| f.as_str()) == Some(FORMAT) {
        let export: Export = serde_path_to_error::deserialize(value)
            .map_err(|e| vec![format!("{}: {}", e.path(), e.inner())])?;
        return read_confab(export);
    }
    if value.is_array() {
        return read_chatgpt(&value, now);
    }
    Err(vec![format!(
        "unknown format: expected a Confab export (\"format\": \"{FORMAT}\") or ChatGPT's conversations.json (an array of conversations)"
    )])
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

fn read_confab(export: Export) -> Result<Vec<Imported>, Vec<String>> {
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
        if let Some(p) = domain::too_long("title", &conversation.title, domain::MAX_TITLE_CHARS) {
            problems.add(format!("{at}.title"), p);
        }
        for p in conversation.params.problems() {
            problems.add(format!("{at}.params"), p);
        }
        let tags = domain::normalize_tags(&conversation.tags).unwrap_or_else(|p| {
            for p in p {
                problems.add(format!("{at}.tags"), p);
            }
            Vec::new()
        });
        let new_id = confab_core::id::new_id();
        let mut messages = Vec::with_capacity(conversation.messages.len());
        for (i, m) in conversation.messages.into_iter().enumerate() {
            if let Some(p) = domain::too_long("content", &m.content, domain::MAX_MESSAGE_CHARS) {
                problems.add(format!("{at}.messages[{i}].content"), p);
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
                title: conversation.title,
                model: conversation.model,
                system_prompt: conversation.system_prompt,
                params: conversation.params,
                folder: conversation.folder,
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
    if problems.0.is_empty() {
        Ok(out)
    } else {
        Err(problems.0)
    }
}

/// The nearest kept ancestor of a ChatGPT node (bounded by the mapping's size: no cycles).
fn nearest_kept(
    mapping: &serde_json::Map<String, serde_json::Value>,
    kept: &HashMap<&str, Uuid>,
    node: &str,
) -> Option<Uuid> {
    let mut node = node.to_owned();
    for _ in 0..=mapping.len() {
        let parent = mapping
            .get(&node)
            .and_then(|n| n.get("parent"))
            .and_then(|p| p.as_str())?;
        if let Some(id) = kept.get(parent) {
            return Some(*id);
        }
        node = parent.to_owned();
    }
    None
}

fn seconds_to_ms(value: &serde_json::Value) -> Option<i64> {
    value.as_f64().map(|s| (s * 1000.0) as i64)
}

/// ChatGPT's export: conversations whose `mapping` holds a tree of nodes (`parent`,
/// `children`, `message` with `author.role` and `content.parts`). System, tool and empty
/// nodes are skipped, their children attached to the nearest kept ancestor; the branch
/// `current_node` ends is the active one.
fn read_chatgpt(value: &serde_json::Value, now: i64) -> Result<Vec<Imported>, Vec<String>> {
    let mut problems = Problems::default();
    let mut out = Vec::new();
    for (c, conversation) in value.as_array().into_iter().flatten().enumerate() {
        let at = format!("[{c}]");
        let Some(mapping) = conversation.get("mapping").and_then(|m| m.as_object()) else {
            problems.add(
                format!("{at}.mapping"),
                "missing: not a ChatGPT conversation",
            );
            continue;
        };
        let title = conversation
            .get("title")
            .and_then(|t| t.as_str())
            .unwrap_or_default()
            .chars()
            .take(domain::MAX_TITLE_CHARS)
            .collect::<String>();
        let created_at = conversation
            .get("create_time")
            .and_then(seconds_to_ms)
            .unwrap_or(now);
        let updated_at = conversation
            .get("update_time")
            .and_then(seconds_to_ms)
            .unwrap_or(created_at);
        let new_id = confab_core::id::new_id();
        // Keep the nodes that hold a user's or assistant's text, with fresh ids.
        let mut kept: HashMap<&str, Uuid> = HashMap::new();
        let mut texts: HashMap<&str, (Author, String, i64)> = HashMap::new();
        for (node_id, node) in mapping {
            let message = node.get("message").unwrap_or(&serde_json::Value::Null);
            let role = match message["author"]["role"].as_str() {
                Some("user") => Author::User,
                Some("assistant") => Author::Assistant,
                _ => continue,
            };
            let text: String = message["content"]["parts"]
                .as_array()
                .map(|parts| {
                    parts
                        .iter()
                        .filter_map(|p| p.as_str())
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .unwrap_or_default();
            if text.trim().is_empty() {
                continue;
            }
            if let Some(p) = domain::too_long("content", &text, domain::MAX_MESSAGE_CHARS) {
                problems.add(format!("{at}.mapping.{node_id}"), p);
            }
            let when = seconds_to_ms(&message["create_time"]).unwrap_or(created_at);
            kept.insert(node_id.as_str(), confab_core::id::new_id());
            texts.insert(node_id.as_str(), (role, text, when));
        }
        let ancestor = |node: &str| nearest_kept(mapping, &kept, node);
        let mut messages = Vec::with_capacity(kept.len());
        for (node_id, id) in &kept {
            let (role, text, when) =
                texts
                    .remove(node_id)
                    .unwrap_or((Author::User, String::new(), now));
            messages.push(Message {
                id: *id,
                conversation_id: new_id,
                parent_id: ancestor(node_id),
                role,
                content: text,
                status: MessageStatus::Complete,
                model: if role == Author::Assistant {
                    mapping[*node_id]["message"]["metadata"]["model_slug"]
                        .as_str()
                        .map(str::to_owned)
                } else {
                    None
                },
                error: None,
                prompt_tokens: None,
                completion_tokens: None,
                created_at: when,
                updated_at: when,
            });
        }
        // Siblings in their original order: by time.
        messages.sort_by_key(|m| (m.created_at, m.id));
        let current = conversation.get("current_node").and_then(|n| n.as_str());
        let active_leaf_id =
            current.and_then(|node| kept.get(node).copied().or_else(|| ancestor(node)));
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
    if problems.0.is_empty() {
        Ok(out)
    } else {
        Err(problems.0)
    }
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

    #[test]
    fn bad_files_are_refused_with_places() {
        let problems = read_import(b"{\"format\": \"confab.conversations\", \"version\": 1, \"exported_at\": \"2026-01-01T00:00:00Z\", \"conversations\": [{\"id\": \"0190f6a0-0000-7000-8000-000000000001\", \"title\": \"t\", \"model\": null, \"system_prompt\": null, \"folder\": null, \"active_leaf_id\": null, \"created_at\": \"2026-01-01T00:00:00Z\", \"updated_at\": \"2026-01-01T00:00:00Z\", \"messages\": [{\"id\": \"0190f6a0-0000-7000-8000-000000000002\", \"parent_id\": \"0190f6a0-0000-7000-8000-000000000009\", \"role\": \"user\", \"content\": \"hi\", \"status\": \"complete\", \"model\": null, \"error\": null, \"prompt_tokens\": null, \"completion_tokens\": null, \"created_at\": \"2026-01-01T00:00:00Z\", \"updated_at\": \"2026-01-01T00:00:00Z\"}]}]}", 0).unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].starts_with("conversations[0].messages[0].parent_id"),
            "{problems:?}"
        );
        let problems = read_import(
            b"{\"format\": \"confab.conversations\", \"version\": 1, \"conversations\": 3}",
            0,
        )
        .unwrap_err();
        assert!(
            problems[0].contains("exported_at") || problems[0].contains("conversations"),
            "{problems:?}"
        );
        assert!(read_import(b"not json", 0).unwrap_err()[0].starts_with("not JSON"));
        assert!(read_import(b"{\"a\": 1}", 0).unwrap_err()[0].starts_with("unknown format"));
        let problems = read_import(b"[{\"title\": \"x\"}]", 0).unwrap_err();
        assert_eq!(
            problems,
            vec!["[0].mapping: missing: not a ChatGPT conversation"]
        );
    }
}
