//! Transcripts: plain text, SRT or WebVTT, read into segments with their start and end times.
//! A file that is not what it claims gets an error naming the line that is wrong.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How a transcript was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TranscriptFormat {
    /// Plain text: no times.
    Text,
    Srt,
    Vtt,
}

impl TranscriptFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            TranscriptFormat::Text => "text",
            TranscriptFormat::Srt => "srt",
            TranscriptFormat::Vtt => "vtt",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "text" => Some(TranscriptFormat::Text),
            "srt" => Some(TranscriptFormat::Srt),
            "vtt" => Some(TranscriptFormat::Vtt),
            _ => None,
        }
    }
}

/// One timed piece of a transcript. Plain text has a single segment without times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Segment {
    /// Milliseconds from the start of the video (0 for plain text).
    pub start_ms: u64,
    pub end_ms: u64,
    pub text: String,
}

/// A parsed transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Transcript {
    pub format: TranscriptFormat,
    pub segments: Vec<Segment>,
}

impl Transcript {
    /// Whether its segments carry times (SRT and WebVTT).
    pub fn is_timed(&self) -> bool {
        self.format != TranscriptFormat::Text
    }
}

/// Why a transcript could not be read: the 1-based line and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, ToSchema)]
#[error("line {line}: {message}")]
pub struct TranscriptError {
    pub line: usize,
    pub message: String,
}

impl TranscriptError {
    fn at(line: usize, message: impl Into<String>) -> Self {
        Self {
            line,
            message: message.into(),
        }
    }
}

/// Reads a transcript, recognising its format by content: WebVTT when it starts with
/// `WEBVTT` (after an optional byte-order mark), SRT when its first block is a cue number
/// followed by a `-->` timing line (or starts with the timing line), plain text otherwise.
///
/// Timed cues may overlap (automatic captions do), but a cue may not start before the cue
/// before it started, and may not end before it starts. Tags (`<v Bob>`, `<c>`, `<i>`) are
/// stripped and the common entities decoded; a cue's lines are joined with a space. The
/// whole file is read once, in linear time.
pub fn parse(text: &str) -> Result<Transcript, TranscriptError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if is_vtt(text) {
        return parse_cues(text, TranscriptFormat::Vtt);
    }
    if is_srt(text) {
        return parse_cues(text, TranscriptFormat::Srt);
    }
    let mut joined = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !joined.is_empty() {
            joined.push(' ');
        }
        joined.push_str(word);
    }
    if joined.is_empty() {
        return Err(TranscriptError::at(1, "the transcript is empty"));
    }
    Ok(Transcript {
        format: TranscriptFormat::Text,
        segments: vec![Segment {
            start_ms: 0,
            end_ms: 0,
            text: joined,
        }],
    })
}

fn is_vtt(text: &str) -> bool {
    let first = text.lines().next().unwrap_or_default();
    first == "WEBVTT" || first.starts_with("WEBVTT ") || first.starts_with("WEBVTT\t")
}

fn is_srt(text: &str) -> bool {
    let mut lines = text.lines().map(str::trim).skip_while(|l| l.is_empty());
    let first = lines.next().unwrap_or_default();
    let second = lines.next().unwrap_or_default();
    let numbered =
        !first.is_empty() && first.bytes().all(|b| b.is_ascii_digit()) && second.contains("-->");
    // Some tools leave the cue numbers out: a first line that is a timing line will do.
    numbered || first.contains("-->")
}

/// The lines of a text with their 1-based numbers, without line endings.
fn numbered_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .enumerate()
        .map(|(i, l)| (i + 1, l))
}

