//! The audit port over durable events: a record travels whole and is read back once.

use std::sync::Arc;

use confab_bus::audit::{AUDIT_TOPIC_PREFIX, DurableAuditLog, decode_record};
use confab_bus::{DurableEvents, Envelope, SqlOutbox};
use confab_core::audit::{AuditAction, AuditEvent, AuditLog, Outcome};
use confab_core::extract::ClientMeta;
use futures::StreamExt;

#[derive(Clone, Copy)]
struct Login;

impl AuditAction for Login {
    fn name(self) -> &'static str {
        "auth.login"
    }
}

#[tokio::test]
async fn records_travel_whole_as_durable_events() -> anyhow::Result<()> {
    let (db, _guard) = super::test_db().await?;
    let outbox: Arc<dyn DurableEvents> = Arc::new(SqlOutbox::new(db));
    let log = DurableAuditLog::new(outbox.clone(), "auth");
    let actor = uuid::Uuid::now_v7();
    let client = ClientMeta {
        ip: Some("10.1.2.3".parse()?),
        user_agent: Some("test".into()),
        request_id: Some("req-1".into()),
    };
    log.record(
        AuditEvent::new(Login, Outcome::Failure, &client)
            .actor(actor)
            .target("someone@example.com")
            .details(serde_json::json!({"reason": "bad password"})),
    )
    .await?;
    let mut stream = outbox.consume("test.audit", AUDIT_TOPIC_PREFIX).await?;
    let delivery = stream.next().await.expect("one delivery")?;
    assert_eq!(delivery.event.topic, "audit.auth");
    let record = decode_record(&delivery.event).expect("an audit record");
    assert_eq!(record.action, "auth.login");
    assert_eq!(record.actor, Some(actor));
    assert_eq!(record.target.as_deref(), Some("someone@example.com"));
    assert_eq!(record.outcome, Outcome::Failure);
    assert_eq!(record.ip, client.ip);
    assert_eq!(record.request_id.as_deref(), Some("req-1"));
    assert_eq!(record.details["reason"], "bad password");
    let other = Envelope::new("audit.auth", "something.else", record.details);
    assert_eq!(decode_record(&other), None);
    Ok(())
}
