//! Tests for typing by content: each kind, the allowlist, and the mismatch checks.

use super::*;

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10\x08\x06\0\0\0";
const JPEG: &[u8] = b"\xff\xd8\xff\xe0\0\x10JFIF\0\x01\x01\0\0\x01\0\x01\0\0";
const GIF: &[u8] = b"GIF89a\x10\0\x10\0\x80\0\0\xff\xff\xff\0\0\0";
const WEBP: &[u8] = b"RIFF\x24\0\0\0WEBPVP8 \x18\0\0\0\x30\x01\0\x9d\x01\x2a";
const BMP: &[u8] = b"BM\x46\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0";
const PDF: &[u8] = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n";
const OLE: &[u8] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
const MP3: &[u8] = b"ID3\x04\0\0\0\0\0\x23TSSE\0\0\0\x0f\0\0\x03Lavf";
const WAV: &[u8] = b"RIFF\x24\x08\0\0WAVEfmt \x10\0\0\0\x01\0\x02\0";
const OGG: &[u8] = b"OggS\0\x02\0\0\0\0\0\0\0\0\x12\x34\x56\x78\0\0\0\0";
const FLAC: &[u8] = b"fLaC\0\0\0\x22\x10\0\x10\0\0\0\0\0\0\0";
const M4A: &[u8] = b"\0\0\0\x20ftypM4A \0\0\0\0M4A mp42isom\0\0\0\0";
const MP4: &[u8] = b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2\0\0\0\x08free";
const WEBM: &[u8] = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04webm";
const GZIP: &[u8] = b"\x1f\x8b\x08\0\0\0\0\0\0\x03\xcb\x48\xcd\xc9\xc9\x07\0";
const SEVEN_Z: &[u8] = b"7z\xbc\xaf\x27\x1c\0\x04\0\0\0\0\0\0\0\0";
const EXE: &[u8] = b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff\0\0";

/// A zip local file header for a stored (uncompressed) entry.
fn zip_entry(name: &str, data: &[u8]) -> Vec<u8> {
    let mut out = b"PK\x03\x04\x14\0\0\0\0\0\0\0\0\0\0\0\0\0".to_vec();
    let size = u32::try_from(data.len()).unwrap().to_le_bytes();
    out.extend_from_slice(&size); // compressed size, at offset 18
    out.extend_from_slice(&size); // uncompressed size
    out.extend_from_slice(&u16::try_from(name.len()).unwrap().to_le_bytes());
    out.extend_from_slice(&[0, 0]); // no extra field
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(data);
    out
}

fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    entries
        .iter()
        .flat_map(|(name, data)| zip_entry(name, data))
        .collect()
}

fn kind(head: &[u8], name: &str) -> (FileKind, String) {
    let found = detect(head, name).unwrap();
    (found.kind, found.content_type)
}

fn all_allowed() -> TypeRules {
    TypeRules::new(FileKind::ALL)
}

#[test]
fn images_are_read_from_their_magic_numbers() {
    assert_eq!(kind(PNG, "a.png"), (FileKind::Image, "image/png".into()));
    assert_eq!(kind(JPEG, "a.jpg"), (FileKind::Image, "image/jpeg".into()));
    assert_eq!(kind(GIF, "a.gif"), (FileKind::Image, "image/gif".into()));
    assert_eq!(kind(WEBP, "a.webp"), (FileKind::Image, "image/webp".into()));
    assert_eq!(kind(BMP, "a.bmp"), (FileKind::Image, "image/bmp".into()));
    // The name plays no part in the type: a PNG without a name is a PNG.
    assert_eq!(kind(PNG, "upload"), (FileKind::Image, "image/png".into()));
}

#[test]
fn pdf_is_pdf() {
    assert_eq!(
        kind(PDF, "r.pdf"),
        (FileKind::Pdf, "application/pdf".into())
    );
    // Even one with only ASCII in its head, which the text check would otherwise take.
    assert_eq!(
        kind(b"%PDF-1.4\n1 0 obj\n<< >>\nendobj\n", "r.pdf"),
        (FileKind::Pdf, "application/pdf".into())
    );
}

