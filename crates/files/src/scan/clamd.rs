//! [`Clamd`]: the [`Scanner`] adapter that speaks ClamAV's clamd protocol (`zINSTREAM`,
//! `zPING`) over TCP or a Unix socket, by hand over tokio.
//!
//! INSTREAM sends the body as chunks, each prefixed by its length as a 4-byte big-endian
//! number, and ends it with a zero-length chunk; clamd answers one NUL-terminated line:
//! `stream: OK`, `stream: <signature> FOUND` or `<message> ERROR`. clamd refuses a body longer
//! than its `StreamMaxLength` by answering `INSTREAM size limit exceeded. ERROR` and closing the
//! connection mid-upload, so the reply is read while the body is still being written.

use std::fmt;
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{BufMut, BytesMut};
use confab_blob::ByteStream;
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{ScanError, ScanVerdict, Scanner};

/// The largest piece of the body sent as one INSTREAM chunk: big enough to keep the framing
/// overhead negligible, small enough that no single write holds much memory.
const CHUNK_BYTES: usize = 64 * 1024;

/// The longest reply accepted. Real ones are one short line; a longer one means the other
/// end is not clamd.
const MAX_REPLY_BYTES: usize = 4096;

/// clamd's exact answer when a body passes its `StreamMaxLength`.
const SIZE_LIMIT_REPLY: &str = "INSTREAM size limit exceeded. ERROR";

/// Where clamd listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClamdAddress {
    /// `host:port` (clamd's `TCPSocket`/`TCPAddr`).
    Tcp(String),
    /// The path of clamd's `LocalSocket`.
    Unix(PathBuf),
}

impl ClamdAddress {
    /// Parses `tcp://host:port`, `host:port`, `unix:///path/clamd.ctl` or `/path/clamd.ctl`.
    /// The error says what was wrong, for the configuration error that quotes it.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("the clamd address is empty: use tcp://host:port or unix:///path".into());
        }
        if let Some(path) = s.strip_prefix("unix://") {
            return Self::unix(path, s);
        }
        if s.starts_with('/') {
            return Self::unix(s, s);
        }
        let host_port = match s.split_once("://") {
            Some(("tcp", rest)) => rest,
            Some((scheme, _)) => {
                return Err(format!(
                    "the clamd address {s:?} has the scheme {scheme:?}: use tcp://host:port or unix:///path"
                ));
            }
            None => s,
        };
        let Some((host, port)) = host_port.rsplit_once(':') else {
            return Err(format!(
                "the clamd address {s:?} has no port: use tcp://host:port (clamd's default port is 3310)"
            ));
        };
        if host.is_empty() || host.contains('/') {
            return Err(format!(
                "the clamd address {s:?} has no valid host: use tcp://host:port"
            ));
        }
        match port.parse::<u16>() {
            Ok(p) if p > 0 => Ok(Self::Tcp(host_port.to_owned())),
            _ => Err(format!(
                "the clamd address {s:?} has an invalid port {port:?}: use a number from 1 to 65535"
            )),
        }
    }

    fn unix(path: &str, whole: &str) -> Result<Self, String> {
        if !path.starts_with('/') {
            return Err(format!(
                "the clamd address {whole:?} is not an absolute socket path: use unix:///path/clamd.ctl"
            ));
        }
        Ok(Self::Unix(PathBuf::from(path)))
    }
}

impl fmt::Display for ClamdAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(host_port) => write!(f, "tcp://{host_port}"),
            Self::Unix(path) => write!(f, "unix://{}", path.display()),
        }
    }
}

/// The [`Scanner`] over a clamd daemon. Each call opens a connection of its own, so one value
/// serves any number of concurrent scans (clamd's `MaxThreads` limits them on its side).
#[derive(Debug, Clone)]
pub struct Clamd {
    address: ClamdAddress,
    /// The limit on each step of talking to clamd: connecting, each write, and the wait for its
    /// answer once the body is sent. Reading the body itself is not limited here: it comes from
    /// the uploader, whose pace the caller governs.
    timeout: Duration,
    max_bytes: u64,
}

