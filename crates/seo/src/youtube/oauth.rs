//! Google OAuth 2.0 for the YouTube scope: `YOUTUBE_CREDENTIALS` parsing (client secrets of
//! an installed or web app, or an authorized user), PKCE and the consent URL, the code
//! exchange and refresh against the token endpoint, and [`TokenSource`], which refreshes an
//! access token before it expires with one refresh shared by all concurrent callers.
//!
//! Tokens and secrets are held as [`Secret`] and never appear in logs or `Debug`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use confab_core::config::Secret;
use jiff::Timestamp;
use rand::Rng;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::YouTubeSettings;
use crate::quota::Clock;

/// The scope that lets the studio read and edit the user's videos.
pub const YOUTUBE_SCOPE: &str = "https://www.googleapis.com/auth/youtube.force-ssl";

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// `invalid_grant`: the refresh token (or code) is revoked, expired or used.
    #[error("the Google account must be connected again")]
    ReconnectNeeded,
    #[error("unusable OAuth credentials: {0}")]
    Credentials(String),
    /// Another error from the token endpoint (`invalid_client`, …).
    #[error("the token endpoint refused: {error}")]
    Refused { error: String, description: String },
    #[error("the token endpoint is unavailable: {0}")]
    Unavailable(String),
    #[error("unexpected answer from the token endpoint: {0}")]
    Decode(String),
}

/// What `YOUTUBE_CREDENTIALS` holds.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// An OAuth client (`{"installed": {...}}` or `{"web": {...}}`): users still have to consent.
    Client(ClientSecret),
    /// `{"type": "authorized_user", ...}`: a client with a user's refresh token.
    AuthorizedUser {
        client: ClientSecret,
        refresh_token: Secret,
    },
}

/// An OAuth client's id and secret, with the URIs Google put in its file.
#[derive(Debug, Clone, Deserialize)]
pub struct ClientSecret {
    pub client_id: String,
    pub client_secret: Secret,
    #[serde(default)]
    pub auth_uri: Option<String>,
    #[serde(default)]
    pub token_uri: Option<String>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
}

#[derive(Deserialize)]
struct CredentialsFile {
    installed: Option<ClientSecret>,
    web: Option<ClientSecret>,
    #[serde(rename = "type")]
    kind: Option<String>,
    client_id: Option<String>,
    client_secret: Option<Secret>,
    refresh_token: Option<Secret>,
}

impl Credentials {
    /// Reads a client secret file or an authorized-user file.
    pub fn from_json(json: &str) -> Result<Self, OAuthError> {
        let file: CredentialsFile = serde_json::from_str(json)
            .map_err(|e| OAuthError::Credentials(format!("not a credentials file: {e}")))?;
        if let Some(client) = file.installed.or(file.web) {
            return Ok(Credentials::Client(client));
        }
        match (file.kind.as_deref(), file.client_id, file.client_secret, file.refresh_token) {
            (Some("authorized_user"), Some(client_id), Some(client_secret), Some(refresh_token)) => {
                Ok(Credentials::AuthorizedUser {
                    client: ClientSecret {
                        client_id,
                        client_secret,
                        auth_uri: None,
                        token_uri: None,
                        redirect_uris: Vec::new(),
                    },
                    refresh_token,
                })
            }
            _ => Err(OAuthError::Credentials(
                "expected {\"installed\":…}, {\"web\":…} or an authorized_user with client_id, client_secret and refresh_token".to_owned(),
            )),
        }
    }

    pub fn client(&self) -> &ClientSecret {
        match self {
            Credentials::Client(c) | Credentials::AuthorizedUser { client: c, .. } => c,
        }
    }
}

/// A PKCE verifier with its S256 challenge, and the `state` that ties the callback to it.
#[derive(Debug, Clone)]
pub struct Pkce {
    pub verifier: Secret,
    pub challenge: String,
    pub state: String,
}

impl Pkce {
    pub fn generate() -> Self {
        let mut rng = rand::thread_rng();
        let mut bytes = [0u8; 48];
        let mut state = [0u8; 24];
        rng.fill(&mut bytes[..]);
        rng.fill(&mut state[..]);
        // 48 random bytes make a 64-character verifier (43 to 128 are allowed).
        let verifier = URL_SAFE_NO_PAD.encode(bytes);
        let challenge = challenge_of(&verifier);
        Self {
            verifier: Secret::new(verifier),
            challenge,
            state: URL_SAFE_NO_PAD.encode(state),
        }
    }
}

