//! The web UI: the single-page app built from `web/` (`npm --prefix web ci && npm --prefix
//! web run build` writes `web/dist`), embedded into release binaries at compile time (debug
//! builds read `web/dist` from disk, so a rebuilt UI shows without recompiling). Every `GET`
//! that no API route took is answered here: a file of the build, or `index.html` for the
//! app's own paths (client-side routing). A binary built without the UI answers `/` with a
//! page that says how to build it, instead of failing silently.

use axum::body::Body;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use confab_core::ApiError;
use rust_embed::Embed;

#[derive(Embed)]
#[folder = "$WEB_UI_DIST"]
#[allow_missing = true]
struct Ui;

/// What the browser may load for the app: its own scripts and styles (antd injects style
/// elements, hence `'unsafe-inline'` for styles only), images from data and blob URLs, and
/// requests to this origin (the API and its WebSocket).
const UI_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'";

/// Path prefixes that belong to the API and operations, never to the app: an unknown path
/// there stays a JSON 404.
const NOT_UI: [&str; 7] = [
    "/api/",
    "/v1/",
    "/s/",
    "/.well-known/",
    "/metrics",
    "/healthz",
    "/readyz",
];

/// When the embedded UI was built (Unix ms of its `index.html`), or `none`.
pub const BUILD: &str = env!("WEB_UI_BUILD");

/// Whether the UI was built into (or, in debug builds, is present for) this binary.
pub fn available() -> bool {
    BUILD != "none" && Ui::get("index.html").is_some()
}

/// The fallback of the whole router: the UI for `GET`/`HEAD` outside the API, else a 404 in
/// the error envelope.
pub async fn fallback(method: Method, uri: Uri) -> Response {
    let path = uri.path();
    if !(method == Method::GET || method == Method::HEAD)
        || NOT_UI
            .iter()
            .any(|p| path.starts_with(p) || path == p.trim_end_matches('/'))
    {
        return ApiError::not_found("no such route; see /api/docs").into_response();
    }
    let file = path.trim_start_matches('/');
    if !file.is_empty()
        && let Some(asset) = Ui::get(file)
    {
        // Vite names built assets by content hash, so they never change under one name.
        let cache = if file.starts_with("assets/") {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        return asset_response(asset, cache);
    }
    // A missing file with an extension is a real 404 (a stale asset link), not an app page.
    if file
        .rsplit('/')
        .next()
        .is_some_and(|name| name.contains('.'))
    {
        return ApiError::not_found(format!("no file {path} in the web UI")).into_response();
    }
    match Ui::get("index.html") {
        Some(index) => asset_response(index, "no-cache"),
        None => not_built(),
    }
}

fn asset_response(asset: rust_embed::EmbeddedFile, cache: &'static str) -> Response {
    let mime = asset.metadata.mimetype().to_owned();
    let mut response = Response::new(Body::from(asset.data.into_owned()));
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&mime) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(UI_CSP),
    );
    response
}

/// The page of a binary built without the UI (200: it is the answer to `/` of this binary,
/// and an error status would have it replaced by the API's JSON error envelope).
fn not_built() -> Response {
    let page = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
        <title>Confab: the web UI is not built</title></head><body>\
        <h1>The web UI is not built into this binary</h1>\
        <p>The API works (see <a href=\"/api/docs\">/api/docs</a>). To get the UI, build it and then \
        the binary again, from the repository root:</p>\
        <pre>npm --prefix web ci\nnpm --prefix web run build\ncargo build --release -p confab</pre>\
        <p><code>scripts/run.sh</code> does all of this.</p></body></html>";
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        page,
    )
        .into_response()
}
