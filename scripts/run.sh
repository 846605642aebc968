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
# Virus scanning of uploaded files: with a clamd that answers here (Debian's clamav-daemon
# socket, or 127.0.0.1:3310), unless CONFAB_FILES__CLAMD_ADDRESS says where one is.
clamd_answers() {
	python3 - "$1" <<'PY' 2>/dev/null
import socket, sys
where = sys.argv[1]
if where.startswith("/"):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(2); s.connect(where)
else:
    s = socket.create_connection((where.rsplit(":", 1)[0], int(where.rsplit(":", 1)[1])), timeout=2)
s.sendall(b"zPING\0")
sys.exit(0 if s.recv(16).startswith(b"PONG") else 1)
PY
}
if [[ -z ${CONFAB_FILES__CLAMD_ADDRESS:-} ]]; then
	for where in /run/clamav/clamd.ctl /var/run/clamav/clamd.ctl 127.0.0.1:3310; do
		if clamd_answers "$where"; then
			if [[ $where == /* ]]; then
				export CONFAB_FILES__CLAMD_ADDRESS="unix://$where"
			else
				export CONFAB_FILES__CLAMD_ADDRESS="tcp://$where"
			fi
			break
		fi
	done
fi
echo
if [[ -n ${CONFAB_FILES__CLAMD_ADDRESS:-} ]]; then
	echo "==> Uploaded files are scanned for viruses by clamd at $CONFAB_FILES__CLAMD_ADDRESS."
else
	echo "==> No clamd answers here: uploaded files are stored unscanned (and shown so). To scan"
	echo "    them, run clamd (Debian: apt install clamav-daemon; freshclam fetches its"
	echo "    signatures) and set CONFAB_FILES__CLAMD_ADDRESS=tcp://127.0.0.1:3310 or unix:///path."
fi
echo
echo "==> Serving Confab (default http://127.0.0.1:8080; the \"listening\" log line has the address): the web UI at /, the API reference at /api/docs. Ctrl-C stops."
exec "$bin" serve "$@"
