//! Rebuilds the binary when the web UI's build (`web/dist`, embedded by `src/web.rs`)
//! appears or changes. Cargo reruns a build script on every build while a watched path is
//! missing, so the folder is watched only once it exists (`scripts/web.sh` touches this file
//! when it builds the UI for the first time); `WEB_UI_BUILD` (the time of the build's
//! `index.html`, or `none`) changes with it, which makes Cargo compile the crate again and
//! the embedding see the new files.
//!
//! It also sets `BUILD_INFO_VERSION` and `BUILD_INFO_COMMIT`, what `confab --version` and
//! `confab_build_info` say: the version is `BUILD_VERSION` when set (the Dockerfile sets it from
//! its `VERSION` build argument), else the package's; the commit is `GIT_COMMIT` when set (the
//! Dockerfile's `COMMIT`: its build context has no `.git`), else `git rev-parse` of the
//! checkout, else `unknown`, shortened to 12 digits. Cargo reruns it only when those variables,
//! the checkout's `HEAD`, the branch it points to or `packed-refs` change, not on every build.

use std::path::{Path, PathBuf};
use std::process::Command;
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
    println!("cargo:rustc-env=BUILD_INFO_VERSION={}", version());
    println!("cargo:rustc-env=BUILD_INFO_COMMIT={}", commit());
    if dist.exists() {
        println!("cargo:rerun-if-changed=../../web/dist");
    } else {
        println!("cargo:rerun-if-changed=build.rs");
    }
}

/// `git` in this crate's folder: its trimmed output when it succeeds.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

/// A build variable's value when it is set to something that fits a label: printable ASCII
/// without quotes or backslashes, at most 64 bytes. Anything else fails the build, which says
/// what to fix, rather than a binary that reports a wrong or mangled value.
fn build_var(name: &str) -> Option<String> {
    println!("cargo:rerun-if-env-changed={name}");
    let value = std::env::var(name).ok()?.trim().to_owned();
    if value.is_empty() {
        return None;
    }
    let fits = value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
    assert!(
        fits,
        "{name}={value:?}: expected at most 64 printable ASCII characters without quotes or \
         backslashes (a version such as 1.2.3, a commit such as 1a2b3c4d5e6f)"
    );
    Some(value)
}

/// The version to report.
fn version() -> String {
    build_var("BUILD_VERSION").unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_owned())
}

/// The commit to report, and the files whose change makes Cargo ask again.
fn commit() -> String {
    let commit = build_var("GIT_COMMIT").or_else(checkout_commit);
    match commit {
        // A full hash is shortened like `git rev-parse --short=12`.
        Some(c) if c.len() > 12 && c.bytes().all(|b| b.is_ascii_hexdigit()) => c[..12].to_owned(),
        Some(c) => c,
        None => "unknown".to_owned(),
    }
}

/// `git rev-parse` of the checkout this is built from, watching what changes it.
fn checkout_commit() -> Option<String> {
    let commit = git(&["rev-parse", "--short=12", "HEAD"])?;
    // In a worktree `--git-dir` holds `HEAD` and `--git-common-dir` the refs.
    let git_dir = git(&["rev-parse", "--git-dir"]).map(PathBuf::from);
    let common = git(&["rev-parse", "--git-common-dir"]).map(PathBuf::from);
    // A watched path that is missing would rerun this on every build: only those there.
    let watch = |path: PathBuf| {
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    };
    if let Some(dir) = &git_dir {
        watch(dir.join("HEAD"));
    }
    if let Some(common) = common.or(git_dir) {
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watch(common.join(branch));
        }
        watch(common.join("packed-refs"));
    }
    Some(commit)
}
