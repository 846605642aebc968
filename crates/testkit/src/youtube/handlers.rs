//! The fake YouTube's HTTP side: Google's error bodies, the admission every API call goes
//! through (credentials, quota, injected faults), and one handler per endpoint.

use std::collections::{HashMap, VecDeque};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use base64::Engine;
use serde_json::{Value, json};
use sha2::Digest;

use super::{FAKE_API_KEY, FAKE_CLIENT_ID, FAKE_CLIENT_SECRET, Fault, Shared, StoredVideo, issue};

/// Google's error body with `status`.
fn google_error(status: u16, domain: &str, reason: &str, message: &str) -> Response {
    let (code, name) = match status {
        400 => (StatusCode::BAD_REQUEST, "INVALID_ARGUMENT"),
        401 => (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
        403 => (StatusCode::FORBIDDEN, "PERMISSION_DENIED"),
        404 => (StatusCode::NOT_FOUND, "NOT_FOUND"),
        429 => (StatusCode::TOO_MANY_REQUESTS, "RESOURCE_EXHAUSTED"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
    };
    let body = json!({"error": {"code": status, "message": message,
        "errors": [{"message": message, "domain": domain, "reason": reason}], "status": name}});
    let mut headers = HeaderMap::new();
    if status == 401 {
        headers.insert(
            "www-authenticate",
            HeaderValue::from_static(
                "Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\"",
            ),
        );
    }
    (code, headers, Json(body)).into_response()
}

fn fault_response(fault: &Fault) -> Option<Response> {
    Some(match fault {
        Fault::Unavailable => google_error(503, "global", "backendError", "Backend Error"),
        Fault::TooManyRequests { retry_after_secs } => {
            let mut response =
                google_error(429, "global", "rateLimitExceeded", "Too Many Requests");
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from(*retry_after_secs));
            response
        }
        Fault::RateLimitExceeded => google_error(
            403,
            "usageLimits",
            "rateLimitExceeded",
            "Rate Limit Exceeded",
        ),
        Fault::UserRateLimitExceeded => google_error(
            403,
            "usageLimits",
            "userRateLimitExceeded",
            "User Rate Limit Exceeded",
        ),
        Fault::QuotaExceeded => quota_exceeded(),
        Fault::ExpiredToken => expired(),
        Fault::Delay(_) => return None,
    })
}

fn quota_exceeded() -> Response {
    google_error(
        403,
        "youtube.quota",
        "quotaExceeded",
        "The request cannot be completed because you have exceeded your <a href=\"/youtube/v3/getting-started#quota\">quota</a>.",
    )
}

fn expired() -> Response {
    google_error(
        401,
        "global",
        "authError",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
    )
}

type Params = HashMap<String, String>;

/// What every API call goes through: counting, credentials, quota, then injected faults.
async fn admit(
    shared: &Shared,
    method: &str,
    params: &Params,
    headers: &HeaderMap,
    oauth_only: bool,
) -> Result<(), Response> {
    let delay = {
        let mut inner = shared.lock();
        *inner.calls.entry(method.to_owned()).or_default() += 1;
        let bearer = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match (bearer, params.get("key")) {
            (Some(token), _) => {
                if inner.access_tokens.get(token) != Some(&true) {
                    return Err(expired());
                }
            }
            (None, _) if oauth_only => {
                return Err(google_error(401, "global", "required", "Login Required."));
            }
            (None, Some(key)) if key == FAKE_API_KEY => {}
            (None, Some(_)) => {
                return Err(google_error(
                    400,
                    "global",
                    "badRequest",
                    "API key not valid. Please pass a valid API key.",
                ));
            }
            (None, None) => {
                return Err(google_error(
                    403,
                    "global",
                    "forbidden",
                    "The request is missing a valid API key.",
                ));
            }
        }
        let cost = inner.costs.get(method).copied().unwrap_or(1);
        if inner.used + cost > inner.daily_limit {
            return Err(quota_exceeded());
        }
        inner.used += cost;
        let fault = inner.faults.get_mut(method).and_then(VecDeque::pop_front);
        match fault {
            Some(Fault::Delay(wait)) => Some(wait),
            Some(fault) => return Err(fault_response(&fault).unwrap_or_else(expired)),
            None => None,
        }
    };
    if let Some(wait) = delay {
        tokio::time::sleep(wait).await;
    }
    Ok(())
}

fn need_part(params: &Params) -> Result<Vec<String>, Box<Response>> {
    match params.get("part") {
        Some(part) if !part.is_empty() => {
            Ok(part.split(',').map(|p| p.trim().to_owned()).collect())
        }
        _ => Err(Box::new(google_error(
            400,
            "global",
            "required",
            "Required parameter: part",
        ))),
    }
}

fn ids(params: &Params) -> Result<Vec<String>, Box<Response>> {
    let Some(list) = params.get("id") else {
        return Err(Box::new(google_error(
            400,
            "youtube.parameter",
            "missingRequiredParameter",
            "No filter selected. Expected one of: id",
        )));
    };
    let ids: Vec<String> = list
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if ids.len() > 50 {
        return Err(Box::new(google_error(
            400,
            "youtube.parameter",
            "invalidParameter",
            "The request specifies more than 50 ids.",
        )));
    }
    Ok(ids)
}

fn list(kind: &str, items: Vec<Value>) -> Response {
    let n = items.len();
    Json(json!({"kind": kind, "etag": "fake-etag", "pageInfo": {"totalResults": n, "resultsPerPage": n}, "items": items})).into_response()
}

pub(super) async fn search(
    State(shared): State<Shared>,
    Query(params): Query<Params>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = admit(&shared, "search.list", &params, &headers, false).await {
        return r;
    }
    if let Err(r) = need_part(&params) {
        return *r;
    }
    let max: usize = params
        .get("maxResults")
        .and_then(|m| m.parse().ok())
        .unwrap_or(5);
    if max > 50 {
        return google_error(
            400,
            "youtube.parameter",
            "invalidParameter",
            "Invalid value for parameter maxResults: must be between 0 and 50.",
        );
    }
    let offset = match params.get("pageToken") {
        None => 0,
        Some(t) => match t
            .strip_prefix("FAKEPAGE")
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(n) => n,
            None => {
                return google_error(
                    400,
                    "youtube.parameter",
                    "invalidPageToken",
                    "The request specifies an invalid page token.",
                );
            }
        },
    };
    let q = params
        .get("q")
        .map(|q| q.to_lowercase())
        .unwrap_or_default();
    let inner = shared.lock();
    let mut hits: Vec<&StoredVideo> = inner
        .videos
        .iter()
        .filter(|v| {
            let s = &v.snippet;
            let text = format!(
                "{} {} {}",
                s["title"].as_str().unwrap_or(""),
                s["description"].as_str().unwrap_or(""),
                s["tags"]
            )
            .to_lowercase();
            q.split_whitespace().all(|word| text.contains(word))
        })
        .collect();
    match params.get("order").map(String::as_str) {
        Some("date") => hits.sort_by(|a, b| {
            b.snippet["publishedAt"]
                .as_str()
                .cmp(&a.snippet["publishedAt"].as_str())
        }),
        Some("viewCount") => hits.sort_by_key(|v| std::cmp::Reverse(v.views)),
        Some("rating") => hits.sort_by_key(|v| std::cmp::Reverse(v.likes)),
        Some("title") => hits.sort_by(|a, b| {
            a.snippet["title"]
                .as_str()
                .cmp(&b.snippet["title"].as_str())
        }),
        _ => {}
    }
    let total = hits.len();
    let items: Vec<Value> = hits.iter().skip(offset).take(max).map(|v| {
        let s = &v.snippet;
        json!({"kind": "youtube#searchResult", "etag": "fake-etag", "id": {"kind": "youtube#video", "videoId": v.id},
            "snippet": {"publishedAt": s["publishedAt"], "channelId": s["channelId"], "title": s["title"], "description": s["description"],
                "thumbnails": s["thumbnails"], "channelTitle": s["channelTitle"], "liveBroadcastContent": "none", "publishTime": s["publishedAt"]}})
    }).collect();
    let mut body = json!({"kind": "youtube#searchListResponse", "etag": "fake-etag", "regionCode": params.get("regionCode").map_or("US", String::as_str),
        "pageInfo": {"totalResults": total, "resultsPerPage": max}, "items": items});
    if let Some(map) = body.as_object_mut() {
        if offset + max < total {
            map.insert(
                "nextPageToken".to_owned(),
                json!(format!("FAKEPAGE{}", offset + max)),
            );
        }
        if offset > 0 {
            map.insert(
                "prevPageToken".to_owned(),
                json!(format!("FAKEPAGE{}", offset.saturating_sub(max))),
            );
        }
    }
    Json(body).into_response()
}

