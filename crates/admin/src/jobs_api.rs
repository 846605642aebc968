//! Background tasks for admins: every durable job of every service (model pulls, titles,
//! user purges, …) with its state and progress; cancel and retry; and a live feed of their
//! changes (`GET /api/v1/admin/jobs/events`, Server-Sent Events).

use crate::actions::AdminAction;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRef, Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use confab_bus::{
    EventBus, JOB_UPDATED, JOBS_TOPIC, Job, JobError, JobFilter, JobQueue, JobState, Received,
    job_event_data,
};
use confab_core::ApiError;
use confab_core::audit::{AuditEvent, AuditLog, Outcome};
use confab_core::auth::{AdminUser, DynAuthenticator};
use confab_core::error::ErrorEnvelope;
use confab_core::error::responses::{AdminOnly, Authenticated, BadQuery, ById};
use confab_core::extract::ClientMeta;
use confab_core::pagination::{Page, PageParams, encode_cursor};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

#[derive(Clone)]
pub struct JobsState {
    pub jobs: Arc<dyn JobQueue>,
    pub events: Arc<dyn EventBus>,
    pub audit: Arc<dyn AuditLog>,
    pub authenticator: DynAuthenticator,
}

impl FromRef<JobsState> for DynAuthenticator {
    fn from_ref(state: &JobsState) -> Self {
        state.authenticator.clone()
    }
}

pub fn router(state: JobsState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(list_jobs))
        .routes(routes!(job_events))
        .routes(routes!(get_job))
        .routes(routes!(cancel_job))
        .routes(routes!(retry_job))
        .with_state(state)
}

/// A background job as admins see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobView {
    pub id: Uuid,
    /// What it does, e.g. `model.pull`, `chat.title`, `user.purge`.
    pub kind: String,
    pub payload: serde_json::Value,
    pub priority: i32,
    #[schema(value_type = String, example = "running")]
    pub state: JobState,
    pub attempts: u32,
    pub max_attempts: u32,
    /// When a queued job may run (next).
    #[serde(with = "confab_core::id::rfc3339_ms")]
    #[schema(value_type = String, format = DateTime)]
    pub run_after: i64,
    /// 0–100, when the job reports it.
    pub progress: Option<f64>,
    pub progress_message: Option<String>,
    pub result: Option<serde_json::Value>,
    /// The last attempt's error.
    pub error: Option<String>,
    pub cancel_requested: bool,
    pub created_by: Option<Uuid>,
    #[serde(with = "confab_core::id::rfc3339_ms")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(with = "confab_core::id::rfc3339_ms")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
    /// The worker running it.
    pub worker: Option<String>,
}

impl From<Job> for JobView {
    fn from(job: Job) -> Self {
        Self {
            id: job.id,
            kind: job.kind,
            payload: job.payload,
            priority: job.priority,
            state: job.state,
            attempts: job.attempts,
            max_attempts: job.max_attempts,
            run_after: job.run_after,
            progress: job.progress,
            progress_message: job.progress_message,
            result: job.result,
            error: job.error,
            cancel_requested: job.cancel_requested,
            created_by: job.created_by,
            created_at: job.created_at,
            updated_at: job.updated_at,
            worker: job.worker,
        }
    }
}

fn job_error(error: JobError) -> ApiError {
    match error {
        JobError::NotFound => ApiError::not_found("no such job"),
        JobError::Conflict(message) => ApiError::conflict("job_state", message),
        JobError::Unavailable(detail) => ApiError::unavailable(detail),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobQuery {
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    pub state: Option<String>,
    /// A job kind, e.g. `model.pull`.
    pub kind: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Items per page (1 to 200, default 50).
    pub limit: Option<u32>,
}

/// Background jobs, newest first (admin).
#[utoipa::path(get, path = "/api/v1/admin/jobs", tag = "admin", params(JobQuery),
    responses(Authenticated, AdminOnly, BadQuery,
        (status = 200, body = Page<JobView>), (status = 400, body = ErrorEnvelope, description = "invalid_state, invalid_cursor, invalid_limit")),
    security(("bearer" = [])))]
