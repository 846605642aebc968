//! Chat's [`FileAccess`] in a process without the files service (split mode):
//! [`RemoteFiles`] calls the files service's internal routes (`/internal/v1/files/...`,
//! `chat.files_url`, never the gateway, which does not forward them) with an internal token
//! minted per call. Bodies are read with a cap; the files service's `file_not_found`,
//! `file_not_ready` and `file_quarantined` come back as the port's errors for the file named
//! in their details, anything else as `Unavailable`.

use std::time::Duration;

use async_trait::async_trait;
use axum::body::Bytes;
use confab_chat::domain::Attachment;
use confab_chat::ports::{FileAccess, FileAccessError, FileInput, ImageSize};
use confab_core::auth::ServiceTokens;
use confab_core::error::ErrorEnvelope;
use confab_core::service_tls::ServiceTls;
use confab_files::api::internal::{
    AttachableFiles, InternalFileIds, MAX_INTERNAL_IDS, TRUNCATED_HEADER,
};
use reqwest::StatusCode;
use uuid::Uuid;

/// The name the chat service gives itself in its internal tokens.
const CALLER: &str = "chat";

/// The largest answer read from the files service (a model input, an image).
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// The most of an error body read.
const MAX_ERROR_BYTES: usize = 64 * 1024;

/// The files service of another process, over its internal routes.
pub struct RemoteFiles {
    http: reqwest::Client,
    /// `<files_url>/internal/v1/files`.
    base: String,
    tokens: ServiceTokens,
}

impl std::fmt::Debug for RemoteFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteFiles")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl RemoteFiles {
    /// Over the files service at `files_url` (e.g. `http://files:8080`).
    pub fn new(files_url: &str, tokens: ServiceTokens) -> Result<Self, FileAccessError> {
        Self::with_tls(files_url, tokens, &ServiceTls::default())
    }

    /// [`Self::new`] with the deployment's trust for calls between services.
    pub fn with_tls(
        files_url: &str,
        tokens: ServiceTokens,
        tls: &ServiceTls,
    ) -> Result<Self, FileAccessError> {
        let http = tls
            .client_builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                FileAccessError::Unavailable(format!("HTTP client for the files service: {e}"))
            })?;
        Ok(Self {
            http,
            base: format!("{}/internal/v1/files", files_url.trim_end_matches('/')),
            tokens,
        })
    }

    fn file_url(&self, user_id: Uuid, id: Uuid, what: &str) -> String {
        format!("{}/users/{user_id}/files/{id}/{what}", self.base)
    }

    /// Sends `request` with a fresh internal token and the trace context.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, FileAccessError> {
        let token = self.tokens.mint_internal(CALLER).map_err(unreachable)?;
        request
            .headers(confab_core::telemetry::otel::trace_headers())
            .bearer_auth(token)
            .send()
            .await
            .map_err(unreachable)
    }

    /// A successful answer as it is; an error answer as the port's error (`id`: the file
    /// a single-file call is about, when the details name none).
    async fn check(
        &self,
        response: reqwest::Response,
        id: Option<Uuid>,
    ) -> Result<reqwest::Response, FileAccessError> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = read_capped(response, MAX_ERROR_BYTES)
            .await
            .unwrap_or_default();
        let envelope: Option<ErrorEnvelope> = serde_json::from_slice(&body).ok();
        let Some(error) = envelope.map(|e| e.error) else {
            return Err(unreachable(format!("the files service answered {status}")));
        };
        let named = error
            .details
            .first()
            .and_then(|d| Uuid::try_parse(d).ok())
            .or(id);
        match (error.code.as_str(), named) {
            ("file_not_found", Some(id)) => Err(FileAccessError::NotFound(id)),
            ("file_not_ready", Some(id)) => Err(FileAccessError::NotReady(id)),
            ("file_quarantined", Some(id)) => Err(FileAccessError::Quarantined(id)),
            (code, _) => Err(unreachable(format!(
                "the files service answered {status} {code}"
            ))),
        }
    }

    /// A file's bytes with their content type (without parameters).
    async fn bytes(
        &self,
        url: String,
        id: Uuid,
    ) -> Result<(reqwest::Response, String), FileAccessError> {
        let response = self.send(self.http.get(url)).await?;
        let response = self.check(response, Some(id)).await?;
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_owned();
        Ok((response, content_type))
    }
}