fn duration_iso(secs: u32) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut out = "PT".to_owned();
    if h > 0 {
        out.push_str(&format!("{h}H"));
    }
    if m > 0 {
        out.push_str(&format!("{m}M"));
    }
    if s > 0 || secs == 0 {
        out.push_str(&format!("{s}S"));
    }
    out
}

fn video_resource(v: &StoredVideo, parts: &[String]) -> Value {
    let mut item = json!({"kind": "youtube#video", "etag": "fake-etag", "id": v.id});
    if let Some(map) = item.as_object_mut() {
        for part in parts {
            let value = match part.as_str() {
                "snippet" => v.snippet.clone(),
                "statistics" => {
                    json!({"viewCount": v.views.to_string(), "likeCount": v.likes.to_string(),
                    "favoriteCount": "0", "commentCount": v.comments.to_string()})
                }
                "contentDetails" => {
                    json!({"duration": duration_iso(v.duration_secs), "dimension": "2d",
                    "definition": "hd", "caption": "false", "licensedContent": false, "projection": "rectangular"})
                }
                _ => continue,
            };
            map.insert(part.clone(), value);
        }
    }
    item
}

pub(super) async fn videos_list(
    State(shared): State<Shared>,
    Query(params): Query<Params>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = admit(&shared, "videos.list", &params, &headers, false).await {
        return r;
    }
    let (parts, ids) = match (need_part(&params), ids(&params)) {
        (Ok(p), Ok(i)) => (p, i),
        (Err(r), _) | (_, Err(r)) => return *r,
    };
    let inner = shared.lock();
    let items = ids
        .iter()
        .filter_map(|id| inner.videos.iter().find(|v| &v.id == id))
        .map(|v| video_resource(v, &parts))
        .collect();
    list("youtube#videoListResponse", items)
}

