//! Share links: made and revoked by their owner (both audited), read by anyone holding one,
//! as JSON or as a server-rendered page, never cached.

use crate::actions::ChatAction;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use confab_core::ApiError;
use confab_core::audit::{AuditEvent, Outcome};
use confab_core::error::ErrorEnvelope;
use confab_core::error::responses::{Authenticated, ById, Forbidden};
use confab_core::extract::ClientMeta;
use http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{ChatState, Chatter};
use crate::domain::{ShareLink, SharedConversation};
use crate::ports::ImageSize;

pub(super) fn routes() -> OpenApiRouter<ChatState> {
    // Share pages are for whoever holds the link, never for a cache on the way or the
    // browser's history store to keep once the link is revoked.
    let public = OpenApiRouter::new()
        .routes(routes!(shared))
        .routes(routes!(shared_page))
        .routes(routes!(shared_image))
        .layer(axum::middleware::map_response(super::no_store));
    OpenApiRouter::new()
        .routes(routes!(list_shares, create_share))
        .routes(routes!(revoke_share))
        .merge(public)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ShareList {
    pub items: Vec<ShareLink>,
}

/// Make a read-only link to a snapshot of the conversation's active branch.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/shares", tag = "chat", params(("id" = Uuid, Path)),
    responses(Authenticated, Forbidden, ById,
        (status = 201, body = ShareLink), (status = 422, body = ErrorEnvelope, description = "nothing_to_share")),
    security(("bearer" = [])))]
async fn create_share(
    State(state): State<ChatState>,
    Chatter(principal): Chatter,
    client: ClientMeta,
    Path(id): Path<Uuid>,
) -> Result<(StatusCode, axum::Json<ShareLink>), ApiError> {
    let link = state.service.share(&principal, id).await?;
    // The token is the secret of the link: only its start is kept, to tell links apart.
    let token_start: String = link.token.chars().take(6).collect();
    let _ = state
        .audit
        .record(
            AuditEvent::new(ChatAction::ShareCreated, Outcome::Success, &client)
                .actor(principal.user_id)
                .target(id.to_string())
                .details(serde_json::json!({"token_start": token_start})),
        )
        .await;
    Ok((StatusCode::CREATED, axum::Json(link)))
}

/// The conversation's share links, revoked ones included.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/shares", tag = "chat", params(("id" = Uuid, Path)),
    responses(Authenticated, Forbidden, ById,
        (status = 200, body = ShareList)),
    security(("bearer" = [])))]
async fn list_shares(
    State(state): State<ChatState>,
    Chatter(principal): Chatter,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<ShareList>, ApiError> {
    Ok(axum::Json(ShareList {
        items: state.service.shares(&principal, id).await?,
    }))
}

/// Revoke a share link: it stops working at once.
#[utoipa::path(delete, path = "/api/v1/shares/{token}", tag = "chat", params(("token" = String, Path)),
    responses(Authenticated, Forbidden, ById,
        (status = 204, description = "Revoked")),
    security(("bearer" = [])))]
async fn revoke_share(
    State(state): State<ChatState>,
    Chatter(principal): Chatter,
    client: ClientMeta,
    Path(token): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.service.revoke_share(&principal, &token).await?;
    let token_start: String = token.chars().take(6).collect();
    let _ = state
        .audit
        .record(
            AuditEvent::new(ChatAction::ShareRevoked, Outcome::Success, &client)
                .actor(principal.user_id)
                .details(serde_json::json!({"token_start": token_start})),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// A shared conversation (public: no sign-in; only what the link's snapshot holds).
#[utoipa::path(get, path = "/api/v1/shared/{token}", tag = "chat", params(("token" = String, Path)),
    responses(ById,
        (status = 200, body = SharedConversation)))]
async fn shared(
    State(state): State<ChatState>,
    Path(token): Path<String>,
) -> Result<axum::Json<SharedConversation>, ApiError> {
    Ok(axum::Json(state.service.shared(&token).await?))
}