fn unreachable(e: impl std::fmt::Display) -> FileAccessError {
    FileAccessError::Unavailable(format!("the files service cannot be reached: {e}"))
}

/// The body, refused once it passes `max` bytes (by its declared length or as it arrives).
async fn read_capped(
    mut response: reqwest::Response,
    max: usize,
) -> Result<Bytes, FileAccessError> {
    let too_large = || unreachable(format!("the answer is larger than {max} bytes"));
    if response
        .content_length()
        .is_some_and(|length| length > max as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
        if body.len() + chunk.len() > max {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

#[async_trait]
impl FileAccess for RemoteFiles {
    async fn describe(
        &self,
        user_id: Uuid,
        ids: &[Uuid],
    ) -> Result<Vec<Attachment>, FileAccessError> {
        let mut described = Vec::with_capacity(ids.len());
        // In order, a call per chunk: the first problem is still the first in the order asked.
        for chunk in ids.chunks(MAX_INTERNAL_IDS) {
            let request =
                self.http
                    .post(format!("{}/attachable", self.base))
                    .json(&InternalFileIds {
                        user_id,
                        ids: chunk.to_vec(),
                    });
            let response = self.send(request).await?;
            let response = self.check(response, None).await?;
            let body = read_capped(response, MAX_BODY_BYTES).await?;
            let files: AttachableFiles = serde_json::from_slice(&body).map_err(unreachable)?;
            described.extend(files.items.into_iter().map(|file| Attachment {
                file_id: file.file_id,
                name: file.name,
                content_type: file.content_type,
                kind: file.kind.as_str().to_owned(),
                size: file.size,
            }));
        }
        Ok(described)
    }

    async fn model_input(
        &self,
        user_id: Uuid,
        id: Uuid,
        max_text_bytes: usize,
    ) -> Result<FileInput, FileAccessError> {
        let url = format!(
            "{}?max_text_bytes={max_text_bytes}",
            self.file_url(user_id, id, "model-input")
        );
        let (response, content_type) = self.bytes(url, id).await?;
        if response.status() == StatusCode::NO_CONTENT {
            return Ok(FileInput::Unreadable);
        }
        let truncated = response
            .headers()
            .get(TRUNCATED_HEADER)
            .is_some_and(|v| v.as_bytes() == b"true");
        let media_type = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let data = read_capped(response, MAX_BODY_BYTES).await?;
        if media_type == "text/plain" {
            return Ok(FileInput::Text {
                text: String::from_utf8_lossy(&data).into_owned(),
                truncated,
            });
        }
        if media_type.starts_with("image/") {
            return Ok(FileInput::Image { media_type, data });
        }
        Err(unreachable(format!(
            "the files service answered a model input of type `{media_type}`"
        )))
    }

    async fn image(
        &self,
        user_id: Uuid,
        id: Uuid,
        size: ImageSize,
    ) -> Result<(String, Bytes), FileAccessError> {
        let (response, content_type) = self
            .bytes(self.file_url(user_id, id, size.as_str()), id)
            .await?;
        let bytes = read_capped(response, MAX_BODY_BYTES).await?;
        Ok((content_type, bytes))
    }

    async fn delete(&self, user_id: Uuid, ids: &[Uuid]) -> Result<(), FileAccessError> {
        for chunk in ids.chunks(MAX_INTERNAL_IDS) {
            let request = self
                .http
                .post(format!("{}/delete", self.base))
                .json(&InternalFileIds {
                    user_id,
                    ids: chunk.to_vec(),
                });
            let response = self.send(request).await?;
            self.check(response, None).await?;
        }
        Ok(())
    }
}
