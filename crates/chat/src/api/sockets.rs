//! The real-time WebSocket: a user's events for each of their tabs, heartbeats, and the
//! credential checked again whenever the user's access may have ended.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::Response;
use confab_core::ApiError;
use confab_core::auth::{DynAuthenticator, Principal, Scope};
use confab_core::error::ErrorEnvelope;
use confab_core::error::responses::{Authenticated, BadQuery, Forbidden};
use futures::StreamExt;
use http::HeaderMap;
use http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ChatState;
use crate::service::ChatService;

pub(super) fn routes() -> OpenApiRouter<ChatState> {
    OpenApiRouter::new().routes(routes!(websocket))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WsQuery {
    /// The access token, for browsers (which cannot set headers on a WebSocket); other
    /// clients may send `Authorization: Bearer` instead.
    pub access_token: Option<String>,
}

/// How often the server pings a real-time connection, and how long it waits for any sign of
/// life before closing it.
const WS_PING: Duration = crate::service::SOCKET_REFRESH;
const WS_TIMEOUT: Duration = Duration::from_secs(60);
/// How soon an access token found still valid at its expiry is checked again.
const WS_EXPIRY_RETRY: Duration = Duration::from_secs(5);

/// Real-time events for the signed-in user's tabs (WebSocket). Each text frame is
/// `{"type", "data", "at"}`: `message.created`, `message.delta`, `message.completed`,
/// `conversation.updated`, `conversation.deleted`, `conversations.changed`, `typing`,
/// `reaction`, `presence`; `resync` when events were missed (reload from the API); `hello`
/// first. The server pings every 20 s and closes a connection silent for 60 s. The credential
/// is checked again when the user's access is revoked (logout, lock, disable, role or
/// password change) and when the access token expires: a credential no longer valid closes
/// the socket with code 1008 (policy violation). A user may hold `chat.sockets_per_user`
/// connections (16 by default) at once, across replicas; another is refused with 429.
#[utoipa::path(get, path = "/api/v1/ws", tag = "chat", params(WsQuery),
    responses(Authenticated, Forbidden, BadQuery,
        (status = 101, description = "Switching to WebSocket"), (status = 426, body = ErrorEnvelope, description = "upgrade_required: not a WebSocket request"),
        (status = 429, body = ErrorEnvelope, description = "too_many_sockets")),
    security(("bearer" = [])))]
async fn websocket(
    State(state): State<ChatState>,
    Query(query): Query<WsQuery>,
    headers: HeaderMap,
    upgrade: Result<
        axum::extract::ws::WebSocketUpgrade,
        axum::extract::ws::rejection::WebSocketUpgradeRejection,
    >,
) -> Result<Response, ApiError> {
    let header_token = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .map(str::to_owned);
    let token = header_token.or(query.access_token).ok_or_else(|| {
        ApiError::unauthorized("sign in: send ?access_token= or Authorization: Bearer")
    })?;
    let principal = state.authenticator.authenticate(&token).await?;
    principal.require_scope(Scope::Chat)?;
    let upgrade = upgrade.map_err(|_| {
        ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            "upgrade_required",
            "this endpoint speaks WebSocket only",
        )
    })?;
    // Held by the connection until it ends (dropped with it if the upgrade fails).
    let slot = state.service.reserve_socket(principal.user_id).await?;
    let connection = Connection {
        service: state.service.clone(),
        authenticator: state.authenticator.clone(),
        expires_at: token_expiry(&token),
        token,
        principal,
    };
    Ok(upgrade
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| realtime(connection, slot, socket)))
}

/// What one real-time connection holds: the credential it was opened with, checked again
/// whenever the user's access may have changed.
struct Connection {
    service: Arc<ChatService>,
    authenticator: DynAuthenticator,
    token: String,
    principal: Principal,
    /// When the access token expires (Unix seconds); API keys do not.
    expires_at: Option<i64>,
}

/// The `exp` of a JWT (an access token, or a service token behind its `cfs_` prefix), read
/// without checking the signature: the token was verified when the socket opened, and this
/// only decides when to verify it again.
fn token_expiry(token: &str) -> Option<i64> {
    use base64::Engine;
    #[derive(Deserialize)]
    struct Claims {
        exp: i64,
    }
    let jwt = token.strip_prefix("cfs_").unwrap_or(token);
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice::<Claims>(&bytes).ok().map(|c| c.exp)
}

/// The moment to check an expiring credential again: just after it expires.
fn expiry_deadline(expires_at: i64) -> tokio::time::Instant {
    let left_ms = expires_at
        .saturating_mul(1000)
        .saturating_sub(confab_core::now_ms())
        .saturating_add(500)
        .max(0);
    tokio::time::Instant::now() + Duration::from_millis(u64::try_from(left_ms).unwrap_or(0))
}

/// Why a connection must end, as a WebSocket close frame.
struct Refused {
    code: u16,
    reason: String,
}

