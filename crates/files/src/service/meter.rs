//! The meter an upload's body streams through on its way to the blob store: it counts the
//! bytes, stops the body past its limit, and hashes it (SHA-256).
//!
//! A small body (up to [`INLINE_BYTES`]) is hashed as it passes and its chunks go on as they
//! came. Past that, the hash moves to a blocking thread fed through a short queue, so hashing
//! (about 2 GB/s, a third of an upload's CPU) runs beside the receiving and the writing instead
//! of between them; and the chunks are copied into a few buffers of [`BUFFER_BYTES`] that the
//! upload reuses. The copy is cheaper than what it saves: a chunk is dropped as soon as it is
//! copied, so the HTTP server reuses its read buffer in place, and no buffer is given back to
//! the system and faulted in again (zeroed) while the body streams.

use std::io;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use confab_blob::ByteStream;
use futures::StreamExt;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Bytes hashed inline and passed on as they came; a body that is longer moves to the
/// pipeline.
pub(super) const INLINE_BYTES: u64 = 1024 * 1024;
/// The size of one reused buffer.
const BUFFER_BYTES: usize = 256 * 1024;
/// Buffers queued for the hashing thread: how far the hash may lag behind the body.
const HASH_QUEUE: usize = 4;
/// Buffers an upload keeps for reuse (S3's 8 MiB parts, two in flight, hold the most).
const POOL_KEEP: usize = 80;

/// What the meter learned; read once the blob store has taken the whole body.
pub(super) struct Meter {
    shared: Arc<Mutex<Shared>>,
}

#[derive(Default)]
struct Shared {
    /// The body went past its limit.
    passed: bool,
    /// Set when the body ended: its length and its hash.
    ended: Option<(u64, Hashing)>,
}

enum Hashing {
    Inline(Sha256),
    Thread(JoinHandle<Sha256>),
}

impl Meter {
    /// Meters `body`, which may be at most `max` bytes long: the stream to store, and the
    /// meter to ask afterwards.
    pub(super) fn new(body: ByteStream, max: u64) -> (ByteStream, Self) {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let flow = Flow {
            body,
            shared: shared.clone(),
            max,
            received: 0,
            inline: Some(Sha256::new()),
            thread: None,
            pool: Pool::new(),
            filling: Vec::new(),
            rest: Bytes::new(),
            ended: false,
        };
        let stream = futures::stream::unfold(flow, Flow::step).boxed();
        (stream, Self { shared })
    }

    /// Whether the body was stopped for passing its limit.
    pub(super) fn passed_limit(&self) -> bool {
        self.shared.lock().passed
    }

    /// The body's length and its SHA-256 (hex), once the body has ended.
    pub(super) async fn finish(self) -> io::Result<(u64, String)> {
        let ended = self.shared.lock().ended.take();
        match ended {
            Some((size, Hashing::Inline(hasher))) => {
                Ok((size, super::upload::hex(&hasher.finalize())))
            }
            Some((size, Hashing::Thread(thread))) => {
                let hasher = thread.await.map_err(io::Error::other)?;
                Ok((size, super::upload::hex(&hasher.finalize())))
            }
            None => Err(io::Error::other("the body did not end")),
        }
    }
}

/// The state of a metered body between two of its chunks.
struct Flow {
    body: ByteStream,
    shared: Arc<Mutex<Shared>>,
    max: u64,
    received: u64,
    /// The hash while the body is hashed inline.
    inline: Option<Sha256>,
    /// The queue to the hashing thread, and the thread, once the body is past
    /// [`INLINE_BYTES`].
    thread: Option<(mpsc::Sender<Bytes>, JoinHandle<Sha256>)>,
    pool: Pool,
    /// The buffer being filled (empty and unallocated until the first copy).
    filling: Vec<u8>,
    /// What is left of the last chunk after filling a buffer.
    rest: Bytes,
    /// Nothing more is yielded.
    ended: bool,
}

impl Flow {
    /// The next piece of the body, or its end.
    async fn step(mut self) -> Option<(io::Result<Bytes>, Self)> {
        loop {
            if self.ended {
                return None;
            }
            if self.rest.is_empty() {
                let chunk = match self.body.next().await {
                    None => return self.end().await,
                    Some(Err(e)) => {
                        self.ended = true;
                        return Some((Err(e), self));
                    }
                    Some(Ok(chunk)) => chunk,
                };
                self.received += chunk.len() as u64;
                if self.received > self.max {
                    self.shared.lock().passed = true;
                    self.ended = true;
                    return Some((Err(io::Error::other("the body passed its limit")), self));
                }
                if let Some(hasher) = self.inline.as_mut() {
                    if self.received <= INLINE_BYTES {
                        hasher.update(&chunk);
                        return Some((Ok(chunk), self));
                    }
                    self.start_thread();
                }
                self.rest = chunk;
            }
            if self.filling.capacity() == 0 {
                self.filling = self.pool.take();
            }
            let take = (BUFFER_BYTES - self.filling.len()).min(self.rest.len());
            self.filling.extend_from_slice(&self.rest[..take]);
            if take == self.rest.len() {
                // Dropped at once, so the server can reuse the memory it read the chunk into.
                self.rest = Bytes::new();
            } else {
                self.rest.advance(take);
            }
            if self.filling.len() == BUFFER_BYTES {
                let full = std::mem::take(&mut self.filling);
                let full = self.pool.freeze(full);
                if let Err(e) = self.hash(&full).await {
                    self.ended = true;
                    return Some((Err(e), self));
                }
                return Some((Ok(full), self));
            }
        }
    }

