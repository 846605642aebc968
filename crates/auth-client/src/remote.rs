//! [`RemoteAuthenticator`]: the `Authenticator` port over the auth service's HTTP routes
//! (`/.well-known/jwks.json` and `/internal/v1/auth/...`).
//!
//! When auth cannot be reached, answers already cached keep working until they expire; new
//! ones are `AuthFailure::Unavailable` (503), never a refusal (401).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use confab_bus::events::{AUTH_REVOCATIONS_TOPIC, AuthRevocation};
use confab_bus::{EventBus, Received};
use confab_cache::RevocableCache;
use confab_core::auth::{
    AuthFailure, Authenticator, Credential, JwkSet, KeySet, Principal, Role, ServiceTokens,
};
use confab_core::internal::{
    IntrospectRequest, Introspection, MAX_INTROSPECTED_TOKEN, UserStanding,
};
use confab_core::telemetry::otel;
use futures::StreamExt;
use parking_lot::RwLock;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

/// How to reach the auth service and how long to trust its answers.
#[derive(Debug, Clone)]
pub struct RemoteAuthConfig {
    /// The auth service's base URL, e.g. `http://auth:8080`.
    pub base_url: String,
    /// The issuer access tokens must name (`auth.issuer`).
    pub issuer: String,
    /// This process's service name in its internal tokens (`chat`, `gateway`).
    pub caller: String,
    /// How long an answer of the auth service is reused (at most; an introspection may say
    /// less). Revocations drop answers sooner.
    pub cache_ttl: Duration,
    /// How many answers of each kind are kept.
    pub cache_capacity: u64,
    /// The least time between two JWKS fetches caused by tokens naming an unknown `kid`.
    pub jwks_min_interval: Duration,
    /// How often the JWKS is fetched anyway (retired keys leave it).
    pub jwks_refresh: Duration,
    /// The longest wait between two tries while the JWKS could not be fetched.
    pub jwks_retry_max: Duration,
    /// Timeout of each call to the auth service.
    pub request_timeout: Duration,
    /// The deployment's trust for calls between services (`services.ca_file`,
    /// `services.require_tls`).
    pub tls: confab_core::service_tls::ServiceTls,
}

impl RemoteAuthConfig {
    pub fn new(
        base_url: impl Into<String>,
        issuer: impl Into<String>,
        caller: impl Into<String>,
    ) -> Self {
        Self {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            issuer: issuer.into(),
            caller: caller.into(),
            cache_ttl: Duration::from_secs(15),
            cache_capacity: 100_000,
            jwks_min_interval: Duration::from_secs(5),
            jwks_refresh: Duration::from_secs(300),
            jwks_retry_max: Duration::from_secs(30),
            request_timeout: Duration::from_secs(5),
            tls: confab_core::service_tls::ServiceTls::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RemoteAuthError {
    #[error("cannot build the HTTP client for the auth service: {0}")]
    Client(String),
    #[error("the auth service URL `{0}` is not an http(s) URL")]
    Url(String),
}

/// A refusal that stays true for the cache's lifetime.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    Invalid,
    Expired,
    Revoked,
}

impl From<Refusal> for AuthFailure {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Invalid => AuthFailure::Invalid,
            Refusal::Expired => AuthFailure::Expired,
            Refusal::Revoked => AuthFailure::Revoked,
        }
    }
}

type Answer = Result<Introspection, Refusal>;

struct Inner {
    config: RemoteAuthConfig,
    http: reqwest::Client,
    tokens: ServiceTokens,
    events: Arc<dyn EventBus>,
    /// The verifying keys; `None` until the JWKS was fetched once.
    keys: RwLock<Option<Arc<KeySet>>>,
    keys_loaded: watch::Sender<bool>,
    /// When an unknown `kid` last caused a fetch; held during that fetch (single flight).
    kid_refresh: tokio::sync::Mutex<Option<Instant>>,
    jwks_fetches: AtomicU64,
    /// Introspections of access tokens' sessions, by session id.
    sessions: RevocableCache<Uuid, Answer>,
    /// Introspections of API keys, by SHA-256 of the key (the secret is not kept).
    api_keys: RevocableCache<[u8; 32], Answer>,
    /// Accounts' standing (`None`: no such account).
    users: RevocableCache<Uuid, Option<UserStanding>>,
}

