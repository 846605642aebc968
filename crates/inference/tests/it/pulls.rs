//! The contract of the `PullStore` port: a pull is recorded queued, notes its job, moves
//! through its states keeping the bytes it has (what a retried pull resumes from), and is
//! found by id, among the unfinished pulls to resume at start, and in the newest-first list.

use confab_inference::ports::PullStore;
use confab_inference::pulls::{NewPull, PullProgress, PullState, SqlPullStore};
use uuid::Uuid;

fn new_pull(created_at: i64, by: Option<Uuid>) -> NewPull {
    NewPull {
        id: Uuid::now_v7(),
        source: "https://example.com/model.gguf".into(),
        sha256: Some("ab".repeat(32)),
        model: "model".into(),
        created_by: by,
        created_at,
    }
}

fn progress(state: PullState, bytes: u64, total: Option<u64>, error: Option<&str>) -> PullProgress {
    PullProgress {
        state,
        bytes,
        total,
        error: error.map(Into::into),
    }
}

#[tokio::test]
async fn a_pull_is_recorded_queued_with_its_job() {
    let (db, _test_db) = super::database().await;
    let store = SqlPullStore::new(db.clone());
    let admin = Uuid::now_v7();
    let pull = new_pull(1_000, Some(admin));
    store.insert(&pull).await.unwrap();
    let stored = store.get(pull.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.id, stored.source.as_str(), stored.model.as_str()),
        (pull.id, pull.source.as_str(), "model")
    );
    assert_eq!(stored.sha256, pull.sha256);
    assert_eq!(stored.state, PullState::Queued);
    assert_eq!((stored.bytes, stored.total, stored.error), (0, None, None));
    assert_eq!((stored.job_id, stored.created_by), (None, Some(admin)));
    assert_eq!((stored.created_at, stored.updated_at), (1_000, 1_000));

    let job = Uuid::now_v7();
    store.set_job(pull.id, job).await.unwrap();
    assert_eq!(store.get(pull.id).await.unwrap().unwrap().job_id, Some(job));
    // A pull without an actor (the CLI) and an id that names nothing.
    let anonymous = new_pull(2_000, None);
    store.insert(&anonymous).await.unwrap();
    assert_eq!(
        store.get(anonymous.id).await.unwrap().unwrap().created_by,
        None
    );
    assert!(store.get(Uuid::now_v7()).await.unwrap().is_none());
    db.close().await;
}

#[tokio::test]
async fn a_retried_pull_keeps_its_bytes_through_its_states() {
    let (db, _test_db) = super::database().await;
    let store = SqlPullStore::new(db.clone());
    let pull = new_pull(1_000, None);
    store.insert(&pull).await.unwrap();
    let steps = [
        progress(PullState::Running, 0, None, None),
        progress(PullState::Running, 400, Some(1_000), None),
        // Failed with attempts left: queued again, the bytes so far kept for the resume.
        progress(
            PullState::Queued,
            400,
            Some(1_000),
            Some("connection reset"),
        ),
        progress(PullState::Running, 400, Some(1_000), None),
        progress(PullState::Completed, 1_000, Some(1_000), None),
    ];
    for (i, step) in steps.iter().enumerate() {
        let at = 2_000 + i64::try_from(i).unwrap();
        store.update(pull.id, step, at).await.unwrap();
        let stored = store.get(pull.id).await.unwrap().unwrap();
        assert_eq!(
            (
                stored.state,
                stored.bytes,
                stored.total,
                stored.error.as_deref()
            ),
            (step.state, step.bytes, step.total, step.error.as_deref()),
            "step {i}"
        );
        assert_eq!(stored.updated_at, at);
        assert_eq!(stored.created_at, 1_000, "the creation time stays");
    }
    let retried = progress(PullState::Queued, 400, Some(1_000), Some("reset"));
    store.update(pull.id, &retried, 9_000).await.unwrap();
    let status = store.get(pull.id).await.unwrap().unwrap().status();
    assert_eq!((status.bytes, status.percent), (400, Some(40.0)));
    assert_eq!(status.error.as_deref(), Some("reset"));
    // Large files: sizes past 2^32 survive.
    let big = progress(PullState::Running, 5 << 32, Some(6 << 32), None);
    store.update(pull.id, &big, 9_001).await.unwrap();
    let stored = store.get(pull.id).await.unwrap().unwrap();
    assert_eq!((stored.bytes, stored.total), (5 << 32, Some(6 << 32)));
    // Updating a pull that does not exist creates nothing.
    let ghost = Uuid::now_v7();
    store.update(ghost, &retried, 9_002).await.unwrap();
    assert!(store.get(ghost).await.unwrap().is_none());
    db.close().await;
}

#[tokio::test]
async fn unfinished_pulls_are_found_oldest_first_and_recent_ones_newest_first() {
    let (db, _test_db) = super::database().await;
    let store = SqlPullStore::new(db.clone());
    let states = [
        PullState::Running,
        PullState::Completed,
        PullState::Queued,
        PullState::Failed,
        PullState::Cancelled,
        PullState::Queued,
    ];
    let mut ids = Vec::new();
    for (i, state) in states.into_iter().enumerate() {
        let pull = new_pull(1_000 + i64::try_from(i).unwrap(), None);
        store.insert(&pull).await.unwrap();
        if state != PullState::Queued {
            store
                .update(pull.id, &progress(state, 10, Some(20), None), 5_000)
                .await
                .unwrap();
        }
        ids.push(pull.id);
    }
    let unfinished: Vec<Uuid> = store
        .unfinished()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(unfinished, [ids[0], ids[2], ids[5]]);
    let recent: Vec<Uuid> = store
        .recent(4)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(recent, [ids[5], ids[4], ids[3], ids[2]]);
    assert_eq!(store.recent(100).await.unwrap().len(), 6);
    db.close().await;
}
