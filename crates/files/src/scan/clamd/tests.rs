//! The clamd adapter's protocol against a fake clamd on loopback.

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
