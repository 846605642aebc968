//! How a stored file's bytes go out: the `Content-Type`, whether the browser may show it
//! (`inline`) or must download it (`attachment`), and the `Content-Disposition` that carries
//! the user's name. Anything a browser could run as a page (HTML, SVG, XML, scripts) is only
//! ever downloaded, as `application/octet-stream`, whatever type the record says.

use super::FileKind;

/// The `Content-Security-Policy` for inline content: nothing loads but the file's own images
/// and media, no script runs, and `sandbox` (without `allow-scripts`) gives the document an
/// opaque origin, so even content a browser sniffed as a page can reach nothing of Confab's.
pub const INLINE_CSP: &str = "default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'unsafe-inline'; sandbox";

/// The headers a file is served with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Serving {
    /// The `Content-Type` header's value.
    pub content_type: String,
    /// Whether the browser may display the file itself.
    pub inline: bool,
    /// The `Content-Disposition` header's value (RFC 6266).
    pub disposition: String,
}

/// Raster image types browsers display safely.
const INLINE_IMAGES: [&str; 5] = [
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/bmp",
];

const TEXT: &str = "text/plain; charset=utf-8";
const OCTET_STREAM: &str = "application/octet-stream";

/// Decides how to serve a file from its detected type and kind, with `name` (already
/// sanitised when stored) as the download's name.
pub fn serving(content_type: &str, kind: FileKind, name: &str) -> Serving {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let (content_type, inline) = if !is_plain_mime(&essence) || is_active(&essence) {
        (OCTET_STREAM.to_owned(), false)
    } else if (INLINE_IMAGES.contains(&essence.as_str()) && kind == FileKind::Image)
        || (essence == "application/pdf" && kind == FileKind::Pdf)
    {
        (essence, true)
    } else if matches!(essence.as_str(), "text/plain" | "text/markdown") {
        // Markdown too goes out as plain text: the web client renders it, not the browser.
        (TEXT.to_owned(), true)
    } else if essence.starts_with("text/") {
        (TEXT.to_owned(), false)
    } else if (essence.starts_with("audio/") || essence.starts_with("video/"))
        && matches!(kind, FileKind::Audio | FileKind::Video)
    {
        (essence, true)
    } else {
        (essence, false)
    };
    let disposition = disposition(if inline { "inline" } else { "attachment" }, name);
    Serving {
        content_type,
        inline,
        disposition,
    }
}

/// Whether a type is one a browser may execute or render as a document. XML counts by its
/// subtype (`xml`, `*+xml`), so Office's `…openxmlformats…` types keep their names.
fn is_active(essence: &str) -> bool {
    let subtype = essence.split_once('/').map_or(essence, |(_, sub)| sub);
    ["html", "svg", "javascript", "ecmascript"]
        .iter()
        .any(|word| essence.contains(word))
        || subtype == "xml"
        || subtype.ends_with("+xml")
        || subtype.starts_with("xml-")
}

/// Whether the type is a bare `type/subtype` of token characters, safe to put in a header.
fn is_plain_mime(essence: &str) -> bool {
    let is_token = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    matches!(essence.split_once('/'), Some((top, sub)) if is_token(top) && is_token(sub))
}

/// `inline` or `attachment` with the name twice: an ASCII `filename` for old clients and a
/// UTF-8 `filename*` (RFC 5987) that current browsers prefer.
fn disposition(kind: &str, name: &str) -> String {
    let name = if name.trim().is_empty() { "file" } else { name };
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::with_capacity(name.len() * 3);
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("{kind}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raster_images_pdf_text_and_media_are_inline() {
        let cases = [
            ("image/png", FileKind::Image, "image/png"),
            ("image/jpeg", FileKind::Image, "image/jpeg"),
            ("image/webp", FileKind::Image, "image/webp"),
            ("application/pdf", FileKind::Pdf, "application/pdf"),
            ("text/plain", FileKind::Text, "text/plain; charset=utf-8"),
            (
                "text/markdown",
                FileKind::Markdown,
                "text/plain; charset=utf-8",
            ),
            ("audio/mpeg", FileKind::Audio, "audio/mpeg"),
            ("video/mp4", FileKind::Video, "video/mp4"),
        ];
        for (content_type, kind, served) in cases {
            let serving = serving(content_type, kind, "f");
            assert!(serving.inline, "{content_type}");
            assert_eq!(serving.content_type, served);
            assert!(serving.disposition.starts_with("inline; "));
        }
    }

    #[test]
    fn svg_html_xml_and_scripts_are_never_inline() {
        for content_type in [
            "image/svg+xml",
            "text/html",
            "text/html; charset=utf-8",
            "TEXT/HTML",
            "application/xhtml+xml",
            "text/xml",
            "application/xml",
            "application/javascript",
            "text/javascript",
        ] {
            for kind in FileKind::ALL {
                let serving = serving(content_type, kind, "x");
                assert!(!serving.inline, "{content_type}");
                assert_eq!(serving.content_type, "application/octet-stream");
                assert!(serving.disposition.starts_with("attachment; "));
            }
        }
    }

    #[test]
    fn other_types_are_attachments() {
        let docx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
        let serving_docx = serving(docx, FileKind::Document, "r.docx");
        assert!(!serving_docx.inline);
        assert_eq!(serving_docx.content_type, docx);
        let zip = serving("application/zip", FileKind::Archive, "a.zip");
        assert!(!zip.inline);
        let tiff = serving("image/tiff", FileKind::Image, "a.tif");
        assert!(!tiff.inline);
        let csv = serving("text/csv", FileKind::Text, "a.csv");
        assert!(!csv.inline);
        assert_eq!(csv.content_type, "text/plain; charset=utf-8");
        // A type that would break the header is not passed through.
        let odd = serving("image/png\r\nX-Evil: 1", FileKind::Image, "a.png");
        assert_eq!(odd.content_type, "application/octet-stream");
        assert!(!odd.inline);
        // A type inconsistent with the kind is not displayed.
        assert!(!serving("image/png", FileKind::Document, "a.png").inline);
    }

    #[test]
    fn pdf_is_inline_with_its_name() {
        let serving = serving("application/pdf", FileKind::Pdf, "report.pdf");
        assert_eq!(
            serving,
            Serving {
                content_type: "application/pdf".into(),
                inline: true,
                disposition: "inline; filename=\"report.pdf\"; filename*=UTF-8''report.pdf".into(),
            }
        );
    }

    #[test]
    fn names_with_quotes_and_non_ascii_are_encoded() {
        let serving = serving(
            "application/zip",
            FileKind::Archive,
            "a \"q\" \\ résumé\t€.zip",
        );
        assert_eq!(
            serving.disposition,
            "attachment; filename=\"a _q_ _ r_sum___.zip\"; \
             filename*=UTF-8''a%20%22q%22%20%5C%20r%C3%A9sum%C3%A9%09%E2%82%AC.zip"
        );
    }

    #[test]
    fn an_empty_name_still_gives_a_valid_header() {
        assert_eq!(
            serving("text/plain", FileKind::Text, " ").disposition,
            "inline; filename=\"file\"; filename*=UTF-8''file"
        );
    }

    #[test]
    fn the_csp_runs_no_scripts() {
        assert!(INLINE_CSP.contains("default-src 'none'"));
        assert!(INLINE_CSP.ends_with("sandbox"));
        assert!(!INLINE_CSP.contains("script"));
    }
}
