//! The contract of every chat store role, run against `SqlChatStore` on the backend under test
//! (SQLite by default, PostgreSQL with `TEST_BACKEND=postgres`). Each role's test also hands
//! another user's ids to every method that names an owner: they answer `NotFound`, nothing,
//! or `false`, and change nothing.

use confab_chat::domain::{
    Author, BulkAction, ConversationChanges, Message, MessageStatus, Params, Preset,
    SharedConversation, SharedMessage,
};
use confab_chat::ports::{
    ConversationFilter, ConversationPosition, ConversationStore, Ending, MessageStore,
    NewConversation, NewMessage, PresetStore, ReactionStore, SearchStore, ShareStore,
    TransferStore,
};
use confab_chat::transfer::Imported;
use confab_chat::{SqlChatStore, migrations};
use confab_core::config::DatabaseConfig;
use confab_store::{Db, StoreError};
use confab_testkit::TestDb;
use uuid::Uuid;

/// A migrated store on a fresh database; keep the `TestDb` alive for the test.
pub async fn store() -> (SqlChatStore, TestDb) {
    let test_db = TestDb::new().await.unwrap();
    let db = Db::connect(&test_db.url, &DatabaseConfig::default())
        .await
        .unwrap();
    migrations().run(&db).await.unwrap();
    (SqlChatStore::new(db), test_db)
}

fn not_found<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    assert!(
        matches!(result, Err(StoreError::NotFound)),
        "expected NotFound, got {result:?}"
    );
}

const NOW: i64 = 1_700_000_000_000;

async fn conversation(store: &SqlChatStore, owner: Uuid, title: &str) -> Uuid {
    store
        .create_conversation(NewConversation {
            id: Uuid::now_v7(),
            user_id: owner,
            title: title.into(),
            model: Some("m".into()),
            system_prompt: None,
            params: Params::default(),
            folder: None,
            tags: vec!["b".into(), "a".into()],
            now: NOW,
        })
        .await
        .unwrap()
        .id
}

fn new_message(
    conversation_id: Uuid,
    parent_id: Option<Uuid>,
    role: Author,
    content: &str,
    now: i64,
) -> NewMessage {
    NewMessage {
        id: Uuid::now_v7(),
        conversation_id,
        parent_id,
        role,
        content: content.into(),
        status: MessageStatus::Complete,
        model: None,
        attachments: Vec::new(),
        now,
    }
}

/// A question and its answer under `parent`; returns the answer.
async fn exchange(
    store: &SqlChatStore,
    owner: Uuid,
    conversation_id: Uuid,
    parent: Option<Uuid>,
    text: &str,
    now: i64,
) -> Message {
    let question = new_message(conversation_id, parent, Author::User, text, now);
    let answer = new_message(
        conversation_id,
        Some(question.id),
        Author::Assistant,
        &format!("about {text}"),
        now + 1,
    );
    store
        .add_messages(owner, conversation_id, vec![question, answer])
        .await
        .unwrap()
        .pop()
        .unwrap()
}

