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
mod tests {
    use bytes::Bytes;
    use futures::stream;
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(5);

    fn body(chunks: Vec<Vec<u8>>) -> ByteStream {
        stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from(c)))).boxed()
    }

    async fn fake_clamd() -> (TcpListener, Clamd) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = ClamdAddress::Tcp(listener.local_addr().unwrap().to_string());
        (listener, Clamd::new(address, TIMEOUT, 1024 * 1024 * 1024))
    }

    /// The fake clamd's side: reads the NUL-terminated command.
    async fn read_command(socket: &mut TcpStream) -> String {
        let mut command = Vec::new();
        loop {
            let byte = socket.read_u8().await.unwrap();
            if byte == 0 {
                return String::from_utf8(command).unwrap();
            }
            command.push(byte);
        }
    }

    /// Reads one INSTREAM chunk: `None` for the zero-length one that ends the stream.
    async fn read_chunk(socket: &mut TcpStream) -> Option<Vec<u8>> {
        let len = socket.read_u32().await.unwrap() as usize;
        if len == 0 {
            return None;
        }
        let mut chunk = vec![0; len];
        socket.read_exact(&mut chunk).await.unwrap();
        Some(chunk)
    }

    /// A fake clamd for one INSTREAM: returns the chunks it got, after answering `reply`.
    async fn answer_instream(listener: TcpListener, reply: &str) -> Vec<Vec<u8>> {
        let (mut socket, _) = listener.accept().await.unwrap();
        assert_eq!(read_command(&mut socket).await, "zINSTREAM");
        let mut chunks = Vec::new();
        while let Some(chunk) = read_chunk(&mut socket).await {
            chunks.push(chunk);
        }
        socket.write_all(reply.as_bytes()).await.unwrap();
        socket.write_all(b"\0").await.unwrap();
        chunks
    }

    #[tokio::test]
    async fn the_body_goes_in_length_prefixed_chunks_of_at_most_64_kib() {
        let (listener, clamd) = fake_clamd().await;
        let big: Vec<u8> = (0..150_000u32).map(|i| (i % 251) as u8).collect();
        let chunks = vec![b"0123456789".to_vec(), Vec::new(), big.clone()];
        let (got, verdict) = tokio::join!(
            answer_instream(listener, "stream: OK"),
            clamd.scan(body(chunks))
        );
        assert_eq!(verdict.unwrap(), ScanVerdict::Clean);
        let sizes: Vec<usize> = got.iter().map(Vec::len).collect();
        // The empty chunk sends nothing: a zero length would end the stream.
        assert_eq!(sizes, [10, 65_536, 65_536, 150_000 - 2 * 65_536]);
        let mut expected = b"0123456789".to_vec();
        expected.extend_from_slice(&big);
        assert_eq!(got.concat(), expected);
    }

    #[tokio::test]
    async fn an_empty_body_is_just_the_end_chunk() {
        let (listener, clamd) = fake_clamd().await;
        let (got, verdict) = tokio::join!(
            answer_instream(listener, "stream: OK"),
            clamd.scan(body(vec![]))
        );
        assert_eq!(verdict.unwrap(), ScanVerdict::Clean);
        assert!(got.is_empty());
    }

    #[tokio::test]
    async fn found_names_the_signature() {
        let (listener, clamd) = fake_clamd().await;
        let (_, verdict) = tokio::join!(
            answer_instream(listener, "stream: Win.Test.EICAR_HDB-1 FOUND\n"),
            clamd.scan(body(vec![b"x".to_vec()]))
        );
        assert_eq!(
            verdict.unwrap(),
            ScanVerdict::Infected("Win.Test.EICAR_HDB-1".into())
        );
    }

    #[test]
    fn replies_map_to_verdicts_and_errors() {
        let clamd = Clamd::new(ClamdAddress::Tcp("localhost:3310".into()), TIMEOUT, 1000);
        assert_eq!(clamd.verdict("stream: OK").unwrap(), ScanVerdict::Clean);
        assert_eq!(
            clamd
                .verdict("stream: Confab.Test.Eicar.UNOFFICIAL FOUND")
                .unwrap(),
            ScanVerdict::Infected("Confab.Test.Eicar.UNOFFICIAL".into())
        );
        assert!(matches!(
            clamd.verdict("INSTREAM size limit exceeded. ERROR"),
            Err(ScanError::TooLarge { limit: 1000 })
        ));
        match clamd.verdict("stream: Can't allocate memory ERROR") {
            Err(ScanError::Failed(message)) => {
                assert_eq!(message, "clamd: stream: Can't allocate memory");
            }
            other => panic!("expected Failed, got {other:?}"),
        }
        match clamd.verdict("UNKNOWN COMMAND") {
            Err(ScanError::Failed(message)) => assert!(message.contains("UNKNOWN COMMAND")),
            other => panic!("expected Failed, got {other:?}"),
        }
    }

    /// Bodies of `n` MiB of zeros, in 1 MiB chunks.
    fn mebibytes(n: usize) -> ByteStream {
        let mib = Bytes::from(vec![0u8; 1024 * 1024]);
        stream::iter(std::iter::repeat_n(mib, n).map(Ok)).boxed()
    }

    #[tokio::test]
    async fn the_size_limit_answer_is_read_though_clamd_closes_mid_upload() {
        let (listener, clamd) = fake_clamd().await;
        // Like clamd past StreamMaxLength: answer, then close with the rest of the body unread
        // (which resets the connection under the writer).
        let server = async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            assert_eq!(read_command(&mut socket).await, "zINSTREAM");
            let mut got = 0;
            while got <= 1024 * 1024 {
                got += read_chunk(&mut socket).await.unwrap().len();
            }
            socket
                .write_all(b"INSTREAM size limit exceeded. ERROR\0")
                .await
                .unwrap();
        };
        let ((), verdict) = tokio::join!(server, clamd.scan(mebibytes(64)));
        match verdict {
            Err(ScanError::TooLarge { limit }) => assert_eq!(limit, 1024 * 1024 * 1024),
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_close_without_an_answer_is_unavailable() {
        let (listener, clamd) = fake_clamd().await;
        let server = async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            read_command(&mut socket).await;
        };
        let ((), verdict) = tokio::join!(server, clamd.scan(mebibytes(8)));
        match verdict {
            Err(ScanError::Unavailable(message)) => assert!(message.contains("127.0.0.1")),
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_refused_connection_is_unavailable() {
        let (listener, clamd) = fake_clamd().await;
        drop(listener);
        let verdict = clamd.scan(body(vec![b"x".to_vec()])).await;
        assert!(
            matches!(verdict, Err(ScanError::Unavailable(_))),
            "{verdict:?}"
        );
        assert!(matches!(clamd.ping().await, Err(ScanError::Unavailable(_))));
    }

    #[tokio::test]
    async fn a_silent_clamd_times_out_as_unavailable() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = ClamdAddress::Tcp(listener.local_addr().unwrap().to_string());
        let clamd = Clamd::new(address, Duration::from_millis(200), 1000);
        let server = async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            assert_eq!(read_command(&mut socket).await, "zINSTREAM");
            while read_chunk(&mut socket).await.is_some() {}
            // Never answers; holds the connection until the client gives up.
            let mut rest = Vec::new();
            socket.read_to_end(&mut rest).await.unwrap();
        };
        let ((), verdict) = tokio::join!(server, clamd.scan(body(vec![b"x".to_vec()])));
        match verdict {
            Err(ScanError::Unavailable(message)) => assert!(message.contains("timed out")),
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_body_past_the_limit_stops_without_waiting_for_clamd() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = ClamdAddress::Tcp(listener.local_addr().unwrap().to_string());
        let clamd = Clamd::new(address, TIMEOUT, 1000);
        // Two chunks pass the limit; the stream would never end after them, so the scan only
        // returns if it stops counting at the limit.
        let chunks = stream::iter([
            Ok(Bytes::from(vec![1u8; 600])),
            Ok(Bytes::from(vec![2u8; 600])),
        ])
        .chain(stream::pending())
        .boxed();
        let server = async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            assert_eq!(read_command(&mut socket).await, "zINSTREAM");
            // Everything else the client sent before closing, unanswered.
            let mut rest = Vec::new();
            socket.read_to_end(&mut rest).await.unwrap();
            rest
        };
        let (rest, verdict) =
            tokio::time::timeout(TIMEOUT, async { tokio::join!(server, clamd.scan(chunks)) })
                .await
                .unwrap();
        assert!(
            matches!(verdict, Err(ScanError::TooLarge { limit: 1000 })),
            "{verdict:?}"
        );
        // Only the first chunk went out, and no end chunk.
        let mut expected = 600u32.to_be_bytes().to_vec();
        expected.extend_from_slice(&[1u8; 600]);
        assert_eq!(rest, expected);
    }

    #[tokio::test]
    async fn a_failing_body_is_failed() {
        let (listener, clamd) = fake_clamd().await;
        let chunks = stream::iter([
            Ok(Bytes::from_static(b"start")),
            Err(io::Error::other("the upload broke")),
        ])
        .boxed();
        let server = async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut rest = Vec::new();
            socket.read_to_end(&mut rest).await.unwrap();
        };
        let ((), verdict) = tokio::join!(server, clamd.scan(chunks));
        match verdict {
            Err(ScanError::Failed(message)) => assert!(message.contains("the upload broke")),
            other => panic!("expected Failed, got {other:?}"),
        }
    }

    async fn answer_ping(listener: TcpListener, reply: &'static [u8]) {
        let (mut socket, _) = listener.accept().await.unwrap();
        assert_eq!(read_command(&mut socket).await, "zPING");
        socket.write_all(reply).await.unwrap();
    }

    #[tokio::test]
    async fn ping_wants_pong() {
        let (listener, clamd) = fake_clamd().await;
        let ((), pinged) = tokio::join!(answer_ping(listener, b"PONG\0"), clamd.ping());
        pinged.unwrap();

        let (listener, clamd) = fake_clamd().await;
        let ((), pinged) = tokio::join!(answer_ping(listener, b"HELLO\0"), clamd.ping());
        assert!(matches!(pinged, Err(ScanError::Failed(_))), "{pinged:?}");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn unix_sockets_work_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clamd.ctl");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let clamd = Clamd::new(ClamdAddress::Unix(path.clone()), TIMEOUT, 1000);
        let server = async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut command = [0u8; 6];
            socket.read_exact(&mut command).await.unwrap();
            assert_eq!(&command, b"zPING\0");
            socket.write_all(b"PONG\0").await.unwrap();
        };
        let ((), pinged) = tokio::join!(server, clamd.ping());
        pinged.unwrap();
        assert_eq!(clamd.address(), format!("unix://{}", path.display()));
        assert_eq!(clamd.max_bytes(), 1000);
    }

    #[test]
    fn addresses_parse_and_print() {
        let tcp = |s: &str| ClamdAddress::Tcp(s.into());
        let unix = |s: &str| ClamdAddress::Unix(s.into());
        assert_eq!(
            ClamdAddress::parse("tcp://clamav:3310"),
            Ok(tcp("clamav:3310"))
        );
        assert_eq!(
            ClamdAddress::parse("127.0.0.1:3310"),
            Ok(tcp("127.0.0.1:3310"))
        );
        assert_eq!(
            ClamdAddress::parse("tcp://[::1]:3310"),
            Ok(tcp("[::1]:3310"))
        );
        assert_eq!(
            ClamdAddress::parse("unix:///run/clamav/clamd.ctl"),
            Ok(unix("/run/clamav/clamd.ctl"))
        );
        assert_eq!(
            ClamdAddress::parse("/run/clamav/clamd.ctl"),
            Ok(unix("/run/clamav/clamd.ctl"))
        );

        assert_eq!(tcp("clamav:3310").to_string(), "tcp://clamav:3310");
        assert_eq!(
            unix("/run/clamav/clamd.ctl").to_string(),
            "unix:///run/clamav/clamd.ctl"
        );
        for s in ["tcp://clamav:3310", "unix:///run/clamav/clamd.ctl"] {
            assert_eq!(ClamdAddress::parse(s).unwrap().to_string(), s);
        }

        for (bad, says) in [
            ("", "empty"),
            ("clamav", "no port"),
            ("tcp://clamav", "no port"),
            ("clamav:http", "invalid port"),
            ("clamav:0", "invalid port"),
            ("clamav:70000", "invalid port"),
            (":3310", "no valid host"),
            ("http://clamav:3310", "scheme \"http\""),
            ("unix://run/clamd.ctl", "not an absolute"),
        ] {
            let error = ClamdAddress::parse(bad).unwrap_err();
            assert!(error.contains(says), "{bad:?}: {error}");
        }
    }
}
