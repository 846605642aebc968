//! Byte ranges (RFC 9110 §14): one range of a `Range: bytes=…` header, for resuming downloads
//! and seeking in audio and video. Several ranges or another syntax are ignored, which the RFC
//! allows, and the whole body is served; a valid range outside the file is a 416.

use std::ops::Range;

/// A range that is valid but selects nothing of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("the requested range is outside the file: ask for bytes below its size")]
    Unsatisfiable,
}

/// Reads a `Range` header against a file of `size` bytes.
///
/// `Ok(Some(range))` is the (exclusive) byte range to send with 206; `Ok(None)` means the
/// header is ignored and the whole file is sent with 200; `Err` asks for a 416. Numbers too
/// large for a `u64` count as "beyond any file", so they cannot overflow.
pub fn parse(header: &str, size: u64) -> Result<Option<Range<u64>>, RangeError> {
    let header = header.trim();
    let Some((unit, spec)) = header.split_once('=') else {
        return Ok(None);
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let (first, last) = (first.trim(), last.trim());
    let range = match (number(first), number(last)) {
        // `bytes=-n`: the last n bytes.
        (None, Some(suffix)) if first.is_empty() => {
            if suffix == 0 || size == 0 {
                return Err(RangeError::Unsatisfiable);
            }
            size.saturating_sub(suffix)..size
        }
        // `bytes=a-`: from a to the end.
        (Some(start), None) if last.is_empty() => {
            if start >= size {
                return Err(RangeError::Unsatisfiable);
            }
            start..size
        }
        // `bytes=a-b`, inclusive; b may run past the end.
        (Some(start), Some(end)) => {
            if end < start {
                return Ok(None);
            }
            if start >= size {
                return Err(RangeError::Unsatisfiable);
            }
            start..end.min(size - 1) + 1
        }
        _ => return Ok(None),
    };
    Ok(Some(range))
}

/// A run of ASCII digits as a number, saturating at `u64::MAX`; None when not all digits.
fn number(digits: &str) -> Option<u64> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits.parse().unwrap_or(u64::MAX))
}

/// The `Content-Range` header for a 206 response: `bytes first-last/size`.
pub fn content_range(range: &Range<u64>, size: u64) -> String {
    format!(
        "bytes {}-{}/{}",
        range.start,
        range.end.saturating_sub(1),
        size
    )
}

/// The `Content-Range` header for a 416 response: `bytes */size`.
pub fn unsatisfied_range(size: u64) -> String {
    format!("bytes */{size}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_forms() {
        assert_eq!(parse("bytes=0-99", 1000), Ok(Some(0..100)));
        assert_eq!(parse("bytes=500-", 1000), Ok(Some(500..1000)));
        assert_eq!(parse("bytes=-200", 1000), Ok(Some(800..1000)));
        assert_eq!(parse("bytes=999-999", 1000), Ok(Some(999..1000)));
        assert_eq!(parse(" Bytes = 10 - 19 ", 1000), Ok(Some(10..20)));
    }

    #[test]
    fn the_end_is_clamped_and_a_long_suffix_is_the_whole_file() {
        assert_eq!(parse("bytes=900-5000", 1000), Ok(Some(900..1000)));
        assert_eq!(parse("bytes=-5000", 1000), Ok(Some(0..1000)));
    }

    #[test]
    fn other_syntax_and_several_ranges_are_ignored() {
        for header in [
            "",
            "bytes",
            "bytes=",
            "bytes=-",
            "bytes=a-b",
            "bytes=1-2-3",
            "bytes=+1-2",
            "bytes=0-1,5-9",
            "items=0-9",
            "bytes=9-0",
            "bytes=0x10-",
            "0-9",
        ] {
            assert_eq!(parse(header, 1000), Ok(None), "{header:?}");
        }
    }

    #[test]
    fn ranges_outside_the_file_are_unsatisfiable() {
        for (header, size) in [
            ("bytes=1000-", 1000),
            ("bytes=1000-2000", 1000),
            ("bytes=-0", 1000),
            ("bytes=0-", 0),
            ("bytes=-5", 0),
            ("bytes=0-0", 0),
        ] {
            assert_eq!(
                parse(header, size),
                Err(RangeError::Unsatisfiable),
                "{header} of {size}"
            );
        }
    }

    #[test]
    fn huge_numbers_do_not_overflow() {
        let huge = "99999999999999999999999999";
        assert_eq!(
            parse(&format!("bytes={huge}-"), 1000),
            Err(RangeError::Unsatisfiable)
        );
        assert_eq!(parse(&format!("bytes=5-{huge}"), 1000), Ok(Some(5..1000)));
        assert_eq!(parse(&format!("bytes=-{huge}"), 1000), Ok(Some(0..1000)));
        assert_eq!(
            parse(&format!("bytes={huge}-{huge}"), u64::MAX),
            Err(RangeError::Unsatisfiable)
        );
        assert_eq!(parse("bytes=0-", u64::MAX), Ok(Some(0..u64::MAX)));
        assert_eq!(
            parse(&format!("bytes=0-{}", u64::MAX), u64::MAX),
            Ok(Some(0..u64::MAX))
        );
    }

    #[test]
    fn every_range_is_inside_the_file_and_non_empty() {
        // Every small start, end and size: a returned range is within the file, non-empty,
        // and matches the request's meaning.
        for size in 0..24u64 {
            for start in 0..30u64 {
                for end in 0..30u64 {
                    let result = parse(&format!("bytes={start}-{end}"), size);
                    match result {
                        Ok(Some(range)) => {
                            assert!(range.start < range.end && range.end <= size);
                            assert_eq!(range.start, start);
                            assert_eq!(range.end, (end + 1).min(size));
                        }
                        Ok(None) => assert!(end < start),
                        Err(RangeError::Unsatisfiable) => assert!(start >= size && end >= start),
                    }
                }
                match parse(&format!("bytes={start}-"), size) {
                    Ok(Some(range)) => assert_eq!(range, start..size),
                    Ok(None) => unreachable!("an open range is always understood"),
                    Err(_) => assert!(start >= size),
                }
                match parse(&format!("bytes=-{start}"), size) {
                    Ok(Some(range)) => {
                        assert_eq!(range.end, size);
                        assert_eq!(range.end - range.start, start.min(size));
                    }
                    Ok(None) => unreachable!("a suffix range is always understood"),
                    Err(_) => assert!(start == 0 || size == 0),
                }
            }
        }
    }

    #[test]
    fn content_range_headers() {
        assert_eq!(content_range(&(0..100), 1000), "bytes 0-99/1000");
        assert_eq!(content_range(&(999..1000), 1000), "bytes 999-999/1000");
        assert_eq!(unsatisfied_range(1000), "bytes */1000");
        let range = parse("bytes=-10", 50).unwrap().unwrap();
        assert_eq!(content_range(&range, 50), "bytes 40-49/50");
    }
}
