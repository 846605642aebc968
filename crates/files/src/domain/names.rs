//! File names as users give them: kept as metadata only (storage keys never use them), so
//! they are checked rather than rewritten. A name must be safe to show and to put in a
//! `Content-Disposition` header: no path parts, no control characters, no bidirectional
//! overrides that make `invoice<U+202E>fdp.exe` display as `invoiceexe.pdf`.

/// The longest name accepted, in UTF-8 bytes (what most file systems allow).
pub const MAX_NAME_BYTES: usize = 255;

/// Why a file name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("the file name is empty: give the file a name")]
    Empty,
    #[error("the file name is longer than {max} bytes: shorten it")]
    TooLong { max: usize },
    #[error("the file name contains {what}: rename the file without it")]
    Forbidden { what: &'static str },
}

/// Checks a user's file name and returns it trimmed of surrounding whitespace, otherwise
/// exactly as given (no case folding, no Unicode normalisation).
pub fn sanitize(name: &str) -> Result<String, NameError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(NameError::TooLong {
            max: MAX_NAME_BYTES,
        });
    }
    if name == "." || name == ".." {
        return Err(NameError::Forbidden {
            what: "only dots (\".\" or \"..\")",
        });
    }
    for c in name.chars() {
        let what = match c {
            '/' | '\\' => "a path separator (/ or \\)",
            '\0' => "a NUL character",
            c if is_bidi_control(c) => "a bidirectional text control character",
            c if c.is_control() => "a control character",
            _ => continue,
        };
        return Err(NameError::Forbidden { what });
    }
    Ok(name.to_owned())
}

/// The characters that change the direction text is displayed in (Unicode's explicit
/// directional formatting characters and marks), used to disguise an extension.
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// A name's extension, lowercased and without the dot: `Photo.JPG` → `jpg`,
/// `a.tar.gz` → `gz`. None without a dot, for a trailing dot, and for dotfiles
/// (`.bashrc` has no extension, it is a name).
pub fn extension(name: &str) -> Option<String> {
    let (stem, ext) = name.trim().rsplit_once('.')?;
    if stem.is_empty() || ext.is_empty() {
        return None;
    }
    Some(ext.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_otherwise_kept() {
        assert_eq!(
            sanitize("  Report (final).PDF \n").unwrap(),
            "Report (final).PDF"
        );
        assert_eq!(
            sanitize("résumé 2024 — ✓.docx").unwrap(),
            "résumé 2024 — ✓.docx"
        );
        assert_eq!(sanitize(".bashrc").unwrap(), ".bashrc");
        assert_eq!(sanitize("...").unwrap(), "...");
        assert_eq!(sanitize("a..b").unwrap(), "a..b");
    }

    #[test]
    fn empty_names_are_refused() {
        assert_eq!(sanitize(""), Err(NameError::Empty));
        assert_eq!(sanitize(" \t\n "), Err(NameError::Empty));
    }

    #[test]
    fn long_names_are_refused_by_bytes() {
        assert_eq!(sanitize(&"a".repeat(255)).unwrap().len(), 255);
        assert_eq!(
            sanitize(&"a".repeat(256)),
            Err(NameError::TooLong { max: 255 })
        );
        // 128 two-byte characters: 256 bytes although 128 characters.
        assert_eq!(
            sanitize(&"é".repeat(128)),
            Err(NameError::TooLong { max: 255 })
        );
        // Surrounding whitespace does not count.
        assert!(sanitize(&format!("  {}  ", "a".repeat(255))).is_ok());
    }

    #[test]
    fn path_parts_are_refused() {
        for name in ["a/b", "../etc/passwd", "a\\b", "..\\x", "/abs", ".", ".."] {
            assert!(
                matches!(sanitize(name), Err(NameError::Forbidden { .. })),
                "{name}"
            );
        }
    }

    #[test]
    fn control_characters_are_refused() {
        for name in [
            "a\0b",
            "a\x07b",
            "a\x1bb",
            "a\x7fb",
            "a\u{85}b",
            "line\nbreak",
        ] {
            assert!(
                matches!(sanitize(name), Err(NameError::Forbidden { .. })),
                "{name:?}"
            );
        }
        assert_eq!(
            sanitize("a\0b"),
            Err(NameError::Forbidden {
                what: "a NUL character"
            })
        );
    }

    #[test]
    fn bidirectional_controls_are_refused() {
        for c in [
            '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}',
            '\u{2068}', '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}',
        ] {
            assert_eq!(
                sanitize(&format!("invoice{c}fdp.exe")),
                Err(NameError::Forbidden {
                    what: "a bidirectional text control character"
                }),
                "{c:?}"
            );
        }
        // Right-to-left text itself is fine.
        assert!(sanitize("מסמך.pdf").is_ok());
    }

    #[test]
    fn errors_say_what_to_fix() {
        assert!(
            NameError::Empty
                .to_string()
                .contains("give the file a name")
        );
        assert!(
            NameError::TooLong { max: 255 }
                .to_string()
                .contains("255 bytes")
        );
        assert!(
            NameError::Forbidden {
                what: "a NUL character"
            }
            .to_string()
            .contains("rename the file")
        );
    }

    #[test]
    fn extensions() {
        assert_eq!(extension("Photo.JPG").as_deref(), Some("jpg"));
        assert_eq!(extension("a.tar.gz").as_deref(), Some("gz"));
        assert_eq!(extension(".config.json").as_deref(), Some("json"));
        assert_eq!(extension("Ünï.ÄBC").as_deref(), Some("äbc"));
        assert_eq!(extension(".bashrc"), None);
        assert_eq!(extension("README"), None);
        assert_eq!(extension("trailing."), None);
        assert_eq!(extension(""), None);
    }
}
