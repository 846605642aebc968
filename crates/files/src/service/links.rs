//! Share links: signed, expiring, revocable URLs (`/f/{token}`) that serve one file without
//! signing in. The token carries the link's id and expiry under an HMAC; the row says whether
//! it was revoked. A stale, tampered or revoked link answers 403 before any byte is read.

use confab_blob::{BlobError, BlobKey};
use confab_core::extract::ClientMeta;
use serde_json::json;
use uuid::Uuid;

use super::files::Content;
use super::{FilesAction, FilesError, FilesResult, FilesService};
use crate::domain::LinkRecord;

/// A link just made: its token is shown once.
#[derive(Debug)]
pub struct CreatedLink {
    pub link: LinkRecord,
    pub token: String,
}

/// How long a presigned URL a share link redirects to stays valid: the client follows the
/// redirect at once, and a revoked link stops working within this time.
pub const PRESIGNED_FOR: std::time::Duration = std::time::Duration::from_secs(60);

/// What a share link opens.
#[derive(Debug)]
pub enum Opened {
    /// The bytes, served through Confab.
    Content(Box<Content>),
    /// A presigned URL of the storage (`files.presigned_links` on S3) to send the client to.
    Redirect(String),
}

impl FilesService {
    /// A link to the owner's file that lives `hours`.
    pub async fn create_link(
        &self,
        owner: Uuid,
        file_id: Uuid,
        hours: u32,
        client: &ClientMeta,
    ) -> FilesResult<CreatedLink> {
        let max = self.settings.link_max_hours;
        if !(1..=max).contains(&hours) {
            return Err(FilesError::InvalidHours { max });
        }
        let file = self.file(owner, file_id).await?;
        if !file.state.servable() {
            return Err(match file.state {
                crate::domain::FileState::Infected => FilesError::Quarantined {
                    threat: file.threat.unwrap_or_else(|| "a virus".to_owned()),
                },
                _ => FilesError::NotReady,
            });
        }
        let signer = self.signer().await?;
        let now = confab_core::now_ms();
        let link = LinkRecord {
            id: confab_core::new_id(),
            file_id,
            owner,
            expires_ms: now.saturating_add(i64::from(hours) * 3_600_000),
            created_ms: now,
            revoked: false,
        };
        self.store.insert_link(&link).await?;
        let token = signer.sign(link.id, link.expires_ms);
        self.audit(
            Self::audit_event(FilesAction::LinkCreated, client)
                .actor(owner)
                .target(file_id.to_string())
                .details(json!({ "link": link.id, "hours": hours })),
        )
        .await;
        Ok(CreatedLink { link, token })
    }

    /// The owner's links to one of their files, newest first.
    pub async fn links(&self, owner: Uuid, file_id: Uuid) -> FilesResult<Vec<LinkRecord>> {
        self.file(owner, file_id).await?;
        Ok(self.store.links(owner, file_id).await?)
    }

    /// Revokes the owner's link to their file.
    pub async fn revoke_link(
        &self,
        owner: Uuid,
        file_id: Uuid,
        link_id: Uuid,
        client: &ClientMeta,
    ) -> FilesResult<()> {
        let link = self
            .store
            .link(link_id)
            .await?
            .filter(|l| l.owner == owner && l.file_id == file_id)
            .ok_or(FilesError::NotFound("link"))?;
        if !self.store.revoke_link(owner, link.id).await? {
            return Err(FilesError::NotFound("link"));
        }
        self.audit(
            Self::audit_event(FilesAction::LinkRevoked, client)
                .actor(owner)
                .target(file_id.to_string())
                .details(json!({ "link": link.id })),
        )
        .await;
        Ok(())
    }

    /// The file behind a share link: the token is checked first (no lookup for a stale or
    /// forged one), then the link's row and the file's state.
    pub async fn open_link(&self, token: &str, range_header: Option<&str>) -> FilesResult<Opened> {
        let signer = self.signer().await?;
        let (link_id, _expires) = signer.verify(token, confab_core::now_ms())?;
        let link = self
            .store
            .link(link_id)
            .await?
            .filter(|l| !l.revoked)
            .ok_or(FilesError::LinkGone)?;
        let file = self
            .store
            .get_any(link.file_id)
            .await?
            .filter(|f| f.owner == link.owner && f.state.servable())
            .ok_or(FilesError::LinkGone)?;
        if self.settings.presigned_links {
            let key = BlobKey::new(file.blob_key()).map_err(BlobError::from)?;
            if let Some(url) = self.blobs.presign_get(&key, PRESIGNED_FOR).await? {
                return Ok(Opened::Redirect(url.to_string()));
            }
        }
        Ok(Opened::Content(Box::new(
            self.serve(file, range_header).await?,
        )))
    }
}
