#!/usr/bin/env bash
# Builds Confab, makes sure a local model is there, shows a first chat answered by it, then
# runs the server: scripts/run.sh [ARGS...], ARGS going to `confab serve` (e.g. --listen
# 127.0.0.1:8080). State lives in $CONFAB_DATA_DIR (default ./data, relative to where you run
# it); relative paths and ./confab.toml are looked up there too.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CONFAB_DATA_DIR=${CONFAB_DATA_DIR:-data}

"$root/scripts/deps.sh"
bin=${CARGO_TARGET_DIR:-$root/target}/release/confab
# The web UI first: the release binary embeds web/dist (a changed UI makes Cargo rebuild it).
"$root/scripts/web.sh" build
(cd "$root" && cargo build --release -p confab)

"$root/scripts/fetch-model.sh" "$CONFAB_DATA_DIR/models"
echo
echo "==> A first chat with the local model (confab chat):"
echo "> Hello! Who are you? Answer in one sentence."
"$bin" chat --max-tokens 60 "Hello! Who are you? Answer in one sentence."
echo
echo "==> Serving Confab (default http://127.0.0.1:8080; the \"listening\" log line has the address): the web UI at /, the API reference at /api/docs. Ctrl-C stops."
exec "$bin" serve "$@"
