//! The user's YouTube channel: connecting it (OAuth with PKCE; the refresh token sealed at
//! rest, bound to its owner), its status, forgetting it, and applying a package to one of its
//! videos (read, change, write back the whole snippet). Google revoking the grant marks the
//! channel for reconnection.

use std::sync::Arc;

use confab_core::auth::Principal;
use confab_core::config::Secret;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::youtube::{CONSENT_TTL_MS, problem, video_id};
use super::{SeoError, SeoResult, SeoService};
use crate::ports::{ChannelRecord, ChannelStatus, PendingConsent};
use crate::youtube::oauth::{OAuthError, Pkce, TokenSource};
use crate::youtube::{SnippetChange, YouTubeError};

/// Whether the user has a channel the studio may change videos of.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChannelView {
    /// `none`, `connected` or `reconnect` (Google refused the stored grant: connect again).
    pub status: String,
    /// Unix ms.
    pub connected_at: Option<i64>,
    /// Whether connecting is possible here (`YOUTUBE_CREDENTIALS` holds an OAuth client and
    /// tokens can be sealed).
    pub can_connect: bool,
    /// Whether an admin may use the deployment's own channel (`authorized_user` credentials).
    pub operator_channel: bool,
}

/// What YouTube stored after an apply.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Applied {
    pub video_id: String,
    pub version: u32,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
}

impl SeoService {
    /// The user's channel, or for an admin without one the deployment's own.
    async fn channel_tokens(&self, principal: &Principal) -> SeoResult<Arc<TokenSource>> {
        if let Some(tokens) = self.youtube.tokens.lock().get(&principal.user_id) {
            return Ok(tokens.clone());
        }
        let record = self.store.channel(principal.user_id).await?;
        let deps = &self.youtube.deps;
        match (record, &deps.oauth, &deps.sealer) {
            (Some(record), _, _) if record.status == ChannelStatus::Reconnect => {
                Err(SeoError::Reconnect)
            }
            (Some(record), Some(oauth), Some(sealer)) => {
                let token = sealer
                    .open(&principal.user_id.to_string(), &record.refresh_token_sealed)
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .ok_or(SeoError::Reconnect)?;
                let source = Arc::new(TokenSource::new(oauth.clone(), Secret::new(token)));
                self.youtube
                    .tokens
                    .lock()
                    .insert(principal.user_id, source.clone());
                Ok(source)
            }
            _ if principal.is_admin() => self.youtube.operator.clone().ok_or(SeoError::NoChannel),
            _ => Err(SeoError::NoChannel),
        }
    }

