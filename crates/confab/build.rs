//! Rebuilds the binary when the web UI's build (`web/dist`, embedded by `src/web.rs`)
//! changes. Cargo reruns a build script on every build while a watched path is missing, so
//! the folder is watched only once it exists; `scripts/run.sh` touches this file after it
//! builds the UI for the first time.

fn main() {
    let dist = std::path::Path::new("../../web/dist");
    if dist.exists() {
        println!("cargo:rerun-if-changed=../../web/dist");
    } else {
        println!("cargo:rerun-if-changed=build.rs");
    }
}
