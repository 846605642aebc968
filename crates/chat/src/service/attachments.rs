//! Files attached to messages: checking them when a message is sent (through the
//! [`FileAccess`] port: they must be the sender's, scanned and not quarantined), reading them
//! when a turn is sent to a model (images as image parts for models that see, text, markdown
//! and PDF text as context within a share of the context window, anything else named), the
//! images of a shared conversation, and the files a deleted conversation takes with it.

use bytes::Bytes;
use confab_core::auth::Principal;
use confab_model_client::types::ImageInput;
use uuid::Uuid;

use super::{ChatError, ChatService};
use crate::domain::{self, Attachment, Turn};
use crate::ports::{FileAccessError, FileInput, ImageSize};

/// The most images one request to a model carries: the newest; older ones are named only.
pub const MAX_IMAGES_SENT: usize = confab_model_client::types::MAX_IMAGES;

/// Images above this size are base64-encoded on a blocking thread.
const ENCODE_INLINE_BYTES: usize = 256 * 1024;

impl ChatService {
    /// The sender's files `ids` as attachments, checked; at most
    /// [`domain::MAX_ATTACHMENTS`], a repeated id counted once.
    pub(super) async fn attachments(
        &self,
        principal: &Principal,
        ids: &[Uuid],
    ) -> Result<Vec<Attachment>, ChatError> {
        let mut unique: Vec<Uuid> = Vec::with_capacity(ids.len());
        for id in ids {
            if !unique.contains(id) {
                unique.push(*id);
            }
            if unique.len() > domain::MAX_ATTACHMENTS {
                return Err(ChatError::invalid(
                    "too_many_attachments",
                    format!(
                        "a message carries at most {} files",
                        domain::MAX_ATTACHMENTS
                    ),
                ));
            }
        }
        if unique.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.files.describe(principal.user_id, &unique).await?)
    }

    /// Reads the attachments of `turns` for a model in a window of `context` tokens: each
    /// turn's files become context blocks before its text, and its images (the newest
    /// [`MAX_IMAGES_SENT`] of the request) are returned beside it, one list per turn. A file
    /// gone since it was attached is named as gone; the files service being down fails.
    pub(super) async fn read_attachments(
        &self,
        user_id: Uuid,
        turns: &mut [Turn],
        context: usize,
    ) -> Result<Vec<Vec<ImageInput>>, ChatError> {
        let mut images = vec![Vec::new(); turns.len()];
        let mut images_left = MAX_IMAGES_SENT;
        for (i, turn) in turns.iter_mut().enumerate().rev() {
            if turn.attachments.is_empty() {
                continue;
            }
            let per_file = domain::file_text_bytes(context, turn.attachments.len());
            // A turn's files are read at once; images beyond the request's cap are not read.
            let reads = turn.attachments.iter().map(|a| {
                let wanted = a.kind != "image" || images_left > 0;
                if a.kind == "image" && images_left > 0 {
                    images_left -= 1;
                }
                let files = self.files.clone();
                let id = a.file_id;
                async move {
                    match wanted {
                        true => Some(files.model_input(user_id, id, per_file).await),
                        false => None,
                    }
                }
            });
            let inputs = futures::future::join_all(reads).await;
            let mut blocks = String::new();
            for (a, input) in turn.attachments.iter().zip(inputs) {
                match input {
                    None => blocks.push_str(&format!(
                        "[Attached image: {}; left out: a request carries at most \
                         {MAX_IMAGES_SENT} images]\n\n",
                        a.name
                    )),
                    Some(Ok(FileInput::Image { media_type, data })) => {
                        blocks.push_str(&format!("[Attached image: {}]\n\n", a.name));
                        images[i].push(encode(media_type, data).await?);
                    }
                    Some(Ok(FileInput::Text { text, truncated })) => {
                        blocks.push_str(&domain::file_block(&a.name, &text, truncated));
                    }
                    Some(Ok(FileInput::Unreadable)) => blocks.push_str(&format!(
                        "[Attached file: {} ({}, {} bytes); its content cannot be read here]\n\n",
                        a.name, a.content_type, a.size
                    )),
                    Some(Err(FileAccessError::Unavailable(detail))) => {
                        return Err(ChatError::Files(FileAccessError::Unavailable(detail)));
                    }
                    Some(Err(e)) => {
                        tracing::info!(file = %a.file_id, error = %e, "an attachment cannot be read");
                        blocks.push_str(&format!(
                            "[Attached file: {}; no longer available]\n\n",
                            a.name
                        ));
                    }
                }
            }
            turn.content = if turn.content.is_empty() {
                blocks.trim_end().to_owned()
            } else {
                format!("{blocks}{}", turn.content)
            };
        }
        Ok(images)
    }

    /// The files that deleting `conversation_ids` deletes: those attached in them and in no
    /// other conversation of the user's. Read before the conversations go.
    pub(super) async fn files_of(
        &self,
        principal: &Principal,
        conversation_ids: &[Uuid],
    ) -> Vec<Uuid> {
        match self
            .store
            .files_only_in(principal.user_id, conversation_ids)
            .await
        {
            Ok(files) => files,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the files of deleted conversations");
                Vec::new()
            }
        }
    }

    /// Deletes the files of deleted conversations. The conversations are gone already, so a
    /// failure is logged: the files stay in the user's files, where they can delete them.
    pub(super) async fn delete_files(&self, principal: &Principal, files: Vec<Uuid>) {
        if files.is_empty() {
            return;
        }
        if let Err(e) = self.files.delete(principal.user_id, &files).await {
            tracing::warn!(error = %e, files = files.len(), "cannot delete the files of deleted conversations");
        }
    }

    /// An image attached to a message of a shared conversation, for its page: only the
    /// snapshot's own attachments, and only while the sharer's account is active.
    pub async fn shared_image(
        &self,
        token: &str,
        file_id: Uuid,
        size: ImageSize,
    ) -> Result<(String, Bytes), ChatError> {
        let (owner, snapshot) = self.shared_snapshot(token).await?;
        let attached = snapshot
            .messages
            .iter()
            .flat_map(|m| m.attachments.iter())
            .any(|a| a.file_id == file_id && a.kind == "image");
        if !attached {
            return Err(ChatError::NotFound("no such image in this conversation"));
        }
        self.files
            .image(owner, file_id, size)
            .await
            .map_err(|e| match e {
                FileAccessError::Unavailable(_) => ChatError::Files(e),
                _ => ChatError::NotFound("no such image in this conversation"),
            })
    }
}

/// An image as a model input: base64, on a blocking thread when it is large.
async fn encode(media_type: String, data: Bytes) -> Result<ImageInput, ChatError> {
    if data.len() <= ENCODE_INLINE_BYTES {
        return Ok(ImageInput::from_bytes(media_type, &data));
    }
    tokio::task::spawn_blocking(move || ImageInput::from_bytes(media_type, &data))
        .await
        .map_err(|e| ChatError::Internal(format!("encoding an image: {e}")))
}