async fn list_jobs(
    State(state): State<JobsState>,
    _admin: AdminUser,
    Query(query): Query<JobQuery>,
) -> Result<axum::Json<Page<JobView>>, ApiError> {
    let page = PageParams {
        cursor: query.cursor,
        limit: query.limit,
    };
    let limit = page.limit()?;
    let job_state = match query.state.as_deref() {
        None | Some("") => None,
        Some(s) => Some(JobState::parse(s).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_state",
                format!(
                    "unknown job state `{s}`; use queued, running, succeeded, failed or cancelled"
                ),
            )
        })?),
    };
    let filter = JobFilter {
        state: job_state,
        kind: query.kind.filter(|k| !k.is_empty()),
        created_by: None,
        before: page.position::<Uuid>()?,
        limit: limit + 1,
    };
    let jobs = state.jobs.list(&filter).await.map_err(job_error)?;
    let views = jobs.into_iter().map(JobView::from).collect();
    Ok(axum::Json(Page::from_rows(views, limit, |j: &JobView| {
        encode_cursor(&j.id)
    })))
}

/// One background job (admin).
#[utoipa::path(get, path = "/api/v1/admin/jobs/{id}", tag = "admin", params(("id" = Uuid, Path)),
    responses(Authenticated, AdminOnly, ById,
        (status = 200, body = JobView)),
    security(("bearer" = [])))]
async fn get_job(
    State(state): State<JobsState>,
    _admin: AdminUser,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<JobView>, ApiError> {
    let job = state
        .jobs
        .get(id)
        .await
        .map_err(job_error)?
        .ok_or_else(|| ApiError::not_found("no such job"))?;
    Ok(axum::Json(job.into()))
}

/// Cancel a job (admin): a queued job at once; a running one stops at its next heartbeat
/// (`cancel_requested` until then). A finished job is 409 `job_state`.
#[utoipa::path(post, path = "/api/v1/admin/jobs/{id}/cancel", tag = "admin", params(("id" = Uuid, Path)),
    responses(Authenticated, AdminOnly, ById,
        (status = 200, body = JobView), (status = 409, body = ErrorEnvelope, description = "job_state: the job already ended")),
    security(("bearer" = [])))]
async fn cancel_job(
    State(state): State<JobsState>,
    admin: AdminUser,
    client: ClientMeta,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<JobView>, ApiError> {
    let job = state.jobs.cancel(id).await.map_err(job_error)?;
    state
        .audit
        .record(
            AuditEvent::new(AdminAction::JobCancelled, Outcome::Success, &client)
                .actor(admin.principal().user_id)
                .target(id.to_string())
                .details(json!({"kind": job.kind, "state": job.state})),
        )
        .await
        .ok();
    publish(&state, &job).await;
    Ok(axum::Json(job.into()))
}

/// Run a failed or cancelled job again with fresh attempts (admin). Other states are 409
/// `job_state`.
#[utoipa::path(post, path = "/api/v1/admin/jobs/{id}/retry", tag = "admin", params(("id" = Uuid, Path)),
    responses(Authenticated, AdminOnly, ById,
        (status = 200, body = JobView), (status = 409, body = ErrorEnvelope, description = "job_state: only failed or cancelled jobs are retried")),
    security(("bearer" = [])))]
async fn retry_job(
    State(state): State<JobsState>,
    admin: AdminUser,
    client: ClientMeta,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<JobView>, ApiError> {
    let job = state.jobs.retry(id).await.map_err(job_error)?;
    state
        .audit
        .record(
            AuditEvent::new(AdminAction::JobRetried, Outcome::Success, &client)
                .actor(admin.principal().user_id)
                .target(id.to_string())
                .details(json!({"kind": job.kind})),
        )
        .await
        .ok();
    publish(&state, &job).await;
    Ok(axum::Json(job.into()))
}

async fn publish(state: &JobsState, job: &Job) {
    let data = job_event_data(job);
    if let Err(e) = state
        .events
        .publish(confab_bus::Envelope::new(JOBS_TOPIC, JOB_UPDATED, data))
        .await
    {
        tracing::warn!(error = %e, "cannot publish a job change");
    }
}

/// Live changes of every job (admin): Server-Sent Events `job.updated` with the job's state
/// and progress; `resync` when this stream fell behind (list again).
#[utoipa::path(get, path = "/api/v1/admin/jobs/events", tag = "admin",
    responses(Authenticated, AdminOnly,
        (status = 200, content_type = "text/event-stream", description = "`job.updated` events")),
    security(("bearer" = [])))]
async fn job_events(State(state): State<JobsState>, _admin: AdminUser) -> Response {
    let events = state.events.subscribe(JOBS_TOPIC).map(|received| {
        let event = match received {
            Received::Event(envelope) => Event::default()
                .event(envelope.kind)
                .json_data(envelope.data)
                .unwrap_or_else(|_| Event::default().comment("unencodable event")),
            Received::Lagged(missed) => Event::default()
                .event("resync")
                .data(json!({"missed": missed}).to_string()),
        };
        Ok::<_, Infallible>(event)
    });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
