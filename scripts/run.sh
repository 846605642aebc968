#!/usr/bin/env bash
# Builds and runs the Confab server: scripts/run.sh [ARGS...], ARGS going to `confab serve`
# (e.g. --config confab.toml --listen 127.0.0.1:8080). It runs in the current directory, so
# relative paths and the default ./confab.toml are looked up where you call it from.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

(cd "$root" && cargo build --release -p confab)
exec "${CARGO_TARGET_DIR:-$root/target}/release/confab" serve "$@"