/// The S256 challenge of a verifier: base64url (no padding) of its SHA-256.
pub fn challenge_of(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Tokens from the token endpoint.
#[derive(Debug, Clone)]
pub struct TokenSet {
    pub access_token: Secret,
    pub expires_at: Timestamp,
    /// Sent on the code exchange (with `access_type=offline`), rarely on a refresh.
    pub refresh_token: Option<Secret>,
    pub scope: Option<String>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Secret,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<Secret>,
    #[serde(default)]
    scope: Option<String>,
}

#[derive(Deserialize)]
struct TokenErrorBody {
    error: String,
    #[serde(default)]
    error_description: String,
}

/// Talks to Google's consent page and token endpoint for one OAuth client.
#[derive(Clone)]
pub struct OAuthClient {
    http: reqwest::Client,
    client: ClientSecret,
    auth_url: String,
    token_url: String,
    refresh_early: jiff::SignedDuration,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClient")
            .field("client_id", &self.client.client_id)
            .field("token_url", &self.token_url)
            .finish_non_exhaustive()
    }
}

impl OAuthClient {
    /// The endpoints come from `settings` (not from the credentials file), so tests and
    /// proxies can move them.
    pub fn new(
        settings: &YouTubeSettings,
        client: ClientSecret,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, OAuthError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(settings.timeout_ms))
            .connect_timeout(Duration::from_millis(settings.connect_timeout_ms))
            .build()
            .map_err(|e| OAuthError::Credentials(e.to_string()))?;
        Ok(Self {
            http,
            client,
            auth_url: settings.oauth_auth_url.clone(),
            token_url: settings.oauth_token_url.clone(),
            refresh_early: jiff::SignedDuration::from_secs(
                i64::try_from(settings.refresh_early_secs).unwrap_or(i64::MAX),
            ),
            clock,
        })
    }

    /// The consent page's URL: offline access (a refresh token), consent asked again so
    /// Google sends one, PKCE S256.
    pub fn authorization_url(&self, redirect_uri: &str, pkce: &Pkce) -> Result<String, OAuthError> {
        let mut url = url::Url::parse(&self.auth_url)
            .map_err(|e| OAuthError::Credentials(format!("oauth_auth_url: {e}")))?;
        url.query_pairs_mut()
            .append_pair("client_id", &self.client.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("response_type", "code")
            .append_pair("scope", YOUTUBE_SCOPE)
            .append_pair("access_type", "offline")
            .append_pair("prompt", "consent")
            .append_pair("include_granted_scopes", "true")
            .append_pair("state", &pkce.state)
            .append_pair("code_challenge", &pkce.challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(url.into())
    }

    /// Trades the code from the callback for tokens.
    pub async fn exchange_code(
        &self,
        code: &str,
        verifier: &Secret,
        redirect_uri: &str,
    ) -> Result<TokenSet, OAuthError> {
        self.token_call(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier.expose()),
            ("redirect_uri", redirect_uri),
        ])
        .await
    }

    /// A fresh access token for a refresh token.
    pub async fn refresh(&self, refresh_token: &Secret) -> Result<TokenSet, OAuthError> {
        self.token_call(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose()),
        ])
        .await
    }

    async fn token_call(&self, fields: &[(&str, &str)]) -> Result<TokenSet, OAuthError> {
        let form = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.extend_pairs(fields);
            form.append_pair("client_id", &self.client.client_id);
            form.append_pair("client_secret", self.client.client_secret.expose());
            form.finish()
        };
        let response = self
            .http
            .post(&self.token_url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form)
            .send()
            .await
            .map_err(|e| OAuthError::Unavailable(e.without_url().to_string()))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| OAuthError::Unavailable(e.without_url().to_string()))?;
        if status.is_server_error() {
            return Err(OAuthError::Unavailable(format!("status {status}")));
        }
        if !status.is_success() {
            let error: TokenErrorBody = serde_json::from_slice(&body)
                .map_err(|_| OAuthError::Decode(format!("status {status}")))?;
            return Err(if error.error == "invalid_grant" {
                OAuthError::ReconnectNeeded
            } else {
                OAuthError::Refused {
                    error: error.error,
                    description: error.error_description,
                }
            });
        }
        let tokens: TokenResponse =
            serde_json::from_slice(&body).map_err(|e| OAuthError::Decode(e.to_string()))?;
        let lifetime = jiff::SignedDuration::from_secs(
            i64::try_from(tokens.expires_in.unwrap_or(3600)).unwrap_or(3600),
        );
        Ok(TokenSet {
            access_token: tokens.access_token,
            expires_at: self
                .clock
                .now()
                .checked_add(lifetime)
                .unwrap_or(Timestamp::MAX),
            refresh_token: tokens.refresh_token,
            scope: tokens.scope,
        })
    }
}

