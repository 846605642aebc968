//! The contract of the studio's storage ports ([`ProjectStore`], [`VersionStore`],
//! [`ChannelStore`]), written against `Arc<dyn SeoStore>` and run on the SQL adapter on the
//! backend under test: every method names the owner and another owner's ids find nothing;
//! versions are numbered without gaps or repeats under concurrency, and a job's version is
//! written once; a project's deletion takes its transcript and versions; a consent flow works
//! once and not after it expires; a deleted user's rows all go.

use std::sync::Arc;

use confab_core::config::DatabaseConfig;
use confab_seo::SqlSeoStore;
use confab_seo::domain::{
    Package, Project, Segment, Tone, Transcript, TranscriptFormat, VersionSource,
};
use confab_seo::ports::{
    ChannelRecord, ChannelStatus, NewVersion, PendingConsent, ProjectFilter, SeoStore,
};
use confab_store::{Db, StoreError};
use confab_testkit::TestDb;
use uuid::Uuid;

async fn sql_store() -> (Arc<dyn SeoStore>, TestDb) {
    let test_db = TestDb::new().await.unwrap();
    let db = Db::connect(&test_db.url, &DatabaseConfig::default())
        .await
        .unwrap();
    confab_seo::migrations().run(&db).await.unwrap();
    (Arc::new(SqlSeoStore::new(db)), test_db)
}

fn project(owner: Uuid, topic: &str, at: i64) -> Project {
    Project {
        id: Uuid::now_v7(),
        owner,
        topic: topic.into(),
        primary_keyword: topic.to_lowercase(),
        secondary_keywords: vec!["extra words".into()],
        language: "en".into(),
        tone: Tone::Friendly,
        audience: None,
        channel_name: None,
        links: Vec::new(),
        call_to_action: None,
        duration_secs: Some(300),
        category_id: None,
        has_transcript: false,
        archived: false,
        latest_version: None,
        latest_score: None,
        generation_job: None,
        created_at: at,
        updated_at: at,
    }
}

fn version(author: Uuid, title: &str, job: Option<Uuid>) -> NewVersion {
    NewVersion {
        source: VersionSource::Edited,
        author,
        package: Package {
            title: title.into(),
            ..Package::default()
        },
        score: 50,
        model: None,
        job_id: job,
    }
}