#[tokio::test]
async fn conversations_are_their_owners_alone() {
    let (store, _db) = store().await;
    let (ada, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let first = conversation(&store, ada, "First").await;
    let second = conversation(&store, ada, "Second").await;
    let bobs = conversation(&store, bob, "Bob's").await;

    let read = store.conversation(ada, first).await.unwrap();
    assert_eq!(read.title, "First");
    assert_eq!(read.tags, ["a", "b"], "tags in order");
    let changed = store
        .update_conversation(
            ada,
            first,
            ConversationChanges {
                title: Some("Renamed".into()),
                model: Some(None),
                tags: Some(vec!["x".into()]),
                pinned: Some(true),
                ..ConversationChanges::default()
            },
            NOW + 10,
        )
        .await
        .unwrap();
    assert_eq!(
        (
            changed.title.as_str(),
            changed.model,
            changed.tags,
            changed.pinned
        ),
        ("Renamed", None, vec!["x".to_owned()], true)
    );
    // Pages by activity, newest first, then by id.
    let page = store
        .list_conversations(ada, &ConversationFilter::default(), None, 1)
        .await
        .unwrap();
    assert_eq!(page.iter().map(|c| c.id).collect::<Vec<_>>(), [first]);
    let after = ConversationPosition {
        updated_at: page[0].updated_at,
        id: page[0].id,
    };
    let rest = store
        .list_conversations(ada, &ConversationFilter::default(), Some(after), 10)
        .await
        .unwrap();
    assert_eq!(rest.iter().map(|c| c.id).collect::<Vec<_>>(), [second]);
    let pinned = ConversationFilter {
        pinned: Some(true),
        ..ConversationFilter::default()
    };
    assert_eq!(
        store
            .list_conversations(ada, &pinned, None, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    // A title is replaced only while it is the one expected.
    assert!(!store.retitle(ada, first, "Old", "New", NOW).await.unwrap());
    assert!(
        store
            .retitle(ada, first, "Renamed", "Better", NOW)
            .await
            .unwrap()
    );

    // Another user's ids.
    not_found(store.conversation(bob, first).await);
    not_found(
        store
            .update_conversation(bob, first, ConversationChanges::default(), NOW)
            .await,
    );
    not_found(store.delete_conversation(bob, first).await);
    assert!(
        !store
            .retitle(bob, first, "Better", "Stolen", NOW)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .bulk(bob, &[first, second], BulkAction::Delete, NOW)
            .await
            .unwrap(),
        0
    );
    let bobs_list = store
        .list_conversations(bob, &ConversationFilter::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(bobs_list.iter().map(|c| c.id).collect::<Vec<_>>(), [bobs]);
    assert_eq!(
        store.conversation(ada, first).await.unwrap().title,
        "Better"
    );

    // Bulk changes only the owner's; the purge takes all of one user's and nothing else.
    assert_eq!(
        store
            .bulk(ada, &[first, bobs], BulkAction::Archive, NOW)
            .await
            .unwrap(),
        1
    );
    assert!(store.conversation(ada, first).await.unwrap().archived);
    assert!(!store.conversation(bob, bobs).await.unwrap().archived);
    store.delete_conversation(ada, second).await.unwrap();
    not_found(store.conversation(ada, second).await);
    assert_eq!(store.purge_user(ada).await.unwrap(), 1);
    assert_eq!(store.purge_user(ada).await.unwrap(), 0, "idempotent");
    not_found(store.conversation(ada, first).await);
    store.conversation(bob, bobs).await.unwrap();
}

#[tokio::test]
async fn messages_form_a_tree_that_only_its_owner_reaches() {
    let (store, _db) = store().await;
    let (ada, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let c = conversation(&store, ada, "Tree").await;
    let first = exchange(&store, ada, c, None, "one", NOW).await;
    let second = exchange(&store, ada, c, Some(first.id), "two", NOW + 10).await;
    // A sibling of the second answer (a regeneration).
    let question = second.parent_id.unwrap();
    let mut sibling = new_message(c, Some(question), Author::Assistant, "", NOW + 20);
    sibling.status = MessageStatus::Streaming;
    let sibling = store.add_message(ada, sibling).await.unwrap();
    assert_eq!(
        store.conversation(ada, c).await.unwrap().active_leaf_id,
        Some(sibling.id),
        "the newest message is the active leaf"
    );

    let lineage = store.lineage(ada, c, second.id).await.unwrap();
    assert_eq!(lineage.len(), 4);
    assert_eq!(lineage[3].id, second.id);
    let path = store.path(ada, c, sibling.id).await.unwrap();
    let (last, branches) = path.last().unwrap();
    assert_eq!(last.id, sibling.id);
    assert_eq!(branches.sibling_ids, [second.id, sibling.id]);
    assert_eq!(branches.index, 1);
    assert_eq!(
        store.newest_leaf(ada, c, first.id).await.unwrap(),
        sibling.id
    );
    store
        .checkpoint(ada, sibling.id, "half", NOW + 21)
        .await
        .unwrap();
    assert_eq!(
        store.message(ada, c, sibling.id).await.unwrap().content,
        "half"
    );
    assert_eq!(store.all_messages(ada, c).await.unwrap().len(), 5);

    // Another user's ids: nothing found, nothing written.
    not_found(store.message(bob, c, first.id).await);
    not_found(store.lineage(bob, c, second.id).await);
    not_found(store.path(bob, c, second.id).await);
    not_found(store.newest_leaf(bob, c, first.id).await);
    store
        .checkpoint(bob, sibling.id, "overwritten", NOW + 22)
        .await
        .unwrap();
    let ending = |content: &str| Ending {
        status: MessageStatus::Complete,
        content: content.into(),
        error: None,
        prompt_tokens: Some(3),
        completion_tokens: Some(2),
        now: NOW + 30,
    };
    not_found(store.finish(bob, sibling.id, ending("stolen")).await);
    assert!(store.all_messages(bob, c).await.unwrap().is_empty());
    not_found(
        store
            .add_messages(bob, c, vec![new_message(c, None, Author::User, "x", NOW)])
            .await,
    );
    let unchanged = store.message(ada, c, sibling.id).await.unwrap();
    assert_eq!(
        (unchanged.content.as_str(), unchanged.status),
        ("half", MessageStatus::Streaming)
    );

    let done = store
        .finish(ada, sibling.id, ending("whole"))
        .await
        .unwrap();
    assert_eq!(
        (done.content.as_str(), done.status, done.completion_tokens),
        ("whole", MessageStatus::Complete, Some(2))
    );
    // At start, answers still streaming (every user's) become interrupted.
    let mut streaming = new_message(c, Some(done.id), Author::Assistant, "", NOW + 40);
    streaming.status = MessageStatus::Streaming;
    let streaming = store.add_message(ada, streaming).await.unwrap();
    assert_eq!(store.interrupt_streaming(NOW + 50).await.unwrap(), 1);
    assert_eq!(
        store.message(ada, c, streaming.id).await.unwrap().status,
        MessageStatus::Interrupted
    );
}

#[tokio::test]
async fn searches_see_only_the_searchers_words() {
    let (store, _db) = store().await;
    let (ada, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let c = conversation(&store, ada, "Giraffes").await;
    exchange(&store, ada, c, None, "giraffes eat leaves", NOW).await;
    let theirs = conversation(&store, bob, "Other").await;
    exchange(&store, bob, theirs, None, "giraffes everywhere", NOW).await;
    let words = vec!["giraffes".to_owned()];
    let hits = store.search(ada, &words, 10).await.unwrap();
    assert!(!hits.is_empty());
    assert!(hits.iter().all(|h| h.conversation_id == c), "{hits:?}");
    let stranger = store.search(Uuid::now_v7(), &words, 10).await.unwrap();
    assert!(stranger.is_empty(), "{stranger:?}");
}

#[tokio::test]
async fn share_links_are_made_listed_and_revoked_by_their_owner() {
    let (store, _db) = store().await;
    let (ada, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let c = conversation(&store, ada, "Shared").await;
    let snapshot = SharedConversation {
        title: "Shared".into(),
        shared_at: NOW,
        messages: vec![SharedMessage {
            role: Author::User,
            content: "hello".into(),
            attachments: Vec::new(),
        }],
    };
    let link = store
        .create_share(ada, c, "token-1", &snapshot, NOW)
        .await
        .unwrap();
    assert_eq!(link.url, "/s/token-1");
    assert_eq!(store.shares(ada, c).await.unwrap().len(), 1);
    assert_eq!(
        store.shared("token-1").await.unwrap(),
        (ada, snapshot.clone())
    );

    // Another user's conversation cannot be shared by them, nor its links listed or revoked.
    not_found(store.create_share(bob, c, "token-2", &snapshot, NOW).await);
    assert!(store.shares(bob, c).await.unwrap().is_empty());
    not_found(store.revoke_share(bob, "token-1", NOW).await);
    store.shared("token-1").await.unwrap();

    store.revoke_share(ada, "token-1", NOW).await.unwrap();
    not_found(store.shared("token-1").await);
    not_found(store.revoke_share(ada, "token-1", NOW).await);
    assert!(store.shares(ada, c).await.unwrap()[0].revoked);
}

#[tokio::test]
async fn reactions_belong_to_messages_of_the_users_conversations() {
    let (store, _db) = store().await;
    let (ada, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let c = conversation(&store, ada, "Reacted").await;
    let answer = exchange(&store, ada, c, None, "hi", NOW).await;
    store.react(ada, c, answer.id, "👍", NOW).await.unwrap();
    store
        .react(ada, c, answer.id, "👍", NOW)
        .await
        .expect("idempotent");
    let reactions = store.reactions(ada, &[answer.id]).await.unwrap();
    let mine = &reactions[&answer.id];
    assert_eq!(
        (mine.len(), mine[0].count, mine[0].mine),
        (1, 1, true),
        "{mine:?}"
    );

    // Another user's ids.
    not_found(store.react(bob, c, answer.id, "👎", NOW).await);
    not_found(store.unreact(bob, c, answer.id, "👍").await);
    assert!(
        store.reactions(bob, &[answer.id]).await.unwrap().is_empty(),
        "another user's message shows no reactions"
    );

    store.unreact(ada, c, answer.id, "👍").await.unwrap();
    not_found(store.unreact(ada, c, answer.id, "👍").await);
    assert!(store.reactions(ada, &[answer.id]).await.unwrap().is_empty());
}

#[tokio::test]
async fn presets_are_per_user_with_unique_names() {
    let (store, _db) = store().await;
    let (ada, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let preset = |name: &str| Preset {
        id: Uuid::now_v7(),
        name: name.into(),
        system_prompt: Some("Be brief.".into()),
        params: Params {
            temperature: Some(0.2),
            ..Params::default()
        },
        created_at: NOW,
        updated_at: NOW,
    };
    let terse = store.create_preset(ada, preset("Terse")).await.unwrap();
    store.create_preset(ada, preset("Verbose")).await.unwrap();
    assert!(matches!(
        store.create_preset(ada, preset("Terse")).await,
        Err(StoreError::Conflict(_))
    ));
    // Names are per user.
    store.create_preset(bob, preset("Terse")).await.unwrap();
    let names: Vec<String> = store
        .presets(ada)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["Terse", "Verbose"]);
    assert_eq!(store.preset(ada, terse.id).await.unwrap(), terse);
    let renamed = Preset {
        name: "Short".into(),
        ..terse.clone()
    };
    store.update_preset(ada, renamed.clone()).await.unwrap();
    assert_eq!(store.preset(ada, terse.id).await.unwrap().name, "Short");

    // Another user's ids.
    not_found(store.preset(bob, terse.id).await);
    not_found(
        store
            .update_preset(
                bob,
                Preset {
                    name: "Stolen".into(),
                    ..terse.clone()
                },
            )
            .await,
    );
    not_found(store.delete_preset(bob, terse.id).await);
    assert_eq!(store.preset(ada, terse.id).await.unwrap().name, "Short");

    store.delete_preset(ada, terse.id).await.unwrap();
    not_found(store.preset(ada, terse.id).await);
    not_found(store.delete_preset(ada, terse.id).await);
}

#[tokio::test]
async fn imports_store_whole_conversations_for_their_importer() {
    let (store, _db) = store().await;
    let (ada, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let export = confab_chat::transfer::read_import(
        br#"{"format":"confab.conversations","version":1,"exported_at":"2023-11-14T22:13:20Z",
             "conversations":[{"id":"00000000-0000-0000-0000-000000000001","title":"Imported",
             "model":null,"system_prompt":null,"params":{},"folder":null,"tags":["old"],
             "pinned":false,"archived":false,"active_leaf_id":null,
             "created_at":"2023-11-14T22:13:20Z","updated_at":"2023-11-14T22:13:20Z",
             "messages":[]}]}"#,
        NOW,
    );
    let imported: Vec<Imported> = match export {
        Ok(imported) => imported,
        Err(e) => panic!("the fixture must import: {e:?}"),
    };
    store.import(ada, &imported).await.unwrap();
    let id = imported[0].conversation.id;
    let stored = store.conversation(ada, id).await.unwrap();
    assert_eq!(
        (stored.title.as_str(), stored.tags),
        ("Imported", vec!["old".to_owned()])
    );
    not_found(store.conversation(bob, id).await);
}
