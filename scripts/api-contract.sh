#!/usr/bin/env bash
# The OpenAPI document as a contract: schemathesis (PyPI) generates requests for every
# operation of a live `confab serve` (the debug binary, on a fresh data directory with a
# scripted model) as a signed-in admin, and fails on any server error, any status the
# document does not declare for the operation, and any response that does not match its
# schema. Logout, sessions and the password routes (the user's own and an admin's reset, which
# the run would aim at its own account) are left out: they end the run's own session.
#
#   scripts/api-contract.sh [EXTRA st ARGS...]   (st runs in a temporary directory: give
#                                                 paths in ARGS as absolute paths)
# Environment: API_CONTRACT_EXAMPLES (examples per operation, default 20), CONFAB_BIN.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

venv=target/api-venv
[[ -x $venv/bin/st ]] || {
	python3 -m venv "$venv"
	"$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/api/requirements.txt
}
bin=${CONFAB_BIN:-target/debug/confab}
[[ -x $bin ]] || cargo build -p confab
bin=$(realpath "$bin")

work=$(mktemp -d)
server=""
cleanup() {
	[[ -n $server ]] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/confab.toml" <<'TOML'
[log]
level = "info"
format = "json"

[inference]
providers = [{ name = "scripted", kind = "scripted", models = ["scripted-echo"], reply = "You said: {last}" }]

[inference.engine]
enabled = false
TOML
env -u DATABASE_URL "$bin" --config "$work/confab.toml" serve --listen 127.0.0.1:0 --data-dir "$work/data" \
	>"$work/stdout" 2>"$work/stderr" &
server=$!
addr=""
for _ in $(seq 1 300); do
	addr=$(python3 -c 'import json,sys
for line in open(sys.argv[1]):
    try: e = json.loads(line)
    except ValueError: continue
    if e.get("message") == "listening": print(e["addr"]); break' "$work/stderr" 2>/dev/null || true)
	[[ -n $addr ]] && break
	kill -0 "$server" 2>/dev/null || { cat "$work/stderr" >&2; exit 1; }
	sleep 0.1
done
[[ -n $addr ]] || { echo "api-contract: the server did not start" >&2; cat "$work/stderr" >&2; exit 1; }
base="http://$addr"

token=$(python3 - "$base" <<'PY'
import json, sys, urllib.request
base = sys.argv[1]
def post(path, body):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)
creds = {"email": "contract@example.com", "password": "correct horse battery", "name": "Contract"}
post("/api/v1/auth/register", creds)
print(post("/api/v1/auth/login", {"email": creds["email"], "password": creds["password"]})["access_token"])
PY
)

# From the throw-away directory: schemathesis keeps a `.schemathesis/` cache of earlier
# failures in the working directory and replays them first, so each run starts without one
# (reproducible with the fixed seed) and the checkout stays clean.
root=$PWD
cd "$work"
"$root/$venv/bin/st" run "$base/api/openapi.json" \
	--checks not_a_server_error,status_code_conformance,response_schema_conformance \
	-H "Authorization: Bearer $token" \
	--exclude-path-regex '/auth/(logout|password)|/auth/sessions|/password-reset$' \
	--max-examples "${API_CONTRACT_EXAMPLES:-20}" \
	--seed 1 --workers 1 \
	--report-dir "$root/target/api-contract" \
	"$@"