#[tokio::test]
async fn projects_belong_to_their_owner() {
    let (store, _db) = sql_store().await;
    let (ada, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let mut bread = project(ada, "Sourdough bread", 1);
    let transcript = Transcript {
        format: TranscriptFormat::Srt,
        segments: vec![Segment {
            start_ms: 0,
            end_ms: 1_000,
            text: "Hello".into(),
        }],
    };
    store
        .create_project(&bread, Some(("raw text", &transcript)))
        .await
        .unwrap();
    store
        .create_project(&project(ada, "Espresso 50% off", 2), None)
        .await
        .unwrap();

    let found = store.project(ada, bread.id).await.unwrap();
    assert!(found.has_transcript);
    assert_eq!(found.secondary_keywords, ["extra words"]);
    assert!(matches!(
        store.project(bob, bread.id).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.transcript(bob, bread.id).await.unwrap(), None);
    assert_eq!(
        store.transcript(ada, bread.id).await.unwrap(),
        Some(transcript)
    );
    assert_eq!(
        store
            .transcript_text(ada, bread.id)
            .await
            .unwrap()
            .as_deref(),
        Some("raw text")
    );

    let filter = |query: &str| ProjectFilter {
        query: Some(query.into()),
        limit: 10,
        ..ProjectFilter::default()
    };
    assert_eq!(
        store
            .projects(ada, &filter("BREAD sour"))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(store.projects(ada, &filter("50%")).await.unwrap().len(), 1);
    assert_eq!(store.projects(ada, &filter("%")).await.unwrap().len(), 1);
    assert_eq!(store.projects(ada, &filter("_")).await.unwrap().len(), 0);
    assert_eq!(
        store.projects(bob, &filter("bread")).await.unwrap().len(),
        0
    );

    // Newest change first, and the cursor goes on from there.
    let all = ProjectFilter {
        limit: 1,
        ..ProjectFilter::default()
    };
    let first = store.projects(ada, &all).await.unwrap();
    assert_eq!(first[0].topic, "Espresso 50% off");
    let next = store
        .projects(
            ada,
            &ProjectFilter {
                after: Some((first[0].updated_at, first[0].id)),
                ..all.clone()
            },
        )
        .await
        .unwrap();
    assert_eq!(next[0].id, bread.id);

    // Changes by another owner touch nothing.
    let mut stolen = bread.clone();
    stolen.owner = bob;
    stolen.topic = "Stolen".into();
    assert!(matches!(
        store.update_project(&stolen, Some(None)).await,
        Err(StoreError::NotFound)
    ));
    assert!(store.transcript(ada, bread.id).await.unwrap().is_some());
    bread.archived = true;
    bread.updated_at = 3;
    store.update_project(&bread, Some(None)).await.unwrap();
    let archived = store.project(ada, bread.id).await.unwrap();
    assert!(archived.archived && !archived.has_transcript);
    let only_archived = ProjectFilter {
        archived: Some(true),
        limit: 10,
        ..ProjectFilter::default()
    };
    assert_eq!(store.projects(ada, &only_archived).await.unwrap().len(), 1);

    assert!(matches!(
        store.delete_project(bob, bread.id).await,
        Err(StoreError::NotFound)
    ));
    store
        .add_version(ada, bread.id, version(ada, "v1", None), 4)
        .await
        .unwrap();
    store.delete_project(ada, bread.id).await.unwrap();
    assert!(matches!(
        store.version(ada, bread.id, 1).await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn versions_are_numbered_once_each_under_concurrency() {
    let (store, _db) = sql_store().await;
    let owner = Uuid::now_v7();
    let p = project(owner, "Bread", 1);
    store.create_project(&p, None).await.unwrap();
    let adds = (0..20).map(|i| {
        let store = store.clone();
        async move {
            store
                .add_version(owner, p.id, version(owner, &format!("t{i}"), None), 10 + i)
                .await
                .unwrap()
                .number
        }
    });
    let mut numbers = futures::future::join_all(adds).await;
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=20).collect::<Vec<u32>>());
    let project = store.project(owner, p.id).await.unwrap();
    assert_eq!(project.latest_version, Some(20));
    assert_eq!(project.latest_score, Some(50));
    let listed = store.versions(owner, p.id).await.unwrap();
    assert_eq!(listed.first().map(|v| v.number), Some(20));
    assert!(
        store
            .versions(Uuid::now_v7(), p.id)
            .await
            .unwrap()
            .is_empty()
    );

    // A job's version is written once, however often the job runs.
    let job = Uuid::now_v7();
    let first = store
        .add_version(owner, p.id, version(owner, "by the job", Some(job)), 100)
        .await
        .unwrap();
    let again = store
        .add_version(owner, p.id, version(owner, "the job again", Some(job)), 101)
        .await
        .unwrap();
    assert_eq!(again.number, first.number);
    assert_eq!(again.package.title, "by the job");
    assert_eq!(
        store
            .version_of_job(owner, job)
            .await
            .unwrap()
            .map(|v| v.number),
        Some(21)
    );
    assert_eq!(
        store.version_of_job(Uuid::now_v7(), job).await.unwrap(),
        None
    );
    assert!(matches!(
        store
            .add_version(Uuid::now_v7(), p.id, version(owner, "x", None), 1)
            .await,
        Err(StoreError::NotFound)
    ));
    let history = store.score_history(owner, 0, 1_000).await.unwrap();
    assert_eq!(history.len(), 21);
    assert!(
        history
            .windows(2)
            .all(|w| w[0].created_at <= w[1].created_at)
    );
}

#[tokio::test]
async fn consent_flows_work_once_and_expire_and_purges_take_everything() {
    let (store, _db) = sql_store().await;
    let owner = Uuid::now_v7();
    let consent = |state: &str, expires_at: i64| PendingConsent {
        state: state.into(),
        owner,
        verifier_sealed: "sealed".into(),
        redirect_uri: "http://127.0.0.1/cb".into(),
        expires_at,
    };
    store.put_consent(&consent("s1", 1_000), 0).await.unwrap();
    assert_eq!(
        store.take_consent("s1", 10).await.unwrap().map(|c| c.owner),
        Some(owner)
    );
    assert_eq!(store.take_consent("s1", 10).await.unwrap(), None, "once");
    store.put_consent(&consent("s2", 1_000), 0).await.unwrap();
    assert_eq!(
        store.take_consent("s2", 1_000).await.unwrap(),
        None,
        "expired"
    );
    // A user cannot pile flows up: the oldest go.
    for i in 0..10 {
        store
            .put_consent(&consent(&format!("many{i}"), 5_000 + i), 0)
            .await
            .unwrap();
    }
    assert_eq!(store.take_consent("many0", 1).await.unwrap(), None);
    assert!(store.take_consent("many9", 1).await.unwrap().is_some());

    let record = ChannelRecord {
        owner,
        refresh_token_sealed: "xchacha20poly1305:abc".into(),
        status: ChannelStatus::Connected,
        connected_at: 1,
        updated_at: 1,
    };
    store.save_channel(&record).await.unwrap();
    store
        .set_channel_status(owner, ChannelStatus::Reconnect, 2)
        .await
        .unwrap();
    assert_eq!(
        store.channel(owner).await.unwrap().map(|c| c.status),
        Some(ChannelStatus::Reconnect)
    );
    store.save_channel(&record).await.unwrap();
    assert_eq!(
        store.channel(owner).await.unwrap().map(|c| c.status),
        Some(ChannelStatus::Connected)
    );
    assert_eq!(store.channel(Uuid::now_v7()).await.unwrap(), None);

    let p = project(owner, "Bread", 1);
    store.create_project(&p, None).await.unwrap();
    store
        .add_version(owner, p.id, version(owner, "v", None), 2)
        .await
        .unwrap();
    assert_eq!(store.purge_owner(owner).await.unwrap(), 1);
    assert_eq!(store.channel(owner).await.unwrap(), None);
    assert!(store.versions(owner, p.id).await.unwrap().is_empty());
    assert_eq!(store.purge_owner(owner).await.unwrap(), 0, "idempotent");
    assert!(!store.delete_channel(owner).await.unwrap());
}
