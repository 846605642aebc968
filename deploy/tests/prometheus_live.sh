#!/usr/bin/env bash
# Starts Debian's `prometheus` against running Confab processes (the all-in-one process, and a
# split pair: the auth, admin and inference services in one process and a gateway in front of it, over a throwaway NATS), lets it
# scrape them with deploy/prometheus/rules loaded, and queries metrics back through its HTTP API.
# Writes each process's /metrics to OUT_DIR (for check_metrics.py).
#
#   deploy/tests/prometheus_live.sh CONFAB_BIN OUT_DIR
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=$1
out=$2
mkdir -p "$out"
# shellcheck source=SCRIPTDIR/../../scripts/lib/nats.sh
source "$root/scripts/lib/nats.sh"

work=$(mktemp -d)
pids=()
cleanup() {
	local pid
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	stop_nats
	rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Waits (at most 60 s) until URL answers 2xx, or the last process started has exited.
wait_for() {
	local url=$1 i
	for ((i = 0; i < 300; i++)); do
		curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null && return 0
		kill -0 "${pids[-1]}" 2>/dev/null || break
		sleep 0.2
	done
	echo "error: $url did not answer in 60 s" >&2
	return 1
}
fail() {
	echo "error: $*" >&2
	for f in "$work"/*.log; do echo "--- $f" >&2; tail -n 20 "$f" >&2; done
	exit 1
}

start_nats
token=prometheus-live-test-token-0123456789abcdef
aio=$(free_port)
auth=$(free_port)
gateway=$(free_port)
prom=$(free_port)
common=(env -u DATABASE_URL -u REDIS_URL CONFAB_INFERENCE__ENGINE__ENABLED=false CONFAB_LOG__LEVEL=warn)

"${common[@]}" "$bin" serve --listen "127.0.0.1:$aio" --data-dir "$work/aio" >"$work/aio.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$aio/readyz" || fail "the all-in-one process is not ready"
"${common[@]}" CONFAB_BUS__NATS_URL="$TEST_NATS_URL" CONFAB_SERVICES__TOKEN="$token" \
	CONFAB_SERVICES__ADMIN_URL="http://127.0.0.1:$auth" \
	"$bin" serve --services auth,admin,inference --listen "127.0.0.1:$auth" --data-dir "$work/auth" >"$work/auth.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$auth/readyz" || fail "the auth process is not ready"
"${common[@]}" CONFAB_BUS__NATS_URL="$TEST_NATS_URL" CONFAB_SERVICES__TOKEN="$token" \
	CONFAB_SERVICES__AUTH_URL="http://127.0.0.1:$auth" CONFAB_SERVICES__ADMIN_URL="http://127.0.0.1:$auth" \
	CONFAB_GATEWAY__UPSTREAMS__AUTH="[\"http://127.0.0.1:$auth\"]" \
	CONFAB_GATEWAY__UPSTREAMS__ADMIN="[\"http://127.0.0.1:$auth\"]" \
	"$bin" serve --services gateway --listen "127.0.0.1:$gateway" --data-dir "$work/gateway" >"$work/gateway.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$gateway/readyz" || fail "the gateway is not ready"
# Traffic through the gateway to auth, so both count it.
curl -fsS -o /dev/null "http://127.0.0.1:$gateway/.well-known/jwks.json" || true

cat >"$work/prometheus.yml" <<YAML
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: ["$root/deploy/prometheus/rules/confab.rules.yml"]
scrape_configs:
  - job_name: confab
    static_configs: [{targets: ["127.0.0.1:$aio"]}]
  - job_name: confab-auth
    static_configs: [{targets: ["127.0.0.1:$auth"]}]
  - job_name: confab-gateway
    static_configs: [{targets: ["127.0.0.1:$gateway"]}]
YAML
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
	--web.listen-address="127.0.0.1:$prom" >"$work/prometheus.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$prom/-/ready" || fail "prometheus is not ready"

api="http://127.0.0.1:$prom/api/v1"
# Polls a PromQL query (at most 60 s) until jq-free python says the answer has N results.
query_until() {
	local q=$1 want=$2 i got
	for ((i = 0; i < 120; i++)); do
		got=$(curl -fsS --get --data-urlencode "query=$q" "$api/query" |
			python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]["result"]))') || got=0
		[[ $got -ge $want ]] && return 0
		sleep 0.5
	done
	fail "query $q gave $got results, wanted $want"
}
query_until 'up{job=~"confab.*"} == 1' 3
query_until 'sum by (job) (confab_http_requests_total)' 3
query_until 'confab_db_pool_connections{job="confab", state="max"}' 1
rules=$(curl -fsS "$api/rules" | python3 -c 'import json,sys; print(sum(len(g["rules"]) for g in json.load(sys.stdin)["data"]["groups"]))')
want=$(grep -c -- '- alert:' "$root/deploy/prometheus/rules/confab.rules.yml")
[[ $rules -eq $want ]] || fail "prometheus loaded $rules rules, the file has $want"

for job in aio:$aio auth:$auth gateway:$gateway; do
	curl -fsS "http://127.0.0.1:${job#*:}/metrics" >"$out/${job%%:*}.metrics"
done
echo "prometheus scraped 3 Confab processes, answered the queries and loaded $rules rules"
