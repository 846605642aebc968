//! [`Clamd`] against a real clamd: the one scripts/lib/clamd.sh starts (`TEST_CLAMD_ADDRESS`,
//! `TEST_CLAMD_MAX_BYTES`), loaded with its own EICAR body signature and an MD5 signature of
//! [`HASH_SIGNED`]. Without `TEST_CLAMD_ADDRESS` each test says so and passes.
//!
//! The zips are written here by hand, "stored" (uncompressed): the EICAR string stays visible
//! in them, so it matches with or without unpacking, but [`HASH_SIGNED`]'s MD5 only matches
//! when clamd takes the archive apart and hashes the file inside.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    reason = "test code: panics are failures, skips are said"
)]

use std::time::Duration;

use bytes::Bytes;
use confab_blob::ByteStream;
use confab_files::scan::{Clamd, ClamdAddress, ScanError, ScanVerdict, Scanner};
use futures::StreamExt;

/// The file whose MD5 the script's `.hdb` lists as `Confab.Test.HashSig`.
const HASH_SIGNED: &[u8] = b"confab clamd hash-signature test file\n";

/// clamd's own default StreamMaxLength (25 MiB), for a server whose limit is not given.
const CLAMD_DEFAULT_MAX_BYTES: u64 = 25 * 1024 * 1024;

/// The clamd to test against and its StreamMaxLength, or `None` (after saying why).
fn clamd(test: &str) -> Option<(ClamdAddress, u64)> {
    let Ok(address) = std::env::var("TEST_CLAMD_ADDRESS") else {
        eprintln!("{test}: skipped: TEST_CLAMD_ADDRESS is not set (scripts/test.sh sets it)");
        return None;
    };
    let address = ClamdAddress::parse(&address).expect("TEST_CLAMD_ADDRESS");
    let max_bytes = std::env::var("TEST_CLAMD_MAX_BYTES")
        .map(|v| {
            v.parse()
                .expect("TEST_CLAMD_MAX_BYTES is a number of bytes")
        })
        .unwrap_or(CLAMD_DEFAULT_MAX_BYTES);
    Some((address, max_bytes))
}

/// A scanner with the server's own limit.
fn scanner(test: &str) -> Option<Clamd> {
    let (address, max_bytes) = clamd(test)?;
    Some(Clamd::new(address, Duration::from_secs(30), max_bytes))
}

/// The body in chunks of 1000 bytes, like an upload arriving in pieces.
fn body(bytes: &[u8]) -> ByteStream {
    let chunks: Vec<std::io::Result<Bytes>> = bytes
        .chunks(1000)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(chunks).boxed()
}

/// The EICAR test string, put together here so that this source file is not taken for it.
fn eicar() -> Vec<u8> {
    let mut s = String::from("X5O!P%@AP[4\\PZX54(P^)7CC)7}$");
    s.push_str("EICAR-STANDARD-ANTIVIRUS-");
    s.push_str("TEST-FILE!$H+H*");
    s.into_bytes()
}

/// CRC-32 (IEEE, reflected, as zip uses it), bit by bit: the inputs are tiny.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A zip archive of `files`, stored without compression: local file headers with the data,
/// then the central directory, then the end record.
fn zip(files: &[(&str, &[u8])]) -> Vec<u8> {
    fn u16le(out: &mut Vec<u8>, v: usize) {
        out.extend_from_slice(&u16::try_from(v).unwrap().to_le_bytes());
    }
    fn u32le(out: &mut Vec<u8>, v: usize) {
        out.extend_from_slice(&u32::try_from(v).unwrap().to_le_bytes());
    }
    // Version needed 1.0, no flags, method 0 (stored), time 00:00, date 1980-01-01.
    fn common(out: &mut Vec<u8>, name: &str, data: &[u8]) {
        u16le(out, 10);
        u16le(out, 0);
        u16le(out, 0);
        u16le(out, 0);
        u16le(out, 0x21);
        out.extend_from_slice(&crc32(data).to_le_bytes());
        u32le(out, data.len());
        u32le(out, data.len());
        u16le(out, name.len());
        u16le(out, 0);
    }

    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in files {
        let offset = out.len();
        out.extend_from_slice(b"PK\x03\x04");
        common(&mut out, name, data);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);

        central.extend_from_slice(b"PK\x01\x02");
        u16le(&mut central, 20); // made by: MS-DOS, zip 2.0
        common(&mut central, name, data);
        u16le(&mut central, 0); // comment length
        u16le(&mut central, 0); // disk number
        u16le(&mut central, 0); // internal attributes
        u32le(&mut central, 0); // external attributes
        u32le(&mut central, offset);
        central.extend_from_slice(name.as_bytes());
    }
    let central_offset = out.len();
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06");
    u16le(&mut out, 0); // this disk
    u16le(&mut out, 0); // the disk with the central directory
    u16le(&mut out, files.len());
    u16le(&mut out, files.len());
    u32le(&mut out, central.len());
    u32le(&mut out, central_offset);
    u16le(&mut out, 0); // comment length
    out
}

