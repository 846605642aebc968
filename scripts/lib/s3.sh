# shellcheck shell=bash
# A throwaway S3-compatible server for the test suite: s3s-fs (crates.io; `cargo install s3s-fs
# --version 0.14.1 --features binary`, which .ci/run does when it is missing). It checks
# request signatures (SigV4) and presigned URLs' expiry, and supports multipart uploads and
# ranges. Source this file, then:
#
#   trap stop_s3 EXIT   # first, so that a half-started server is cleaned up too
#   start_s3            # exports TEST_S3_ENDPOINT, TEST_S3_BUCKET, TEST_S3_ACCESS_KEY,
#                       # TEST_S3_SECRET_KEY
#
# When TEST_S3_ENDPOINT is already set, start_s3 uses that server (and the other three
# variables, which must be set too) and starts nothing. Otherwise the server listens on
# 127.0.0.1 only, on a free port, with random keys and one bucket; its data and log are one
# `mktemp -d` directory that stop_s3 deletes.

_S3_DIR=""  # the temporary directory; empty when no server was started
_S3_PID=""  # the server's process id

# Prints the path of s3s-fs: on PATH, else where `cargo install` puts it.
s3_find_server() {
	local candidate
	if candidate=$(command -v s3s-fs 2>/dev/null); then
		printf '%s\n' "$candidate"
		return 0
	fi
	candidate=${CARGO_HOME:-$HOME/.cargo}/bin/s3s-fs
	if [[ -x $candidate ]]; then
		printf '%s\n' "$candidate"
		return 0
	fi
	return 1
}

_s3_pick_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

_s3_random() {
	python3 -c 'import secrets; print(secrets.token_hex(12))'
}

# True when something accepts connections on the port (an unsigned request is refused with
# 403 AccessDenied, which is an answer).
_s3_ready() {
	local code
	code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/" 2>/dev/null) &&
		[[ $code != 000 ]]
}

start_s3() {
	local server port attempt i
	if [[ -n ${TEST_S3_ENDPOINT:-} ]]; then
		if [[ -z ${TEST_S3_BUCKET:-} || -z ${TEST_S3_ACCESS_KEY:-} || -z ${TEST_S3_SECRET_KEY:-} ]]; then
			echo "error: TEST_S3_ENDPOINT is set; set TEST_S3_BUCKET, TEST_S3_ACCESS_KEY and TEST_S3_SECRET_KEY too" >&2
			return 1
		fi
		echo "using the S3 server in TEST_S3_ENDPOINT from the environment"
		export TEST_S3_ENDPOINT TEST_S3_BUCKET TEST_S3_ACCESS_KEY TEST_S3_SECRET_KEY
		return 0
	fi
	if [[ -n $_S3_DIR ]]; then
		echo "error: start_s3: a server is already running in $_S3_DIR" >&2
		return 1
	fi
	if ! server=$(s3_find_server); then
		echo "error: s3s-fs not found; install it: cargo install s3s-fs --locked --version 0.14.1 --features binary" >&2
		return 1
	fi
	_S3_DIR=$(mktemp -d "${TMPDIR:-/tmp}/confab-s3.XXXXXX") || return 1
	# s3s-fs keeps a bucket as a directory under its root.
	mkdir -p "$_S3_DIR/data/confab-test"
	local access secret
	access=$(_s3_random)
	secret=$(_s3_random)
	for attempt in 1 2 3 4 5; do
		port=$(_s3_pick_port)
		"$server" --host 127.0.0.1 --port "$port" --access-key "$access" --secret-key "$secret" \
			"$_S3_DIR/data" >"$_S3_DIR/s3.log" 2>&1 &
		_S3_PID=$!
		for ((i = 0; i < 100; i++)); do
			if _s3_ready "$port"; then
				export TEST_S3_ENDPOINT="http://127.0.0.1:$port" TEST_S3_BUCKET=confab-test
				export TEST_S3_ACCESS_KEY=$access TEST_S3_SECRET_KEY=$secret
				echo "s3s-fs listening on 127.0.0.1:$port (bucket confab-test, in $_S3_DIR)"
				return 0
			fi
			kill -0 "$_S3_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$_S3_PID" 2>/dev/null || true
		wait "$_S3_PID" 2>/dev/null || true
		_S3_PID=""
		if ! grep -qi 'in use' "$_S3_DIR/s3.log" 2>/dev/null; then
			break
		fi
		echo "port $port is taken; trying another (attempt $attempt)"
	done
	echo "error: s3s-fs failed to start; its log:" >&2
	cat "$_S3_DIR/s3.log" >&2 2>/dev/null || true
	return 1
}

# Stops the server and deletes its directory. Safe to call when nothing was started, more
# than once, and from an EXIT trap.
stop_s3() {
	if [[ -n ${_S3_PID:-} ]]; then
		kill -TERM "$_S3_PID" 2>/dev/null || true
		wait "$_S3_PID" 2>/dev/null || true
		_S3_PID=""
	fi
	[[ -n ${_S3_DIR:-} ]] || return 0
	case $_S3_DIR in
	*/confab-s3.*) rm -rf -- "$_S3_DIR" || true ;;
	esac
	_S3_DIR=""
}
