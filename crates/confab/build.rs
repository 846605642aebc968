//! Rebuilds the binary when the web UI's build (`web/dist`, embedded by `src/web.rs`)
//! appears or changes. Cargo reruns a build script on every build while a watched path is
//! missing, so the folder is watched only once it exists (`scripts/web.sh` touches this file
//! when it builds the UI for the first time); `WEB_UI_BUILD` (the time of the build's
//! `index.html`, or `none`) changes with it, which makes Cargo compile the crate again and
//! the embedding see the new files.

use std::path::Path;
use std::time::UNIX_EPOCH;

// The variables set here reach the processes `cargo test` and `cargo run` start too, so they
// must not begin with `CONFAB_` (those are configuration keys).
fn main() {
    let dist = Path::new("../../web/dist");
    // The embedding wants the folder without `..` (it compares canonical paths): the
    // repository's `web` folder made absolute, then `dist`.
    let absolute = std::fs::canonicalize("../../web")
        .map(|web| web.join("dist"))
        .unwrap_or_else(|_| dist.to_path_buf());
    println!("cargo:rustc-env=WEB_UI_DIST={}", absolute.display());
    let stamp = std::fs::metadata(dist.join("index.html"))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or_else(|| "none".to_owned(), |d| d.as_millis().to_string());
    println!("cargo:rustc-env=WEB_UI_BUILD={stamp}");
    if dist.exists() {
        println!("cargo:rerun-if-changed=../../web/dist");
    } else {
        println!("cargo:rerun-if-changed=build.rs");
    }
}
