//! What the gateway decides before forwarding: who is calling (authentication at the edge,
//! with API keys exchanged for service tokens) and whether they may call now (rate limits per
//! client address, user and API key through the `RateLimiter` port).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use confab_cache::{Decision, Rate, RateCheck, RateLimiter};
use confab_core::ApiError;
use confab_core::auth::{AuthFailure, Credential, DynAuthenticator, Principal, ServiceTokens};
use http::{HeaderMap, HeaderValue, header};

use crate::metrics::GatewayMetrics;

/// The prefix of API keys.
pub const API_KEY_PREFIX: &str = "cfk_";

/// Where the caller's credential came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Header,
    /// `?access_token=` (the WebSocket route only).
    Query,
}

/// The caller as the edge sees it.
#[derive(Debug, Default)]
pub struct Caller {
    /// Set when a credential was checked and accepted.
    pub principal: Option<Principal>,
    /// The service token that replaces an API key, as an `Authorization` value, and where the
    /// key came from (a key in the query is removed from it).
    pub replace: Option<(HeaderValue, Source)>,
    /// Whether the request carries any credential (never cached, whatever the route).
    pub credentialed: bool,
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
}

/// The value of `access_token` in `query`, if any.
pub fn query_token(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("access_token="))
        .filter(|t| !t.is_empty())
}

/// `query` without its `access_token` parameter.
pub fn without_query_token(query: &str) -> String {
    query
        .split('&')
        .filter(|pair| !pair.starts_with("access_token=") && !pair.is_empty())
        .collect::<Vec<_>>()
        .join("&")
}

/// Authenticates the caller. Private routes need a valid credential; public routes pass
/// anonymously, and a credential sent to them is checked only when it is an API key (which the
/// services cannot check themselves), else forwarded as it came.
pub async fn authenticate(
    authenticator: &DynAuthenticator,
    tokens: &ServiceTokens,
    headers: &HeaderMap,
    query: Option<&str>,
    websocket: bool,
    public: bool,
) -> Result<Caller, ApiError> {
    let (token, source) = match bearer(headers) {
        Some(token) => (Some(token), Source::Header),
        None if websocket => (query_token(query), Source::Query),
        None => (None, Source::Header),
    };
    let credentialed = token.is_some() || headers.contains_key(header::AUTHORIZATION);
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        if public {
            return Ok(Caller {
                credentialed,
                ..Caller::default()
            });
        }
        return Err(ApiError::unauthorized(
            "sign in: send `Authorization: Bearer <token or API key>`",
        ));
    };
    let is_key = token.starts_with(API_KEY_PREFIX);
    if public && !is_key {
        return Ok(Caller {
            credentialed,
            ..Caller::default()
        });
    }
    let principal = match authenticator.authenticate(token).await {
        Ok(principal) => principal,
        // On a public route a bad credential is the service's to judge.
        Err(AuthFailure::Invalid | AuthFailure::Expired | AuthFailure::Revoked) if public => {
            return Ok(Caller {
                credentialed,
                ..Caller::default()
            });
        }
        Err(failure) => return Err(failure.into()),
    };
    let replace = match &principal.credential {
        Credential::ApiKey { scopes, .. } => {
            // A socket lives for hours and checks its credential again on every revocation:
            // it keeps the key itself (moved from the URL to the header), which the chat
            // service checks with the auth service, rather than a five-minute service token.
            let forwarded = if websocket {
                token.to_owned()
            } else {
                tokens.mint(&principal, scopes).map_err(ApiError::from)?
            };
            let value = HeaderValue::try_from(format!("Bearer {forwarded}"))
                .map_err(|e| ApiError::internal(format!("service token header: {e}")))?;
            Some((value, source))
        }
        Credential::Session { .. } | Credential::Service { .. } => None,
    };
    Ok(Caller {
        principal: Some(principal),
        replace,
        credentialed,
    })
}

/// The gateway's rates; `None` where the limit is off.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub ip: Option<Rate>,
    pub user: Option<Rate>,
    pub key: Option<Rate>,
}

impl Limits {
    pub fn from_config(config: &confab_core::config::GatewayConfig) -> Self {
        let rate = |limit: u32, burst: u32| {
            (limit > 0).then(|| Rate {
                limit,
                period: Duration::from_secs(60),
                burst: burst.max(1),
            })
        };
        Self {
            ip: rate(config.ip_per_minute, config.ip_burst),
            user: rate(config.user_per_minute, config.user_burst),
            key: rate(config.key_per_minute, config.key_burst),
        }
    }
}

/// The outcome of the rate limits: the tightest decision (for the `x-ratelimit-*` headers), and
/// whether it refused. The address's, the user's and the key's limits are one call of the
/// limiter (one round trip to Redis), in that order: a refusal leaves the later ones untaken.
pub async fn check_limits(
    limiter: &Arc<dyn RateLimiter>,
    limits: Limits,
    ip: Option<IpAddr>,
    principal: Option<&Principal>,
    metrics: &GatewayMetrics,
) -> Option<Decision> {
    let ip_key = ip.map(|ip| format!("gw:ip:{}", confab_core::net::throttle_key(ip)));
    let user_key = principal.map(|p| format!("gw:user:{}", p.user_id));
    let key_key = principal.and_then(|p| match &p.credential {
        Credential::ApiKey { key_id, .. } => Some(format!("gw:key:{key_id}")),
        Credential::Service {
            key_id: Some(key_id),
            ..
        } => Some(format!("gw:key:{key_id}")),
        _ => None,
    });
    let checks: Vec<RateCheck<'_>> = [
        (&ip_key, limits.ip),
        (&user_key, limits.user),
        (&key_key, limits.key),
    ]
    .into_iter()
    .filter_map(|(key, rate)| {
        Some(RateCheck {
            key: key.as_deref()?,
            rate: rate?,
            cost: 1,
        })
    })
    .collect();
    if checks.is_empty() {
        return None;
    }
    match limiter.check_all(&checks).await {
        Ok(decisions) => decisions
            .into_iter()
            .min_by_key(|d| (d.allowed, d.remaining)),
        Err(e) => {
            // The production adapter degrades by itself; a plain adapter that fails lets the
            // request through rather than failing a user for the limiter's trouble.
            tracing::warn!(error = %e, "rate limiter unavailable; request let through");
            metrics.limiter_unavailable();
            None
        }
    }
}

/// Writes `x-ratelimit-limit`, `-remaining` and `-reset` (seconds).
pub fn rate_headers(headers: &mut HeaderMap, decision: &Decision) {
    headers.insert("x-ratelimit-limit", HeaderValue::from(decision.limit));
    headers.insert(
        "x-ratelimit-remaining",
        HeaderValue::from(decision.remaining),
    );
    headers.insert(
        "x-ratelimit-reset",
        HeaderValue::from(decision.reset_after.as_secs_f64().ceil() as u64),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_tokens_are_found_and_removed() {
        assert_eq!(
            query_token(Some("a=1&access_token=cfk_x&b=2")),
            Some("cfk_x")
        );
        assert_eq!(query_token(Some("access_token=")), None);
        assert_eq!(query_token(None), None);
        assert_eq!(without_query_token("a=1&access_token=cfk_x&b=2"), "a=1&b=2");
        assert_eq!(without_query_token("access_token=cfk_x"), "");
    }
}