fn parse_cues(text: &str, format: TranscriptFormat) -> Result<Transcript, TranscriptError> {
    let vtt = format == TranscriptFormat::Vtt;
    let mut lines = numbered_lines(text).peekable();
    if vtt {
        // The header line and any header text up to the first blank line.
        for (_, line) in lines.by_ref() {
            if line.trim().is_empty() {
                break;
            }
        }
    }
    let mut segments: Vec<Segment> = Vec::new();
    let mut last_line = 1;
    loop {
        // Skip blank lines between blocks.
        while lines.peek().is_some_and(|(_, l)| l.trim().is_empty()) {
            lines.next();
        }
        let Some((number, first)) = lines.next() else {
            break;
        };
        last_line = number;
        let first = first.trim();
        if vtt && is_vtt_skipped_block(first) {
            for (n, line) in lines.by_ref() {
                last_line = n;
                if line.trim().is_empty() {
                    break;
                }
            }
            continue;
        }
        let (timing_number, timing) = if first.contains("-->") {
            (number, first)
        } else if !vtt && !first.bytes().all(|b| b.is_ascii_digit()) {
            return Err(TranscriptError::at(
                number,
                format!("expected a cue number, found `{}`", excerpt(first)),
            ));
        } else {
            match lines.next() {
                Some((n, line)) if line.contains("-->") => (n, line.trim()),
                Some((n, line)) => {
                    return Err(TranscriptError::at(
                        n,
                        format!(
                            "expected a timing line such as `{}`, found `{}`",
                            example_timing(vtt),
                            excerpt(line.trim())
                        ),
                    ));
                }
                None => {
                    return Err(TranscriptError::at(
                        number + 1,
                        format!(
                            "the cue has no timing line such as `{}`",
                            example_timing(vtt)
                        ),
                    ));
                }
            }
        };
        last_line = timing_number;
        let (start_ms, end_ms) = parse_timing(timing, vtt, timing_number)?;
        let mut cue = String::new();
        let mut had_line = false;
        while let Some((n, line)) = lines.next_if(|(_, l)| !l.trim().is_empty()) {
            last_line = n;
            had_line = true;
            push_cue_text(&mut cue, line);
        }
        if !had_line {
            return Err(TranscriptError::at(
                timing_number + 1,
                "the cue has no text after its timing line",
            ));
        }
        if let Some(previous) = segments.last()
            && start_ms < previous.start_ms
        {
            return Err(TranscriptError::at(
                timing_number,
                format!(
                    "the cue starts at {} ms, before the previous cue's start ({} ms): cues \
                     must be in order (overlapping is fine)",
                    start_ms, previous.start_ms
                ),
            ));
        }
        let trimmed = cue.trim_end();
        if !trimmed.is_empty() {
            let len = trimmed.len();
            cue.truncate(len);
            segments.push(Segment {
                start_ms,
                end_ms,
                text: cue,
            });
        }
    }
    if segments.is_empty() {
        return Err(TranscriptError::at(last_line, "the transcript has no cues"));
    }
    Ok(Transcript { format, segments })
}

fn is_vtt_skipped_block(first: &str) -> bool {
    ["NOTE", "STYLE", "REGION"].iter().any(|kind| {
        first
            .strip_prefix(kind)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
    })
}

fn example_timing(vtt: bool) -> &'static str {
    if vtt {
        "00:00:01.000 --> 00:00:04.000"
    } else {
        "00:00:01,000 --> 00:00:04,000"
    }
}

fn excerpt(text: &str) -> String {
    let mut out: String = text.chars().take(60).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

fn parse_timing(line: &str, vtt: bool, number: usize) -> Result<(u64, u64), TranscriptError> {
    let (left, right) = line.split_once("-->").unwrap_or((line, ""));
    let start_text = left.trim();
    // Settings (VTT) or coordinates (SRT) may follow the end time.
    let end_text = right.split_whitespace().next().unwrap_or_default();
    let start = parse_cue_time(start_text, vtt).ok_or_else(|| bad_time(number, start_text, vtt))?;
    let end = parse_cue_time(end_text, vtt).ok_or_else(|| bad_time(number, end_text, vtt))?;
    if end < start {
        return Err(TranscriptError::at(
            number,
            format!("the cue ends ({end_text}) before it starts ({start_text})"),
        ));
    }
    Ok((start, end))
}

fn bad_time(number: usize, text: &str, vtt: bool) -> TranscriptError {
    let expected = if vtt {
        "`hh:mm:ss.mmm` or `mm:ss.mmm`"
    } else {
        "`hh:mm:ss,mmm`"
    };
    TranscriptError::at(
        number,
        format!("bad timestamp `{}`: expected {expected}", excerpt(text)),
    )
}

/// `hh:mm:ss.mmm` or `mm:ss.mmm` (WebVTT), `hh:mm:ss,mmm` (SRT; a dot is tolerated, as
/// many tools write one). Minutes and seconds must be below 60.
fn parse_cue_time(text: &str, vtt: bool) -> Option<u64> {
    let (clock, millis) = if vtt {
        text.split_once('.')?
    } else {
        text.split_once([',', '.'])?
    };
    if millis.len() != 3 || !millis.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let millis: u64 = millis.parse().ok()?;
    let mut parts = clock.split(':');
    let (hours, minutes, seconds) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(m), Some(s), None) => (number(h, 1, 9)?, number(m, 2, 2)?, number(s, 2, 2)?),
        (Some(m), Some(s), None, None) if vtt => (0, number(m, 2, 2)?, number(s, 2, 2)?),
        _ => return None,
    };
    if minutes >= 60 || seconds >= 60 {
        return None;
    }
    Some(((hours * 60 + minutes) * 60 + seconds) * 1000 + millis)
}

fn number(text: &str, min_digits: usize, max_digits: usize) -> Option<u64> {
    if text.len() < min_digits
        || text.len() > max_digits
        || !text.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    text.parse().ok()
}