#[test]
fn office_documents_are_documents() {
    let docx = zip(&[("word/document.xml", b"<w:document/>")]);
    assert_eq!(
        kind(&docx, "r.docx"),
        (FileKind::Document, office_type("docx").unwrap().into())
    );
    let odt = zip(&[("mimetype", b"application/vnd.oasis.opendocument.text")]);
    assert_eq!(
        kind(&odt, "r.odt"),
        (
            FileKind::Document,
            "application/vnd.oasis.opendocument.text".into()
        )
    );
    // A legacy Office file whose head is too short for infer to read its directory.
    assert_eq!(
        kind(OLE, "sheet.xls"),
        (FileKind::Document, "application/vnd.ms-excel".into())
    );
    assert_eq!(
        kind(OLE, "r.doc"),
        (FileKind::Document, "application/msword".into())
    );
    assert_eq!(
        kind(b"{\\rtf1\\ansi hello}", "r.rtf"),
        (FileKind::Document, "application/rtf".into())
    );
}

#[test]
fn zip_with_office_markers_is_a_document_only_when_named_so() {
    // `[Content_Types].xml` first and no further entries in the head: infer says zip.
    let xlsx = zip(&[
        ("[Content_Types].xml", b"<Types/>"),
        ("_rels/.rels", b"<Relationships/>"),
        ("xl/workbook.xml", b"<workbook/>"),
    ]);
    assert_eq!(infer::get(&xlsx).unwrap().extension(), "zip");
    assert_eq!(
        kind(&xlsx, "budget.xlsx"),
        (FileKind::Document, office_type("xlsx").unwrap().into())
    );
    // The same bytes named `.docx`: still an Office document, typed by its entries.
    assert_eq!(
        kind(&xlsx, "budget.docx"),
        (FileKind::Document, office_type("xlsx").unwrap().into())
    );
    assert_eq!(
        kind(&xlsx, "budget.zip"),
        (FileKind::Archive, "application/zip".into())
    );
    let plain = zip(&[("notes.txt", b"hello"), ("more.txt", b"world")]);
    assert_eq!(
        kind(&plain, "fake.docx"),
        (FileKind::Archive, "application/zip".into())
    );
    let odf = zip(&[
        ("META-INF/manifest.xml", b"<manifest/>"),
        (
            "mimetype",
            b"application/vnd.oasis.opendocument.spreadsheet",
        ),
    ]);
    assert_eq!(
        kind(&odf, "t.ods"),
        (
            FileKind::Document,
            "application/vnd.oasis.opendocument.spreadsheet".into()
        )
    );
    assert_eq!(
        kind(&odf, "t"),
        (FileKind::Archive, "application/zip".into())
    );
}

#[test]
fn audio_and_video_are_read_from_their_containers() {
    assert_eq!(kind(MP3, "a.mp3"), (FileKind::Audio, "audio/mpeg".into()));
    assert_eq!(kind(WAV, "a.wav"), (FileKind::Audio, "audio/wav".into()));
    assert_eq!(kind(OGG, "a.ogg"), (FileKind::Audio, "audio/ogg".into()));
    assert_eq!(kind(FLAC, "a.flac"), (FileKind::Audio, "audio/flac".into()));
    assert_eq!(kind(M4A, "a.m4a"), (FileKind::Audio, "audio/mp4".into()));
    assert_eq!(kind(MP4, "v.mp4"), (FileKind::Video, "video/mp4".into()));
    assert_eq!(kind(WEBM, "v.webm"), (FileKind::Video, "video/webm".into()));
}

#[test]
fn archives_are_archives() {
    assert_eq!(
        kind(GZIP, "a.gz"),
        (FileKind::Archive, "application/gzip".into())
    );
    assert_eq!(
        kind(SEVEN_Z, "a.7z"),
        (FileKind::Archive, "application/x-7z-compressed".into())
    );
    let mut tar = vec![0u8; 512];
    tar[..9].copy_from_slice(b"hello.txt");
    tar[257..263].copy_from_slice(b"ustar\0");
    assert_eq!(
        kind(&tar, "a.tar"),
        (FileKind::Archive, "application/x-tar".into())
    );
}

#[test]
fn text_is_plain_text_and_markdown_by_extension() {
    let text = "# Title\n\nSome *text*, ünïcödé, tabs\tand\r\nCRLF.\x0c\n".as_bytes();
    assert_eq!(
        kind(text, "notes.md"),
        (FileKind::Markdown, "text/markdown".into())
    );
    assert_eq!(
        kind(text, "notes.MARKDOWN"),
        (FileKind::Markdown, "text/markdown".into())
    );
    for name in ["notes.txt", "data.csv", "data.json", "notes", "x.log"] {
        assert_eq!(
            kind(text, name),
            (FileKind::Text, "text/plain".into()),
            "{name}"
        );
    }
}

