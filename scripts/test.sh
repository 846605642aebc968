#!/usr/bin/env bash
# The project's test command: the whole workspace suite twice, once against SQLite and once
# against a throwaway PostgreSQL server that this script starts and always stops on exit.
# Both passes also get a throwaway NATS server with JetStream (the NATS adapter tests), a
# throwaway Redis server (the Redis adapter tests), a throwaway S3-compatible server (s3s-fs:
# the blob store's and the backups' S3 tests) and a throwaway clamd with its own test signatures
# (the virus scanner's tests), each on a free loopback port.
# First the web UI's component tests run and the UI is built (scripts/web.sh all); last, its
# end-to-end tests run in Chromium (scripts/web.sh e2e), and deploy/ is checked offline
# (scripts/check-deploy.sh).
#
#   scripts/test.sh [ARGS...]      ARGS go to both `cargo nextest run` invocations
#                                  (e.g. a test name filter, or `--no-fail-fast`)
# Environment:
#   SKIP_POSTGRES=1     run only the SQLite pass
#   TEST_POSTGRES_URL   use this server instead of starting one; its user must be allowed
#                       to CREATE DATABASE (the tests create one database per test). Only
#                       with a server this script starts is a streaming replica started
#                       too, for the read-replica test (skipped otherwise)
#   SKIP_NATS=1         start no NATS server (the NATS adapter tests skip themselves)
#   TEST_NATS_URL       use this NATS server (JetStream enabled) instead of starting one
#   SKIP_S3=1           start no S3-compatible server (the S3 blob and backup tests skip
#                       themselves)
#   TEST_S3_ENDPOINT    use this S3-compatible server (with TEST_S3_BUCKET, TEST_S3_ACCESS_KEY
#                       and TEST_S3_SECRET_KEY) instead of starting s3s-fs
#   SKIP_REDIS=1        start no Redis server (the Redis adapter tests skip themselves)
#   TEST_REDIS_URL      use this Redis server instead of starting one; the tests write keys
#                       under random prefixes and FLUSH nothing, but use a server of its own
#   SKIP_CLAMD=1        start no clamd (the clamd tests skip themselves)
#   TEST_CLAMD_ADDRESS  use this clamd (tcp://host:port or unix:///path) instead of starting
#                       one, with TEST_CLAMD_MAX_BYTES its StreamMaxLength in bytes; the tests
#                       need the signatures that scripts/lib/clamd.sh writes
#   NEXTEST_PROFILE     the nextest profile (default: ci, see .config/nextest.toml)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/deps.sh
# shellcheck source=SCRIPTDIR/lib/postgres.sh
source scripts/lib/postgres.sh
# shellcheck source=SCRIPTDIR/lib/nats.sh
source scripts/lib/nats.sh
# shellcheck source=SCRIPTDIR/lib/redis.sh
source scripts/lib/redis.sh
# shellcheck source=SCRIPTDIR/lib/s3.sh
source scripts/lib/s3.sh
# shellcheck source=SCRIPTDIR/lib/clamd.sh
source scripts/lib/clamd.sh

# Whatever happens, including Ctrl-C, the servers stop and their directories go.
stop_servers() {
	stop_clamd
	stop_s3
	stop_redis
	stop_nats
	stop_postgres
}
trap stop_servers EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

postgres_pass=true
case ${SKIP_POSTGRES:-} in
'' | 0 | false | no) ;;
*) postgres_pass=false ;;
esac

if ! $postgres_pass; then
	echo "SKIP_POSTGRES is set: running the SQLite pass only"
elif [[ -n ${TEST_POSTGRES_URL:-} ]]; then
	echo "using the PostgreSQL server in TEST_POSTGRES_URL from the environment"
	export TEST_POSTGRES_URL
else
	start_postgres
	# Each test creates its own database; on this server, which nothing else uses, a new
	# database first drops those of test processes that have ended (crates/testkit), so the
	# suite does not leave one per test behind (several GB, doubled by the replica).
	export TEST_POSTGRES_REAP=1
	# A streaming replica of it (pg_basebackup -R) for the read-replica test
	# (crates/confab/tests/it/replica.rs; skipped without one).
	start_postgres_replica
fi

nats_tests=true
case ${SKIP_NATS:-} in
'' | 0 | false | no) ;;
*) nats_tests=false ;;
esac

if ! $nats_tests; then
	echo "SKIP_NATS is set: no NATS server (the NATS adapter tests skip themselves)"
	unset TEST_NATS_URL