/// A byte stream to clamd: TCP or Unix.
trait Connection: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Connection for T {}

/// Why sending the body stopped.
enum SendError {
    /// The body passed `max_bytes`.
    TooLarge,
    /// The body stream failed.
    Body(io::Error),
    /// Writing to clamd failed: clamd may have answered and closed.
    Write(io::Error),
    /// A write made no progress within the timeout.
    Stalled,
}

impl Clamd {
    /// A scanner talking to clamd at `address`, giving up on any step after `timeout`.
    /// `max_bytes` is clamd's `StreamMaxLength` as configured there: longer bodies are refused
    /// here, before clamd sees the rest of them.
    pub fn new(address: ClamdAddress, timeout: Duration, max_bytes: u64) -> Self {
        Self {
            address,
            timeout,
            max_bytes,
        }
    }

    fn unavailable(&self, doing: &str, error: &io::Error) -> ScanError {
        ScanError::Unavailable(format!("clamd at {}: {doing}: {error}", self.address))
    }

    fn timed_out(&self, doing: &str) -> ScanError {
        ScanError::Unavailable(format!(
            "clamd at {}: {doing}: timed out after {:?}",
            self.address, self.timeout
        ))
    }

    /// Runs one I/O step under the timeout.
    async fn step<T>(
        &self,
        doing: &str,
        io: impl Future<Output = io::Result<T>>,
    ) -> Result<T, ScanError> {
        match tokio::time::timeout(self.timeout, io).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(self.unavailable(doing, &e)),
            Err(_) => Err(self.timed_out(doing)),
        }
    }

    async fn connect(&self) -> Result<Box<dyn Connection>, ScanError> {
        match &self.address {
            ClamdAddress::Tcp(host_port) => {
                let stream = self
                    .step(
                        "connecting",
                        tokio::net::TcpStream::connect(host_port.as_str()),
                    )
                    .await?;
                // Frames go out as they are written; Nagle's algorithm would hold each one back
                // waiting for the previous one's acknowledgement.
                stream
                    .set_nodelay(true)
                    .map_err(|e| self.unavailable("connecting", &e))?;
                Ok(Box::new(stream))
            }
            #[cfg(unix)]
            ClamdAddress::Unix(path) => {
                let stream = self
                    .step("connecting", tokio::net::UnixStream::connect(path))
                    .await?;
                Ok(Box::new(stream))
            }
            #[cfg(not(unix))]
            ClamdAddress::Unix(_) => Err(ScanError::Unavailable(format!(
                "clamd at {}: Unix sockets are not supported on this platform",
                self.address
            ))),
        }
    }

    /// Writes `zINSTREAM`, the body in length-prefixed chunks of at most [`CHUNK_BYTES`], and
    /// the zero-length chunk that ends it. Stops before sending anything past `max_bytes`.
    async fn send_body<W: AsyncWrite + Unpin>(
        &self,
        writer: &mut W,
        mut body: ByteStream,
    ) -> Result<(), SendError> {
        self.write(writer, b"zINSTREAM\0").await?;
        let mut total: u64 = 0;
        let mut frame = BytesMut::with_capacity(4 + CHUNK_BYTES);
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(SendError::Body)?;
            total = total.saturating_add(chunk.len() as u64);
            if total > self.max_bytes {
                return Err(SendError::TooLarge);
            }
            // An empty chunk yields no pieces: a zero length would end the stream early.
            for piece in chunk.chunks(CHUNK_BYTES) {
                frame.clear();
                // At most CHUNK_BYTES, so it fits.
                frame.put_u32(piece.len() as u32);
                frame.extend_from_slice(piece);
                self.write(writer, &frame).await?;
            }
        }
        self.write(writer, &0u32.to_be_bytes()).await?;
        match tokio::time::timeout(self.timeout, writer.flush()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(SendError::Write(e)),
            Err(_) => Err(SendError::Stalled),
        }
    }

    async fn write<W: AsyncWrite + Unpin>(
        &self,
        writer: &mut W,
        bytes: &[u8],
    ) -> Result<(), SendError> {
        match tokio::time::timeout(self.timeout, writer.write_all(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(SendError::Write(e)),
            Err(_) => Err(SendError::Stalled),
        }
    }

    /// Turns clamd's answer to INSTREAM into a verdict or an error.
    fn verdict(&self, reply: &str) -> Result<ScanVerdict, ScanError> {
        if let Some(result) = reply.strip_prefix("stream: ") {
            if result == "OK" {
                return Ok(ScanVerdict::Clean);
            }
            if let Some(name) = result.strip_suffix(" FOUND") {
                return Ok(ScanVerdict::Infected(name.to_owned()));
            }
        }
        if reply == SIZE_LIMIT_REPLY {
            return Err(ScanError::TooLarge {
                limit: self.max_bytes,
            });
        }
        match reply.strip_suffix(" ERROR") {
            Some(message) => Err(ScanError::Failed(format!("clamd: {message}"))),
            None => Err(ScanError::Failed(format!("clamd answered {reply:?}"))),
        }
    }
}

