#!/usr/bin/env bash
# Installs the system packages that building and testing Confab need, when missing
# (Debian/Ubuntu). Idempotent, and quick when everything is present: apt is only touched
# when something is missing. As root it installs; otherwise it prints the command to run.
#
# Only the PostgreSQL, NATS, Redis, ClamAV and Prometheus binaries are used: scripts/test.sh starts
# its own throwaway servers on free loopback ports, so a `main` cluster, a `nats-server`, a
# `redis-server` or a `clamav-daemon` service that the Debian packages may create (and, where an
# init system runs, start on 5432, 4222, 6379, clamd's socket and 9090) neither conflicts nor is
# relied on. Nor is freshclam (clamav-daemon pulls it in): the test clamd loads only signatures
# that scripts/lib/clamd.sh writes, so nothing is downloaded.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/lib/postgres.sh
source "$here/lib/postgres.sh"
# shellcheck source=SCRIPTDIR/lib/nats.sh
source "$here/lib/nats.sh"
# shellcheck source=SCRIPTDIR/lib/redis.sh
source "$here/lib/redis.sh"
# shellcheck source=SCRIPTDIR/lib/clamd.sh
source "$here/lib/clamd.sh"

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
have() { command -v "$1" >/dev/null 2>&1; }

missing=()
check() {
	missing=()
	pg_find_bindir >/dev/null || missing+=(postgresql) # the server: initdb, pg_ctl, postgres
	nats_find_server >/dev/null || missing+=(nats-server) # JetStream for the NATS adapter tests
	redis_find_server >/dev/null || missing+=(redis-server) # the Redis adapter tests
	have redis-cli || missing+=(redis-tools)                # checks that the test server is ready
	clamd_find_server >/dev/null || missing+=(clamav-daemon) # clamd, the virus scanner's tests
	have clamdscan || missing+=(clamdscan)                  # clamd's client, for checking by hand
	have sigtool || missing+=(clamav)                       # writes the test clamd's hash signature
	have pkg-config || missing+=(pkg-config)
	have curl || missing+=(curl)
	have python3 || missing+=(python3) # picks a free port for the test server; fetches the model
	python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
	python3 -m venv --help >/dev/null 2>&1 || missing+=(python3-venv)
	have cmake || missing+=(cmake)               # llama.cpp, built by the llama-cpp-sys-2 crate
	have clang || missing+=(clang)               # bindgen for llama.cpp
	installed libclang-dev || missing+=(libclang-dev)
	have c++ || missing+=(g++)
	installed libgomp1 || missing+=(libgomp1)    # OpenMP, llama.cpp's threads
	have cc || missing+=(gcc)          # C parts of dependencies (the bundled SQLite)
	installed libc6-dev || missing+=(libc6-dev)
	installed ca-certificates || missing+=(ca-certificates) # cargo fetches crates over HTTPS
	have chromium || have chromium-browser || missing+=(chromium) # the web UI's end-to-end tests
	installed fonts-dejavu-core || missing+=(fonts-dejavu-core)   # text in their screenshots
	installed fonts-noto-color-emoji || missing+=(fonts-noto-color-emoji) # and the reaction emoji
	installed fonts-liberation || missing+=(fonts-liberation) # Arial's metrics, so emoji fonts stay out of plain text
	# The deploy checks (scripts/check-deploy.sh); their Python tools go in target/deploy-venv.
	have promtool || missing+=(prometheus)             # promtool, and the server the live test scrapes with
	have amtool || missing+=(prometheus-alertmanager)  # amtool check-config
	have docker-compose || missing+=(docker-compose)   # 1.29: `config -q` needs no engine
	have shellcheck || missing+=(shellcheck)
	# kubectl (kustomize) ships with the machine image (Google's kubectl package); Debian
	# bookworm has none, so a machine without it needs kubectl from its vendor's apt repository.
	have kubectl || missing+=(kubectl)
}

check
if ((${#missing[@]} > 0)); then
	install=(apt-get install -y --no-install-recommends "${missing[@]}")
	if ! have apt-get; then
		echo "error: missing: ${missing[*]}; install them with your system's package manager" >&2
		exit 1
	fi
	if [[ $(id -u) -ne 0 ]]; then
		echo "error: missing system packages: ${missing[*]}. Install them with:" >&2
		echo "  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive ${install[*]}" >&2
		exit 1
	fi
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update
	"${install[@]}"
	check
	if ((${#missing[@]} > 0)); then
		echo "error: still missing after apt-get install: ${missing[*]}" >&2
		exit 1
	fi
fi

# Rust itself comes from rustup, not apt; rust-toolchain.toml picks the version.
if ! have cargo; then
	echo "error: cargo not found: install rustup, then run this again" >&2
	exit 1
fi
if ! cargo nextest --version >/dev/null 2>&1; then
	echo "deps: note: cargo-nextest not found; scripts/test.sh falls back to cargo test" \
		"(install it with: cargo install cargo-nextest --locked)" >&2
fi
echo "deps: system packages present (PostgreSQL binaries in $(pg_find_bindir), $(nats_find_server), $(redis_find_server), $(clamd_find_server))"