/// Appends one cue line: tags stripped, entities decoded, whitespace collapsed.
fn push_cue_text(out: &mut String, line: &str) {
    let mut in_tag = false;
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        let mut step = c.len_utf8();
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if in_tag => {}
            '&' => {
                let (decoded, len) = entity(rest);
                push_char(out, decoded);
                step = len;
            }
            _ => push_char(out, c),
        }
        rest = rest.get(step..).unwrap_or_default();
    }
    push_char(out, ' ');
}

fn push_char(out: &mut String, c: char) {
    if c.is_whitespace() {
        if !out.is_empty() && !out.ends_with(' ') {
            out.push(' ');
        }
    } else if !c.is_control() {
        out.push(c);
    }
}

/// The character an entity at the start of `text` stands for, and its length; a bare `&`
/// stays itself.
fn entity(text: &str) -> (char, usize) {
    const ENTITIES: [(&str, char); 7] = [
        ("&amp;", '&'),
        ("&lt;", '<'),
        ("&gt;", '>'),
        ("&quot;", '"'),
        ("&nbsp;", ' '),
        ("&lrm;", '\u{200e}'),
        ("&rlm;", '\u{200f}'),
    ];
    ENTITIES
        .iter()
        .find(|(name, _)| text.starts_with(name))
        .map_or(('&', 1), |(name, c)| (*c, name.len()))
}

/// A stretch of consecutive segments sent to the model in one prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Window {
    pub start_ms: u64,
    pub end_ms: u64,
    /// One line a segment, `[m:ss] text` (plain text without the time).
    pub text: String,
}

/// Splits a transcript into consecutive windows of at most `max_chars` bytes of rendered
/// text each (bytes, so never fewer than the characters). A segment longer than a window is
/// cut at word boundaries (or, for a single huge word, at a character boundary) into lines
/// that keep its start time. Every window holds at least one line.
pub fn windows(transcript: &Transcript, max_chars: usize) -> Vec<Window> {
    let timed = transcript.is_timed();
    let max = max_chars.max(32);
    let mut out = Vec::new();
    let mut current: Option<Window> = None;
    for segment in &transcript.segments {
        let prefix = if timed {
            format!("[{}] ", timestamp_of_ms(segment.start_ms))
        } else {
            String::new()
        };
        let room = max.saturating_sub(prefix.len() + 1).max(8);
        for piece in pieces(&segment.text, room) {
            let line_len = prefix.len() + piece.len() + 1;
            if let Some(window) = current.as_mut()
                && window.text.len() + line_len > max
            {
                out.extend(current.take());
            }
            let window = current.get_or_insert_with(|| Window {
                start_ms: segment.start_ms,
                end_ms: segment.end_ms,
                text: String::new(),
            });
            window.end_ms = window.end_ms.max(segment.end_ms);
            window.text.push_str(&prefix);
            window.text.push_str(piece);
            window.text.push('\n');
        }
    }
    out.extend(current);
    out
}

/// `text` cut into pieces of at most `room` bytes, at whitespace where possible.
fn pieces(text: &str, room: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while rest.len() > room {
        let mut cut = room;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let cut = rest
            .get(..cut)
            .and_then(|head| head.rfind(char::is_whitespace))
            .filter(|&i| i > 0)
            .unwrap_or(cut);
        let (head, tail) = rest.split_at(cut.max(rest.chars().next().map_or(1, char::len_utf8)));
        out.push(head.trim_end());
        rest = tail.trim_start();
    }
    if !rest.is_empty() || out.is_empty() {
        out.push(rest);
    }
    out
}

fn timestamp_of_ms(ms: u64) -> String {
    let secs = u32::try_from(ms / 1000).unwrap_or(u32::MAX);
    super::assemble::format_timestamp(secs, secs >= 3600)
}

