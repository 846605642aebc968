//! The reader of ChatGPT's `conversations.json`: lenient about the fields it can do without,
//! strict about the tree of messages, and checked against the same problems and limits as a
//! Confab export.

use std::collections::HashMap;

use serde::Deserialize;
use uuid::Uuid;

use super::{ImportError, Imported, MAX_MAPPING_NODES, Problems, fresh_tree};
use crate::domain::{self, Author, Conversation, Message, MessageStatus, Params};

/// A value of the expected type, or `None` for anything else (`null`, a string where a number
/// was expected…): ChatGPT's exports vary, and a field the importer can do without should not
/// refuse the file.
pub(super) fn lenient<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
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
pub(super) struct ChatGptConversation {
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
pub(super) struct Mapping(Vec<(String, ChatGptNode)>);

/// Part of the error that stops reading an over-size mapping (the reader recognises it).
pub(super) const TOO_MANY_NODES: &str = "nodes: at most";

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
pub(super) struct ChatGptNode {
    #[serde(default, deserialize_with = "lenient")]
    parent: Option<String>,
    #[serde(default)]
    message: Option<ChatGptMessage>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct ChatGptMessage {
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
pub(super) struct ChatGptAuthor {
    #[serde(default, deserialize_with = "lenient")]
    role: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct ChatGptContent {
    #[serde(default)]
    parts: Option<Vec<Part>>,
}

/// A part of a message: text is kept; anything else (an image's description) is skipped
/// without being built.
#[derive(Debug)]
pub(super) enum Part {
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
pub(super) struct ChatGptMetadata {
    #[serde(default, deserialize_with = "lenient")]
    model_slug: Option<String>,
}

/// Each node's nearest kept ancestor (the closest node above it that holds a message),
/// found once per node: a walk up stops at the first node already answered, and every node
/// it passed gets the same answer, so the walks of a whole mapping take at most one step per
/// node. A cycle (a walk reaching a node of its own path) ends the walk with no ancestor.
pub(super) struct Ancestry<'a> {
    parents: HashMap<&'a str, Option<&'a str>>,
    kept: &'a HashMap<&'a str, Uuid>,
    known: HashMap<&'a str, Walked<'a>>,
    /// Steps taken up the tree in all walks (for the tests' bound).
    steps: usize,
}

#[derive(Clone, Copy)]
pub(super) enum Walked<'a> {
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

pub(super) fn seconds_to_ms(seconds: Option<f64>) -> Option<i64> {
    seconds.map(|s| (s * 1000.0) as i64)
}

/// ChatGPT's export: conversations whose `mapping` holds a tree of nodes (`parent`,
/// `children`, `message` with `author.role` and `content.parts`). System, tool and empty
/// nodes are skipped, their children attached to the nearest kept ancestor; the branch
/// `current_node` ends is the active one.
pub(super) fn read_chatgpt(
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
                attachments: Vec::new(),
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
    use crate::transfer::read_import;

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
}