impl Connection {
    /// Authenticates the connection's credential again (the auth service clears its caches
    /// before it announces a revocation, so this sees the change).
    async fn recheck(&mut self) -> Result<(), Refused> {
        use axum::extract::ws::close_code;
        match self.authenticator.authenticate(&self.token).await {
            Ok(principal)
                if principal.user_id == self.principal.user_id && principal.allows(Scope::Chat) =>
            {
                self.principal = principal;
                Ok(())
            }
            Ok(_) => Err(Refused {
                code: close_code::POLICY,
                reason: "the credential no longer allows chat".into(),
            }),
            // Not a refusal: the client reconnects later and is checked then.
            Err(confab_core::auth::AuthFailure::Unavailable(_)) => Err(Refused {
                code: close_code::AGAIN,
                reason: "authentication is unavailable; reconnect".into(),
            }),
            Err(failure) => Err(Refused {
                code: close_code::POLICY,
                reason: failure.to_string(),
            }),
        }
    }
}

/// One real-time connection: the user's events out, heartbeats both ways, and the
/// credential checked again on revocation events, after missed events and at its expiry.
async fn realtime(
    mut connection: Connection,
    slot: crate::service::SocketSlot,
    mut socket: axum::extract::ws::WebSocket,
) {
    use axum::extract::ws::{CloseFrame, Message as Frame};
    use confab_bus::events::AccessRevoked;
    let service = connection.service.clone();
    let user = connection.principal.user_id;
    let mut events = service.events().subscribe(&confab_bus::user_topic(user));
    service.announce_presence(user).await;
    let frame = |kind: &str, data: serde_json::Value, at: i64| {
        Frame::Text(
            serde_json::json!({"type": kind, "data": data, "at": at})
                .to_string()
                .into(),
        )
    };
    let hello = frame(
        "hello",
        serde_json::json!({"user_id": user}),
        confab_core::now_ms(),
    );
    let mut ping = tokio::time::interval(WS_PING);
    ping.tick().await;
    let mut last_seen = tokio::time::Instant::now();
    let mut recheck_at = connection.expires_at.map(expiry_deadline);
    let mut refused = None;
    if socket.send(hello).await.is_ok() {
        loop {
            let expiry = async {
                match recheck_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                received = events.next() => {
                    let out = match received {
                        // Access changed: check the credential; the event itself is not
                        // for the browser.
                        Some(confab_bus::Received::Event(e)) if e.kind == <AccessRevoked as confab_bus::TypedEvent>::KIND => {
                            if let Err(r) = connection.recheck().await {
                                refused = Some(r);
                                break;
                            }
                            continue;
                        }
                        Some(confab_bus::Received::Event(e)) => frame(&e.kind, e.data, e.at),
                        // Fell behind: the client reloads rather than the server buffering.
                        // A revocation may be among the missed events: check first.
                        Some(confab_bus::Received::Lagged(missed)) => {
                            if let Err(r) = connection.recheck().await {
                                refused = Some(r);
                                break;
                            }
                            frame(
                                "resync",
                                serde_json::json!({"missed": missed}),
                                confab_core::now_ms(),
                            )
                        }
                        None => break,
                    };
                    if socket.send(out).await.is_err() {
                        break;
                    }
                }
                () = expiry => {
                    if let Err(r) = connection.recheck().await {
                        refused = Some(r);
                        break;
                    }
                    // Still valid (clocks differ a little): look again shortly.
                    recheck_at = Some(tokio::time::Instant::now() + WS_EXPIRY_RETRY);
                }
                incoming = socket.recv() => match incoming {
                    Some(Ok(Frame::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(Frame::Text(text))) => {
                        last_seen = tokio::time::Instant::now();
                        if text.as_str().contains("\"ping\"") {
                            let pong = frame("pong", serde_json::Value::Null, confab_core::now_ms());
                            if socket.send(pong).await.is_err() {
                                break;
                            }
                        }
                    }
                    Some(Ok(_)) => last_seen = tokio::time::Instant::now(),
                },
                _ = ping.tick() => {
                    // Keeps this socket counted on every replica (WS_PING is well within
                    // the membership's time to live).
                    slot.refresh().await;
                    if last_seen.elapsed() > WS_TIMEOUT
                        || socket.send(Frame::Ping(Vec::new().into())).await.is_err()
                    {
                        break;
                    }
                }
            }
        }
    }
    if let Some(Refused { code, reason }) = refused {
        tracing::info!(%user, code, reason, "real-time connection closed: access ended");
        let close = Frame::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }));
        let _ = socket.send(close).await;
    }
    drop(events);
    slot.release().await;
    service.announce_presence(user).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn jwt(payload: &str) -> String {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.signature", b64(r#"{"alg":"EdDSA"}"#), b64(payload))
    }

    /// A socket checks its access token again when it expires: the `exp` is read from access
    /// and service tokens; API keys have none.
    #[test]
    fn sockets_know_when_their_token_expires() {
        let token = jwt(r#"{"sub":"x","exp":1700000000}"#);
        assert_eq!(token_expiry(&token), Some(1_700_000_000));
        assert_eq!(token_expiry(&format!("cfs_{token}")), Some(1_700_000_000));
        assert_eq!(token_expiry("cfk_0123456789abcdef"), None);
        assert_eq!(token_expiry(&jwt(r#"{"sub":"x"}"#)), None);
        // Already expired: checked again at once.
        assert!(expiry_deadline(0) <= tokio::time::Instant::now());
    }
}