#[test]
fn html_svg_and_xml_are_plain_text() {
    let svg = br#"<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#;
    let html = b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>";
    let shell = b"#!/bin/sh\necho hi\n";
    for (head, name) in [
        (&svg[..], "logo.svg"),
        (&html[..], "page.html"),
        (&html[..], "page.HTM"),
        (&shell[..], "run.sh"),
    ] {
        assert_eq!(
            kind(head, name),
            (FileKind::Text, "text/plain".into()),
            "{name}"
        );
    }
}

#[test]
fn printable_magic_numbers_lose_to_text() {
    // `BM` is BMP's, `MZ` an executable's, `BZh` bzip2's, `ID3` MP3's.
    for head in [
        "BMW drivers\n",
        "MZ notes\n",
        "BZh is a prefix\n",
        "ID3 tags\n",
    ] {
        assert_eq!(kind(head.as_bytes(), "a.txt").0, FileKind::Text, "{head}");
    }
}

#[test]
fn a_head_cut_inside_a_character_is_still_text() {
    let mut head = "naïve café ".repeat(10).into_bytes();
    head.extend_from_slice(&"€".as_bytes()[..2]);
    assert_eq!(kind(&head, "a.txt").0, FileKind::Text);
    // But invalid UTF-8 in the middle is not text.
    let mut broken = b"abc".to_vec();
    broken.extend_from_slice(&"€".as_bytes()[..2]);
    broken.extend_from_slice(b"def");
    assert_eq!(detect(&broken, "a.txt"), Err(KindError::Unknown));
    // Nor is a head that is only a cut character.
    assert_eq!(
        detect(&"€".as_bytes()[..1], "a.txt"),
        Err(KindError::Unknown)
    );
}

#[test]
fn nul_and_control_characters_are_not_text() {
    assert_eq!(detect(b"hello\0world", "a.txt"), Err(KindError::Unknown));
    let mut noisy = "x".repeat(50).into_bytes();
    noisy.extend_from_slice(b"\x01\x02");
    assert_eq!(detect(&noisy, "a.txt"), Err(KindError::Unknown));
    // One in a hundred is tolerated (an escape sequence in a log).
    let mut log = "y".repeat(99).into_bytes();
    log.push(0x1b);
    assert_eq!(kind(&log, "a.log").0, FileKind::Text);
}

#[test]
fn binary_without_a_signature_is_unknown_and_empty_is_empty() {
    let blob: Vec<u8> = (0u8..=255).rev().cycle().take(4096).collect();
    assert_eq!(detect(&blob, "blob.bin"), Err(KindError::Unknown));
    assert_eq!(detect(b"", "a.txt"), Err(KindError::Empty));
}

#[test]
fn recognised_formats_without_a_kind_are_not_allowed() {
    assert_eq!(
        detect(EXE, "setup.exe"),
        Err(KindError::NotAllowed {
            content_type: "application/vnd.microsoft.portable-executable".into()
        })
    );
    assert!(matches!(
        all_allowed().check(OLE, "installer.msi", None),
        Err(KindError::NotAllowed { .. })
    ));
}

#[test]
fn the_allowlist_refuses_other_kinds() {
    let rules = TypeRules::default();
    assert!(!rules.allows(FileKind::Archive));
    assert_eq!(
        rules.check(GZIP, "a.gz", None),
        Err(KindError::NotAllowed {
            content_type: "application/gzip".into()
        })
    );
    assert!(rules.check(PNG, "a.png", None).is_ok());

    let images_only = TypeRules::new([FileKind::Image]);
    assert_eq!(images_only.allowed().collect::<Vec<_>>(), [FileKind::Image]);
    assert!(images_only.check(PNG, "a.png", None).is_ok());
    assert_eq!(
        images_only.check(PDF, "a.pdf", None),
        Err(KindError::NotAllowed {
            content_type: "application/pdf".into()
        })
    );
    assert!(all_allowed().check(GZIP, "a.gz", None).is_ok());
}

#[test]
fn an_extension_of_another_kind_is_a_mismatch() {
    let rules = all_allowed();
    let cases: [(&[u8], &str, &str, &str); 4] = [
        (PDF, "photo.png", "a .png file", "application/pdf"),
        (PNG, "report.pdf", "a .pdf file", "image/png"),
        (JPEG, "notes.txt", "a .txt file", "image/jpeg"),
        (
            b"just some words\n",
            "report.PDF",
            "a .pdf file",
            "text/plain",
        ),
    ];
    for (head, name, declared, detected) in cases {
        assert_eq!(
            rules.check(head, name, None),
            Err(KindError::Mismatch {
                declared: declared.into(),
                detected: detected.into()
            }),
            "{name}"
        );
    }
}

