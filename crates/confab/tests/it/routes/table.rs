//! The table of every route × every role: each operation's method, path, payload and the
//! status expected for anonymous, user, another user and admin.
//!
//! Long (about 680 lines) because it is one table, one entry a route, and grows with every
//! route; splitting it by service would hide a route missing from it no better than now.

use http::Method;
use serde_json::json;
use uuid::Uuid;

use super::{Case, Payload, Target};

/// Every case of the table.
pub(super) fn cases() -> Vec<Case> {
    use Payload as P;
    use Target as T;
    let case = |method: Method, target, payload, expect| Case {
        method,
        target,
        payload,
        expect,
    };
    vec![
        case(
            Method::POST,
            T::Fixed("/api/v1/auth/register"),
            P::FreshRegistration,
            [201, 201, 201, 201],
        ),
        case(
            Method::POST,
            T::Fixed("/api/v1/auth/login"),
            P::UserLogin,
            [200, 200, 200, 200],
        ),
        case(
            Method::POST,
            T::Fixed("/api/v1/auth/refresh"),
            P::UserRefresh,
            [200, 200, 200, 200],
        ),
        case(
            Method::POST,
            T::Fixed("/api/v1/auth/logout"),
            P::None,
            [401, 204, 204, 204],
        ),
        case(
            Method::GET,
            T::Fixed("/api/v1/auth/me"),
            P::None,
            [401, 200, 200, 200],
        ),
        case(
            Method::PATCH,
            T::Fixed("/api/v1/auth/me"),
            P::Json(|| json!({"name": "Renamed"})),
            [401, 200, 200, 200],
        ),
        case(
            Method::POST,
            T::Fixed("/api/v1/auth/password"),
            P::Json(
                || json!({"current_password": "not the password", "new_password": "another long secret"}),
            ),
            [401, 403, 403, 403],
        ),
        case(
            Method::GET,
            T::Fixed("/api/v1/auth/api-keys"),
            P::None,
            [401, 200, 200, 200],
        ),
        case(
            Method::POST,
            T::Fixed("/api/v1/auth/api-keys"),
            P::Json(|| json!({"name": "k", "scopes": ["chat"]})),
            [401, 201, 201, 201],
        ),
        case(
            Method::DELETE,
            T::UserKey("/api/v1/auth/api-keys/{id}"),
            P::None,
            [401, 204, 404, 404],
        ),
        case(
            Method::GET,
            T::Fixed("/.well-known/jwks.json"),
            P::None,
            [200, 200, 200, 200],
        ),
        // Internal routes: another service's process with an internal token only
        // (`routes_internal` calls them with one); every user credential is refused.
        case(
            Method::POST,
            T::Fixed("/internal/v1/auth/introspect"),
            P::Json(|| json!({"token": "cfk_anything"})),
            [401, 401, 401, 401],
        ),
        case(
            Method::GET,
            T::UserId("/internal/v1/auth/users/{id}"),
            P::None,
            [401, 401, 401, 401],
        ),
        case(
            Method::GET,
            T::Fixed("/internal/v1/admin/settings"),
            P::None,
            [401, 401, 401, 401],
        ),
        case(
            Method::GET,
            T::Fixed("/api/v1/auth/users"),
            P::None,
            [401, 403, 403, 200],
        ),
        case(
            Method::PATCH,
            T::UserId("/api/v1/auth/users/{id}"),
            P::Json(|| json!({"role": "user"})),
            [401, 403, 403, 200],
        ),
        case(
            Method::POST,
            T::UserId("/api/v1/auth/users/{id}/approve"),
            P::None,
            [401, 403, 403, 200],
        ),
        case(
            Method::POST,
            T::UserId("/api/v1/auth/users/{id}/unlock"),
            P::None,
            [401, 403, 403, 200],
        ),
        case(
            Method::POST,
            T::FreshUser("/api/v1/auth/users/{id}/lock"),
            P::None,
            [401, 403, 403, 200],
        ),
        case(
            Method::POST,
            T::FreshUser("/api/v1/auth/users/{id}/password-reset"),
            P::None,
            [401, 403, 403, 200],
        ),
        case(
            Method::DELETE,
            T::FreshUser("/api/v1/auth/users/{id}"),
            P::None,
            [401, 403, 403, 202],
        ),
        case(
            Method::POST,
            T::Fixed("/api/v1/auth/password/reset"),
            P::Json(
                || json!({"email": "nobody@example.com", "password": "x", "new_password": "y"}),
            ),
            [401, 401, 401, 401],
        ),
        case(
            Method::GET,
            T::Fixed("/api/v1/admin/jobs"),
            P::None,
            [401, 403, 403, 200],
        ),
        case(
            Method::GET,
            T::Fixed("/api/v1/admin/jobs/events"),
            P::None,
            [401, 403, 403, 200],
        ),
        case(
            Method::GET,
            T::Nothing("/api/v1/admin/jobs/{id}"),
            P::None,
            [401, 403, 403, 404],
        ),
        case(
            Method::POST,
            T::Nothing("/api/v1/admin/jobs/{id}/cancel"),
            P::None,
            [401, 403, 403, 404],
        ),
        case(
            Method::POST,
            T::Nothing("/api/v1/admin/jobs/{id}/retry"),
            P::None,
            [401, 403, 403, 404],
        ),
        case(
            Method::GET,
            T::Fixed("/api/v1/admin/settings"),
            P::None,
            [401, 403, 403, 200],
        ),
        case(
            Method::PATCH,
            T::Fixed("/api/v1/admin/settings"),
            P::Json(|| json!({})),
            [401, 403, 403, 200],
        ),
        case(
            Method::GET,
            T::Fixed("/api/v1/auth/groups"),
            P::None,
            [401, 403, 403, 200],
        ),
        case(
            Method::POST,
            T::Fixed("/api/v1/auth/groups"),
            P::Json(|| json!({"name": format!("g-{}", Uuid::now_v7())})),
            [401, 403, 403, 201],
        ),
        case(
            Method::DELETE,
            T::Group("/api/v1/auth/groups/{id}"),
            P::None,
            [401, 403, 403, 204],
        ),
        case(
            Method::PUT,
            T::Group("/api/v1/auth/groups/{id}/members/{user_id}"),
            P::None,
            [401, 403, 403, 204],
        ),
        case(
            Method::DELETE,
            T::Group("/api/v1/auth/groups/{id}/members/{user_id}"),
            P::None,
            [401, 403, 403, 204],
        ),
        case(
            Method::POST,
            T::Fixed("/v1/chat/completions"),
            P::Json(
                || json!({"model": "scripted-echo", "messages": [{"role": "user", "content": "hi"}]}),
            ),
            [401, 200, 200, 200],
        ),
        case(
            Method::POST,
            T::Fixed("/v1/embeddings"),
            P::Json(|| json!({"model": "no-encoder-here", "input": "hi"})),
            [401, 404, 404, 404],
        ),
        case(
            Method::GET,
            T::Fixed("/api/v1/models/catalog"),
            P::None,
            [401, 200, 200, 200],
        ),
        case(
            Method::GET,
            T::Fixed("/api/v1/models/pulls"),
            P::None,
            [401, 403, 403, 200],
        ),
        case(
            Method::POST,
            T::Fixed("/api/v1/models/pulls"),
            P::Json(|| json!({"source": "not a model source"})),
            [401, 403, 403, 422],
        ),
        case(
            Method::GET,
            T::Nothing("/api/v1/models/pulls/{id}"),
            P::None,
            [401, 403, 403, 404],
        ),
        case(
            Method::DELETE,
            T::Nothing("/api/v1/models/pulls/{id}"),
            P::None,
            [401, 403, 403, 404],
        ),
        case(
            Method::GET,
            T::Nothing("/api/v1/models/pulls/{id}/events"),
            P::None,
            [401, 403, 403, 404],
        ),
        case(
            Method::DELETE,
            T::Nothing("/api/v1/models/{name}"),
            P::None,
            [401, 403, 403, 404],
        ),
        case(
            Method::GET,
            T::Fixed("/v1/models"),
            P::None,
            [401, 200, 200, 200],
        ),
        case(
            Method::GET,
            T::Fixed("/api/v1/models"),
            P::None,
            [401, 200, 200, 200],
        ),
        case(
            Method::GET,
            T::Fixed("/healthz"),
            P::None,
            [200, 200, 200, 200],
        ),
        case(
            Method::GET,
            T::Fixed("/readyz"),
            P::None,
            [200, 200, 200, 200],
        ),
        case(
            Method::GET,
            T::Fixed("/metrics"),
            P::None,
            [200, 200, 200, 200],
        ),
        case(
            Method::GET,
            T::Fixed("/api/openapi.json"),
            P::None,
            [200, 200, 200, 200],
        ),
        case(
            Method::POST,
            T::Fixed("/api/v1/conversations"),
            P::Json(|| json!({"title": "New", "tags": ["work"]})),
            [401, 201, 201, 201],
        ),
        case(
            Method::GET,
            T::Fixed("/api/v1/conversations"),
            P::None,
            [401, 200, 200, 200],
        ),
        case(
            Method::GET,
            T::Conversation("/api/v1/conversations/{id}"),
            P::None,
            [401, 200, 404, 404],
        ),
        case(
            Method::PATCH,
            T::Conversation("/api/v1/conversations/{id}"),
            P::Json(|| json!({"title": "Renamed", "pinned": true})),
            [401, 200, 404, 404],
        ),
        case(
            Method::DELETE,
            T::Conversation("/api/v1/conversations/{id}"),
            P::None,
            [401, 204, 404, 404],
        ),
        case(
            Method::GET,
            T::Answer("/api/v1/conversations/{id}/messages"),
            P::None,
            [401, 200, 404, 404],
        ),
        case(
            Method::POST,
            T::Conversation("/api/v1/conversations/{id}/messages"),
            P::Json(|| json!({"content": "Hello"})),
            [401, 200, 404, 404],
        ),
        case(
            Method::POST,
            T::Answer("/api/v1/conversations/{id}/messages/{mid}/regenerate"),
            P::None,
            [401, 200, 404, 404],
        ),
        case(
            Method::POST,
            T::Answer("/api/v1/conversations/{id}/messages/{mid}/stop"),
            P::None,
            [401, 409, 404, 404],
        ),
        case(
            Method::GET,
            T::Answer("/api/v1/conversations/{id}/messages/{mid}/stream"),
            P::None,
            [401, 200, 404, 404],
        ),
        case(
            Method::GET,
            T::Answer("/api/v1/conversations/{id}/export"),
            P::None,
            [401, 200, 404, 404],
        ),
        case(
            Method::GET,
            T::Fixed("/api/v1/conversations/export"),
            P::None,
            [401, 200, 200, 200],
        ),
        case(
            Method::POST,
            T::Fixed("/api/v1/conversations/import"),
            P::Json(
                || json!({"format": "confab.conversations", "version": 1, "exported_at": "2026-01-01T00:00:00Z", "conversations": []}),
            ),
            [401, 201, 201, 201],
        ),
        case(
            Method::GET,
            T::Fixed("/api/v1/ws"),
            P::None,
            [401, 426, 426, 426],
        ),
        case(
            Method::POST,
            T::Fixed("/api/v1/conversations/bulk"),
            P::Json(|| json!({"ids": [Uuid::now_v7()], "action": "archive"})),
            [401, 200, 200, 200],
        ),
        case(
            Method::POST,
            T::Answer("/api/v1/conversations/{id}/shares"),
            P::None,
            [401, 201, 404, 404],
        ),
        case(
            Method::GET,
            T::Conversation("/api/v1/conversations/{id}/shares"),
            P::None,
            [401, 200, 404, 404],
        ),
        case(
            Method::DELETE,
            T::Share("/api/v1/shares/{token}"),
            P::None,
            [401, 204, 404, 404],
        ),
        case(
            Method::GET,
            T::Share("/api/v1/shared/{token}"),
            P::None,
            [200, 200, 200, 200],
        ),
        case(
            Method::GET,
            T::Share("/s/{token}"),
            P::None,
            [200, 200, 200, 200],
        ),
        case(
            Method::POST,
            T::Answer("/api/v1/conversations/{id}/messages/{mid}/reactions"),
            P::Json(|| json!({"emoji": "🎉"})),
            [401, 200, 404, 404],
        ),
        case(
            Method::DELETE,
            T::Reacted("/api/v1/conversations/{id}/messages/{mid}/reactions/{emoji}"),
            P::None,
            [401, 200, 404, 404],
        ),
        case(
            Method::GET,
            T::Fixed("/api/v1/search?q=hello"),
            P::None,
            [401, 200, 200, 200],
        ),
        case(
            Method::GET,
            T::Fixed("/api/v1/presets"),
            P::None,
            [401, 200, 200, 200],
        ),
        case(
            Method::POST,
            T::Fixed("/api/v1/presets"),
            P::Json(
                || json!({"name": format!("p-{}", Uuid::now_v7()), "system_prompt": "Be terse."}),
            ),
            [401, 201, 201, 201],
        ),
        case(
            Method::PUT,
            T::Preset("/api/v1/presets/{id}"),
            P::Json(
                || json!({"name": format!("p-{}", Uuid::now_v7()), "params": {"temperature": 0.2}}),
            ),
            [401, 200, 404, 404],
        ),
        case(
            Method::DELETE,
            T::Preset("/api/v1/presets/{id}"),
            P::None,
            [401, 204, 404, 404],
        ),
        case(
            Method::GET,
            T::Fixed("/api/v1/admin/usage?group_by=model"),
            P::None,
            [401, 403, 403, 200],
        ),
        case(
            Method::GET,
            T::Fixed("/api/v1/admin/usage/export?format=csv"),
            P::None,
            [401, 403, 403, 200],
        ),
        case(
            Method::GET,
            T::Fixed("/api/v1/usage"),
            P::None,
            [401, 200, 200, 200],
        ),
        case(
            Method::GET,
            T::Fixed("/api/v1/admin/audit?action=auth.*"),
            P::None,
            [401, 403, 403, 200],
        ),
        case(
            Method::GET,
            T::Fixed("/api/v1/admin/audit/export?format=csv"),
            P::None,
            [401, 403, 403, 200],
        ),
        case(
            Method::GET,
            T::Fixed("/api/v1/admin/audit/verify"),
            P::None,
            [401, 403, 403, 200],
        ),
        case(
            Method::POST,
            T::Fixed("/api/v1/seo/projects"),
            P::Json(|| json!({"topic": "Espresso at home", "primary_keyword": "espresso"})),
            [401, 201, 201, 201],
        ),
        case(
            Method::GET,
            T::Fixed("/api/v1/seo/projects?q=espresso"),
            P::None,
            [401, 200, 200, 200],
        ),
        case(
            Method::GET,
            T::SeoProject("/api/v1/seo/projects/{id}"),
            P::None,
            [401, 200, 404, 404],
        ),
        case(
            Method::PATCH,
            T::SeoProject("/api/v1/seo/projects/{id}"),
            P::Json(|| json!({"archived": true})),
            [401, 200, 404, 404],
        ),
        case(
            Method::DELETE,
            T::SeoProject("/api/v1/seo/projects/{id}"),
            P::None,
            [401, 204, 404, 404],
        ),
        case(
            Method::GET,
            T::SeoProject("/api/v1/seo/projects/{id}/transcript"),
            P::None,
            [401, 404, 404, 404],
        ),
        case(
            Method::POST,
            T::SeoProject("/api/v1/seo/projects/{id}/generation"),
            P::Json(|| json!({})),
            [401, 202, 404, 404],
        ),
        case(
            Method::GET,
            T::SeoProject("/api/v1/seo/projects/{id}/generation"),
            P::None,
            [401, 404, 404, 404],
        ),
        case(
            Method::GET,
            T::SeoProject("/api/v1/seo/projects/{id}/generation/events"),
            P::None,
            [401, 200, 404, 404],
        ),
        case(
            Method::GET,
            T::SeoProject("/api/v1/seo/projects/{id}/versions"),
            P::None,
            [401, 200, 404, 404],
        ),
        case(
            Method::POST,
            T::SeoProject("/api/v1/seo/projects/{id}/versions"),
            P::Json(
                || json!({"title": "A better title", "description": "Better.", "tags": ["x"], "thumbnail_texts": ["Big news", "Read this"]}),
            ),
            [401, 201, 404, 404],
        ),
        case(
            Method::GET,
            T::SeoProject("/api/v1/seo/projects/{id}/versions/{number}"),
            P::None,
            [401, 200, 404, 404],
        ),
        case(
            Method::POST,
            T::SeoProject("/api/v1/seo/projects/{id}/versions/{number}/restore"),
            P::None,
            [401, 201, 404, 404],
        ),
        case(
            Method::GET,
            T::SeoProject("/api/v1/seo/projects/{id}/diff?from=1&to=1"),
            P::None,
            [401, 200, 404, 404],
        ),
        case(
            Method::GET,
            T::SeoProject("/api/v1/seo/projects/{id}/export?format=text"),
            P::None,
            [401, 200, 404, 404],
        ),
        case(
            Method::GET,
            T::SeoProject("/api/v1/seo/export.csv?ids={id}"),
            P::None,
            [401, 200, 200, 200],
        ),
        case(
            Method::POST,
            T::Fixed("/api/v1/seo/score"),
            P::Json(|| json!({"title": "t", "description": "d", "tags": []})),
            [401, 200, 200, 200],
        ),
        case(
            Method::GET,
            T::Fixed("/api/v1/seo/scores"),
            P::None,
            [401, 200, 200, 200],
        ),
        case(
            Method::GET,
            T::Fixed("/api/v1/seo/research?keyword=sourdough"),
            P::None,
            [401, 409, 409, 409],
        ),
        case(
            Method::POST,
            T::Fixed("/api/v1/seo/videos/audit"),
            P::Json(|| json!({"video": "dQw4w9WgXcQ"})),
            [401, 409, 409, 409],
        ),
        case(
            Method::POST,
            T::SeoProject("/api/v1/seo/projects/{id}/versions/import"),
            P::Json(|| json!({"video": "dQw4w9WgXcQ"})),
            [401, 409, 404, 404],
        ),
        case(
            Method::POST,
            T::SeoProject("/api/v1/seo/projects/{id}/apply"),
            P::Json(|| json!({"video": "dQw4w9WgXcQ"})),
            [401, 409, 404, 404],
        ),
        case(
            Method::GET,
            T::Fixed("/api/v1/seo/channel"),
            P::None,
            [401, 200, 200, 200],
        ),
        case(
            Method::DELETE,
            T::Fixed("/api/v1/seo/channel"),
            P::None,
            [401, 404, 404, 404],
        ),
        case(
            Method::POST,
            T::Fixed("/api/v1/seo/channel/connect"),
            P::Json(|| json!({"redirect_uri": "http://127.0.0.1/api/v1/seo/channel/callback"})),
            [401, 409, 409, 409],
        ),
        case(
            Method::GET,
            T::Fixed("/api/v1/seo/channel/callback?state=nothing&code=nothing"),
            P::None,
            [303, 303, 303, 303],
        ),
        case(
            Method::GET,
            T::Fixed("/api/v1/seo/quota"),
            P::None,
            [401, 200, 200, 200],
        ),
        case(
            Method::GET,
            T::Fixed("/api/docs"),
            P::None,
            [200, 200, 200, 200],
        ),
        case(
            Method::GET,
            T::Fixed("/api/docs.css"),
            P::None,
            [200, 200, 200, 200],
        ),
    ]
}
