//! The Data API's JSON resources as Google sends them (camelCase, counters as strings,
//! durations in ISO 8601), and their conversion to the typed resources of [`super`].

use serde::Deserialize;
use serde_json::Value;

use super::{Category, Channel, SearchPage, Video, VideoSnippet, VideoStatistics};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SearchResponse {
    #[serde(default)]
    next_page_token: Option<String>,
    #[serde(default)]
    page_info: Option<PageInfo>,
    #[serde(default)]
    items: Vec<SearchItem>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    #[serde(default)]
    total_results: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct SearchItem {
    id: SearchId,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SearchId {
    #[serde(default)]
    video_id: Option<String>,
}

impl From<SearchResponse> for SearchPage {
    fn from(r: SearchResponse) -> Self {
        SearchPage {
            video_ids: r.items.into_iter().filter_map(|i| i.id.video_id).collect(),
            next_page_token: r.next_page_token.filter(|t| !t.is_empty()),
            total_results: r.page_info.and_then(|p| p.total_results),
        }
    }
}

/// A list answer whose items are kept as JSON until converted.
#[derive(Debug, Deserialize)]
pub(super) struct ListResponse {
    #[serde(default)]
    pub items: Vec<Value>,
}

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn opt_text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// A counter, which Google sends as a decimal string (`"1234"`).
fn count(v: &Value, key: &str) -> Option<u64> {
    match v.get(key)? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// A `snippet` object read into its typed form.
pub(super) fn snippet(s: &Value) -> VideoSnippet {
    VideoSnippet {
        title: text(s, "title"),
        description: text(s, "description"),
        tags: s
            .get("tags")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        category_id: opt_text(s, "categoryId"),
        channel_id: text(s, "channelId"),
        channel_title: text(s, "channelTitle"),
        published_at: s
            .get("publishedAt")
            .and_then(Value::as_str)
            .and_then(|t| t.parse().ok()),
        default_language: opt_text(s, "defaultLanguage"),
    }
}

pub(super) fn video(item: &Value) -> Option<Video> {
    let id = item.get("id")?.as_str()?.to_owned();
    let stats = item.get("statistics").cloned().unwrap_or(Value::Null);
    Some(Video {
        id,
        snippet: item.get("snippet").map(snippet).unwrap_or_default(),
        statistics: VideoStatistics {
            view_count: count(&stats, "viewCount"),
            like_count: count(&stats, "likeCount"),
            comment_count: count(&stats, "commentCount"),
        },
        duration_secs: item
            .get("contentDetails")
            .and_then(|c| c.get("duration"))
            .and_then(Value::as_str)
            .and_then(parse_duration),
    })
}

pub(super) fn channel(item: &Value) -> Option<Channel> {
    let id = item.get("id")?.as_str()?.to_owned();
    let stats = item.get("statistics").cloned().unwrap_or(Value::Null);
    let hidden = stats.get("hiddenSubscriberCount").and_then(Value::as_bool) == Some(true);
    Some(Channel {
        id,
        title: item
            .get("snippet")
            .map(|s| text(s, "title"))
            .unwrap_or_default(),
        subscriber_count: if hidden {
            None
        } else {
            count(&stats, "subscriberCount")
        },
        video_count: count(&stats, "videoCount").unwrap_or(0),
        view_count: count(&stats, "viewCount").unwrap_or(0),
    })
}

pub(super) fn category(item: &Value) -> Option<Category> {
    let snippet = item.get("snippet")?;
    Some(Category {
        id: item.get("id")?.as_str()?.to_owned(),
        title: text(snippet, "title"),
        assignable: snippet.get("assignable").and_then(Value::as_bool) == Some(true),
    })
}

/// Seconds in an ISO 8601 duration as YouTube writes them (`PT4M13S`, `P1DT2H`, `P0D`).
/// Years and months are refused: their length is not fixed.
pub fn parse_duration(text: &str) -> Option<u32> {
    let rest = text.strip_prefix('P')?;
    let (days, time) = match rest.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let mut total: u64 = 0;
    let mut parse_part = |part: &str, units: &[(char, u64)]| -> Option<()> {
        let mut number = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() {
                number.push(c);
            } else {
                let (_, secs) = units.iter().find(|(u, _)| *u == c)?;
                let n: u64 = number.parse().ok()?;
                total = total.checked_add(n.checked_mul(*secs)?)?;
                number.clear();
            }
        }
        number.is_empty().then_some(())
    };
    parse_part(days, &[('W', 604_800), ('D', 86_400)])?;
    if let Some(time) = time {
        if time.is_empty() {
            return None;
        }
        parse_part(time, &[('H', 3_600), ('M', 60), ('S', 1)])?;
    }
    u32::try_from(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("PT4M13S"), Some(253));
        assert_eq!(parse_duration("PT1H"), Some(3600));
        assert_eq!(parse_duration("P1DT2H3M4S"), Some(93_784));
        assert_eq!(parse_duration("P0D"), Some(0));
        assert_eq!(parse_duration("PT"), None);
        assert_eq!(parse_duration("P1Y"), None);
        assert_eq!(parse_duration("4M"), None);
        assert_eq!(parse_duration("PT5"), None);
    }

    #[test]
    fn counters_are_strings() {
        let v: Value = serde_json::json!({"id": "a", "statistics": {"viewCount": "12", "likeCount": "3"},
            "contentDetails": {"duration": "PT10S"}, "snippet": {"title": "t", "tags": ["x"], "publishedAt": "2026-01-02T03:04:05Z"}});
        let video = video(&v).unwrap();
        assert_eq!(video.statistics.view_count, Some(12));
        assert_eq!(video.statistics.comment_count, None);
        assert_eq!(video.duration_secs, Some(10));
        assert_eq!(video.snippet.tags, ["x"]);
        assert!(video.snippet.published_at.is_some());
    }
}
