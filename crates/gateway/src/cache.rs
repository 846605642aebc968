//! The response cache's rules and its stored form: which answers may be kept (public GETs
//! without credentials, `200`, no `Set-Cookie` or `Vary`, `Cache-Control: public, max-age=N`
//! or the JWKS; bounded size), the strong `ETag` (a hash of the body), and `If-None-Match`.

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use sha2::{Digest, Sha256};

/// A cached answer.
#[derive(Debug, Clone)]
pub struct Cached {
    pub content_type: Option<HeaderValue>,
    pub cache_control: Option<HeaderValue>,
    pub etag: HeaderValue,
    pub body: Bytes,
}

/// The strong validator of `body`: `"` + base64url(SHA-256(body)[..16]) + `"`.
pub fn etag_of(body: &[u8]) -> HeaderValue {
    let digest = Sha256::digest(body);
    let text = format!(
        "\"{}\"",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16])
    );
    HeaderValue::try_from(text).unwrap_or_else(|_| HeaderValue::from_static("\"\""))
}

/// Whether `If-None-Match` in `request` names `etag` (or `*`).
pub fn not_modified(request: &HeaderMap, etag: &HeaderValue) -> bool {
    let want = etag.as_bytes();
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/").as_bytes() == want)
}

/// How long an upstream answer may be kept, or `None` when it must not be.
/// `default_ttl` applies to routes cached whatever they say (the JWKS).
pub fn ttl_for(
    status: StatusCode,
    headers: &HeaderMap,
    default_ttl: Option<Duration>,
    max_ttl: Duration,
) -> Option<Duration> {
    if status != StatusCode::OK
        || headers.contains_key(header::SET_COOKIE)
        || headers.contains_key(header::VARY)
    {
        return None;
    }
    let control = headers
        .get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut public = false;
    let mut max_age = None;
    for directive in control.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        match lower.as_str() {
            "public" => public = true,
            "private" | "no-store" | "no-cache" => return None,
            _ => {
                if let Some(n) = lower
                    .strip_prefix("s-maxage=")
                    .or_else(|| lower.strip_prefix("max-age="))
                {
                    max_age = n.trim_matches('"').parse::<u64>().ok().or(max_age);
                }
            }
        }
    }
    let ttl = match (public, max_age) {
        (true, Some(secs)) => Duration::from_secs(secs),
        _ => default_ttl?,
    };
    let ttl = ttl.min(max_ttl);
    (!ttl.is_zero()).then_some(ttl)
}

impl Cached {
    /// The stored form: three header lines (empty when absent) and the body.
    pub fn encode(&self) -> Vec<u8> {
        let empty = HeaderValue::from_static("");
        let mut out = Vec::with_capacity(self.body.len() + 128);
        for value in [
            self.content_type.as_ref().unwrap_or(&empty),
            self.cache_control.as_ref().unwrap_or(&empty),
            &self.etag,
        ] {
            out.extend_from_slice(value.as_bytes());
            out.push(b'\n');
        }
        out.extend_from_slice(&self.body);
        out
    }

    pub fn decode(stored: &[u8]) -> Option<Self> {
        let mut rest = stored;
        let mut line = || {
            let end = rest.iter().position(|b| *b == b'\n')?;
            let (value, tail) = rest.split_at(end);
            rest = tail.get(1..)?;
            Some(value)
        };
        let optional = |v: &[u8]| {
            (!v.is_empty())
                .then(|| HeaderValue::from_bytes(v).ok())
                .flatten()
        };
        let content_type = optional(line()?);
        let cache_control = optional(line()?);
        let etag = HeaderValue::from_bytes(line()?).ok()?;
        Some(Self {
            content_type,
            cache_control,
            etag,
            body: Bytes::copy_from_slice(rest),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    http::HeaderName::from_static(k),
                    HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    #[test]
    fn only_public_answers_with_a_max_age_are_kept_and_clamped() {
        let max = Duration::from_secs(300);
        let ok = StatusCode::OK;
        let ttl = |pairs: &[(&'static str, &'static str)]| ttl_for(ok, &headers(pairs), None, max);
        assert_eq!(
            ttl(&[("cache-control", "public, max-age=60")]),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            ttl(&[("cache-control", "public, max-age=86400")]),
            Some(max)
        );
        assert_eq!(ttl(&[("cache-control", "max-age=60")]), None);
        assert_eq!(
            ttl(&[("cache-control", "public, no-store, max-age=60")]),
            None
        );
        assert_eq!(ttl(&[("cache-control", "public, max-age=0")]), None);
        assert_eq!(
            ttl(&[
                ("cache-control", "public, max-age=60"),
                ("set-cookie", "a=b")
            ]),
            None
        );
        assert_eq!(
            ttl(&[("cache-control", "public, max-age=60"), ("vary", "cookie")]),
            None
        );
        assert_eq!(ttl(&[]), None);
        let jwks = Some(Duration::from_secs(30));
        assert_eq!(ttl_for(ok, &HeaderMap::new(), jwks, max), jwks);
        assert_eq!(
            ttl_for(StatusCode::NOT_FOUND, &HeaderMap::new(), jwks, max),
            None
        );
    }

    #[test]
    fn stored_answers_round_trip_and_validators_match() {
        let cached = Cached {
            content_type: Some(HeaderValue::from_static("application/json")),
            cache_control: None,
            etag: etag_of(b"{}"),
            body: Bytes::from_static(b"{\n}"),
        };
        let back = Cached::decode(&cached.encode()).unwrap();
        assert_eq!(back.content_type, cached.content_type);
        assert_eq!(back.cache_control, None);
        assert_eq!(back.etag, cached.etag);
        assert_eq!(back.body, cached.body);
        let mut request = HeaderMap::new();
        request.insert(
            header::IF_NONE_MATCH,
            HeaderValue::try_from(format!("\"x\", {}", cached.etag.to_str().unwrap())).unwrap(),
        );
        assert!(not_modified(&request, &cached.etag));
        assert!(!not_modified(&HeaderMap::new(), &cached.etag));
        assert_ne!(etag_of(b"a"), etag_of(b"b"));
    }
}
