//! Generation: start one (a durable job), read its state, and follow a project's progress
//! as server-sent events.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use confab_bus::{Envelope, Received};
use confab_core::ApiError;
use confab_core::error::ErrorEnvelope;
use confab_core::error::responses::{Authenticated, ById, Forbidden, JsonBody, ModelCall};
use confab_core::extract::Json;
use futures::StreamExt;
use http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{Creator, SeoState};
use crate::events::{GenerationCompleted, GenerationFailed, GenerationProgress};
use crate::service::Generation;

pub(super) fn routes() -> OpenApiRouter<SeoState> {
    OpenApiRouter::new()
        .routes(routes!(start_generation, get_generation))
        .routes(routes!(follow_generation))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateRequest {
    /// A model or alias; absent: the studio's model, else the platform's default.
    pub model: Option<String>,
}

/// Generate a metadata package for the project as a background job. Progress arrives as
/// `seo.generation.*` events on the WebSocket and on `…/generation/events`.
#[utoipa::path(post, path = "/api/v1/seo/projects/{id}/generation", tag = "seo",
    params(("id" = Uuid, Path)), request_body = GenerateRequest,
    responses(Authenticated, Forbidden, JsonBody, ById, ModelCall,
        (status = 202, body = Generation),
        (status = 409, body = ErrorEnvelope, description = "already_generating"),
        (status = 429, body = ErrorEnvelope, description = "too_many_generations: this user's generations queued or running are at the cap"),
        (status = 422, body = ErrorEnvelope, description = "unknown_model")),
    security(("bearer" = [])))]
async fn start_generation(
    State(state): State<SeoState>,
    Creator(principal): Creator,
    Path(id): Path<Uuid>,
    Json(body): Json<GenerateRequest>,
) -> Result<(StatusCode, axum::Json<Generation>), ApiError> {
    let generation = state
        .service
        .start_generation(&principal, id, body.model)
        .await?;
    Ok((StatusCode::ACCEPTED, axum::Json(generation)))
}

/// The project's current or last generation; 404 when it never had one.
#[utoipa::path(get, path = "/api/v1/seo/projects/{id}/generation", tag = "seo",
    params(("id" = Uuid, Path)),
    responses(Authenticated, Forbidden, ById, (status = 200, body = Generation)),
    security(("bearer" = [])))]
async fn get_generation(
    State(state): State<SeoState>,
    Creator(principal): Creator,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Generation>, ApiError> {
    state
        .service
        .generation(&principal, id)
        .await?
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found("this project was never generated"))
}

/// The project's generation as SSE: `state` first (the generation as it is, if any), then
/// `progress`, and `completed` or `failed`, after which the stream ends.
#[utoipa::path(get, path = "/api/v1/seo/projects/{id}/generation/events", tag = "seo",
    params(("id" = Uuid, Path)),
    responses(Authenticated, Forbidden, ById,
        (status = 200, content_type = "text/event-stream", description = "`state`, `progress`…, then `completed` or `failed`"),
        (status = 429, body = ErrorEnvelope, description = "too_many_feeds: this user has as many feeds open as allowed")),
    security(("bearer" = [])))]
async fn follow_generation(
    State(state): State<SeoState>,
    Creator(principal): Creator,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let slot = state.service.open_feed(principal.user_id)?;
    // Subscribe before reading the state, so nothing between the two is missed.
    let events = state
        .service
        .events()
        .subscribe(&confab_bus::user_topic(principal.user_id));
    let current = state.service.generation(&principal, id).await?;
    let finished = current
        .as_ref()
        .is_some_and(|g| !matches!(g.state.as_str(), "queued" | "running"));
    let first = Event::default()
        .event("state")
        .data(serde_json::to_string(&current).unwrap_or_default());
    let rest = events
        .filter_map(move |received| async move {
            match received {
                Received::Event(envelope) => project_event(&envelope, id),
                Received::Lagged(_) => None,
            }
        })
        .boxed();
    // Ends right after the event that ends the generation (or at once when it had ended);
    // the feed's place is held as long as the stream lives.
    let rest = futures::stream::unfold(
        (rest, finished, slot),
        |(mut rest, done, slot)| async move {
            if done {
                return None;
            }
            let (event, last) = rest.next().await?;
            Some((Ok::<_, Infallible>(event), (rest, last, slot)))
        },
    );
    let stream = futures::stream::once(async move { Ok::<_, Infallible>(first) }).chain(rest);
    Ok(Sse::new(stream)
        .keep_alive(
            KeepAlive::new()
                .interval(Duration::from_secs(15))
                .text("ping"),
        )
        .into_response())
}

/// The SSE event for `envelope` when it concerns `project`, and whether it ends the feed.
fn project_event(envelope: &Envelope, project: Uuid) -> Option<(Event, bool)> {
    let event = |name: &'static str, data: &serde_json::Value| {
        Event::default()
            .event(name)
            .data(serde_json::to_string(data).unwrap_or_default())
    };
    let concerns = |data: &serde_json::Value| {
        data.get("project_id").and_then(|v| v.as_str()) == Some(&project.to_string())
    };
    let name = match envelope.kind.as_str() {
        k if k == <GenerationProgress as confab_bus::TypedEvent>::KIND => "progress",
        k if k == <GenerationCompleted as confab_bus::TypedEvent>::KIND => "completed",
        k if k == <GenerationFailed as confab_bus::TypedEvent>::KIND => "failed",
        _ => return None,
    };
    concerns(&envelope.data).then(|| (event(name, &envelope.data), name != "progress"))
}
