//! Housekeeping that runs in the background of every server process, once soon after start
//! and then hourly: the audit log's retention (entries older than
//! `admin.audit_retention_days` are archived to files, then deleted), and the pruning of
//! finished jobs (`bus.job_retention_days`) and of durable events every consumer has handled
//! (`bus.event_retention_days`). Each step is safe to run from several replicas at once.

use std::sync::Arc;
use std::time::Duration;

use confab_admin::SqlAuditLog;
use confab_core::config::Config;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::bus::Bus;

const DAY_MS: i64 = 24 * 3600 * 1000;

pub fn start(
    config: &Config,
    bus: Bus,
    audit: Arc<SqlAuditLog>,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) {
    let audit_days = config.admin.audit_retention_days;
    let archive = confab_admin::archive_dir(&config.data_dir);
    let job_days = i64::from(config.bus.job_retention_days);
    let event_days = i64::from(config.bus.event_retention_days);
    tasks.spawn(async move {
        let mut wait = Duration::from_secs(60);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            wait = Duration::from_secs(3600);
            match audit.apply_retention(audit_days, &archive).await {
                Ok(report) if report.entries > 0 => {
                    tracing::info!(
                        entries = report.entries,
                        files = report.files.len(),
                        "audit entries archived"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "audit retention failed; retrying in an hour"),
            }
            let now = confab_core::now_ms();
            match bus
                .prune(now - job_days * DAY_MS, now - event_days * DAY_MS)
                .await
            {
                Ok((jobs, events)) if jobs + events > 0 => {
                    tracing::info!(jobs, events, "finished jobs and handled events pruned");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "pruning jobs and events failed"),
            }
        }
    });
}
