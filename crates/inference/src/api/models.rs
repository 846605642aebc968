//! The models API: installed models with their details (file paths for admins only), the
//! curated catalog, pulls as background jobs with their progress feed, and deletions.

use crate::actions::ModelAction;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use confab_core::auth::{CurrentUser, Scope};
use confab_core::error::responses::{AdminOnly, Authenticated, BadQuery, ById, JsonBody};
use http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::InferenceError;
use crate::models::LocalModel;

use super::InferenceState;
use super::openai::data;

pub(super) fn routes() -> OpenApiRouter<InferenceState> {
    OpenApiRouter::new()
        .routes(routes!(installed_models))
        .routes(routes!(catalog))
        .routes(routes!(list_pulls, start_pull))
        .routes(routes!(pull_status, cancel_pull))
        .routes(routes!(pull_events))
        .routes(routes!(delete_model))
}

/// The models the service knows, listed on a blocking thread: listing reads the models
/// directory (and the header of a new or changed GGUF file).
pub(super) async fn models_off_thread(
    state: &InferenceState,
) -> Result<Vec<crate::service::ModelEntry>, tokio::task::JoinError> {
    let service = state.service.clone();
    tokio::task::spawn_blocking(move || service.models()).await
}

/// One installed or configured model with what is known about it.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstalledModel {
    pub id: String,
    /// `embedded` for local GGUF models, else the provider's name.
    pub provider: String,
    /// Local models only.
    pub local: Option<InstalledLocalModel>,
    /// The model used when a request names none.
    pub default: bool,
    /// Tokens of context a request may use (prompt and answer), where known: for local models
    /// the engine's context size capped by the model's own.
    pub context_tokens: Option<usize>,
}

/// A GGUF file of the local store as listed.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstalledLocalModel {
    pub name: String,
    /// The file on the server: shown to admins only (`null` for everyone else).
    pub path: Option<String>,
    pub size_bytes: u64,
    /// Recorded at pull time.
    pub sha256: Option<String>,
    #[serde(flatten)]
    pub meta: crate::gguf::GgufMeta,
}

impl InstalledLocalModel {
    /// The listing of `model`; its path only when `admin`, since a server's file layout
    /// helps attackers and is of no use to anyone else.
    fn of(model: LocalModel, admin: bool) -> Self {
        Self {
            name: model.name,
            path: admin.then(|| model.path.display().to_string()),
            size_bytes: model.size_bytes,
            sha256: model.sha256,
            meta: model.meta,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InstalledModels {
    pub items: Vec<InstalledModel>,
}

/// Installed models with provider, size, quantization, parameters and context length (file
/// paths for admins only). API keys need the `inference` or `chat` scope.
#[utoipa::path(get, path = "/api/v1/models", tag = "models",
    responses(Authenticated,
        (status = 200, body = InstalledModels),
        (status = 403, body = confab_core::error::ErrorEnvelope, description = "insufficient_scope: the API key has neither the `inference` nor the `chat` scope")),
    security(("bearer" = [])))]
async fn installed_models(
    State(state): State<InferenceState>,
    CurrentUser(principal): CurrentUser,
) -> Result<axum::Json<InstalledModels>, confab_core::ApiError> {
    // Chat clients list models to pick one, so either scope will do.
    if !principal.allows(Scope::Inference) && !principal.allows(Scope::Chat) {
        return Err(confab_core::ApiError::forbidden(
            "insufficient_scope",
            "this API key needs the `inference` or `chat` scope to list models",
        ));
    }
    let admin = principal.is_admin();
    let service = state.service.clone();
    // Off the async threads: listing reads the models directory, and context sizes and the
    // default model look the local models up again (answered from the store's cache).
    let items = tokio::task::spawn_blocking(move || {
        let default = service.default_model();
        service
            .models()
            .into_iter()
            .map(|m| InstalledModel {
                default: default.as_deref() == Some(m.id.as_str()),
                context_tokens: service.context_tokens(&m.id),
                id: m.id,
                provider: m.provider,
                local: m.local.map(|local| InstalledLocalModel::of(local, admin)),
            })
            .collect()
    })
    .await
    .map_err(|e| confab_core::ApiError::internal(format!("the model listing thread: {e}")))?;
    Ok(axum::Json(InstalledModels { items }))
}

/// Query of the catalog.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CatalogQuery {
    /// Words to look for in names, families and descriptions.
    pub q: Option<String>,
    /// Only models with this capability (`chat`, `tools`).
    pub capability: Option<String>,
    /// Only models at most this many bytes.
    pub max_size: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CatalogPage {
    /// The catalog file's version.
    pub version: u32,
    pub items: Vec<crate::catalog::CatalogEntry>,
}

/// Installable models from the curated catalog, best match first.
#[utoipa::path(get, path = "/api/v1/models/catalog", tag = "models", params(CatalogQuery),
    responses(Authenticated, BadQuery,
        (status = 200, body = CatalogPage)),
    security(("bearer" = [])))]