else
	start_nats # uses TEST_NATS_URL from the environment when it is set
fi

redis_tests=true
case ${SKIP_REDIS:-} in
'' | 0 | false | no) ;;
*) redis_tests=false ;;
esac

if ! $redis_tests; then
	echo "SKIP_REDIS is set: no Redis server (the Redis adapter tests skip themselves)"
	unset TEST_REDIS_URL
else
	start_redis # uses TEST_REDIS_URL from the environment when it is set
fi

case ${SKIP_S3:-} in
'' | 0 | false | no) start_s3 ;; # uses TEST_S3_ENDPOINT from the environment when it is set
*)
	echo "SKIP_S3 is set: no S3-compatible server (the S3 tests skip themselves)"
	unset TEST_S3_ENDPOINT
	;;
esac

# Honours SKIP_CLAMD, and TEST_CLAMD_ADDRESS from the environment when it is set.
start_clamd

if cargo nextest --version >/dev/null 2>&1; then
	runner=(cargo nextest run --workspace --profile "${NEXTEST_PROFILE:-ci}")
else
	echo "warning: cargo-nextest not found; falling back to cargo test" >&2
	runner=(cargo test --workspace)
fi

run_pass() {
	local backend=$1
	shift
	echo
	echo "==> TEST_BACKEND=$backend ${runner[*]} $*"
	TEST_BACKEND=$backend "${runner[@]}" "$@"
}

# The web UI: its component tests, and the build that the server tests find in web/dist.
scripts/web.sh all

# The engine tests and the SDK tests use a real model (SmolLM2-135M-Instruct, about 98 MB).
scripts/fetch-model.sh target/test-models
export TEST_MODELS_DIR=$PWD/target/test-models

# The openai Python package's venv: made before the passes, because the cluster tests
# (crates/confab/tests/it/cluster) run tests/sdk against the gateway with it too.
sdk_venv() {
	[[ -x target/sdk-venv/bin/python ]] || python3 -m venv target/sdk-venv
	target/sdk-venv/bin/pip install --quiet --disable-pip-version-check -r tests/sdk/requirements.txt
}
sdk_venv || echo "warning: the openai SDK venv could not be made; the SDK tests will fail or skip" >&2

# The official openai Python package against a live `confab serve`.
sdk_tests() {
	echo
	echo "==> openai SDK tests (tests/sdk)"
	sdk_venv
	cargo build -p confab
	TEST_CONFAB_BIN=$PWD/target/debug/confab target/sdk-venv/bin/pytest -q tests/sdk
}

# The OpenAPI document as a contract: schemathesis against a live `confab serve` (server
# errors, undeclared statuses, responses off their schema); about 30 s.
api_contract() {
	echo
	echo "==> API contract (scripts/api-contract.sh)"
	cargo build -p confab
	scripts/api-contract.sh
}

deploy_checks() {
	echo
	echo "==> deploy checks (scripts/check-deploy.sh)"
	cargo build -p confab
	scripts/check-deploy.sh
}

failed=()
run_pass sqlite "$@" || failed+=(sqlite)
if $postgres_pass; then
	run_pass postgres "$@" || failed+=(postgres)
fi
if $postgres_pass && [[ $# -eq 0 ]]; then
	# PostgreSQL point-in-time recovery on a throwaway server of its own (about 5 s).
	echo
	echo "==> point-in-time recovery (scripts/pitr-test.sh)"
	scripts/pitr-test.sh || failed+=(pitr)
fi
if [[ $# -eq 0 ]]; then
	sdk_tests || failed+=(openai-sdk)
	api_contract || failed+=(api-contract)
	# The web UI in Chromium against a live `confab serve` (SQLite).
	scripts/web.sh e2e || failed+=(web-e2e)
	# deploy/ and .github/ checked offline (Compose, kustomize, the chart, Prometheus rules and a
	# live scrape, Grafana's queries, the image's Dockerfile, the CI workflow); about 30 s.
	deploy_checks || failed+=(deploy)
fi

echo
if ((${#failed[@]} > 0)); then
	echo "==> FAILED: ${failed[*]}" >&2
	exit 1
fi
if $postgres_pass; then
	echo "==> passed: sqlite and postgres (and point-in-time recovery, the openai SDK, API contract, web end-to-end and deploy checks unless a filter was given)"
else
	echo "==> passed: sqlite (postgres skipped)"
fi
