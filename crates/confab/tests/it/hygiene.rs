//! Rules about the source tree itself, checked rather than only written down: every Rust
//! file says what it is for in a `//!` line first, a file over about 600 lines says near its
//! top why it is long, and the repository's documents point at nothing outside it.

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

/// Past this many lines a file must say why it is long (issue 13: "no source file over about
/// 600 lines unless its first lines say why").
const LONG_FILE_LINES: usize = 600;

#[test]
fn long_files_say_why_they_are_long() {
    let files = rust_files();
    assert!(
        files.len() > 50,
        "the walk found the sources: {}",
        files.len()
    );
    let unexplained: Vec<String> = files
        .iter()
        .filter_map(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            let lines = text.lines().count();
            let says_why = text
                .lines()
                .take(15)
                .any(|line| line.starts_with("//!") && line.contains("Long"));
            (lines > LONG_FILE_LINES && !says_why)
                .then(|| format!("{} ({lines} lines)", path.display()))
        })
        .collect();
    assert!(
        unexplained.is_empty(),
        "these files are over {LONG_FILE_LINES} lines and no `//!` line among their first 15 says \
         why they are long (\"Long (about N lines) because …\"), or they should be split: \
         {unexplained:#?}"
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
