//! What the model answers, read leniently: every field optional and a wrong type ignored,
//! so a half-right answer still gives what it got right. Also the JSON Schemas the model is
//! asked to follow (OpenAI's `response_format` with `strict: true`, or a grammar).

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::TitleStrategy;
use super::chapters::parse_timestamp;

/// Stage 1: what the video is about, from the transcript or the topic.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Analysis {
    pub summary: String,
    pub main_topics: Vec<String>,
    pub audience: String,
    /// The video's parts in order, with where each starts when the model could tell.
    pub structure: Vec<DraftChapter>,
}

/// A title the model proposed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct DraftTitle {
    pub text: String,
    pub strategy: Option<TitleStrategy>,
}

/// A chapter the model proposed; its start may be missing or unreadable.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct DraftChapter {
    pub start_secs: Option<u32>,
    pub title: String,
}

/// Stage 2: the metadata as the model wrote it, before repair.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Draft {
    pub titles: Vec<DraftTitle>,
    pub hook: String,
    pub body: String,
    pub tags: Vec<String>,
    pub hashtags: Vec<String>,
    pub chapters: Vec<DraftChapter>,
    pub thumbnail_texts: Vec<String>,
}

/// Limits the schemas ask for (the repair enforces YouTube's own regardless).
pub const MAX_DRAFT_TITLES: usize = 5;
pub const MAX_DRAFT_TAGS: usize = 30;
pub const MAX_DRAFT_HASHTAGS: usize = 5;
pub const MAX_DRAFT_CHAPTERS: usize = 30;

fn string(max_length: usize) -> Value {
    json!({ "type": "string", "maxLength": max_length })
}

fn strings(max_items: usize, max_length: usize) -> Value {
    json!({ "type": "array", "items": string(max_length), "maxItems": max_items })
}

fn object(properties: Value) -> Value {
    let required: Vec<Value> = properties
        .as_object()
        .map(|p| p.keys().map(|k| Value::String(k.clone())).collect())
        .unwrap_or_default();
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

fn chapter_schema() -> Value {
    object(json!({
        "start": { "type": "integer", "minimum": 0, "description": "seconds from the start" },
        "title": string(100),
    }))
}

/// The schema of stage 1's answer ([`Analysis`]).
pub fn analysis_schema() -> Value {
    object(json!({
        "summary": string(1_000),
        "main_topics": strings(10, 100),
        "audience": string(300),
        "structure": { "type": "array", "items": chapter_schema(), "maxItems": MAX_DRAFT_CHAPTERS },
    }))
}

/// The schema of stage 2's answer ([`Draft`]).
pub fn draft_schema() -> Value {
    let strategies: Vec<&str> = TitleStrategy::ALL.iter().map(|s| s.as_str()).collect();
    object(json!({
        "titles": {
            "type": "array",
            "items": object(json!({
                "text": string(100),
                "strategy": { "type": "string", "enum": strategies },
            })),
            "maxItems": MAX_DRAFT_TITLES,
        },
        "hook": string(200),
        "body": string(3_500),
        "tags": strings(MAX_DRAFT_TAGS, 60),
        "hashtags": strings(MAX_DRAFT_HASHTAGS, 40),
        "chapters": { "type": "array", "items": chapter_schema(), "maxItems": MAX_DRAFT_CHAPTERS },
        "thumbnail_texts": strings(3, 40),
    }))
}

/// The schema without `maxLength`, for providers whose strict mode refuses the keyword
/// (the repair enforces lengths anyway). Everything else stays.
pub fn without_length_limits(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| k.as_str() != "maxLength")
                .map(|(k, v)| (k.clone(), without_length_limits(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_length_limits).collect()),
        other => other.clone(),
    }
}

/// Reads stage 1's answer; anything unreadable gives an empty analysis.
pub fn parse_analysis(text: &str) -> Analysis {
    let Some(Value::Object(map)) = extract_json(text) else {
        return Analysis::default();
    };
    Analysis {
        summary: text_of(&map, "summary"),
        main_topics: list_of(&map, "main_topics"),
        audience: text_of(&map, "audience"),
        structure: chapters_of(&map, "structure"),
    }
}

