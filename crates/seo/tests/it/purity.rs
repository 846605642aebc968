//! Architecture checks, over every source file of the crate: only the storage adapters
//! (`store/`, `quota/store.rs`) know SQL, and the pure rules (`domain/`, `quota/domain.rs`)
//! use no web framework, database, HTTP client or async runtime.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `src/`, relative to it, with its text.
fn sources() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut pending: Vec<PathBuf> = vec![root.clone()];
    let mut out = Vec::new();
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let name = path
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push((name, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn only_the_storage_adapters_know_sql() {
    let sources = sources();
    assert!(sources.len() > 20, "the walk found the sources");
    let outside: Vec<(&str, &str)> = sources
        .iter()
        .filter(|(name, _)| !name.starts_with("store/") && name != "quota/store.rs")
        .map(|(name, text)| (name.as_str(), text.as_str()))
        .collect();
    confab_testkit::assert_no_sql(&outside);
}

#[test]
fn the_rules_do_no_io() {
    for (name, text) in sources() {
        if !(name.starts_with("domain/") || name == "quota/domain.rs") {
            continue;
        }
        let code = text.split("#[cfg(test)]").next().unwrap_or(&text);
        for banned in ["axum", "reqwest", "sqlx", "tokio", "std::fs", "std::net"] {
            assert!(!code.contains(banned), "{name} mentions {banned}");
        }
    }
}
