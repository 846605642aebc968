//! Chapters: read from a description's timestamp lines, and snapped to where the
//! transcript's segments really start.

use super::{Chapter, Segment};

/// Reads a chapter timestamp: `0:00`, `m:ss`, `mm:ss` (minutes up to three digits), `h:mm:ss`
/// or `hh:mm:ss`. Seconds, and minutes after hours, are two digits below 60.
pub fn parse_timestamp(text: &str) -> Option<u32> {
    let mut parts = text.split(':');
    let fields = (parts.next(), parts.next(), parts.next(), parts.next());
    let (hours, minutes, seconds) = match fields {
        (Some(m), Some(s), None, None) => (0, digits(m, 1, 3)?, digits(s, 2, 2)?),
        (Some(h), Some(m), Some(s), None) => {
            let minutes = digits(m, 2, 2)?;
            if minutes >= 60 {
                return None;
            }
            (digits(h, 1, 2)?, minutes, digits(s, 2, 2)?)
        }
        _ => return None,
    };
    if seconds >= 60 {
        return None;
    }
    Some((hours * 60 + minutes) * 60 + seconds)
}

fn digits(text: &str, min: usize, max: usize) -> Option<u32> {
    if text.len() < min || text.len() > max || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The chapter a description line makes, as YouTube reads one: the line (leading spaces
/// aside) starts with a timestamp followed by a space, a separator or the line's end; the
/// title is the rest, separators (`-`, `–`, `—`, `:`, `|`) and spaces trimmed.
pub fn chapter_line(line: &str) -> Option<Chapter> {
    let line = line.trim_start();
    let end = line
        .find(|c: char| !(c.is_ascii_digit() || c == ':'))
        .unwrap_or(line.len());
    let (stamp, rest) = line.split_at(end);
    if !(rest.is_empty() || rest.starts_with(char::is_whitespace) || rest.starts_with(SEPARATORS)) {
        return None;
    }
    let start_secs = parse_timestamp(stamp)?;
    let title = rest
        .trim_start_matches(|c: char| c.is_whitespace() || SEPARATORS.contains(&c))
        .trim_end();
    Some(Chapter {
        start_secs,
        title: title.to_owned(),
    })
}

const SEPARATORS: [char; 6] = ['-', '–', '—', ':', '|', ')'];

/// Every chapter line of a description, in the order written.
pub fn chapters_in(description: &str) -> Vec<Chapter> {
    description.lines().filter_map(chapter_line).collect()
}

/// Moves each chapter's start to the nearest segment start (the earlier one on a tie), then
/// sorts them and keeps the first of any that now share a start. Segment starts are rounded
/// down to the second, so a chapter never starts after the words it names. With no segments
/// the chapters are only sorted and deduplicated. `O((c + s) log s)`.
pub fn snap(chapters: &[Chapter], segments: &[Segment]) -> Vec<Chapter> {
    let mut starts: Vec<u64> = segments.iter().map(|s| s.start_ms).collect();
    starts.sort_unstable();
    starts.dedup();
    let mut out: Vec<Chapter> = chapters
        .iter()
        .map(|chapter| {
            let start_secs = nearest(&starts, u64::from(chapter.start_secs) * 1000)
                .map_or(chapter.start_secs, |ms| {
                    u32::try_from(ms / 1000).unwrap_or(u32::MAX)
                });
            Chapter {
                start_secs,
                title: chapter.title.clone(),
            }
        })
        .collect();
    // Stable: among chapters at one start, the first given stays.
    out.sort_by_key(|c| c.start_secs);
    out.dedup_by_key(|c| c.start_secs);
    out
}

/// The value in sorted `starts` nearest to `target`, the smaller on a tie.
fn nearest(starts: &[u64], target: u64) -> Option<u64> {
    let i = starts.partition_point(|&s| s < target);
    let after = starts.get(i).copied();
    let before = i.checked_sub(1).and_then(|j| starts.get(j)).copied();
    match (before, after) {
        (Some(b), Some(a)) => Some(if target - b <= a - target { b } else { a }),
        (b, a) => b.or(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chapter(start_secs: u32, title: &str) -> Chapter {
        Chapter {
            start_secs,
            title: title.into(),
        }
    }

    fn segment(start_ms: u64) -> Segment {
        Segment {
            start_ms,
            end_ms: start_ms + 1000,
            text: "x".into(),
        }
    }

    #[test]
    fn timestamps_in_every_style() {
        assert_eq!(parse_timestamp("0:00"), Some(0));
        assert_eq!(parse_timestamp("1:05"), Some(65));
        assert_eq!(parse_timestamp("12:34"), Some(754));
        assert_eq!(parse_timestamp("100:00"), Some(6000));
        assert_eq!(parse_timestamp("1:02:03"), Some(3723));
        assert_eq!(parse_timestamp("0:00:00"), Some(0));
        for bad in [
            "",
            "1",
            "1:5",
            "1:60",
            "1:60:00",
            "1:2:03",
            "a:00",
            "1:00:00:00",
            ":00",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn chapter_lines_are_read_like_youtube() {
        assert_eq!(chapter_line("0:00 Intro"), Some(chapter(0, "Intro")));
        assert_eq!(chapter_line("  1:30 - Setup"), Some(chapter(90, "Setup")));
        assert_eq!(
            chapter_line("1:02:03 — Końcówka"),
            Some(chapter(3723, "Końcówka"))
        );
        assert_eq!(chapter_line("2:00"), Some(chapter(120, "")));
        assert_eq!(chapter_line("2:00pm meeting"), None);
        assert_eq!(chapter_line("At 2:00 we start"), None);
        let description = "Hook\n\n0:00 Intro\nbody\n0:45 Next\n";
        assert_eq!(
            chapters_in(description),
            [chapter(0, "Intro"), chapter(45, "Next")]
        );
    }

    #[test]
    fn snap_moves_to_the_nearest_start_and_prefers_the_earlier_on_a_tie() {
        let segments = [
            segment(0),
            segment(10_000),
            segment(20_000),
            segment(31_500),
        ];
        let snapped = snap(
            &[
                chapter(25, "b"),
                chapter(15, "tie"),
                chapter(2, "a"),
                chapter(30, "c"),
            ],
            &segments,
        );
        assert_eq!(
            snapped,
            [
                chapter(0, "a"),
                chapter(10, "tie"),
                chapter(20, "b"),
                chapter(31, "c")
            ]
        );
        // Two chapters snapping to one start: the first given stays.
        let snapped = snap(&[chapter(11, "x"), chapter(9, "y")], &segments);
        assert_eq!(snapped, [chapter(10, "x")]);
        // No segments: only sorted.
        assert_eq!(snap(&[chapter(5, "b"), chapter(1, "a")], &[]).len(), 2);
    }
}
