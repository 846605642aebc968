//! The JSON of every live event, pinned: the web UI (`web/src/chat`) reads these fields, so a
//! change here is a change of the contract with it. Each was a `json!` literal before it was a
//! type; the expected strings are what those literals produced.

use confab_bus::{Envelope, TypedEvent};
use confab_chat::domain::{
    Author, BulkAction, Conversation, Message, MessageStatus, Params, Reaction,
};
use confab_chat::events::{
    ConversationDeleted, ConversationUpdated, ConversationsChanged, MessageCompleted,
    MessageCreated, MessageDelta, Presence, ReactionChanged, Typing,
};
use uuid::Uuid;

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

const USER: u128 = 0xA;
const TOPIC: &str = "user.00000000-0000-0000-0000-00000000000a";

/// The envelope's kind, topic and exact data; and the event reads back from it (with the
/// owner from the topic, which the JSON does not carry).
fn pinned<E: TypedEvent + PartialEq + std::fmt::Debug + Clone>(
    event: &E,
    kind: &str,
    json: &str,
    with_owner: impl Fn(E) -> E,
) {
    let envelope = Envelope::typed(event);
    assert_eq!(envelope.kind, kind);
    assert_eq!(E::KIND, kind);
    assert_eq!(envelope.topic, TOPIC);
    assert_eq!(
        serde_json::to_string(&envelope.data).unwrap(),
        json,
        "{kind}"
    );
    let decoded = envelope.decode::<E>().expect("decodes");
    assert_eq!(with_owner(decoded), event.clone());
}

fn message() -> Message {
    Message {
        id: id(2),
        conversation_id: id(1),
        parent_id: Some(id(3)),
        role: Author::Assistant,
        content: "Hi".into(),
        status: MessageStatus::Complete,
        model: Some("m".into()),
        error: None,
        prompt_tokens: Some(3),
        completion_tokens: Some(1),
        attachments: Vec::new(),
        created_at: 1_700_000_000_000,
        updated_at: 1_700_000_000_500,
    }
}

const MESSAGE_JSON: &str = r#"{"attachments":[],"completion_tokens":1,"content":"Hi","conversation_id":"00000000-0000-0000-0000-000000000001","created_at":"2023-11-14T22:13:20Z","error":null,"id":"00000000-0000-0000-0000-000000000002","model":"m","parent_id":"00000000-0000-0000-0000-000000000003","prompt_tokens":3,"role":"assistant","status":"complete","updated_at":"2023-11-14T22:13:20.5Z"}"#;

#[test]
fn message_events() {
    let owner = |mut e: MessageCreated| {
        e.user_id = id(USER);
        e
    };
    pinned(
        &MessageCreated {
            user_id: id(USER),
            message: message(),
        },
        "message.created",
        &format!(r#"{{"message":{MESSAGE_JSON}}}"#),
        owner,
    );
    pinned(
        &MessageCompleted {
            user_id: id(USER),
            message: message(),
        },
        "message.completed",
        &format!(r#"{{"message":{MESSAGE_JSON}}}"#),
        |mut e: MessageCompleted| {
            e.user_id = id(USER);
            e
        },
    );
    pinned(
        &MessageDelta {
            user_id: id(USER),
            conversation_id: id(1),
            message_id: id(2),
            offset: 5,
            content: "lo, ".into(),
        },
        "message.delta",
        r#"{"content":"lo, ","conversation_id":"00000000-0000-0000-0000-000000000001","message_id":"00000000-0000-0000-0000-000000000002","offset":5}"#,
        |mut e: MessageDelta| {
            e.user_id = id(USER);
            e
        },
    );
    pinned(
        &Typing {
            user_id: id(USER),
            conversation_id: id(1),
            message_id: id(2),
            who: Author::Assistant,
            active: true,
        },
        "typing",
        r#"{"active":true,"conversation_id":"00000000-0000-0000-0000-000000000001","message_id":"00000000-0000-0000-0000-000000000002","who":"assistant"}"#,
        |mut e: Typing| {
            e.user_id = id(USER);
            e
        },
    );
    pinned(
        &ReactionChanged {
            user_id: id(USER),
            conversation_id: id(1),
            message_id: id(2),
            reactions: vec![Reaction {
                emoji: "👍".into(),
                count: 2,
                mine: true,
            }],
        },
        "reaction",
        r#"{"conversation_id":"00000000-0000-0000-0000-000000000001","message_id":"00000000-0000-0000-0000-000000000002","reactions":[{"count":2,"emoji":"👍","mine":true}]}"#,
        |mut e: ReactionChanged| {
            e.user_id = id(USER);
            e
        },
    );
}

#[test]
fn conversation_events() {
    let conversation = Conversation {
        id: id(1),
        title: "Plans".into(),
        model: None,
        system_prompt: Some("Be brief.".into()),
        params: Params {
            temperature: Some(0.5),
            ..Params::default()
        },
        folder: None,
        tags: vec!["work".into()],
        pinned: true,
        archived: false,
        active_leaf_id: Some(id(2)),
        created_at: 1_700_000_000_000,
        updated_at: 1_700_000_000_000,
    };
    pinned(
        &ConversationUpdated {
            user_id: id(USER),
            conversation,
        },
        "conversation.updated",
        r#"{"conversation":{"active_leaf_id":"00000000-0000-0000-0000-000000000002","archived":false,"created_at":"2023-11-14T22:13:20Z","folder":null,"id":"00000000-0000-0000-0000-000000000001","model":null,"params":{"temperature":0.5},"pinned":true,"system_prompt":"Be brief.","tags":["work"],"title":"Plans","updated_at":"2023-11-14T22:13:20Z"}}"#,
        |mut e: ConversationUpdated| {
            e.user_id = id(USER);
            e
        },
    );
    pinned(
        &ConversationDeleted {
            user_id: id(USER),
            conversation_id: id(1),
        },
        "conversation.deleted",
        r#"{"conversation_id":"00000000-0000-0000-0000-000000000001"}"#,
        |mut e: ConversationDeleted| {
            e.user_id = id(USER);
            e
        },
    );
    let owner = |mut e: ConversationsChanged| {
        e.user_id = id(USER);
        e
    };
    pinned(
        &ConversationsChanged {
            user_id: id(USER),
            ids: Some(vec![id(1)]),
            action: Some(BulkAction::Archive),
        },
        "conversations.changed",
        r#"{"action":"archive","ids":["00000000-0000-0000-0000-000000000001"]}"#,
        owner,
    );
    // A purge: everything changed.
    pinned(
        &ConversationsChanged {
            user_id: id(USER),
            ids: None,
            action: None,
        },
        "conversations.changed",
        "{}",
        owner,
    );
    pinned(
        &Presence {
            user_id: id(USER),
            online: true,
            tabs: 2,
        },
        "presence",
        r#"{"online":true,"tabs":2}"#,
        |mut e: Presence| {
            e.user_id = id(USER);
            e
        },
    );
}