#[test]
fn extensions_are_lenient_within_a_kind() {
    let rules = all_allowed();
    let text = b"a,b\n1,2\n";
    for (head, name) in [
        (PNG, "really-a-png.jpg"),
        (JPEG, "photo.jpeg"),
        (&text[..], "data.csv"),
        (&text[..], "data.json"),
        (&text[..], "readme.md"),
        (&text[..], "page.html"),
        (&text[..], "config.yaml"),
        (&text[..], "data.weird-extension"),
        (PNG, "no-extension"),
        (PNG, ".hidden"),
        (MP4, "song.m4a"),
        (OGG, "clip.webm"),
    ] {
        assert!(rules.check(head, name, None).is_ok(), "{name}");
    }
}

#[test]
fn a_declared_type_of_another_kind_is_a_mismatch() {
    let rules = all_allowed();
    assert_eq!(
        rules.check(PNG, "a.png", Some("application/pdf")),
        Err(KindError::Mismatch {
            declared: "application/pdf".into(),
            detected: "image/png".into()
        })
    );
    assert_eq!(
        rules.check(PDF, "a.pdf", Some("Image/PNG; charset=binary")),
        Err(KindError::Mismatch {
            declared: "image/png".into(),
            detected: "application/pdf".into()
        })
    );
    assert!(matches!(
        rules.check(b"hello\n", "a.txt", Some("image/jpeg")),
        Err(KindError::Mismatch { .. })
    ));
    assert!(matches!(
        rules.check(PNG, "a.png", Some("application/x-whatever")),
        Err(KindError::Mismatch { .. })
    ));
    assert!(matches!(
        rules.check(GZIP, "a.gz", Some("application/msword")),
        Err(KindError::Mismatch { .. })
    ));
}

#[test]
fn declared_types_of_the_same_family_agree() {
    let rules = all_allowed();
    let docx = zip(&[("word/document.xml", b"<w:document/>")]);
    let cases: [(&[u8], &str, &str); 12] = [
        (PNG, "a.png", "image/jpeg"),
        (PDF, "a.pdf", "application/pdf"),
        (b"x\n", "a.txt", "text/plain; charset=utf-8"),
        (b"{}\n", "a.json", "application/json"),
        (b"<svg/>\n", "a.svg", "image/svg+xml"),
        (b"a,b\n", "a.csv", "application/vnd.ms-excel"),
        (b"let x = 1;\n", "a.ts", "video/mp2t"),
        (b"# hi\n", "a.md", "text/markdown"),
        (MP3, "a.mp3", "audio/mpeg"),
        (MP4, "a.mp4", "video/mp4"),
        (GZIP, "a.gz", "application/x-gzip"),
        (&docx, "a.docx", "application/zip"),
    ];
    for (head, name, declared) in cases {
        assert!(
            rules.check(head, name, Some(declared)).is_ok(),
            "{name} {declared}"
        );
    }
}

#[test]
fn generic_declared_types_are_not_checked() {
    let rules = all_allowed();
    for declared in [
        "application/octet-stream",
        "binary/octet-stream",
        "",
        "  ",
        "Application/Octet-Stream; name=x",
    ] {
        assert!(
            rules.check(PNG, "a.png", Some(declared)).is_ok(),
            "{declared:?}"
        );
        assert!(
            rules.check(b"hi\n", "a.txt", Some(declared)).is_ok(),
            "{declared:?}"
        );
    }
}

#[test]
fn file_kind_strings_round_trip() {
    for kind in FileKind::ALL {
        assert_eq!(FileKind::parse(kind.as_str()), Some(kind));
    }
    assert!(!FileKind::default_allowed().contains(&FileKind::Archive));
}

#[test]
fn detection_never_panics_on_damaged_heads() {
    // Every signature above, followed by pseudo-random bytes and cut at every length up to
    // 600: detection only ever answers, whatever the parsers behind infer make of it.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut noise = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state.to_le_bytes()[0]
    };
    let docx = zip(&[("word/document.xml", b"<w:document/>")]);
    for magic in [
        PNG, JPEG, GIF, WEBP, BMP, PDF, OLE, MP3, WAV, OGG, FLAC, M4A, MP4, WEBM, GZIP, SEVEN_Z,
        EXE, &docx,
    ] {
        let mut head = magic.to_vec();
        head.extend((0..600).map(|_| noise()));
        for len in 0..head.len() {
            let _ = all_allowed().check(&head[..len], "f.docx", Some("image/png"));
        }
    }
}