/// The `Authenticator` of a process without the auth service. Cheap to clone.
#[derive(Clone)]
pub struct RemoteAuthenticator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RemoteAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteAuthenticator")
            .field("auth", &self.inner.config.base_url)
            .finish_non_exhaustive()
    }
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> AuthFailure {
    AuthFailure::Unavailable(format!("the auth service cannot be reached ({what}): {e}"))
}

impl RemoteAuthenticator {
    /// An authenticator over the auth service at `config.base_url`, calling it with internal
    /// tokens made with `tokens` and following revocations on `events`. Nothing is fetched
    /// until [`Self::start`].
    pub fn new(
        config: RemoteAuthConfig,
        tokens: ServiceTokens,
        events: Arc<dyn EventBus>,
    ) -> Result<Self, RemoteAuthError> {
        if !(config.base_url.starts_with("http://") || config.base_url.starts_with("https://")) {
            return Err(RemoteAuthError::Url(config.base_url));
        }
        let http = config
            .tls
            .client_builder()
            .connect_timeout(config.request_timeout)
            .timeout(config.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| RemoteAuthError::Client(e.to_string()))?;
        let (capacity, ttl) = (config.cache_capacity, config.cache_ttl);
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                tokens,
                events,
                keys: RwLock::new(None),
                keys_loaded: watch::Sender::new(false),
                kid_refresh: tokio::sync::Mutex::new(None),
                jwks_fetches: AtomicU64::new(0),
                sessions: RevocableCache::new(capacity, ttl),
                api_keys: RevocableCache::new(capacity, ttl),
                users: RevocableCache::new(capacity, ttl),
                config,
            }),
        })
    }

    /// Starts following revocations (subscribed before this returns, so a revocation
    /// published afterwards is seen) and fetching the JWKS: at once, then again every
    /// `jwks_refresh`, and while auth cannot be reached with growing waits up to
    /// `jwks_retry_max`. Both stop at `shutdown`.
    pub fn start(&self, tasks: &TaskTracker, shutdown: CancellationToken) {
        let mut revocations = self.inner.events.subscribe(AUTH_REVOCATIONS_TOPIC);
        let this = self.clone();
        let stop = shutdown.clone();
        tasks.spawn(async move {
            loop {
                let received = tokio::select! {
                    () = stop.cancelled() => break,
                    received = revocations.next() => received,
                };
                match received {
                    Some(Received::Event(envelope)) => {
                        if let Some(revocation) = envelope.decode::<AuthRevocation>() {
                            this.drop_user(revocation.user_id).await;
                        }
                    }
                    Some(Received::Lagged(missed)) => {
                        tracing::warn!(
                            missed,
                            "auth revocations missed; dropping every cached answer"
                        );
                        this.drop_all();
                    }
                    None => break,
                }
            }
        });
        let this = self.clone();
        tasks.spawn(async move {
            let first_wait = Duration::from_millis(250);
            let mut wait = first_wait;
            loop {
                let next = match this.refresh_keys().await {
                    Ok(()) => {
                        wait = first_wait;
                        this.inner.config.jwks_refresh
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in_ms = wait.as_millis(), "cannot fetch the auth service's JWKS");
                        let now = wait;
                        wait = wait.saturating_mul(2).min(this.inner.config.jwks_retry_max);
                        now
                    }
                };
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(next) => {}
                }
            }
        });
    }

    /// Whether the JWKS was fetched at least once (what readiness reports).
    pub fn keys_loaded(&self) -> bool {
        *self.inner.keys_loaded.borrow()
    }

    /// Waits until the JWKS was fetched once.
    pub async fn wait_for_keys(&self) {
        let mut loaded = self.inner.keys_loaded.subscribe();
        // The sender lives in `self`, so the wait ends only with a fetch.
        let _ = loaded.wait_for(|loaded| *loaded).await;
    }

    /// How many times the JWKS was fetched (for metrics and tests).
    pub fn jwks_fetches(&self) -> u64 {
        self.inner.jwks_fetches.load(Ordering::Relaxed)
    }

    /// Fetches the JWKS now.
    pub async fn refresh_keys(&self) -> Result<(), AuthFailure> {
        let url = format!("{}/.well-known/jwks.json", self.inner.config.base_url);
        self.inner.jwks_fetches.fetch_add(1, Ordering::Relaxed);
        let response = self
            .inner
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| unavailable("JWKS", e))?;
        if !response.status().is_success() {
            return Err(unavailable("JWKS", response.status()));
        }
        let set: JwkSet = response.json().await.map_err(|e| unavailable("JWKS", e))?;
        let keys = KeySet::from_jwks(&set).map_err(|e| unavailable("JWKS", e))?;
        *self.inner.keys.write() = Some(Arc::new(keys));
        self.inner.keys_loaded.send_replace(true);
        Ok(())
    }

    fn keys(&self) -> Option<Arc<KeySet>> {
        self.inner.keys.read().clone()
    }

    /// The key set with `kid`, fetching the JWKS again if no other request did meanwhile and
    /// none was fetched for an unknown `kid` within `jwks_min_interval`; `None`: still
    /// unknown (a junk token, most likely).
    async fn keys_with(&self, kid: &str) -> Result<Option<Arc<KeySet>>, AuthFailure> {
        let mut last = self.inner.kid_refresh.lock().await;
        if let Some(keys) = self.keys().filter(|keys| keys.contains(kid)) {
            return Ok(Some(keys));
        }
        if last.is_some_and(|at| at.elapsed() < self.inner.config.jwks_min_interval) {
            return Ok(None);
        }
        *last = Some(Instant::now());
        self.refresh_keys().await?;
        Ok(self.keys().filter(|keys| keys.contains(kid)))
    }

    /// An account's role and status as the auth service knows it now; `None`: no such
    /// account. Cached like the other answers.
    pub async fn standing(&self, user_id: Uuid) -> Result<Option<UserStanding>, AuthFailure> {
        if let Some(known) = self.inner.users.get(&user_id).await {
            return Ok(known);
        }
        let ticket = self.inner.users.ticket();
        let url = format!(
            "{}/internal/v1/auth/users/{user_id}",
            self.inner.config.base_url
        );
        let response = self
            .inner
            .http
            .get(url)
            .headers(otel::trace_headers())
            .bearer_auth(self.internal_token()?)
            .send()
            .await
            .map_err(|e| unavailable("users", e))?;
        let known = match response.status() {
            reqwest::StatusCode::NOT_FOUND => None,
            status if status.is_success() => Some(
                response
                    .json::<UserStanding>()
                    .await
                    .map_err(|e| unavailable("users", e))?,
            ),
            status => return Err(self.call_failed("users", status, response).await),
        };
        self.inner
            .users
            .insert(user_id, user_id, known.clone(), ticket)
            .await;
        Ok(known)
    }

    fn internal_token(&self) -> Result<String, AuthFailure> {
        self.inner.tokens.mint_internal(&self.inner.config.caller)
    }

    /// Asks auth what `bearer` stands for: `Ok(Err(_))` is auth's refusal.
    async fn introspect(&self, bearer: &str) -> Result<Answer, AuthFailure> {
        let url = format!("{}/internal/v1/auth/introspect", self.inner.config.base_url);
        let response = self
            .inner
            .http
            .post(url)
            .headers(otel::trace_headers())
            .bearer_auth(self.internal_token()?)
            .json(&IntrospectRequest {
                token: bearer.to_owned(),
            })
            .send()
            .await
            .map_err(|e| unavailable("introspection", e))?;
        let status = response.status();
        if status.is_success() {
            return response
                .json::<Introspection>()
                .await
                .map(Ok)
                .map_err(|e| unavailable("introspection", e));
        }
        if status == reqwest::StatusCode::UNAUTHORIZED {
            let code = error_code(response).await;
            return match code.as_deref() {
                Some("invalid_token") => Ok(Err(Refusal::Invalid)),
                Some("token_expired") => Ok(Err(Refusal::Expired)),
                Some("token_revoked") => Ok(Err(Refusal::Revoked)),
                _ => Err(refused_internal_token("introspection")),
            };
        }
        Err(self.call_failed("introspection", status, response).await)
    }

    async fn call_failed(
        &self,
        what: &str,
        status: reqwest::StatusCode,
        response: reqwest::Response,
    ) -> AuthFailure {
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return refused_internal_token(what);
        }
        let code = error_code(response).await.unwrap_or_default();
        unavailable(what, format!("{status} {code}"))
    }

    async fn authenticate_key(&self, key: &str) -> Result<Principal, AuthFailure> {
        let hash: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let answer = match self.inner.api_keys.get(&hash).await {
            Some(answer) if fresh(&answer) => answer,
            _ => {
                let ticket = self.inner.api_keys.ticket();
                let answer = self.introspect(key).await?;
                // A refusal names no owner; it is kept only while the cache keeps entries.
                let owner = answer.as_ref().map_or(Uuid::nil(), |i| i.user_id);
                self.inner
                    .api_keys
                    .insert(hash, owner, answer.clone(), ticket)
                    .await;
                answer
            }
        };
        let introspection = answer?;
        let principal = introspection.principal();
        match principal.credential {
            Credential::ApiKey { .. } => Ok(principal),
            _ => Err(AuthFailure::Invalid),
        }
    }

    async fn authenticate_token(&self, token: &str) -> Result<Principal, AuthFailure> {
        let kid = KeySet::token_kid(token)?;
        let keys = match self.keys() {
            Some(keys) if keys.contains(&kid) => keys,
            Some(_) => self.keys_with(&kid).await?.ok_or(AuthFailure::Invalid)?,
            None => {
                return Err(AuthFailure::Unavailable(
                    "the auth service's signing keys are not loaded yet".into(),
                ));
            }
        };
        let claims = keys.verify(token, &self.inner.config.issuer)?;
        let answer = match self.inner.sessions.get(&claims.sid).await {
            Some(answer) if fresh(&answer) => answer,
            _ => {
                let ticket = self.inner.sessions.ticket();
                let answer = self.introspect(token).await?;
                self.inner
                    .sessions
                    .insert(claims.sid, claims.sub, answer.clone(), ticket)
                    .await;
                answer
            }
        };
        let principal = answer?.principal();
        match principal.credential {
            Credential::Session { session_id }
                if session_id == claims.sid && principal.user_id == claims.sub =>
            {
                Ok(principal)
            }
            _ => Err(AuthFailure::Revoked),
        }
    }

    async fn drop_user(&self, user_id: Uuid) {
        self.inner.sessions.revoke_owner(user_id).await;
        self.inner.api_keys.revoke_owner(user_id).await;
        self.inner.users.revoke_owner(user_id).await;
    }

    fn drop_all(&self) {
        self.inner.sessions.revoke_all();
        self.inner.api_keys.revoke_all();
        self.inner.users.revoke_all();
    }
}