    /// Writes a version (the newest when `number` is `None`) to one of the user's videos:
    /// title, description, tags and the project's category; every other field of the video's
    /// snippet is kept as YouTube has it.
    pub async fn apply(
        &self,
        principal: &Principal,
        project_id: Uuid,
        number: Option<u32>,
        video: &str,
    ) -> SeoResult<Applied> {
        let project = self.store.project(principal.user_id, project_id).await?;
        let number = number
            .or(project.latest_version)
            .ok_or(SeoError::NotFound("version"))?;
        let version = self.version(principal, project_id, number).await?;
        let video_id = video_id(video)?;
        let tokens = self.channel_tokens(principal).await?;
        let change = SnippetChange {
            title: Some(version.package.title.clone()),
            description: Some(version.package.description.clone()),
            tags: Some(version.package.tags.clone()),
            category_id: project.category_id.clone(),
            default_language: None,
        };
        match self
            .youtube
            .deps
            .api
            .update_video_snippet(tokens.as_ref(), &video_id, &change)
            .await
        {
            Ok(stored) => {
                self.remember_rotated_token(principal.user_id, &tokens)
                    .await;
                Ok(Applied {
                    video_id,
                    version: number,
                    title: stored.title,
                    description: stored.description,
                    tags: stored.tags,
                })
            }
            Err(YouTubeError::ReconnectNeeded) => {
                self.youtube.tokens.lock().remove(&principal.user_id);
                self.store
                    .set_channel_status(
                        principal.user_id,
                        ChannelStatus::Reconnect,
                        confab_core::now_ms(),
                    )
                    .await?;
                Err(SeoError::Reconnect)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Google may rotate a refresh token on use: keep the newest sealed.
    async fn remember_rotated_token(&self, owner: Uuid, tokens: &TokenSource) {
        let Some(sealer) = &self.youtube.deps.sealer else {
            return;
        };
        let Ok(Some(record)) = self.store.channel(owner).await else {
            return;
        };
        let current = tokens.refresh_token();
        let same = sealer
            .open(&owner.to_string(), &record.refresh_token_sealed)
            .is_ok_and(|stored| stored == current.expose().as_bytes());
        if same {
            return;
        }
        if let Ok(sealed) = sealer.seal(&owner.to_string(), current.expose().as_bytes()) {
            let record = ChannelRecord {
                refresh_token_sealed: sealed,
                updated_at: confab_core::now_ms(),
                ..record
            };
            if let Err(e) = self.store.save_channel(&record).await {
                tracing::warn!(error = %e, "the rotated YouTube refresh token was not stored");
            }
        }
    }

    /// Starts connecting the user's channel: the consent page's URL. Google sends the user
    /// back to `redirect_uri` (the callback route) with a code and this flow's state.
    pub async fn connect_channel(
        &self,
        principal: &Principal,
        redirect_uri: &str,
    ) -> SeoResult<String> {
        let deps = &self.youtube.deps;
        let (Some(oauth), Some(sealer)) = (&deps.oauth, &deps.sealer) else {
            return Err(SeoError::YouTubeNotConfigured(
                "connecting a channel needs YOUTUBE_CREDENTIALS (an OAuth client) and an \
                 encryption key (seo.youtube.token_encryption_key or auth.key_encryption_key)",
            ));
        };
        let redirect = url::Url::parse(redirect_uri).ok().filter(|u| {
            matches!(u.scheme(), "http" | "https")
                && u.host().is_some()
                && redirect_uri.len() <= 2000
        });
        if redirect.is_none() {
            return Err(SeoError::Invalid(vec![problem(
                "redirect_uri",
                "give the http(s) URL of the callback route",
            )]));
        }
        let pkce = Pkce::generate();
        let url = oauth
            .authorization_url(redirect_uri, &pkce)
            .map_err(|e| SeoError::YouTube(e.into()))?;
        let now = confab_core::now_ms();
        let verifier_sealed = sealer
            .seal(&pkce.state, pkce.verifier.expose().as_bytes())
            .map_err(|e| SeoError::Store(confab_store::StoreError::Other(e.to_string())))?;
        self.store
            .put_consent(
                &PendingConsent {
                    state: pkce.state.clone(),
                    owner: principal.user_id,
                    verifier_sealed,
                    redirect_uri: redirect_uri.to_owned(),
                    expires_at: now + CONSENT_TTL_MS,
                },
                now,
            )
            .await?;
        Ok(url)
    }

    /// Finishes a consent flow from Google's redirect: trades the code for tokens and keeps
    /// the refresh token sealed. The state names the user (it is unguessable and works once).
    pub async fn finish_channel(&self, state: &str, code: &str) -> SeoResult<Uuid> {
        let deps = &self.youtube.deps;
        let (Some(oauth), Some(sealer)) = (&deps.oauth, &deps.sealer) else {
            return Err(SeoError::YouTubeNotConfigured(
                "connecting a channel needs YOUTUBE_CREDENTIALS",
            ));
        };
        let now = confab_core::now_ms();
        let pending = self
            .store
            .take_consent(state, now)
            .await?
            .ok_or(SeoError::NotFound("consent flow"))?;
        let verifier = sealer
            .open(&pending.state, &pending.verifier_sealed)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or(SeoError::NotFound("consent flow"))?;
        let tokens = oauth
            .exchange_code(code, &Secret::new(verifier), &pending.redirect_uri)
            .await
            .map_err(|e| match e {
                OAuthError::ReconnectNeeded => SeoError::Reconnect,
                other => SeoError::YouTube(other.into()),
            })?;
        let refresh =
            tokens
                .refresh_token
                .clone()
                .ok_or(SeoError::YouTube(YouTubeError::Credentials(
                    "Google sent no refresh token; connect again".into(),
                )))?;
        let owner = pending.owner;
        let sealed = sealer
            .seal(&owner.to_string(), refresh.expose().as_bytes())
            .map_err(|e| SeoError::Store(confab_store::StoreError::Other(e.to_string())))?;
        self.store
            .save_channel(&ChannelRecord {
                owner,
                refresh_token_sealed: sealed,
                status: ChannelStatus::Connected,
                connected_at: now,
                updated_at: now,
            })
            .await?;
        let source = TokenSource::with_tokens(oauth.clone(), tokens).map(Arc::new);
        let mut cached = self.youtube.tokens.lock();
        match source {
            Some(source) => cached.insert(owner, source),
            None => cached.remove(&owner),
        };
        Ok(owner)
    }

    pub async fn channel(&self, principal: &Principal) -> SeoResult<ChannelView> {
        let record = self.store.channel(principal.user_id).await?;
        let deps = &self.youtube.deps;
        Ok(ChannelView {
            status: record
                .as_ref()
                .map_or("none", |r| r.status.as_str())
                .to_owned(),
            connected_at: record.map(|r| r.connected_at),
            can_connect: deps.oauth.is_some() && deps.sealer.is_some(),
            operator_channel: principal.is_admin() && self.youtube.operator.is_some(),
        })
    }

    pub async fn disconnect_channel(&self, principal: &Principal) -> SeoResult<()> {
        self.youtube.tokens.lock().remove(&principal.user_id);
        if self.store.delete_channel(principal.user_id).await? {
            Ok(())
        } else {
            Err(SeoError::NotFound("channel"))
        }
    }
}
