//! Audit records from other processes: sent as durable events, appended to the chain once
//! each, redeliveries included, with the time they happened.

use std::sync::Arc;
use std::time::Duration;

use confab_admin::SqlAuditLog;
use confab_admin::audit::{AuditFilter, AuditIngest};
use confab_bus::audit::DurableAuditLog;
use confab_bus::{DurableEvents, SqlOutbox};
use confab_core::audit::{AuditAction, AuditEvent, AuditLog, Outcome};
use confab_core::extract::ClientMeta;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Clone, Copy)]
struct Made;

impl AuditAction for Made {
    fn name(self) -> &'static str {
        "chat.share_created"
    }
}

#[tokio::test]
async fn records_sent_by_other_processes_are_appended_once_each() {
    let (db, _guard) = super::database().await;
    confab_bus::migrations().run(&db).await.unwrap();
    let log = Arc::new(SqlAuditLog::open(db.clone()).await.unwrap());
    let outbox: Arc<dyn DurableEvents> = Arc::new(SqlOutbox::new(db.clone()));
    // The chat service of another process records two events.
    let remote = DurableAuditLog::new(outbox.clone(), "chat");
    let actor = uuid::Uuid::now_v7();
    for target in ["share-1", "share-2"] {
        remote
            .record(
                AuditEvent::new(Made, Outcome::Success, &ClientMeta::default())
                    .actor(actor)
                    .target(target),
            )
            .await
            .unwrap();
    }
    let tasks = TaskTracker::new();
    let shutdown = CancellationToken::new();
    AuditIngest::start(log.clone(), outbox.clone(), &tasks, shutdown.clone());
    let entries = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let entries = log.list(&AuditFilter::default(), None, 10).await.unwrap();
            if entries.len() == 2 {
                return entries;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("both records are appended");
    assert!(entries.iter().all(|e| e.action == "chat.share_created"));
    assert_eq!(
        entries[0].target.as_deref(),
        Some("share-2"),
        "newest first"
    );

    // A redelivery (the same record again) lands on the same entry.
    let again = entries[1].clone();
    let record = confab_core::audit::AuditRecord {
        id: again.id.parse().unwrap(),
        at: again.at,
        actor: Some(actor),
        action: again.action.clone(),
        target: again.target.clone(),
        outcome: Outcome::Success,
        ip: None,
        user_agent: None,
        request_id: None,
        details: serde_json::Value::Null,
    };
    let appended = log.append_record(record).await.unwrap();
    assert_eq!(appended.seq, again.seq);
    assert_eq!(
        log.list(&AuditFilter::default(), None, 10)
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(
        log.verify_with_archives(None)
            .await
            .unwrap()
            .first_broken
            .is_none()
    );
    shutdown.cancel();
    tasks.close();
    tasks.wait().await;
}
