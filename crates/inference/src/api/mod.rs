//! The inference service's HTTP API: the OpenAI-compatible routes ([`openai`]:
//! `POST /v1/chat/completions` streamed as SSE or not, `POST /v1/embeddings`,
//! `GET /v1/models`), authenticated by a session token or an API key with the `inference`
//! scope, with errors in OpenAI's shape; and the models API ([`models`]: `GET /api/v1/models`
//! with local model details, the catalog, pulls and deletions).

mod models;
mod openai;

use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use confab_core::auth::{CurrentUser, DynAuthenticator, Principal, Scope};
use http::request::Parts;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;

use crate::error::OpenAiError;
use crate::service::InferenceService;

pub use models::{
    CatalogPage, CatalogQuery, InstalledLocalModel, InstalledModel, InstalledModels, PullList,
    PullRequest,
};
pub use openai::to_chat_request;

#[derive(Clone)]
pub struct InferenceState {
    pub service: Arc<InferenceService>,
    pub authenticator: DynAuthenticator,
}

impl FromRef<InferenceState> for DynAuthenticator {
    fn from_ref(state: &InferenceState) -> Self {
        state.authenticator.clone()
    }
}

pub fn router(state: InferenceState) -> OpenApiRouter {
    openai::routes().merge(models::routes()).with_state(state)
}

/// A caller allowed to use models, with failures in OpenAI's error shape.
struct InferenceCaller(Principal);

impl<S> FromRequestParts<S> for InferenceCaller
where
    S: Send + Sync,
    DynAuthenticator: FromRef<S>,
{
    type Rejection = OpenAiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let CurrentUser(principal) = CurrentUser::from_request_parts(parts, state).await?;
        principal.require_scope(Scope::Inference)?;
        Ok(InferenceCaller(principal))
    }
}

/// A JSON body whose failures are in OpenAI's error shape; one over 64 KiB is parsed on a
/// blocking thread.
struct OpenAiJson<T>(T);

impl<T, S> FromRequest<S> for OpenAiJson<T>
where
    T: serde::de::DeserializeOwned + Send + 'static,
    S: Send + Sync,
{
    type Rejection = OpenAiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // Large bodies (images as data: URLs) are parsed on a blocking thread.
        let confab_core::extract::BlockingJson(value) =
            confab_core::extract::BlockingJson::<T>::from_request(req, state).await?;
        Ok(OpenAiJson(value))
    }
}
