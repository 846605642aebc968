//! [`EncryptedBlobs`]: a [`BlobStore`] that encrypts what another stores, at rest.
//!
//! Envelope encryption with AES-256-GCM: a key-encryption key (KEK, SHA-256 of a configured
//! secret of at least 32 bytes) wraps a fresh random data key (DEK) per object, and the DEK
//! seals the object in segments of [`SEGMENT_BYTES`], so a ranged read decrypts only the
//! segments it covers and a streamed write never holds the body whole.
//!
//! Stored form:
//! - header ([`HEADER_BYTES`]): magic `CFE1` | wrapped DEK: 12-byte nonce, 32-byte ciphertext,
//!   16-byte tag (associated data: the magic and the object's key, so a blob copied to another
//!   key does not open) | an 8-byte random nonce prefix;
//! - then the plaintext in segments of 64 KiB, each sealed with the DEK: nonce = prefix ‖
//!   segment index (u32, big-endian), associated data = one byte, 1 for the last segment and 0
//!   for the others (so truncation and reordering fail), ciphertext ‖ 16-byte tag. An empty
//!   plaintext is one empty last segment.
//!
//! The plaintext's size follows from the stored size, so `head` and `list` answer without
//! reading the objects.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use sha2::{Digest, Sha256};

use crate::{BlobError, BlobKey, BlobMeta, BlobRead, BlobStore, ByteStream};

const MAGIC: &[u8; 4] = b"CFE1";
const WRAP_NONCE_BYTES: usize = 12;
const DEK_BYTES: usize = 32;
const TAG_BYTES: usize = 16;
const PREFIX_BYTES: usize = 8;
/// The header's size: magic, wrapped data key, nonce prefix.
pub const HEADER_BYTES: usize = 4 + WRAP_NONCE_BYTES + DEK_BYTES + TAG_BYTES + PREFIX_BYTES;
/// The plaintext of one sealed segment (the last may be shorter).
pub const SEGMENT_BYTES: usize = 64 * 1024;
const SEALED_BYTES: usize = SEGMENT_BYTES + TAG_BYTES;

/// The encryption secret is too short to be a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the encryption key must be at least {min} bytes (e.g. `openssl rand -hex 32`)")]
pub struct KeyTooShort {
    pub min: usize,
}

/// Blobs encrypted at rest in another store.
pub struct EncryptedBlobs {
    inner: Arc<dyn BlobStore>,
    kek: Aes256Gcm,
}

impl std::fmt::Debug for EncryptedBlobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptedBlobs")
            .field("inner", &self.inner)
            .field("kek", &"[redacted]")
            .finish()
    }
}

impl EncryptedBlobs {
    /// Shortest secret accepted, in bytes.
    pub const MIN_SECRET: usize = 32;

    /// Blobs of `inner`, encrypted under SHA-256 of `secret` (at least 32 bytes).
    pub fn new(inner: Arc<dyn BlobStore>, secret: &str) -> Result<Self, KeyTooShort> {
        if secret.len() < Self::MIN_SECRET {
            return Err(KeyTooShort {
                min: Self::MIN_SECRET,
            });
        }
        let key: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let kek = Aes256Gcm::new(&key.into());
        Ok(Self { inner, kek })
    }