async fn catalog(
    State(state): State<InferenceState>,
    _user: CurrentUser,
    axum::extract::Query(query): axum::extract::Query<CatalogQuery>,
) -> axum::Json<CatalogPage> {
    let catalog = state.service.catalog();
    axum::Json(CatalogPage {
        version: catalog.version,
        items: catalog.search(
            query.q.as_deref(),
            query.capability.as_deref(),
            query.max_size,
        ),
    })
}

#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PullRequest {
    /// A catalog name, `org/repo/file.gguf` on Hugging Face, an https URL, a file in the
    /// server's import directory (`inference.import_dir`, when set), or
    /// `ollama:<provider>/<model>` to have a configured Ollama provider pull `model`.
    pub source: String,
    /// Refuse the file unless its sha256 is this (catalog entries bring their own).
    pub sha256: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PullList {
    pub items: Vec<crate::pulls::PullStatus>,
}

fn api_error(e: crate::pulls::PullError) -> confab_core::ApiError {
    use crate::models::ModelStoreError;
    match e {
        crate::pulls::PullError::Source(e @ ModelStoreError::Forbidden(_)) => {
            confab_core::ApiError::validation("pull_target_forbidden", e.to_string())
        }
        crate::pulls::PullError::Source(
            e @ (ModelStoreError::LocalPath(_) | ModelStoreError::NotImportable(_)),
        ) => confab_core::ApiError::validation("local_path_forbidden", e.to_string()),
        crate::pulls::PullError::Source(e) => {
            confab_core::ApiError::validation("invalid_source", e.to_string())
        }
        crate::pulls::PullError::Provider(message) => {
            confab_core::ApiError::validation("invalid_source", message)
        }
        crate::pulls::PullError::Store(e) => confab_core::ApiError::internal(e.to_string()),
    }
}

/// Start pulling a model in the background (admin). Poll the returned id, or subscribe to
/// its events; an interrupted pull resumes.
#[utoipa::path(post, path = "/api/v1/models/pulls", tag = "models", request_body = PullRequest,
    responses(
        Authenticated, AdminOnly, JsonBody,
        (status = 202, body = crate::pulls::PullStatus),
        (status = 422, body = confab_core::error::ErrorEnvelope, description = "invalid_source; pull_target_forbidden: the URL is not https (inference.pull_allow_http) or its host is or resolves to an internal address (inference.pull_allow_private); local_path_forbidden: a server path outside inference.import_dir")),
    security(("bearer" = [])))]
async fn start_pull(
    State(state): State<InferenceState>,
    admin: confab_core::auth::AdminUser,
    client: confab_core::extract::ClientMeta,
    confab_core::extract::Json(body): confab_core::extract::Json<PullRequest>,
) -> Result<Response, confab_core::ApiError> {
    let (source, sha256) = match state
        .service
        .catalog()
        .models
        .iter()
        .find(|m| m.name.eq_ignore_ascii_case(&body.source))
    {
        Some(entry) => (
            entry.source.clone(),
            body.sha256.or_else(|| entry.sha256.clone()),
        ),
        None => (body.source.clone(), body.sha256),
    };
    if sha256
        .as_deref()
        .is_some_and(|s| s.len() != 64 || !s.chars().all(|c| c.is_ascii_hexdigit()))
    {
        return Err(confab_core::ApiError::validation(
            "invalid_sha256",
            "sha256 must be 64 hex digits",
        ));
    }
    let status = state
        .service
        .pulls()
        .start(&source, sha256, Some(admin.principal().user_id))
        .await
        .map_err(api_error)?;
    state
        .service
        .audit(
            confab_core::audit::AuditEvent::new(
                ModelAction::PullStarted,
                confab_core::audit::Outcome::Success,
                &client,
            )
            .actor(admin.principal().user_id)
            .target(status.model.clone())
            .details(serde_json::json!({"source": source, "pull": status.id})),
        )
        .await;
    Ok((StatusCode::ACCEPTED, axum::Json(status)).into_response())
}

/// Recent pulls with their state and progress (admin).
#[utoipa::path(get, path = "/api/v1/models/pulls", tag = "models",
    responses(Authenticated, AdminOnly,
        (status = 200, body = PullList)),
    security(("bearer" = [])))]
async fn list_pulls(
    State(state): State<InferenceState>,
    _admin: confab_core::auth::AdminUser,
) -> Result<axum::Json<PullList>, confab_core::ApiError> {
    Ok(axum::Json(PullList {
        items: state.service.pulls().list().await.map_err(api_error)?,
    }))
}

/// One pull's state and progress (admin).
#[utoipa::path(get, path = "/api/v1/models/pulls/{id}", tag = "models", params(("id" = uuid::Uuid, Path)),
    responses(Authenticated, AdminOnly, ById,
        (status = 200, body = crate::pulls::PullStatus)),
    security(("bearer" = [])))]