async fn scan(clamd: &Clamd, bytes: &[u8]) -> ScanVerdict {
    clamd.scan(body(bytes)).await.expect("a verdict")
}

/// Asserts an infection whose signature name contains `name` (any case): the script's names
/// come back with `.UNOFFICIAL` appended, and a clamd with the official databases names EICAR
/// its own way.
fn assert_infected(verdict: ScanVerdict, name: &str) {
    match verdict {
        ScanVerdict::Infected(found) => {
            assert!(
                found.to_lowercase().contains(&name.to_lowercase()),
                "found {found:?}"
            );
        }
        ScanVerdict::Clean => panic!("expected {name}, got Clean"),
    }
}

#[test]
fn the_crc32_is_zips() {
    assert_eq!(crc32(b""), 0);
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
}

#[tokio::test]
async fn ping_answers() {
    let Some(clamd) = scanner("clamd::ping_answers") else {
        return;
    };
    clamd.ping().await.unwrap();
}

#[tokio::test]
async fn clean_text_is_clean() {
    let Some(clamd) = scanner("clamd::clean_text_is_clean") else {
        return;
    };
    let text = "Meeting notes: bring the quarterly figures.\n".repeat(500);
    assert_eq!(scan(&clamd, text.as_bytes()).await, ScanVerdict::Clean);
    assert_eq!(scan(&clamd, b"").await, ScanVerdict::Clean);
    let archive = zip(&[("notes.txt", text.as_bytes()), ("empty.txt", b"")]);
    assert_eq!(scan(&clamd, &archive).await, ScanVerdict::Clean);
}

#[tokio::test]
async fn eicar_is_infected_plain_and_in_zips() {
    let Some(clamd) = scanner("clamd::eicar_is_infected_plain_and_in_zips") else {
        return;
    };
    let eicar = eicar();
    assert_infected(scan(&clamd, &eicar).await, "eicar");

    let inner = zip(&[("readme.txt", b"nothing here\n"), ("eicar.com", &eicar)]);
    assert_infected(scan(&clamd, &inner).await, "eicar");

    let outer = zip(&[("inner.zip", &inner)]);
    assert_infected(scan(&clamd, &outer).await, "eicar");
}

#[tokio::test]
async fn a_hash_signature_matches_plain_and_inside_zips() {
    let Some(clamd) = scanner("clamd::a_hash_signature_matches_plain_and_inside_zips") else {
        return;
    };
    assert_infected(scan(&clamd, HASH_SIGNED).await, "Confab.Test.HashSig");
    // One byte more is another file.
    let mut near = HASH_SIGNED.to_vec();
    near.push(b'\n');
    assert_eq!(scan(&clamd, &near).await, ScanVerdict::Clean);

    // Only clamd's unpacking finds these: the archives' own MD5s are listed nowhere.
    let inner = zip(&[("notes.txt", b"hello\n"), ("signed.txt", HASH_SIGNED)]);
    assert_infected(scan(&clamd, &inner).await, "Confab.Test.HashSig");
    let outer = zip(&[("inner.zip", &inner)]);
    assert_infected(scan(&clamd, &outer).await, "Confab.Test.HashSig");
    let innermost = zip(&[("outer.zip", &outer)]);
    assert_infected(scan(&clamd, &innermost).await, "Confab.Test.HashSig");
}

/// Zeros in 1 MiB chunks, `total` bytes in all.
fn zeros(total: u64) -> ByteStream {
    const MIB: u64 = 1024 * 1024;
    let chunk = Bytes::from(vec![0u8; 1024 * 1024]);
    let chunks = (0..total.div_ceil(MIB))
        .map(move |i| Ok(chunk.slice(..usize::try_from(MIB.min(total - i * MIB)).unwrap())));
    futures::stream::iter(chunks).boxed()
}

#[tokio::test]
async fn a_body_at_the_limit_is_scanned_and_past_it_is_too_large() {
    let Some((address, max_bytes)) = clamd("clamd::a_body_at_the_limit_is_scanned") else {
        return;
    };
    let clamd = Clamd::new(address.clone(), Duration::from_secs(30), max_bytes);
    assert_eq!(
        clamd.scan(zeros(max_bytes)).await.unwrap(),
        ScanVerdict::Clean
    );

    // Counted here: refused before clamd sees the end.
    match clamd.scan(zeros(max_bytes + 1)).await {
        Err(ScanError::TooLarge { limit }) => assert_eq!(limit, max_bytes),
        other => panic!("expected TooLarge, got {other:?}"),
    }

    // With a limit set higher than clamd's, clamd itself refuses the body mid-upload and
    // closes the connection; its answer still comes through.
    let lax = Clamd::new(address, Duration::from_secs(30), 2 * max_bytes);
    match lax.scan(zeros(max_bytes + 4 * 1024 * 1024)).await {
        Err(ScanError::TooLarge { limit }) => assert_eq!(limit, 2 * max_bytes),
        other => panic!("expected clamd's size limit, got {other:?}"),
    }
}
