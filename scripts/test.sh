#!/usr/bin/env bash
# The project's test command: the whole workspace suite twice, once against SQLite and once
# against a throwaway PostgreSQL server that this script starts and always stops on exit.
#
#   scripts/test.sh [ARGS...]      ARGS go to both `cargo nextest run` invocations
#                                  (e.g. a test name filter, or `--no-fail-fast`)
# Environment:
#   SKIP_POSTGRES=1     run only the SQLite pass
#   TEST_POSTGRES_URL   use this server instead of starting one; its user must be allowed
#                       to CREATE DATABASE (the tests create one database per test)
#   NEXTEST_PROFILE     the nextest profile (default: ci, see .config/nextest.toml)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/deps.sh
# shellcheck source=SCRIPTDIR/lib/postgres.sh
source scripts/lib/postgres.sh

# Whatever happens, including Ctrl-C, the server stops and its directory goes.
trap stop_postgres EXIT
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
fi

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

failed=()
run_pass sqlite "$@" || failed+=(sqlite)
if $postgres_pass; then
	run_pass postgres "$@" || failed+=(postgres)
fi

echo
if ((${#failed[@]} > 0)); then
	echo "==> FAILED: ${failed[*]}" >&2
	exit 1
fi
if $postgres_pass; then
	echo "==> passed: sqlite and postgres"
else
	echo "==> passed: sqlite (postgres skipped)"
fi