/// `videos.update`: the snippet sent replaces the stored one's writable fields; read-only
/// ones (channel, publication date, thumbnails) stay.
pub(super) async fn videos_update(
    State(shared): State<Shared>,
    Query(params): Query<Params>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Err(r) = admit(&shared, "videos.update", &params, &headers, true).await {
        return r;
    }
    let parts = match need_part(&params) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    if !parts.iter().any(|p| p == "snippet") {
        return google_error(
            400,
            "youtube.part",
            "unexpectedPart",
            "This fake only updates the snippet part.",
        );
    }
    let id = body["id"].as_str().unwrap_or_default().to_owned();
    let sent = &body["snippet"];
    let mut inner = shared.lock();
    let Some(video) = inner.videos.iter_mut().find(|v| v.id == id) else {
        return google_error(
            404,
            "youtube.video",
            "videoNotFound",
            "The video that you are trying to update cannot be found. Check the value of the id field in the request body to ensure that it is correct.",
        );
    };
    if sent["title"].as_str().is_none_or(str::is_empty) {
        return google_error(
            400,
            "youtube.video",
            "invalidTitle",
            "The request metadata specifies an invalid or empty video title.",
        );
    }
    if sent["categoryId"].as_str().is_none_or(str::is_empty) {
        return google_error(
            400,
            "youtube.video",
            "invalidCategoryId",
            "The request metadata does not specify a valid video category.",
        );
    }
    if let Some(stored) = video.snippet.as_object_mut() {
        for key in [
            "title",
            "description",
            "tags",
            "categoryId",
            "defaultLanguage",
            "defaultAudioLanguage",
        ] {
            match sent.get(key) {
                Some(value) => stored.insert(key.to_owned(), value.clone()),
                None => stored.remove(key),
            };
        }
    }
    Json(video_resource(video, &["snippet".to_owned()])).into_response()
}