/// Whether a cached answer may still be used: refusals for the cache's lifetime, an
/// introspection until its `cache_until`.
fn fresh(answer: &Answer) -> bool {
    answer
        .as_ref()
        .map_or(true, |i| confab_core::now_ms() < i.cache_until)
}

fn refused_internal_token(what: &str) -> AuthFailure {
    tracing::error!(
        what,
        "the auth service refused this process's internal token: is services.token the same in every process?"
    );
    AuthFailure::Unavailable("the auth service refused this service's internal token".into())
}

/// The `error.code` of an error envelope, if the body is one.
async fn error_code(response: reqwest::Response) -> Option<String> {
    let body: serde_json::Value = response.json().await.ok()?;
    body.pointer("/error/code")?.as_str().map(str::to_owned)
}

#[async_trait]
impl Authenticator for RemoteAuthenticator {
    async fn authenticate(&self, bearer: &str) -> Result<Principal, AuthFailure> {
        if bearer.len() > MAX_INTROSPECTED_TOKEN
            || bearer.starts_with(ServiceTokens::PREFIX)
            || bearer.starts_with(ServiceTokens::INTERNAL_PREFIX)
        {
            return Err(AuthFailure::Invalid);
        }
        if bearer.starts_with("cfk_") {
            self.authenticate_key(bearer).await
        } else {
            self.authenticate_token(bearer).await
        }
    }

    /// Today's role of an active account; `Revoked` for an account that is not active or no
    /// longer exists (the auth service knows every account of the deployment).
    async fn current_role(&self, user_id: Uuid) -> Result<Option<Role>, AuthFailure> {
        match self.standing(user_id).await? {
            Some(standing) if standing.active => Ok(Some(standing.role)),
            _ => Err(AuthFailure::Revoked),
        }
    }
}