/// An image attached to a shared conversation: its thumbnail (at most 320 px) or preview
/// (at most 1600 px), re-encoded without metadata (public; only the snapshot's own images).
#[utoipa::path(get, path = "/api/v1/shared/{token}/files/{file_id}/{size}", tag = "chat",
    params(("token" = String, Path), ("file_id" = Uuid, Path),
        ("size" = String, Path, description = "`thumbnail` or `preview`")),
    responses(ById,
        (status = 200, content_type = "image/jpeg", description = "The image (JPEG or PNG)")))]
async fn shared_image(
    State(state): State<ChatState>,
    Path((token, file_id, size)): Path<(String, Uuid, String)>,
) -> Result<Response, ApiError> {
    let size = ImageSize::parse(&size)
        .ok_or_else(|| ApiError::not_found("no such image size: use thumbnail or preview"))?;
    let (content_type, bytes) = state.service.shared_image(&token, file_id, size).await?;
    // Only an image type the files service produced is served as one.
    let content_type = match content_type.as_str() {
        "image/png" => "image/png",
        _ => "image/jpeg",
    };
    Ok((
        [
            (http::header::CONTENT_TYPE, content_type),
            (http::header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (
                http::header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; sandbox",
            ),
        ],
        bytes,
    )
        .into_response())
}

/// A shared conversation as a page (public; server-rendered, no scripts).
#[utoipa::path(get, path = "/s/{token}", tag = "chat", params(("token" = String, Path)),
    responses(ById,
        (status = 200, content_type = "text/html", description = "The page")))]
async fn shared_page(
    State(state): State<ChatState>,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    use confab_core::html::escape;
    let shared = state.service.shared(&token).await?;
    let title = if shared.title.is_empty() {
        "Shared conversation".to_owned()
    } else {
        shared.title.clone()
    };
    let mut body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\"><title>{t}</title>\
         <style>body{{font:16px/1.5 system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem}}\
         .m{{white-space:pre-wrap;padding:.75rem 1rem;border-radius:.5rem;margin:.5rem 0}}\
         .files{{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.5rem}}.files img{{max-width:160px;border-radius:.25rem}}.user{{background:#eef}}.assistant{{background:#f4f4f4}}small{{color:#666}}</style></head>\
         <body><h1>{t}</h1><p><small>Shared from Confab (read-only)</small></p>",
        t = escape(&title)
    );
    for message in &shared.messages {
        let (class, who) = match message.role {
            crate::domain::Author::User => ("user", "User"),
            crate::domain::Author::Assistant => ("assistant", "Assistant"),
        };
        body.push_str(&format!(
            "<section class=\"m {class}\"><strong>{who}</strong>\n{}{}</section>",
            escape(&message.content),
            attachments_html(&token, &message.attachments)
        ));
    }
    body.push_str("</body></html>");
    // Its own policy: no scripts or outside resources at all, the inline style allowed.
    Ok((
        [
            (http::header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                http::header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; \
                 base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            ),
        ],
        body,
    )
        .into_response())
}

/// A shared message's attachments on its page: images as thumbnails linking to their
/// preview, other files named with their type and size (their content is not shared).
fn attachments_html(token: &str, attachments: &[crate::domain::Attachment]) -> String {
    use confab_core::html::escape;
    if attachments.is_empty() {
        return String::new();
    }
    let token = escape(token);
    let mut html = String::from("<ul class=\"files\">");
    for a in attachments {
        let name = escape(&a.name);
        if a.kind == "image" {
            let base = format!("/api/v1/shared/{token}/files/{}", a.file_id);
            html.push_str(&format!(
                "<li><a href=\"{base}/preview\"><img src=\"{base}/thumbnail\" alt=\"{name}\" \
                 loading=\"lazy\"></a></li>"
            ));
        } else {
            html.push_str(&format!(
                "<li>{name} <small>({}, {})</small></li>",
                escape(&a.content_type),
                human_size(a.size)
            ));
        }
    }
    html.push_str("</ul>");
    html
}

/// Bytes for people: `912 B`, `14.2 KB`, `3.1 MB`.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}