pub(super) async fn channels(
    State(shared): State<Shared>,
    Query(params): Query<Params>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = admit(&shared, "channels.list", &params, &headers, false).await {
        return r;
    }
    let ids = match ids(&params) {
        Ok(i) => i,
        Err(r) => return *r,
    };
    let inner = shared.lock();
    let items = ids.iter().filter_map(|id| inner.channels.iter().find(|c| &c.id == id)).map(|c| {
        json!({"kind": "youtube#channel", "etag": "fake-etag", "id": c.id, "snippet": {"title": c.title, "description": ""},
            "statistics": {"viewCount": c.view_count.to_string(), "subscriberCount": if c.hidden_subscriber_count { "0".to_owned() } else { c.subscriber_count.to_string() },
                "hiddenSubscriberCount": c.hidden_subscriber_count, "videoCount": c.video_count.to_string()}})
    }).collect();
    list("youtube#channelListResponse", items)
}

pub(super) async fn categories(
    State(shared): State<Shared>,
    Query(params): Query<Params>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = admit(&shared, "videoCategories.list", &params, &headers, false).await {
        return r;
    }
    let Some(region) = params.get("regionCode") else {
        return google_error(
            400,
            "youtube.parameter",
            "missingRequiredParameter",
            "No filter selected. Expected one of: id, regionCode",
        );
    };
    let inner = shared.lock();
    let items = inner.categories.get(region).into_iter().flatten().map(|(id, title, assignable)| {
        json!({"kind": "youtube#videoCategory", "etag": "fake-etag", "id": id,
            "snippet": {"title": title, "assignable": assignable, "channelId": "UCBR8-60-B28hp2BmDPdntcQ"}})
    }).collect();
    list("youtube#videoCategoryListResponse", items)
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// Google's token endpoint: `authorization_code` (with PKCE) and `refresh_token` grants.
pub(super) async fn token(State(shared): State<Shared>, Form(form): Form<Params>) -> Response {
    let delay = {
        let mut inner = shared.lock();
        *inner.calls.entry("token".to_owned()).or_default() += 1;
        match inner.faults.get_mut("token").and_then(VecDeque::pop_front) {
            Some(Fault::Delay(wait)) => Some(wait),
            Some(_) => {
                return oauth_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "Try again later.",
                );
            }
            None => None,
        }
    };
    if let Some(wait) = delay {
        tokio::time::sleep(wait).await;
    }
    let field = |name: &str| form.get(name).map_or("", String::as_str);
    if field("client_id") != FAKE_CLIENT_ID || field("client_secret") != FAKE_CLIENT_SECRET {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "The OAuth client was not found.",
        );
    }
    let mut inner = shared.lock();
    let lifetime = inner.token_lifetime_secs;
    match field("grant_type") {
        "authorization_code" => {
            let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(sha2::Sha256::digest(field("code_verifier").as_bytes()));
            if inner
                .codes
                .remove(field("code"))
                .is_none_or(|expected| expected != challenge)
            {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Bad Request");
            }
            let access = issue(&mut inner);
            let refresh = format!("1//fake-refresh-{}", inner.issued);
            inner.refresh_tokens.insert(refresh.clone());
            Json(json!({"access_token": access, "expires_in": lifetime, "refresh_token": refresh,
                "scope": "https://www.googleapis.com/auth/youtube.force-ssl", "token_type": "Bearer"})).into_response()
        }
        "refresh_token" => {
            if !inner.refresh_tokens.contains(field("refresh_token")) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Token has been expired or revoked.",
                );
            }
            let access = issue(&mut inner);
            Json(json!({"access_token": access, "expires_in": lifetime,
                "scope": "https://www.googleapis.com/auth/youtube.force-ssl", "token_type": "Bearer"})).into_response()
        }
        other => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            &format!("Invalid grant_type: {other}"),
        ),
    }
}