    /// A fresh data key, wrapped for `key`: the header and the segments' sealer.
    fn seal_header(&self, key: &BlobKey) -> Result<(Bytes, Segments), BlobError> {
        let mut dek = [0u8; DEK_BYTES];
        let mut nonce = [0u8; WRAP_NONCE_BYTES];
        let mut prefix = [0u8; PREFIX_BYTES];
        let mut rng = rand::rngs::OsRng;
        rand::RngCore::fill_bytes(&mut rng, &mut dek);
        rand::RngCore::fill_bytes(&mut rng, &mut nonce);
        rand::RngCore::fill_bytes(&mut rng, &mut prefix);
        let wrapped = self
            .kek
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: &dek,
                    aad: &wrap_aad(key),
                },
            )
            .map_err(|_| BlobError::Unavailable(format!("cannot encrypt `{key}`")))?;
        let mut header = BytesMut::with_capacity(HEADER_BYTES);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&nonce);
        header.extend_from_slice(&wrapped);
        header.extend_from_slice(&prefix);
        let segments = Segments {
            dek: Aes256Gcm::new(&dek.into()),
            prefix,
        };
        Ok((header.freeze(), segments))
    }

    /// The segments' opener from a stored header, if this KEK wrapped it for `key`.
    fn open_header(&self, key: &BlobKey, header: &[u8]) -> Result<Segments, BlobError> {
        let undecryptable =
            |why: &str| BlobError::Unavailable(format!("`{key}` cannot be decrypted: {why}"));
        if header.len() != HEADER_BYTES || !header.starts_with(MAGIC) {
            return Err(undecryptable("it is not an encrypted blob"));
        }
        let (nonce, rest) = header[MAGIC.len()..].split_at(WRAP_NONCE_BYTES);
        let (wrapped, prefix) = rest.split_at(DEK_BYTES + TAG_BYTES);
        let mut nonce_array = [0u8; WRAP_NONCE_BYTES];
        nonce_array.copy_from_slice(nonce);
        let dek = self
            .kek
            .decrypt(
                &nonce_array.into(),
                Payload {
                    msg: wrapped,
                    aad: &wrap_aad(key),
                },
            )
            .map_err(|_| undecryptable("another key, or altered, or moved from another key"))?;
        let dek = Aes256Gcm::new_from_slice(&dek)
            .map_err(|_| undecryptable("the data key has the wrong length"))?;
        let mut prefix_array = [0u8; PREFIX_BYTES];
        prefix_array.copy_from_slice(prefix);
        Ok(Segments {
            dek,
            prefix: prefix_array,
        })
    }

    /// `meta` of a stored object, in plaintext terms.
    fn plain_meta(key: &str, mut meta: BlobMeta) -> Result<BlobMeta, BlobError> {
        meta.size = plain_size(meta.size).ok_or_else(|| corrupt(key, meta.size))?;
        Ok(meta)
    }
}

fn corrupt(key: &str, stored: u64) -> BlobError {
    BlobError::Unavailable(format!(
        "`{key}` cannot be decrypted: its stored size ({stored} bytes) is not an encrypted blob's"
    ))
}

fn wrap_aad(key: &BlobKey) -> Vec<u8> {
    let mut aad = MAGIC.to_vec();
    aad.extend_from_slice(key.as_str().as_bytes());
    aad
}

/// The plaintext size of a stored object of `stored` bytes, or `None` if no encryption makes
/// that size.
pub fn plain_size(stored: u64) -> Option<u64> {
    let body = stored.checked_sub(HEADER_BYTES as u64)?;
    let sealed = SEALED_BYTES as u64;
    let segments = body.div_ceil(sealed).max(1);
    let last = body.checked_sub((segments - 1) * sealed)?;
    // The last segment holds its tag, and bytes unless it is the only one.
    if last < TAG_BYTES as u64 || (last == TAG_BYTES as u64 && segments > 1) {
        return None;
    }
    Some(body - TAG_BYTES as u64 * segments)
}

/// The stored size of a plaintext of `plain` bytes.
pub fn stored_size(plain: u64) -> u64 {
    HEADER_BYTES as u64 + plain + TAG_BYTES as u64 * segment_count(plain)
}

/// How many segments a plaintext of `plain` bytes is sealed in (an empty one: one).
fn segment_count(plain: u64) -> u64 {
    plain.div_ceil(SEGMENT_BYTES as u64).max(1)
}

/// One object's data key and nonce prefix.
struct Segments {
    dek: Aes256Gcm,
    prefix: [u8; PREFIX_BYTES],
}

impl Segments {
    fn nonce(&self, index: u64) -> Result<[u8; 12], &'static str> {
        let index = u32::try_from(index).map_err(|_| "too many segments")?;
        let mut nonce = [0u8; 12];
        nonce[..PREFIX_BYTES].copy_from_slice(&self.prefix);
        nonce[PREFIX_BYTES..].copy_from_slice(&index.to_be_bytes());
        Ok(nonce)
    }

    fn seal(&self, index: u64, plain: &[u8], last: bool) -> std::io::Result<Bytes> {
        let nonce = self.nonce(index).map_err(std::io::Error::other)?;
        self.dek
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: plain,
                    aad: &[u8::from(last)],
                },
            )
            .map(Bytes::from)
            .map_err(|_| std::io::Error::other("a segment cannot be encrypted"))
    }

    fn open(&self, index: u64, sealed: &[u8], last: bool) -> std::io::Result<Vec<u8>> {
        let nonce = self.nonce(index).map_err(std::io::Error::other)?;
        self.dek
            .decrypt(
                &nonce.into(),
                Payload {
                    msg: sealed,
                    aad: &[u8::from(last)],
                },
            )
            .map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("segment {index} cannot be decrypted: the blob was altered"),
                )
            })
    }
}

/// A streamed write being encrypted: the header, then each segment once the next byte (or the
/// end) says whether it is the last.
struct Sealing {
    body: ByteStream,
    segments: Segments,
    header: Option<Bytes>,
    buffer: BytesMut,
    index: u64,
    ended: bool,
    done: bool,
}

