//! The merged OpenAPI document (each service's `/api/openapi.json`: paths, components and tags
//! merged into one) and the deprecated operations found in it, matched against requests so
//! the gateway can add `Deprecation`, `Sunset` and `Link` headers (docs/api-versioning.md).
//!
//! Pure: the fetching is the gateway's; this module merges and matches.

use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderValue, Method};
use serde_json::{Map, Value};

/// A deprecated operation: `deprecated: true`, with `x-sunset` (an HTTP date), `x-replacement`
/// (a path) and `x-deprecated-at` (an HTTP date) when given.
#[derive(Debug, Clone)]
pub struct Deprecated {
    method: Method,
    /// The path template's segments; `None` for a `{parameter}`.
    segments: Vec<Option<String>>,
    /// `Deprecation`: `@<unix seconds>`.
    pub deprecation: HeaderValue,
    pub sunset: Option<HeaderValue>,
    pub link: Option<HeaderValue>,
}

impl Deprecated {
    fn matches(&self, method: &Method, path: &str) -> bool {
        if *method != self.method {
            return false;
        }
        let mut segments = path.trim_start_matches('/').split('/');
        for expected in &self.segments {
            match (segments.next(), expected) {
                (Some(got), Some(literal)) if got == literal => {}
                (Some(got), None) if !got.is_empty() => {}
                _ => return false,
            }
        }
        segments.next().is_none()
    }
}

/// The merged document and its deprecated operations.
#[derive(Debug, Default)]
pub struct ApiDocs {
    /// The merged document, serialised once.
    pub json: bytes::Bytes,
    pub deprecated: Vec<Deprecated>,
    /// How many services' documents went into it.
    pub sources: usize,
}

