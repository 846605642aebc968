//! Every route × every role (anonymous, user, another user, admin), in-process on the router.
//! The table (in `routes/table.rs`) must name every operation in the OpenAPI document, so a new
//! route cannot be added without stating who may call it.

use axum::body::Body;
use confab_core::auth::{Credential, Principal, Role};
use confab_core::extract::ClientMeta;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use uuid::Uuid;

use crate::common::{PASSWORD, test_config};

mod table;

use table::cases;

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
    /// `{id}` is a fresh SEO project of the user, with one version (number 1).
    SeoProject(&'static str),
    /// `{token}` is a fresh share link of the user's.
    Share(&'static str),
    /// `{token}` is a fresh share link of a conversation whose message has the image
    /// `{file_id}` attached; `{size}` is `thumbnail`.
    SharedImage(&'static str),
    /// Like `Answer`, the answer having the user's reaction `ok` (`{emoji}`).
    Reacted(&'static str),
    /// `{id}` is a fresh file of the user (a text file, unscanned: servable); `{user_id}` the
    /// user.
    File(&'static str),
    /// `{id}` is a fresh image of the user with its variants made; `{user_id}` the user.
    Image(&'static str),
    /// `{id}` is a fresh file of the user, `{link_id}` a share link to it.
    FileLink(&'static str),
    /// `{token}` is a fresh share link's token to a file of the user.
    FileShare(&'static str),
    /// `{id}` is a fresh resumable upload of the user (`hello.txt`, 5 bytes, one part `{n}`).
    Upload(&'static str),
    /// Like `Upload`, with its one part sent.
    UploadReady(&'static str),
}

#[derive(Clone, Copy, Debug)]
enum Payload {
    None,
    Json(fn() -> Value),
    FreshRegistration,
    UserLogin,
    UserRefresh,
    /// A body of this content type.
    Raw(&'static str, fn() -> Vec<u8>),
}

struct Case {
    method: Method,
    target: Target,
    payload: Payload,
    /// Statuses for anonymous, user, other user, admin.
    expect: [u16; 4],
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
        | Target::SeoProject(p)
        | Target::Share(p)
        | Target::SharedImage(p)
        | Target::Reacted(p)
        | Target::File(p)
        | Target::Image(p)
        | Target::FileLink(p)
        | Target::FileShare(p)
        | Target::Upload(p)
        | Target::UploadReady(p) => p.split('?').next().unwrap_or(p),
    }
}

struct World {
    router: axum::Router,
    auth: std::sync::Arc<confab_auth::AuthService>,
    chat: std::sync::Arc<confab_chat::ChatService>,
    seo: std::sync::Arc<confab_seo::SeoService>,
    files: std::sync::Arc<confab_files::FilesService>,
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
        let body = body.map(|b| ("application/json", b.to_string().into_bytes()));
        self.send_bytes(method, path, token, body).await
    }

    async fn send_bytes(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = match body {
            Some((content_type, body)) => request
                .header("content-type", content_type)
                .body(Body::from(body)),
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

    /// A fresh file of the user, with its checks done.
    async fn file(&self, name: &str, bytes: Vec<u8>) -> Uuid {
        let upload = confab_files::service::Upload {
            name: name.to_owned(),
            declared_type: None,
            body: Box::pin(futures::stream::iter([Ok(bytes::Bytes::from(bytes))])),
        };
        let file = self.files.upload(self.user_id, upload).await.unwrap();
        if file.kind == confab_files::domain::FileKind::Image {
            let job = confab_files::service::FileJob { file_id: file.id };
            self.files.run_variants(&job).await;
        }
        file.id
    }

    async fn path(&self, target: Target) -> String {
        let client = ClientMeta::default();
        match target {
            Target::File(p) => {
                let id = self.file("notes.txt", b"some notes".to_vec()).await;
                p.replace("{id}", &id.to_string())
                    .replace("{user_id}", &self.user_id.to_string())
            }
            Target::SharedImage(p) => {
                let id = self.file("dot.png", png()).await;
                let conversation = self.conversation().await;
                let user = self.principal(self.user_id, Role::User);
                let sent = self
                    .chat
                    .send(
                        &user,
                        conversation,
                        confab_chat::service::SendInput {
                            content: "Look".into(),
                            parent_id: None,
                            from_root: false,
                            model: None,
                            attachments: vec![id],
                        },
                    )
                    .await
                    .unwrap();
                let mut events = self
                    .chat
                    .follow(&user, conversation, sent.assistant_message.id, 0)
                    .await
                    .unwrap();
                while futures::StreamExt::next(&mut events).await.is_some() {}
                let link = self.chat.share(&user, conversation).await.unwrap();
                p.replace("{token}", &link.token)
                    .replace("{file_id}", &id.to_string())
                    .replace("{size}", "thumbnail")
            }
            Target::Image(p) => {
                let id = self.file("dot.png", png()).await;
                p.replace("{id}", &id.to_string())
                    .replace("{user_id}", &self.user_id.to_string())
            }
            Target::Upload(p) | Target::UploadReady(p) => {
                let status = self
                    .files
                    .create_upload(
                        self.user_id,
                        confab_files::service::NewUpload {
                            name: "hello.txt".into(),
                            size: 5,
                            declared_type: None,
                        },
                    )
                    .await
                    .unwrap();
                let id = status.upload.id;
                if matches!(target, Target::UploadReady(_)) {
                    let body = Box::pin(futures::stream::iter([Ok(bytes::Bytes::from_static(
                        b"hello",
                    ))]));
                    self.files
                        .put_part(self.user_id, id, 0, body)
                        .await
                        .unwrap();
                }
                p.replace("{id}", &id.to_string()).replace("{n}", "0")
            }
            Target::FileLink(p) | Target::FileShare(p) => {
                let id = self.file("notes.txt", b"some notes".to_vec()).await;
                let link = self
                    .files
                    .create_link(self.user_id, id, 1, &client)
                    .await
                    .unwrap();
                p.replace("{id}", &id.to_string())
                    .replace("{link_id}", &link.link.id.to_string())
                    .replace("{token}", &link.token)
            }
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
                            attachments: Vec::new(),
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
            Target::SeoProject(p) => {
                let user = self.principal(self.user_id, Role::User);
                let project = self
                    .seo
                    .create_project(
                        &user,
                        confab_seo::domain::ProjectInput {
                            topic: "Sourdough bread".into(),
                            primary_keyword: "sourdough".into(),
                            ..Default::default()
                        },
                    )
                    .await
                    .unwrap();
                self.seo
                    .save_edit(&user, project.id, seo_package())
                    .await
                    .unwrap();
                p.replace("{id}", &project.id.to_string())
                    .replace("{number}", "1")
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

/// A 2×2 PNG.
pub(crate) fn png() -> Vec<u8> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_pixel(2, 2, image::Rgb([200, 30, 30]))
        .write_to(&mut bytes, image::ImageFormat::Png)
        .unwrap();
    bytes.into_inner()
}

/// A multipart form with one part named `file`.
pub(crate) fn multipart(name: &str, bytes: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{BOUNDARY}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

pub(crate) const BOUNDARY: &str = "confab-test-boundary";

/// A package that breaks none of YouTube's rules.
fn seo_package() -> confab_seo::domain::Package {
    confab_seo::domain::Package {
        title: "Sourdough bread for beginners".into(),
        description: "How to bake sourdough bread at home.\n\n#sourdough #baking #bread".into(),
        tags: vec!["sourdough".into(), "bread".into()],
        thumbnail_texts: vec!["Bake sourdough".into(), "First loaf".into()],
        ..Default::default()
    }
}

#[tokio::test]
async fn every_route_for_every_role() {
    let (mut config, _db) = test_config().await;
    // Every case makes its own resumable upload.
    config.files.open_uploads_per_user = 1000;
    let app = confab::app::build(&config).await.unwrap();
    let register = |email: &str| json!({"email": email, "password": PASSWORD, "name": "Someone"});
    let mut world = World {
        router: app.router.clone(),
        auth: app.auth.clone(),
        chat: app.chat.clone(),
        seo: app.seo.clone(),
        files: app.files.clone(),
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
            let path = world.path(case.target).await;
            if let Payload::Raw(content_type, make) = case.payload {
                let (status, response) = world
                    .send_bytes(
                        case.method.clone(),
                        &path,
                        token.as_deref(),
                        Some((content_type, make())),
                    )
                    .await;
                if status.as_u16() != expected {
                    failures.push(format!(
                        "{} {path} as {who:?}: expected {expected}, got {status} {response}",
                        case.method
                    ));
                }
                continue;
            }
            let body = match case.payload {
                Payload::None | Payload::Raw(..) => None,
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