impl Sealing {
    async fn next(&mut self) -> Option<std::io::Result<Bytes>> {
        if self.done {
            return None;
        }
        if let Some(header) = self.header.take() {
            return Some(Ok(header));
        }
        while !self.ended && self.buffer.len() <= SEGMENT_BYTES {
            match self.body.next().await {
                None => self.ended = true,
                Some(Ok(chunk)) => self.buffer.extend_from_slice(&chunk),
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        let last = self.buffer.len() <= SEGMENT_BYTES;
        let take = self.buffer.len().min(SEGMENT_BYTES);
        let plain = self.buffer.split_to(take);
        let sealed = self.segments.seal(self.index, &plain, last);
        self.index += 1;
        if last || sealed.is_err() {
            self.done = true;
        }
        Some(sealed)
    }
}

/// A read being decrypted: the segments `index..=last_index` of an object whose plaintext is
/// `plain` bytes, trimmed to the range asked.
struct Opening {
    body: ByteStream,
    segments: Segments,
    buffer: BytesMut,
    index: u64,
    last_index: u64,
    /// Segments in the whole object.
    total: u64,
    plain: u64,
    /// Plaintext bytes to drop from the first segment opened.
    skip: usize,
    /// Plaintext bytes still to give.
    remaining: u64,
    done: bool,
}

impl Opening {
    async fn next(&mut self) -> Option<std::io::Result<Bytes>> {
        while !self.done && self.index <= self.last_index {
            let last = self.index + 1 == self.total;
            let plain_len = if last {
                self.plain - self.index * SEGMENT_BYTES as u64
            } else {
                SEGMENT_BYTES as u64
            };
            let sealed_len = usize::try_from(plain_len).unwrap_or(SEGMENT_BYTES) + TAG_BYTES;
            while self.buffer.len() < sealed_len {
                match self.body.next().await {
                    Some(Ok(chunk)) => self.buffer.extend_from_slice(&chunk),
                    Some(Err(e)) => return self.fail(e),
                    None => {
                        return self.fail(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "the encrypted blob ends early",
                        ));
                    }
                }
            }
            let sealed = self.buffer.split_to(sealed_len);
            let opened = match self.segments.open(self.index, &sealed, last) {
                Ok(opened) => opened,
                Err(e) => return self.fail(e),
            };
            self.index += 1;
            let mut plain = Bytes::from(opened);
            let skip = std::mem::take(&mut self.skip).min(plain.len());
            let _ = plain.split_to(skip);
            let keep = usize::try_from(self.remaining).map_or(plain.len(), |r| r.min(plain.len()));
            plain.truncate(keep);
            self.remaining -= keep as u64;
            if !plain.is_empty() {
                return Some(Ok(plain));
            }
        }
        None
    }

    fn fail(&mut self, error: std::io::Error) -> Option<std::io::Result<Bytes>> {
        self.done = true;
        Some(Err(error))
    }
}

/// Reads `stream` until `n` bytes arrived: those, and what came after them.
async fn read_prefix(stream: &mut ByteStream, n: usize) -> std::io::Result<(BytesMut, BytesMut)> {
    let mut buffer = BytesMut::new();
    while buffer.len() < n {
        match stream.next().await {
            Some(chunk) => buffer.extend_from_slice(&chunk?),
            None => break,
        }
    }
    let head = buffer.split_to(n.min(buffer.len()));
    Ok((head, buffer))
}

#[async_trait]
impl BlobStore for EncryptedBlobs {
    async fn put(&self, key: &BlobKey, bytes: Bytes) -> Result<BlobMeta, BlobError> {
        let (header, segments) = self.seal_header(key)?;
        let plain = bytes.len() as u64;
        let count = segment_count(plain);
        let mut stored = BytesMut::with_capacity(usize::try_from(stored_size(plain)).unwrap_or(0));
        stored.extend_from_slice(&header);
        for index in 0..count {
            let start = usize::try_from(index).unwrap_or(usize::MAX) * SEGMENT_BYTES;
            let end = start.saturating_add(SEGMENT_BYTES).min(bytes.len());
            let sealed = segments
                .seal(index, &bytes[start.min(end)..end], index + 1 == count)
                .map_err(|e| BlobError::Unavailable(format!("cannot encrypt `{key}`: {e}")))?;
            stored.extend_from_slice(&sealed);
        }
        let meta = self.inner.put(key, stored.freeze()).await?;
        Self::plain_meta(key.as_str(), meta)
    }