/// Segments as lines `[m:ss] text` (`[h:mm:ss]` past the first hour), one a line.
pub fn render_timed(segments: &[Segment]) -> String {
    let mut out = String::with_capacity(segments.iter().map(|s| s.text.len() + 12).sum());
    for segment in segments {
        out.push('[');
        out.push_str(&timestamp_of_ms(segment.start_ms));
        out.push_str("] ");
        out.push_str(&segment.text);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> TranscriptError {
        parse(text).unwrap_err()
    }

    #[test]
    fn webvtt_with_blocks_settings_identifiers_and_tags() {
        let text = "\u{feff}WEBVTT - a title\nKind: captions\n\nNOTE a comment\nspanning lines\n\n\
                    STYLE\n::cue { color: red }\n\nREGION\nid:r1\n\nintro\n00:00.000 --> 00:04.500 \
                    align:start position:10%\n<v Bob>Hello</v> &amp; <c.yellow>welcome</c>\nto the show\n\n\
                    01:00:01.250 --> 01:00:03.000\nAn hour in\n";
        let t = parse(text).unwrap();
        assert_eq!(t.format, TranscriptFormat::Vtt);
        assert_eq!(
            t.segments,
            [
                Segment {
                    start_ms: 0,
                    end_ms: 4_500,
                    text: "Hello & welcome to the show".into()
                },
                Segment {
                    start_ms: 3_601_250,
                    end_ms: 3_603_000,
                    text: "An hour in".into()
                },
            ]
        );
    }

    #[test]
    fn srt_with_crlf_and_tags() {
        let text = "1\r\n00:00:01,000 --> 00:00:02,000\r\n<i>Hi</i> there\r\n\r\n2\r\n00:00:01,500 --> 00:00:04,000 X1:10\r\nagain\r\n";
        let t = parse(text).unwrap();
        assert_eq!(t.format, TranscriptFormat::Srt);
        assert_eq!(t.segments[0].text, "Hi there");
        assert_eq!(
            (t.segments[1].start_ms, t.segments[1].end_ms),
            (1_500, 4_000)
        );
    }

    #[test]
    fn plain_text_is_one_untimed_segment() {
        let t = parse("  Just some\n\n words.  ").unwrap();
        assert_eq!(t.format, TranscriptFormat::Text);
        assert!(!t.is_timed());
        assert_eq!(t.segments[0].text, "Just some words.");
        assert_eq!(
            err(" \n\t "),
            TranscriptError {
                line: 1,
                message: "the transcript is empty".into()
            }
        );
    }

    #[test]
    fn bad_lines_are_named() {
        let e = err("1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:00:03,00 --> 00:00:04,000\nx\n");
        assert_eq!(e.line, 6);
        assert!(e.message.contains("bad timestamp `00:00:03,00`"), "{e}");
        let e = err("1\n00:00:05,000 --> 00:00:04,000\nx\n");
        assert_eq!(e.line, 2);
        assert!(e.message.contains("ends"), "{e}");
        let e = err("1\n00:00:01,000 --> 00:00:02,000\n\n");
        assert_eq!(
            (e.line, e.message.as_str()),
            (3, "the cue has no text after its timing line")
        );
        let e =
            err("1\n00:00:01,000 --> 00:00:02,000\na\n\nzwei\n00:00:03,000 --> 00:00:04,000\nb\n");
        assert_eq!(e.line, 5);
        assert!(e.message.contains("cue number"));
        let e = err("WEBVTT\n\n00:10.000 --> 00:12.000\na\n\n00:05.000 --> 00:20.000\nb\n");
        assert_eq!(e.line, 6);
        assert!(e.message.contains("before the previous cue's start"), "{e}");
        let e = err("WEBVTT\n\n00:61.000 --> 01:00.000\na\n");
        assert_eq!(e.line, 3);
        let e = err("WEBVTT\n\nid\nnot a timing\n");
        assert_eq!(e.line, 4);
        assert!(e.message.contains("timing line"));
        assert_eq!(
            err("WEBVTT\n\nNOTE only\n").message,
            "the transcript has no cues"
        );
    }

    #[test]
    fn overlapping_cues_are_allowed() {
        let t =
            parse("WEBVTT\n\n00:00.000 --> 00:05.000\na\n\n00:02.000 --> 00:03.000\nb\n").unwrap();
        assert_eq!(t.segments.len(), 2);
    }

    #[test]
    fn windows_split_at_the_limit_and_keep_times() {
        let t = parse("WEBVTT\n\n00:00.000 --> 00:05.000\nfirst cue\n\n01:05.000 --> 01:09.000\nsecond cue\n\n02:00.000 --> 02:01.000\nthird\n").unwrap();
        assert_eq!(
            render_timed(&t.segments),
            "[0:00] first cue\n[1:05] second cue\n[2:00] third\n"
        );
        let all = windows(&t, 10_000);
        assert_eq!(all.len(), 1);
        assert_eq!((all[0].start_ms, all[0].end_ms), (0, 121_000));
        let small = windows(&t, 40);
        assert_eq!(small.len(), 2);
        assert_eq!(small[0].text, "[0:00] first cue\n[1:05] second cue\n");
        assert_eq!(
            (small[1].start_ms, small[1].text.as_str()),
            (120_000, "[2:00] third\n")
        );
        let long = parse(&"wort ".repeat(1_000)).unwrap();
        let pieces = windows(&long, 100);
        assert!(pieces.iter().all(|w| w.text.len() <= 100));
        let words: usize = pieces
            .iter()
            .map(|w| w.text.split_whitespace().count())
            .sum();
        assert_eq!(words, 1_000);
        let one_word = parse(&"ж".repeat(500)).unwrap();
        assert!(windows(&one_word, 64).iter().all(|w| w.text.len() <= 64));
    }
}
