//! Rules about the source tree itself, checked rather than only written down: every Rust
//! file says what it is for in a `//!` line first, and the repository's documents point at
//! nothing outside it.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `crates/` and `bench/`, found from this crate's manifest.
fn rust_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut pending = vec![root.join("crates"), root.join("bench")];
    let mut files = Vec::new();
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if name != "target" && name != "node_modules" && !name.starts_with('.') {
                    pending.push(path);
                }
            } else if name.ends_with(".rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn every_source_file_starts_with_a_module_doc() {
    let files = rust_files();
    assert!(
        files.len() > 50,
        "the walk found the sources: {}",
        files.len()
    );
    let undocumented: Vec<String> = files
        .iter()
        .filter(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            !text.starts_with("//!")
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        undocumented.is_empty(),
        "these files do not start with a `//!` line saying what they are for: {undocumented:#?}"
    );
}

#[test]
fn the_repository_documents_point_at_nothing_outside_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for doc in ["ARCHITECTURE.md", "README.md"] {
        let text = std::fs::read_to_string(root.join(doc)).unwrap();
        for outside in ["../shared", "](../", "`../"] {
            assert!(
                !text.contains(outside),
                "{doc} points outside the repository ({outside}); keep what applies in docs/"
            );
        }
    }
}