/// Reads clamd's reply: everything up to the NUL that ends it (or the end of the connection,
/// when something did not terminate it), without the trailing line break.
async fn read_reply<R: AsyncRead + Unpin>(reader: &mut R) -> io::Result<String> {
    let mut reply = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            if reply.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the connection closed without an answer",
                ));
            }
            break;
        }
        if let Some(end) = buf[..n].iter().position(|&b| b == 0) {
            reply.extend_from_slice(&buf[..end]);
            break;
        }
        reply.extend_from_slice(&buf[..n]);
        if reply.len() > MAX_REPLY_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the answer is longer than {MAX_REPLY_BYTES} bytes: not clamd?"),
            ));
        }
    }
    let reply = String::from_utf8_lossy(&reply);
    Ok(reply.trim_end_matches(['\n', '\r']).to_owned())
}

#[async_trait]
impl Scanner for Clamd {
    async fn scan(&self, body: ByteStream) -> Result<ScanVerdict, ScanError> {
        let connection = self.connect().await?;
        let (mut reader, mut writer) = tokio::io::split(connection);
        let mut reply = std::pin::pin!(read_reply(&mut reader));
        let mut send = std::pin::pin!(self.send_body(&mut writer, body));
        // The reply is awaited alongside the upload: clamd answers early (and closes) when it
        // refuses the body, and that answer must be read before the connection is reset.
        let sent = tokio::select! {
            biased;
            answer = &mut reply => {
                return match answer {
                    Ok(answer) => self.verdict(&answer),
                    Err(e) => Err(self.unavailable("reading the answer", &e)),
                };
            }
            sent = &mut send => sent,
        };
        match sent {
            Ok(()) => {
                let answer = self.step("waiting for the verdict", reply).await?;
                self.verdict(&answer)
            }
            Err(SendError::TooLarge) => Err(ScanError::TooLarge {
                limit: self.max_bytes,
            }),
            Err(SendError::Body(e)) => {
                Err(ScanError::Failed(format!("reading the body to scan: {e}")))
            }
            Err(SendError::Write(write_error)) => {
                // clamd closes the connection after refusing a body; its answer says why.
                match tokio::time::timeout(self.timeout, reply).await {
                    Ok(Ok(answer)) => self.verdict(&answer),
                    _ => Err(self.unavailable("sending the body", &write_error)),
                }
            }
            Err(SendError::Stalled) => Err(self.timed_out("sending the body")),
        }
    }

    async fn ping(&self) -> Result<(), ScanError> {
        let mut connection = self.connect().await?;
        self.step("sending PING", connection.write_all(b"zPING\0"))
            .await?;
        let answer = self
            .step("waiting for PONG", read_reply(&mut connection))
            .await?;
        if answer == "PONG" {
            Ok(())
        } else {
            Err(ScanError::Failed(format!(
                "clamd answered PING with {answer:?}"
            )))
        }
    }

    fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    fn address(&self) -> String {
        self.address.to_string()
    }
}

#[cfg(test)]
mod tests;
