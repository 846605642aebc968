//! Architecture invariant, checked: the chat domain (`domain/`), its live events (`events.rs`)
//! and the import/export reader (`transfer/`) know neither HTTP, SQL, outgoing requests nor
//! tokio's I/O. They are read as source (code, not comments; unit tests left out) for any
//! path into axum, sqlx, reqwest, tokio, http or the store crate.

use std::path::{Path, PathBuf};

/// Crates whose names must not appear in the pure modules' code.
const BANNED: &[&str] = &[
    "axum",
    "sqlx",
    "reqwest",
    "tokio",
    "tokio_util",
    "http",
    "hyper",
    "confab_store",
];

/// The banned crates `source` names in code (comment lines and `#[cfg(test)]` modules are
/// skipped), with the line.
fn banned_paths(source: &str) -> Vec<String> {
    let code = source.split("#[cfg(test)]").next().unwrap_or(source);
    let mut found = Vec::new();
    for line in code.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("//") {
            continue;
        }
        // Every identifier of the line: a crate is named by its first path segment.
        let words = trimmed.split(|c: char| !(c.is_alphanumeric() || c == '_'));
        for word in words {
            if BANNED.contains(&word) {
                found.push(format!("{word} in `{}`", line.trim()));
            }
        }
    }
    found
}

fn pure_sources() -> Vec<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files: Vec<PathBuf> = std::fs::read_dir(src.join("domain"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.push(src.join("events.rs"));
    // The import/export reader, less its unit tests' file.
    files.extend(
        std::fs::read_dir(src.join("transfer"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "rs"))
            .filter(|path| !path.ends_with("tests.rs")),
    );
    files.sort();
    files
}

#[test]
fn the_domain_events_and_transfer_import_no_http_sql_or_io() {
    let files = pure_sources();
    assert!(files.len() >= 7, "{files:?}");
    for file in files {
        let source = std::fs::read_to_string(&file).unwrap();
        let found = banned_paths(&source);
        assert!(found.is_empty(), "{}: {found:?}", file.display());
    }
}

/// The check itself finds what it is for (and ignores prose).
#[test]
fn the_purity_check_sees_imports_and_paths_but_not_comments() {
    assert_eq!(banned_paths("use sqlx::Row;").len(), 1);
    assert_eq!(banned_paths("fn f() { tokio::spawn(async {}); }").len(), 1);
    assert_eq!(banned_paths("let r: axum::response::Response;").len(), 1);
    assert!(banned_paths("//! no axum or sqlx here\n/// nor http").is_empty());
    assert!(banned_paths("#[cfg(test)]\nmod tests { use tokio::time; }").is_empty());
    assert!(banned_paths("let http_status = 3; let tokio_like = 1;").is_empty());
}