/// Access tokens for calls on a user's behalf.
#[async_trait]
pub trait AccessTokens: Send + Sync {
    /// A token valid for a while yet.
    async fn access_token(&self) -> Result<Secret, OAuthError>;

    /// A new token after the API refused `rejected` (401); callers that race here share one
    /// refresh.
    async fn refresh_after_rejection(&self, rejected: &Secret) -> Result<Secret, OAuthError>;
}

struct Cached {
    access_token: Secret,
    expires_at: Timestamp,
}

/// One user's tokens: refreshes `refresh_early_secs` (from the settings) before expiry, one
/// refresh at a time (callers that arrive during a refresh wait for it and share its token).
pub struct TokenSource {
    oauth: OAuthClient,
    refresh_token: parking_lot::Mutex<Secret>,
    current: tokio::sync::Mutex<Option<Cached>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("oauth", &self.oauth)
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    pub fn new(oauth: OAuthClient, refresh_token: Secret) -> Self {
        Self {
            oauth,
            refresh_token: parking_lot::Mutex::new(refresh_token),
            current: tokio::sync::Mutex::new(None),
        }
    }

    /// Starts from tokens already at hand (e.g. just after the code exchange).
    /// `None` if `tokens` has no refresh token.
    pub fn with_tokens(oauth: OAuthClient, tokens: TokenSet) -> Option<Self> {
        let source = Self::new(oauth, tokens.refresh_token?);
        *source.current.try_lock().ok()? = Some(Cached {
            access_token: tokens.access_token,
            expires_at: tokens.expires_at,
        });
        Some(source)
    }

    /// The refresh token in use (Google may send a new one on refresh): for storing.
    pub fn refresh_token(&self) -> Secret {
        self.refresh_token.lock().clone()
    }

    async fn refresh_locked(&self, current: &mut Option<Cached>) -> Result<Secret, OAuthError> {
        let refresh_token = self.refresh_token();
        let tokens = self.oauth.refresh(&refresh_token).await?;
        if let Some(rotated) = tokens.refresh_token {
            *self.refresh_token.lock() = rotated;
        }
        *current = Some(Cached {
            access_token: tokens.access_token.clone(),
            expires_at: tokens.expires_at,
        });
        Ok(tokens.access_token)
    }
}

#[async_trait]
impl AccessTokens for TokenSource {
    async fn access_token(&self) -> Result<Secret, OAuthError> {
        let mut current = self.current.lock().await;
        let now = self.oauth.clock.now();
        if let Some(cached) = current.as_ref()
            && cached
                .expires_at
                .checked_sub(self.oauth.refresh_early)
                .is_ok_and(|fresh_until| now < fresh_until)
        {
            return Ok(cached.access_token.clone());
        }
        self.refresh_locked(&mut current).await
    }

    async fn refresh_after_rejection(&self, rejected: &Secret) -> Result<Secret, OAuthError> {
        let mut current = self.current.lock().await;
        if let Some(cached) = current.as_ref()
            && cached.access_token != *rejected
        {
            return Ok(cached.access_token.clone());
        }
        self.refresh_locked(&mut current).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_files() {
        let installed = r#"{"installed":{"client_id":"id","client_secret":"s","auth_uri":"a","token_uri":"t","redirect_uris":["http://localhost"]}}"#;
        assert!(matches!(
            Credentials::from_json(installed).unwrap(),
            Credentials::Client(c) if c.client_id == "id" && c.redirect_uris.len() == 1
        ));
        let web = r#"{"web":{"client_id":"w","client_secret":"s"}}"#;
        assert_eq!(Credentials::from_json(web).unwrap().client().client_id, "w");
        let user =
            r#"{"type":"authorized_user","client_id":"u","client_secret":"s","refresh_token":"r"}"#;
        let parsed = Credentials::from_json(user).unwrap();
        assert!(
            matches!(&parsed, Credentials::AuthorizedUser { refresh_token, .. } if refresh_token.expose() == "r")
        );
        assert!(!format!("{parsed:?}").contains("\"s\""));
        assert!(Credentials::from_json(r#"{"type":"service_account"}"#).is_err());
    }

    #[test]
    fn pkce_matches_rfc_7636() {
        // The example of RFC 7636, appendix B.
        assert_eq!(
            challenge_of("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let pkce = Pkce::generate();
        assert_eq!(pkce.verifier.expose().len(), 64);
        assert_eq!(pkce.challenge, challenge_of(pkce.verifier.expose()));
    }
}