async fn pull_status(
    State(state): State<InferenceState>,
    _admin: confab_core::auth::AdminUser,
    axum::extract::Path(id): axum::extract::Path<uuid::Uuid>,
) -> Result<axum::Json<crate::pulls::PullStatus>, confab_core::ApiError> {
    state
        .service
        .pulls()
        .status(id)
        .await
        .map_err(api_error)?
        .map(axum::Json)
        .ok_or_else(|| confab_core::ApiError::not_found("no such pull"))
}

/// Cancel a running pull (admin); pulling the same source again resumes it.
#[utoipa::path(delete, path = "/api/v1/models/pulls/{id}", tag = "models", params(("id" = uuid::Uuid, Path)),
    responses(Authenticated, AdminOnly, ById,
        (status = 204, description = "Cancelled")),
    security(("bearer" = [])))]
async fn cancel_pull(
    State(state): State<InferenceState>,
    _admin: confab_core::auth::AdminUser,
    axum::extract::Path(id): axum::extract::Path<uuid::Uuid>,
) -> Result<StatusCode, confab_core::ApiError> {
    let cancelled = state
        .service
        .pulls()
        .cancel(id)
        .await
        .map_err(|e| confab_core::ApiError::internal(e.to_string()))?;
    if cancelled {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(confab_core::ApiError::not_found(
            "no running pull with this id",
        ))
    }
}

/// Progress of a pull as server-sent events (`data: <PullStatus>`), until it ends (admin).
#[utoipa::path(get, path = "/api/v1/models/pulls/{id}/events", tag = "models", params(("id" = uuid::Uuid, Path)),
    responses(Authenticated, AdminOnly, ById,
        (status = 200, content_type = "text/event-stream", description = "`PullStatus` events until the pull ends")),
    security(("bearer" = [])))]
async fn pull_events(
    State(state): State<InferenceState>,
    _admin: confab_core::auth::AdminUser,
    axum::extract::Path(id): axum::extract::Path<uuid::Uuid>,
) -> Result<Response, confab_core::ApiError> {
    let Some(receiver) = state.service.pulls().subscribe(id) else {
        // Not running here: one event with the recorded state.
        let status = state
            .service
            .pulls()
            .status(id)
            .await
            .map_err(api_error)?
            .ok_or_else(|| confab_core::ApiError::not_found("no such pull"))?;
        let once = futures::stream::once(async move { data(&status) });
        return Ok(Sse::new(once).into_response());
    };
    let updates = futures::stream::unfold((receiver, false), |(mut receiver, done)| async move {
        if done {
            return None;
        }
        let status = receiver.borrow_and_update().clone();
        let finished = status.state.is_final();
        if !finished && receiver.changed().await.is_err() {
            return Some((data(&status), (receiver, true)));
        }
        Some((data(&status), (receiver, finished)))
    });
    Ok(Sse::new(updates)
        .keep_alive(
            KeepAlive::new()
                .interval(Duration::from_secs(15))
                .text("ping"),
        )
        .into_response())
}

/// Delete a local model, or a model of an Ollama provider named `ollama:<provider>/<model>`
/// (the slash written `%2F`) (admin).
#[utoipa::path(delete, path = "/api/v1/models/{name}", tag = "models", params(("name" = String, Path)),
    responses(Authenticated, AdminOnly, ById,
        (status = 204, description = "Deleted"),
        (status = 502, body = confab_core::error::ErrorEnvelope, description = "upstream_error: the Ollama server failed")),
    security(("bearer" = [])))]
async fn delete_model(
    State(state): State<InferenceState>,
    admin: confab_core::auth::AdminUser,
    client: confab_core::extract::ClientMeta,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Result<StatusCode, confab_core::ApiError> {
    match state.service.delete_ollama(&name).await {
        Some(Ok(())) => {}
        Some(Err(InferenceError::ModelNotFound(model))) => {
            return Err(confab_core::ApiError::not_found(format!(
                "the Ollama server has no model `{model}`"
            )));
        }
        Some(Err(e)) => {
            return Err(confab_core::ApiError::new(
                StatusCode::BAD_GATEWAY,
                "upstream_error",
                format!("the Ollama server refused the deletion: {e}"),
            ));
        }
        None => state
            .service
            .delete_local(&name)
            .await
            .map_err(|e| match e {
                crate::models::ModelStoreError::NotFound(_) => {
                    confab_core::ApiError::not_found(format!("no local model named `{name}`"))
                }
                other => confab_core::ApiError::internal(other.to_string()),
            })?,
    }
    state
        .service
        .audit(
            confab_core::audit::AuditEvent::new(
                ModelAction::Deleted,
                confab_core::audit::Outcome::Success,
                &client,
            )
            .actor(admin.principal().user_id)
            .target(name),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}