    /// The body ended: the last buffer goes out, and the meter learns the length and hash.
    async fn end(mut self) -> Option<(io::Result<Bytes>, Self)> {
        self.ended = true;
        let last = if self.filling.is_empty() {
            None
        } else {
            let last = self.pool.freeze(std::mem::take(&mut self.filling));
            if let Err(e) = self.hash(&last).await {
                return Some((Err(e), self));
            }
            Some(last)
        };
        let hashing = match (self.inline.take(), self.thread.take()) {
            // Dropping the queue's sender lets the thread finish.
            (_, Some((_queue, thread))) => Hashing::Thread(thread),
            (Some(hasher), None) => Hashing::Inline(hasher),
            (None, None) => {
                return Some((Err(io::Error::other("the body was hashed twice")), self));
            }
        };
        self.shared.lock().ended = Some((self.received, hashing));
        last.map(|last| (Ok(last), self))
    }

    /// Moves the hash to a blocking thread fed through a short queue.
    fn start_thread(&mut self) {
        let Some(mut hasher) = self.inline.take() else {
            return;
        };
        let (queue, mut buffers) = mpsc::channel::<Bytes>(HASH_QUEUE);
        let thread = tokio::task::spawn_blocking(move || {
            while let Some(buffer) = buffers.blocking_recv() {
                hasher.update(&buffer);
            }
            hasher
        });
        self.thread = Some((queue, thread));
    }

    /// Queues a buffer for the hashing thread (waiting while the queue is full).
    async fn hash(&mut self, buffer: &Bytes) -> io::Result<()> {
        match &self.thread {
            Some((queue, _)) => queue
                .send(buffer.clone())
                .await
                .map_err(|_| io::Error::other("the hashing thread stopped")),
            None => Ok(()),
        }
    }
}

/// One upload's buffers: a buffer comes back when its last `Bytes` is dropped (written and
/// hashed), and is filled again.
#[derive(Clone)]
struct Pool(Arc<Mutex<Vec<Vec<u8>>>>);

impl Pool {
    fn new() -> Self {
        // Room for every buffer kept, so that giving one back (on the writing or hashing
        // thread) never allocates there.
        Self(Arc::new(Mutex::new(Vec::with_capacity(POOL_KEEP))))
    }

    fn take(&self) -> Vec<u8> {
        match self.0.lock().pop() {
            Some(mut buffer) => {
                buffer.clear();
                buffer
            }
            None => Vec::with_capacity(BUFFER_BYTES),
        }
    }

    fn freeze(&self, buffer: Vec<u8>) -> Bytes {
        Bytes::from_owner(Pooled {
            buffer,
            pool: self.clone(),
        })
    }
}

/// A buffer lent out as `Bytes`; dropped, it goes back to its pool.
struct Pooled {
    buffer: Vec<u8>,
    pool: Pool,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buffer
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let mut free = self.pool.0.lock();
        if free.len() < POOL_KEEP {
            free.push(std::mem::take(&mut self.buffer));
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::TryStreamExt;

    use super::*;

    fn body(data: &[u8], chunk: usize) -> ByteStream {
        let chunks: Vec<io::Result<Bytes>> = data
            .chunks(chunk)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        futures::stream::iter(chunks).boxed()
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[tokio::test]
    async fn bodies_pass_whole_with_their_length_and_hash() {
        // Inline only, exactly at the switch, and through the pipeline in odd chunks.
        for (len, chunk) in [
            (0, 7),
            (10, 3),
            (INLINE_BYTES as usize, 65_536),
            (INLINE_BYTES as usize + 1, 100_003),
            (5 * BUFFER_BYTES + 12_345, 77_777),
            (3 * BUFFER_BYTES, BUFFER_BYTES),
        ] {
            let data = pattern(len);
            let (stream, meter) = Meter::new(body(&data, chunk), u64::MAX);
            let out: Vec<Bytes> = stream.try_collect().await.unwrap();
            assert_eq!(out.concat(), data, "{len}");
            let (size, hash) = meter.finish().await.unwrap();
            assert_eq!(size, len as u64);
            assert_eq!(
                hash,
                super::super::upload::hex(&Sha256::digest(&data)),
                "{len}"
            );
        }
    }

    #[tokio::test]
    async fn a_body_past_its_limit_is_stopped() {
        for max in [1000, 3 * BUFFER_BYTES as u64 + 1] {
            let data = pattern(4 * BUFFER_BYTES);
            let (stream, meter) = Meter::new(body(&data, 4096), max);
            let result: io::Result<Vec<Bytes>> = stream.try_collect().await;
            assert!(result.is_err());
            assert!(meter.passed_limit());
            assert!(meter.finish().await.is_err(), "no hash for a stopped body");
        }
    }

    #[tokio::test]
    async fn a_failing_body_fails_and_ends() {
        let good = pattern(3 * BUFFER_BYTES);
        let failing = body(&good, 100_000)
            .chain(futures::stream::iter([Err(io::Error::other("gone"))]))
            .boxed();
        let (stream, meter) = Meter::new(failing, u64::MAX);
        let result: io::Result<Vec<Bytes>> = stream.try_collect().await;
        assert!(result.is_err());
        assert!(!meter.passed_limit());
        assert!(meter.finish().await.is_err());
    }
}
