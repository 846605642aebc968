//! Header rules of a proxy hop: hop-by-hop headers removed (RFC 9110 §7.6.1, and any the
//! `Connection` header names), `X-Forwarded-*` set, W3C `traceparent` continued with a new
//! span id (or started), and the request id passed on.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Headers that describe one connection, never forwarded.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Removes hop-by-hop headers, and `Upgrade` unless `keep_upgrade` (a WebSocket handshake,
/// which then keeps `Connection: upgrade` too).
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // Names listed in `Connection` are hop-by-hop too; only look when it says more than the
    // usual words, to keep the common path free of allocations.
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|name| {
            !name.eq_ignore_ascii_case("close")
                && !name.eq_ignore_ascii_case("keep-alive")
                && !name.eq_ignore_ascii_case("upgrade")
                && !name.is_empty()
        })
        .filter_map(|name| HeaderName::try_from(name).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::UPGRADE);
    }
}

/// Sets `X-Forwarded-For` (the chain so far, then `client`), `X-Forwarded-Proto` (kept when
/// the request middleware let a trusted proxy's stand) and `X-Forwarded-Host`.
pub fn set_forwarded(headers: &mut HeaderMap, peer: Option<IpAddr>, host: Option<HeaderValue>) {
    if let Some(peer) = peer {
        let value = match headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
            Some(chain) if !chain.is_empty() => format!("{chain}, {peer}"),
            _ => peer.to_string(),
        };
        if let Ok(value) = HeaderValue::try_from(value) {
            headers.insert(X_FORWARDED_FOR, value);
        }
    }
    if !headers.contains_key(&X_FORWARDED_PROTO) {
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    }
    match host {
        Some(host) => {
            headers.insert(X_FORWARDED_HOST, host);
        }
        None => {
            headers.remove(X_FORWARDED_HOST);
        }
    }
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The `traceparent` for the next hop: the same trace and flags with a new span id (this
/// hop's), or a new sampled trace when the incoming one is absent or malformed.
pub fn next_traceparent(incoming: Option<&HeaderValue>) -> HeaderValue {
    let span: u64 = loop {
        let candidate = rand::random::<u64>();
        if candidate != 0 {
            break candidate;
        }
    };
    let parsed = incoming.and_then(|v| v.to_str().ok()).and_then(|v| {
        let mut parts = v.trim().split('-');
        let version = parts.next()?;
        let trace = parts.next()?;
        let _parent = parts.next().filter(|p| is_lower_hex(p, 16))?;
        let flags = parts.next().filter(|f| is_lower_hex(f, 2))?;
        (is_lower_hex(version, 2)
            && version != "ff"
            && is_lower_hex(trace, 32)
            && trace != "00000000000000000000000000000000")
            .then_some((trace, flags))
    });
    let text = match parsed {
        Some((trace, flags)) => format!("00-{trace}-{span:016x}-{flags}"),
        None => {
            let trace: u128 = loop {
                let candidate = rand::random::<u128>();
                if candidate != 0 {
                    break candidate;
                }
            };
            format!("00-{trace:032x}-{span:016x}-01")
        }
    };
    HeaderValue::try_from(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_go() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        headers.insert("x-secret", HeaderValue::from_static("1"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
        headers.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut headers, false);
        let names: Vec<_> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["x-kept"]);
    }

    #[test]
    fn traceparent_keeps_the_trace_with_a_new_span_or_starts_one() {
        let incoming =
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        let next = next_traceparent(Some(&incoming));
        let next = next.to_str().unwrap();
        assert!(
            next.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "{next}"
        );
        assert!(next.ends_with("-01"));
        assert!(!next.contains("00f067aa0ba902b7"));
        for bad in [None, Some(HeaderValue::from_static("garbage"))] {
            let made = next_traceparent(bad.as_ref());
            let parts: Vec<_> = made.to_str().unwrap().split('-').collect();
            assert_eq!(parts.len(), 4);
            assert!(is_lower_hex(parts[1], 32) && is_lower_hex(parts[2], 16));
        }
    }

    #[test]
    fn forwarded_for_appends_the_peer() {
        let mut headers = HeaderMap::new();
        headers.insert(X_FORWARDED_FOR, HeaderValue::from_static("203.0.113.7"));
        set_forwarded(
            &mut headers,
            Some("10.0.0.2".parse().unwrap()),
            Some(HeaderValue::from_static("chat.example")),
        );
        assert_eq!(headers[&X_FORWARDED_FOR], "203.0.113.7, 10.0.0.2");
        assert_eq!(headers[&X_FORWARDED_PROTO], "http");
        assert_eq!(headers[&X_FORWARDED_HOST], "chat.example");
    }
}