impl ApiDocs {
    /// The deprecated operation `method path` is, if any.
    pub fn deprecation(&self, method: &Method, path: &str) -> Option<&Deprecated> {
        self.deprecated.iter().find(|d| d.matches(method, path))
    }
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Merges `documents` (in order: the first's `openapi` and `info` win) and indexes their
/// deprecated operations. `loaded_at` stands for `x-deprecated-at` when an operation lacks it.
pub fn merge(documents: &[Value], loaded_at: SystemTime) -> ApiDocs {
    let mut merged = Map::new();
    let mut paths = Map::new();
    let mut components: Map<String, Value> = Map::new();
    let mut tags: Vec<Value> = Vec::new();
    for doc in documents {
        let Some(doc) = doc.as_object() else { continue };
        for key in ["openapi", "info"] {
            if let Some(value) = doc.get(key)
                && !merged.contains_key(key)
            {
                merged.insert(key.to_owned(), value.clone());
            }
        }
        if let Some(Value::Object(more)) = doc.get("paths") {
            for (path, item) in more {
                match (paths.get_mut(path), item) {
                    (Some(Value::Object(existing)), Value::Object(item)) => {
                        for (k, v) in item {
                            existing.entry(k.clone()).or_insert_with(|| v.clone());
                        }
                    }
                    (None, _) => {
                        paths.insert(path.clone(), item.clone());
                    }
                    _ => {}
                }
            }
        }
        if let Some(Value::Object(more)) = doc.get("components") {
            for (kind, entries) in more {
                let slot = components
                    .entry(kind.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let (Value::Object(slot), Value::Object(entries)) = (slot, entries) {
                    for (name, value) in entries {
                        slot.entry(name.clone()).or_insert_with(|| value.clone());
                    }
                }
            }
        }
        if let Some(Value::Array(more)) = doc.get("tags") {
            for tag in more {
                let name = tag.get("name");
                if !tags.iter().any(|t| t.get("name") == name) {
                    tags.push(tag.clone());
                }
            }
        }
    }
    let deprecated = index_deprecated(&paths, loaded_at);
    merged.insert("paths".into(), Value::Object(paths));
    if !components.is_empty() {
        merged.insert("components".into(), Value::Object(components));
    }
    if !tags.is_empty() {
        merged.insert("tags".into(), Value::Array(tags));
    }
    let json = serde_json::to_vec(&Value::Object(merged)).unwrap_or_default();
    ApiDocs {
        json: json.into(),
        deprecated,
        sources: documents.len(),
    }
}

fn index_deprecated(paths: &Map<String, Value>, loaded_at: SystemTime) -> Vec<Deprecated> {
    let mut found = Vec::new();
    for (path, item) in paths {
        let Some(item) = item.as_object() else {
            continue;
        };
        for method in METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            if operation.get("deprecated") != Some(&Value::Bool(true)) {
                continue;
            }
            let Ok(method) = Method::from_bytes(method.to_ascii_uppercase().as_bytes()) else {
                continue;
            };
            let text = |key: &str| operation.get(key).and_then(Value::as_str);
            let since = text("x-deprecated-at")
                .and_then(|d| httpdate::parse_http_date(d).ok())
                .unwrap_or(loaded_at);
            let sunset = text("x-sunset")
                .filter(|d| httpdate::parse_http_date(d).is_ok())
                .and_then(|d| HeaderValue::from_str(d).ok());
            let link = text("x-replacement")
                .filter(|p| p.starts_with('/') && !p.contains(['<', '>', '"', ' ']))
                .and_then(|p| {
                    HeaderValue::try_from(format!("<{p}>; rel=\"successor-version\"")).ok()
                });
            let segments = path
                .trim_start_matches('/')
                .split('/')
                .map(|s| (!(s.starts_with('{') && s.ends_with('}'))).then(|| s.to_owned()))
                .collect();
            let Ok(deprecation) = HeaderValue::try_from(format!("@{}", unix_seconds(since))) else {
                continue;
            };
            found.push(Deprecated {
                method,
                segments,
                deprecation,
                sunset,
                link,
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documents_merge_and_deprecated_operations_match_their_template() {
        let auth = json!({
            "openapi": "3.1.0", "info": {"title": "auth"},
            "paths": {"/api/v1/auth/me": {"get": {"operationId": "me"}}},
            "components": {"schemas": {"A": {"type": "object"}, "Shared": {"type": "string"}}},
            "tags": [{"name": "auth"}]
        });
        let chat = json!({
            "openapi": "3.1.0", "info": {"title": "chat"},
            "paths": {
                "/api/v1/conversations/{id}/old": {"get": {
                    "deprecated": true,
                    "x-sunset": "Sat, 01 Jan 2028 00:00:00 GMT",
                    "x-replacement": "/api/v1/conversations/{id}",
                    "x-deprecated-at": "Fri, 01 Jan 2027 00:00:00 GMT"
                }, "post": {}}
            },
            "components": {"schemas": {"B": {}, "Shared": {"type": "integer"}}},
            "tags": [{"name": "chat"}, {"name": "auth"}]
        });
        let docs = merge(&[auth, chat], UNIX_EPOCH);
        let merged: Value = serde_json::from_slice(&docs.json).unwrap();
        assert_eq!(merged["info"]["title"], "auth");
        assert_eq!(merged["paths"].as_object().unwrap().len(), 2);
        let schemas = merged["components"]["schemas"].as_object().unwrap();
        assert_eq!(schemas.len(), 3);
        assert_eq!(schemas["Shared"]["type"], "string", "first one wins");
        assert_eq!(merged["tags"].as_array().unwrap().len(), 2);

        let found = docs
            .deprecation(&Method::GET, "/api/v1/conversations/123/old")
            .unwrap();
        assert_eq!(found.deprecation, "@1798761600");
        assert_eq!(
            found.sunset.as_ref().unwrap(),
            "Sat, 01 Jan 2028 00:00:00 GMT"
        );
        assert_eq!(
            found.link.as_ref().unwrap(),
            "</api/v1/conversations/{id}>; rel=\"successor-version\""
        );
        assert!(
            docs.deprecation(&Method::POST, "/api/v1/conversations/1/old")
                .is_none()
        );
        assert!(
            docs.deprecation(&Method::GET, "/api/v1/conversations/1/old/x")
                .is_none()
        );
        assert!(
            docs.deprecation(&Method::GET, "/api/v1/conversations//old")
                .is_none()
        );
    }
}
