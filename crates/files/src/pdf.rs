//! A PDF's text, for models: read with `lopdf` (pure Rust) page by page, bounded — the
//! document's size is checked by the caller, every stream's decompressed size is capped, and
//! the text kept stops at a byte limit — and with its panics caught, since hostile or merely
//! broken PDFs make PDF parsers panic. Runs on the calling thread: callers put it on a
//! blocking one.

use std::panic::{AssertUnwindSafe, catch_unwind};

/// The most any one stream of the PDF may decompress to (a decompression bomb is refused).
const MAX_DECOMPRESSED: usize = 32 * 1024 * 1024;

/// Why a PDF's text could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PdfError {
    /// Not a PDF lopdf can read (damaged, encrypted with a password, a bomb).
    #[error("the PDF cannot be read: {0}")]
    Unreadable(String),
    /// The parser panicked on it.
    #[error("the PDF parser failed on this file")]
    Panicked,
}

/// The text of the PDF `bytes`, its pages in order, at most `max_bytes` bytes of it (cut on a
/// character boundary); `true` when some was left out. Pages whose text cannot be read are
/// skipped. A PDF without text (scanned pages) gives an empty string.
pub fn extract_text(bytes: &[u8], max_bytes: usize) -> Result<(String, bool), PdfError> {
    match catch_unwind(AssertUnwindSafe(|| read(bytes, max_bytes))) {
        Ok(result) => result,
        Err(_) => Err(PdfError::Panicked),
    }
}

fn read(bytes: &[u8], max_bytes: usize) -> Result<(String, bool), PdfError> {
    let options = lopdf::LoadOptions::with_max_decompressed_size(MAX_DECOMPRESSED);
    let document = lopdf::Document::load_mem_with_options(bytes, options)
        .map_err(|e| PdfError::Unreadable(e.to_string()))?;
    let mut text = String::new();
    for page in document.get_pages().into_keys() {
        for chunk in document.extract_text_chunks_with_limit(&[page], MAX_DECOMPRESSED) {
            // A page that cannot be read costs its text, not the document's.
            let Ok(chunk) = chunk else { continue };
            text.push_str(&chunk);
            if text.len() > max_bytes {
                let mut end = max_bytes;
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.truncate(end);
                return Ok((text, true));
            }
        }
    }
    Ok((text, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pdf_with(lines: &[&str]) -> Vec<u8> {
        confab_testkit::pdf(lines).unwrap()
    }

    #[test]
    fn a_pdfs_sentence_is_read() {
        let pdf = pdf_with(&["The quick brown fox jumps over the lazy dog."]);
        let (text, truncated) = extract_text(&pdf, 1 << 20).unwrap();
        assert!(
            text.contains("The quick brown fox jumps over the lazy dog."),
            "{text:?}"
        );
        assert!(!truncated);
    }

    #[test]
    fn text_past_the_limit_is_cut() {
        let pdf = pdf_with(&["0123456789", "abcdefghij"]);
        let (text, truncated) = extract_text(&pdf, 5).unwrap();
        assert_eq!(text, "01234");
        assert!(truncated);
    }

    #[test]
    fn garbage_and_truncated_pdfs_are_errors_not_panics() {
        assert!(extract_text(b"not a pdf at all", 100).is_err());
        let pdf = pdf_with(&["Some words"]);
        for cut in [8, pdf.len() / 3, pdf.len() / 2, pdf.len() - 20] {
            // Whatever lopdf makes of a cut file, it answers.
            let _ = extract_text(&pdf[..cut], 100);
        }
        let mut flipped = pdf.clone();
        for (i, byte) in flipped.iter_mut().enumerate() {
            if i % 7 == 3 {
                *byte ^= 0x5a;
            }
        }
        let _ = extract_text(&flipped, 100);
    }
}