    async fn put_stream(&self, key: &BlobKey, body: ByteStream) -> Result<BlobMeta, BlobError> {
        let (header, segments) = self.seal_header(key)?;
        let sealing = Sealing {
            body,
            segments,
            header: Some(header),
            buffer: BytesMut::new(),
            index: 0,
            ended: false,
            done: false,
        };
        let sealed = futures::stream::unfold(sealing, |mut sealing| async move {
            sealing.next().await.map(|item| (item, sealing))
        })
        .boxed();
        let meta = self.inner.put_stream(key, sealed).await?;
        Self::plain_meta(key.as_str(), meta)
    }

    async fn get(&self, key: &BlobKey, range: Option<Range<u64>>) -> Result<BlobRead, BlobError> {
        let io = |e: std::io::Error| BlobError::Unavailable(format!("cannot read `{key}`: {e}"));
        // The header: with the whole object when it is read whole, else on its own.
        let (stored, segments, mut body, leftover) = match &range {
            None => {
                let mut read = self.inner.get(key, None).await?;
                let (header, leftover) = read_prefix(&mut read.body, HEADER_BYTES)
                    .await
                    .map_err(io)?;
                let segments = self.open_header(key, &header)?;
                (read.meta, segments, Some(read.body), leftover)
            }
            Some(_) => {
                let read = match self.inner.get(key, Some(0..HEADER_BYTES as u64)).await {
                    Ok(read) => read,
                    Err(BlobError::InvalidRange { size, .. }) => {
                        return Err(corrupt(key.as_str(), size));
                    }
                    Err(e) => return Err(e),
                };
                let mut header_body = read.body;
                let (header, _) = read_prefix(&mut header_body, HEADER_BYTES)
                    .await
                    .map_err(io)?;
                let segments = self.open_header(key, &header)?;
                (read.meta, segments, None, BytesMut::new())
            }
        };
        let meta = Self::plain_meta(key.as_str(), stored.clone())?;
        let plain = meta.size;
        let (start, end) = match &range {
            None => (0, plain),
            Some(r) if r.start >= r.end || r.start >= plain => {
                return Err(BlobError::InvalidRange {
                    start: r.start,
                    end: r.end,
                    size: plain,
                });
            }
            Some(r) => (r.start, r.end.min(plain)),
        };
        let segment = SEGMENT_BYTES as u64;
        let first = start / segment;
        let last_index = if end > start {
            (end - 1) / segment
        } else {
            first
        };
        let body = match body.take() {
            Some(body) => body,
            None => {
                let from = HEADER_BYTES as u64 + first * SEALED_BYTES as u64;
                let to =
                    (HEADER_BYTES as u64 + (last_index + 1) * SEALED_BYTES as u64).min(stored.size);
                self.inner.get(key, Some(from..to)).await?.body
            }
        };
        let opening = Opening {
            body,
            segments,
            buffer: leftover,
            index: first,
            last_index,
            total: segment_count(plain),
            plain,
            skip: usize::try_from(start - first * segment).unwrap_or(0),
            remaining: end - start,
            done: false,
        };
        let body = futures::stream::unfold(opening, |mut opening| async move {
            opening.next().await.map(|item| (item, opening))
        })
        .boxed();
        Ok(BlobRead {
            meta,
            range: start..end,
            body,
        })
    }

    async fn head(&self, key: &BlobKey) -> Result<BlobMeta, BlobError> {
        Self::plain_meta(key.as_str(), self.inner.head(key).await?)
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        self.inner.delete(key).await
    }

    async fn list(&self, prefix: Option<&BlobKey>) -> Result<Vec<BlobMeta>, BlobError> {
        let listed = self.inner.list(prefix).await?;
        Ok(listed
            .into_iter()
            .map(|mut meta| {
                match plain_size(meta.size) {
                    Some(size) => meta.size = size,
                    None => {
                        // Listed still (so it can be found and deleted), but not readable.
                        tracing::warn!(key = %meta.key, stored = meta.size,
                            "a stored blob is not an encrypted blob's size");
                        meta.size = 0;
                    }
                }
                meta
            })
            .collect())
    }

    /// An encrypted blob cannot be served by the store itself.
    async fn presign_get(
        &self,
        _key: &BlobKey,
        _expires_in: Duration,
    ) -> Result<Option<url::Url>, BlobError> {
        Ok(None)
    }

    fn location(&self) -> String {
        format!("encrypted+{}", self.inner.location())
    }

    async fn sweep_incomplete(&self, older_than: Duration) -> Result<u64, BlobError> {
        self.inner.sweep_incomplete(older_than).await
    }
}
