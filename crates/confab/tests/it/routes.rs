//! Every route × every role (anonymous, user, another user, admin), in-process on the router.
//! The table must name every operation in the OpenAPI document, so a new route cannot be
//! added without stating who may call it.

use axum::body::Body;
use confab_core::auth::{Credential, Principal, Role};
use confab_core::extract::ClientMeta;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use uuid::Uuid;

use crate::common::{PASSWORD, test_config};

#[derive(Clone, Copy, Debug)]
enum Who {
    Anonymous,
    User,
    Other,
    Admin,
}

const WHO: [Who; 4] = [Who::Anonymous, Who::User, Who::Other, Who::Admin];

/// How a case's path is made; resources are created fresh for each request.
#[derive(Clone, Copy, Debug)]
enum Target {
    Fixed(&'static str),
    /// `{id}` is a fresh active user (for changes that would spoil the shared users).
    FreshUser(&'static str),
    /// `{id}` is a fresh API key of the user.
    UserKey(&'static str),
    /// `{id}` is the user.
    UserId(&'static str),
    /// `{id}` is a fresh group; `{user_id}` the user, already a member.
    Group(&'static str),
    /// `{id}` is an id of nothing, `{name}` a name of nothing.
    Nothing(&'static str),
    /// `{id}` is a fresh conversation of the user.
    Conversation(&'static str),
    /// `{id}` is a fresh conversation of the user, `{mid}` its first (finished) answer.
    Answer(&'static str),
    /// `{id}` is a fresh preset of the user.
    Preset(&'static str),
    /// `{token}` is a fresh share link of the user's.
    Share(&'static str),
    /// Like `Answer`, the answer having the user's reaction `ok` (`{emoji}`).
    Reacted(&'static str),
}

#[derive(Clone, Copy, Debug)]
enum Payload {
    None,
    Json(fn() -> Value),
    FreshRegistration,
    UserLogin,
    UserRefresh,
}

struct Case {
    method: Method,
    target: Target,
    payload: Payload,
    /// Statuses for anonymous, user, other user, admin.
    expect: [u16; 4],
}

fn cases() -> Vec<Case> {
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

fn template(target: Target) -> &'static str {
    match target {
        Target::Fixed(p)
        | Target::FreshUser(p)
        | Target::UserKey(p)
        | Target::UserId(p)
        | Target::Group(p)
        | Target::Nothing(p)
        | Target::Conversation(p)
        | Target::Answer(p)
        | Target::Preset(p)
        | Target::Share(p)
        | Target::Reacted(p) => p.split('?').next().unwrap_or(p),
    }
}

struct World {
    router: axum::Router,
    auth: std::sync::Arc<confab_auth::AuthService>,
    chat: std::sync::Arc<confab_chat::ChatService>,
    user_id: Uuid,
    admin_id: Uuid,
}

impl World {
    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => request
                .header("content-type", "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        }
        .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let streaming = response
            .headers()
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        if streaming && status.is_success() {
            // An endless event stream: the status is the answer.
            return (status, Value::Null);
        }
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn login(&self, email: &str) -> (String, String) {
        let (status, body) = self
            .send(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(json!({"email": email, "password": PASSWORD})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        (
            body["access_token"].as_str().unwrap().to_owned(),
            body["refresh_token"].as_str().unwrap().to_owned(),
        )
    }

    async fn conversation(&self) -> Uuid {
        self.chat
            .create_conversation(
                &self.principal(self.user_id, Role::User),
                confab_chat::service::ConversationInput::default(),
            )
            .await
            .unwrap()
            .id
    }

    fn principal(&self, id: Uuid, role: Role) -> Principal {
        Principal {
            user_id: id,
            role,
            credential: Credential::Session {
                session_id: Uuid::nil(),
            },
        }
    }

    async fn path(&self, target: Target) -> String {
        let client = ClientMeta::default();
        match target {
            Target::Fixed(p) => p.to_owned(),
            Target::Nothing(p) => p
                .replace("{id}", &Uuid::now_v7().to_string())
                .replace("{name}", "nothing-here"),
            Target::UserId(p) => p.replace("{id}", &self.user_id.to_string()),
            Target::FreshUser(p) => {
                let user = self
                    .auth
                    .create_user(
                        &format!("{}@example.com", Uuid::now_v7()),
                        "Fresh",
                        PASSWORD,
                        confab_core::auth::Role::User,
                        confab_auth::domain::UserStatus::Active,
                        false,
                    )
                    .await
                    .unwrap();
                p.replace("{id}", &user.id.to_string())
            }
            Target::UserKey(p) => {
                let key = self
                    .auth
                    .create_api_key(
                        &self.principal(self.user_id, Role::User),
                        "k",
                        &[confab_core::auth::Scope::Chat],
                        None,
                        &client,
                    )
                    .await
                    .unwrap();
                p.replace("{id}", &key.view.id.to_string())
            }
            Target::Conversation(p) => {
                let conversation = self.conversation().await;
                p.replace("{id}", &conversation.to_string())
            }
            Target::Share(p) => {
                let answered = Box::pin(self.path(Target::Answer("{id}"))).await;
                let user = self.principal(self.user_id, Role::User);
                let link = self
                    .chat
                    .share(&user, answered.parse().unwrap())
                    .await
                    .unwrap();
                p.replace("{token}", &link.token)
            }
            Target::Reacted(p) => {
                let answered = Box::pin(self.path(Target::Answer("{id} {mid}"))).await;
                let (id, mid) = answered.split_once(' ').unwrap();
                let user = self.principal(self.user_id, Role::User);
                self.chat
                    .react(&user, id.parse().unwrap(), mid.parse().unwrap(), "ok", true)
                    .await
                    .unwrap();
                p.replace("{id}", id)
                    .replace("{mid}", mid)
                    .replace("{emoji}", "ok")
            }
            Target::Answer(p) => {
                let conversation = self.conversation().await;
                let user = self.principal(self.user_id, Role::User);
                let sent = self
                    .chat
                    .send(
                        &user,
                        conversation,
                        confab_chat::service::SendInput {
                            content: "Hi".into(),
                            parent_id: None,
                            from_root: false,
                            model: None,
                        },
                    )
                    .await
                    .unwrap();
                let answer = sent.assistant_message.id;
                // Let the answer finish, so routes see a settled conversation.
                let mut events = self
                    .chat
                    .follow(&user, conversation, answer, 0)
                    .await
                    .unwrap();
                while futures::StreamExt::next(&mut events).await.is_some() {}
                p.replace("{id}", &conversation.to_string())
                    .replace("{mid}", &answer.to_string())
            }
            Target::Preset(p) => {
                let preset = self
                    .chat
                    .create_preset(
                        &self.principal(self.user_id, Role::User),
                        format!("preset-{}", Uuid::now_v7()),
                        None,
                        confab_chat::domain::Params::default(),
                    )
                    .await
                    .unwrap();
                p.replace("{id}", &preset.id.to_string())
            }
            Target::Group(p) => {
                let admin =
                    confab_core::auth::AdminUser::check(self.principal(self.admin_id, Role::Admin))
                        .unwrap();
                let group = self
                    .auth
                    .create_group(&admin, &format!("g-{}", Uuid::now_v7()), &client)
                    .await
                    .unwrap();
                self.auth
                    .set_membership(&admin, group.id, self.user_id, true, &client)
                    .await
                    .unwrap();
                p.replace("{id}", &group.id.to_string())
                    .replace("{user_id}", &self.user_id.to_string())
            }
        }
    }
}

#[tokio::test]
async fn every_route_for_every_role() {
    let (config, _db) = test_config().await;
    let app = confab::app::build(&config).await.unwrap();
    let register = |email: &str| json!({"email": email, "password": PASSWORD, "name": "Someone"});
    let mut world = World {
        router: app.router.clone(),
        auth: app.auth.clone(),
        chat: app.chat.clone(),
        user_id: Uuid::nil(),
        admin_id: Uuid::nil(),
    };
    let (_, admin) = world
        .send(
            Method::POST,
            "/api/v1/auth/register",
            None,
            Some(register("admin@example.com")),
        )
        .await;
    let (_, user) = world
        .send(
            Method::POST,
            "/api/v1/auth/register",
            None,
            Some(register("user@example.com")),
        )
        .await;
    world
        .send(
            Method::POST,
            "/api/v1/auth/register",
            None,
            Some(register("other@example.com")),
        )
        .await;
    world.admin_id = admin["user"]["id"].as_str().unwrap().parse().unwrap();
    world.user_id = user["user"]["id"].as_str().unwrap().parse().unwrap();

    let cases = cases();
    let mut failures = Vec::new();
    for case in &cases {
        for (who, expected) in WHO.into_iter().zip(case.expect) {
            let token = match who {
                Who::Anonymous => None,
                Who::User => Some(world.login("user@example.com").await.0),
                Who::Other => Some(world.login("other@example.com").await.0),
                Who::Admin => Some(world.login("admin@example.com").await.0),
            };
            let body = match case.payload {
                Payload::None => None,
                Payload::Json(make) => Some(make()),
                Payload::FreshRegistration => {
                    Some(register(&format!("{}@example.com", Uuid::now_v7())))
                }
                Payload::UserLogin => {
                    Some(json!({"email": "user@example.com", "password": PASSWORD}))
                }
                Payload::UserRefresh => {
                    Some(json!({"refresh_token": world.login("user@example.com").await.1}))
                }
            };
            let path = world.path(case.target).await;
            let (status, response) = world
                .send(case.method.clone(), &path, token.as_deref(), body)
                .await;
            if status.as_u16() != expected {
                failures.push(format!(
                    "{} {path} as {who:?}: expected {expected}, got {status} {response}",
                    case.method
                ));
            }
            if status.is_client_error() {
                assert!(
                    response["error"]["code"].is_string(),
                    "{} {path}: no envelope: {response}",
                    case.method
                );
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // The table covers every documented operation.
    let doc = serde_json::to_value(&app.openapi).unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let covered = cases.iter().any(|c| {
                template(c.target) == path && c.method.as_str().eq_ignore_ascii_case(method)
            });
            assert!(covered, "{method} {path} is not in the route × role table");
        }
    }
}