/// Reads stage 2's answer; anything unreadable gives an empty draft (which the repair turns
/// into a valid package all the same).
pub fn parse_draft(text: &str) -> Draft {
    let Some(Value::Object(map)) = extract_json(text) else {
        return Draft::default();
    };
    let titles = match map.get("titles") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|item| match item {
                Value::String(text) => Some(DraftTitle {
                    text: text.clone(),
                    strategy: None,
                }),
                Value::Object(title) => Some(DraftTitle {
                    text: text_of(title, "text"),
                    strategy: title
                        .get("strategy")
                        .and_then(Value::as_str)
                        .and_then(|s| TitleStrategy::ALL.into_iter().find(|t| t.as_str() == s)),
                }),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    Draft {
        titles,
        hook: text_of(&map, "hook"),
        body: text_of(&map, "body"),
        tags: list_of(&map, "tags"),
        hashtags: list_of(&map, "hashtags"),
        chapters: chapters_of(&map, "chapters"),
        thumbnail_texts: list_of(&map, "thumbnail_texts"),
    }
}

/// The first JSON object in a model's answer: the whole text, the inside of a ```` ``` ````
/// fence, or the first `{` that starts a readable object, prose around it ignored.
fn extract_json(text: &str) -> Option<Value> {
    let text = text.trim();
    if let Ok(value @ Value::Object(_)) = serde_json::from_str::<Value>(text) {
        return Some(value);
    }
    if let Some((_, after)) = text.split_once("```") {
        // Skip the fence's language word (`json`), if any.
        let inner = after.split_once('\n').map_or(after, |(first, rest)| {
            if first.trim().contains('{') {
                after
            } else {
                rest
            }
        });
        let inner = inner.split_once("```").map_or(inner, |(inside, _)| inside);
        if let Some(value) = first_object(inner) {
            return Some(value);
        }
    }
    first_object(text)
}

/// Tries the first few `{` as the start of one JSON value, reading no further than it ends.
fn first_object(text: &str) -> Option<Value> {
    text.match_indices('{').take(8).find_map(|(i, _)| {
        let rest = text.get(i..)?;
        let mut values = serde_json::Deserializer::from_str(rest).into_iter::<Value>();
        match values.next() {
            Some(Ok(value @ Value::Object(_))) => Some(value),
            _ => None,
        }
    })
}

fn text_of(map: &Map<String, Value>, key: &str) -> String {
    match map.get(key) {
        Some(Value::String(text)) => text.clone(),
        _ => String::new(),
    }
}

/// A list of strings; non-strings in it are skipped, and a single string is split at
/// commas (models sometimes write tags that way).
fn list_of(map: &Map<String, Value>, key: &str) -> Vec<String> {
    match map.get(key) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some(Value::String(text)) => text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

fn chapters_of(map: &Map<String, Value>, key: &str) -> Vec<DraftChapter> {
    let Some(Value::Array(items)) = map.get(key) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(Value::as_object)
        .map(|chapter| DraftChapter {
            start_secs: chapter
                .get("start")
                .or_else(|| chapter.get("start_secs"))
                .and_then(start_of),
            title: text_of(chapter, "title"),
        })
        .collect()
}

/// Seconds from a number (whole or not, not negative) or a string (`"90"`, `"1:30"`,
/// `"1:02:03"`).
fn start_of(value: &Value) -> Option<u32> {
    match value {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite() && *f >= 0.0)
                    .map(|f| f as u64)
            })
            .and_then(|secs| u32::try_from(secs).ok()),
        Value::String(text) => {
            let text = text.trim();
            text.parse::<u32>().ok().or_else(|| parse_timestamp(text))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fenced_answer_with_prose_is_read() {
        let answer = "Sure! Here it is:\n```json\n{\"hook\": \"Hi\", \"tags\": [\"a\", 3, \"b\"], \
                      \"titles\": [{\"text\": \"T\", \"strategy\": \"question\"}, {\"text\": \
                      \"U\", \"strategy\": \"bogus\"}, 7], \"chapters\": [{\"start\": \"1:30\", \
                      \"title\": \"x\"}, {\"start\": 12.7, \"title\": \"y\"}, {\"start\": -3, \
                      \"title\": \"z\"}]}\n```\nHope that helps.";
        let draft = parse_draft(answer);
        assert_eq!(draft.hook, "Hi");
        assert_eq!(draft.tags, ["a", "b"]);
        assert_eq!(draft.titles.len(), 2);
        assert_eq!(draft.titles[0].strategy, Some(TitleStrategy::Question));
        assert_eq!(draft.titles[1].strategy, None);
        let starts: Vec<Option<u32>> = draft.chapters.iter().map(|c| c.start_secs).collect();
        assert_eq!(starts, [Some(90), Some(12), None]);
    }

    #[test]
    fn prose_around_a_bare_object_and_wrong_types_are_tolerated() {
        let draft =
            parse_draft("The answer is {\"hook\": 5, \"body\": \"B\", \"hashtags\": \"#a, b\"} ok");
        assert_eq!(draft.hook, "");
        assert_eq!(draft.body, "B");
        assert_eq!(draft.hashtags, ["#a", "b"]);
    }

    #[test]
    fn garbage_gives_an_empty_draft() {
        for garbage in [
            "",
            "no json",
            "{{{{",
            "[1,2]",
            "```json\n{\"a\":```",
            "\"str\"",
        ] {
            assert_eq!(parse_draft(garbage), Draft::default(), "{garbage}");
            assert_eq!(parse_analysis(garbage), Analysis::default());
        }
    }

    #[test]
    fn analysis_is_read() {
        let analysis = parse_analysis(
            "{\"summary\":\"S\",\"main_topics\":[\"a\"],\"audience\":\"bakers\",\
             \"structure\":[{\"start\":0,\"title\":\"Intro\"}]}",
        );
        assert_eq!(analysis.summary, "S");
        assert_eq!(analysis.structure[0].start_secs, Some(0));
    }

    #[test]
    fn schemas_are_strict() {
        for schema in [analysis_schema(), draft_schema()] {
            assert_eq!(schema["additionalProperties"], false);
            let properties = schema["properties"].as_object().unwrap();
            assert_eq!(
                schema["required"].as_array().unwrap().len(),
                properties.len()
            );
        }
        let draft = draft_schema();
        assert_eq!(draft["properties"]["titles"]["maxItems"], 5);
        assert_eq!(
            draft["properties"]["titles"]["items"]["properties"]["strategy"]["enum"],
            json!([
                "keyword_first",
                "question",
                "listicle",
                "benefit",
                "curiosity"
            ])
        );
        assert_eq!(
            draft["properties"]["chapters"]["items"]["additionalProperties"],
            false
        );
    }
}
