# shellcheck shell=bash
# A throwaway NATS server with JetStream for the test suite. Source this file, then:
#
#   trap stop_nats EXIT   # first, so that a half-started server is cleaned up too
#   start_nats            # exports TEST_NATS_URL
#
# When TEST_NATS_URL is already set, start_nats uses that server and starts nothing (it must
# have JetStream enabled). Otherwise the server listens on 127.0.0.1 only, on a free port,
# without authentication; its JetStream store, log and pid file live in one `mktemp -d`
# directory that stop_nats deletes. For tests, never for data worth keeping.

_NATS_DIR=""  # the temporary directory; empty when no server was started
_NATS_PID=""  # the server's process id

# Prints the path of nats-server: on PATH, else where the Debian package puts it (/usr/sbin
# is not on every user's PATH).
nats_find_server() {
	local candidate
	if candidate=$(command -v nats-server 2>/dev/null); then
		printf '%s\n' "$candidate"
		return 0
	fi
	for candidate in /usr/sbin/nats-server /usr/local/bin/nats-server /usr/local/sbin/nats-server; do
		if [[ -x $candidate ]]; then
			printf '%s\n' "$candidate"
			return 0
		fi
	done
	return 1
}

# A port nobody listens on, by letting the kernel pick one; without python3, 42220 upward.
_nats_pick_port() {
	local attempt=$1
	if command -v python3 >/dev/null 2>&1; then
		python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
	else
		echo $((42220 + 2 * attempt))
	fi
}

# True when the server answers its health check, which covers JetStream when it is enabled.
_nats_healthy() {
	curl -fsS --max-time 2 "http://127.0.0.1:$1/healthz" >/dev/null 2>&1
}

# Starts the server on a client port and a monitoring port and waits until it is healthy.
# Returns 1 when it failed to start, 2 when it failed because a port was taken (worth others).
_nats_start_on() {
	local server=$1 port=$2 monitor=$3 log=$_NATS_DIR/nats.log i
	rm -f "$log"
	"$server" -js -a 127.0.0.1 -p "$port" -m "$monitor" -sd "$_NATS_DIR/jetstream" \
		-l "$log" -P "$_NATS_DIR/nats.pid" >/dev/null 2>&1 &
	_NATS_PID=$!
	# Up to 30 s: a healthy server is ready well under 1 s.
	for ((i = 0; i < 300; i++)); do
		if _nats_healthy "$monitor"; then
			return 0
		fi
		if ! kill -0 "$_NATS_PID" 2>/dev/null; then
			wait "$_NATS_PID" 2>/dev/null || true
			_NATS_PID=""
			if [[ -f $log ]] && grep -qi 'address already in use' "$log"; then
				return 2
			fi
			return 1
		fi
		sleep 0.1
	done
	echo "error: NATS did not become healthy on 127.0.0.1:$port within 30 s" >&2
	kill -KILL "$_NATS_PID" 2>/dev/null || true
	wait "$_NATS_PID" 2>/dev/null || true
	_NATS_PID=""
	return 1
}

start_nats() {
	local server port monitor attempt status=0
	if [[ -n ${TEST_NATS_URL:-} ]]; then
		echo "using the NATS server in TEST_NATS_URL from the environment"
		export TEST_NATS_URL
		return 0
	fi
	if [[ -n $_NATS_DIR ]]; then
		echo "error: start_nats: a server is already running in $_NATS_DIR" >&2
		return 1
	fi
	if ! server=$(nats_find_server); then
		echo "error: nats-server not found; run scripts/deps.sh" >&2
		return 1
	fi
	if ! command -v curl >/dev/null 2>&1; then
		echo "error: curl not found (it checks that NATS is ready); run scripts/deps.sh" >&2
		return 1
	fi

	_NATS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/confab-nats.XXXXXX") || return 1

	for attempt in 1 2 3 4 5 6 7 8 9 10; do
		port=$(_nats_pick_port "$attempt")
		monitor=$(_nats_pick_port "$attempt")
		if [[ $monitor == "$port" ]]; then
			monitor=$((port + 1))
		fi
		status=0
		_nats_start_on "$server" "$port" "$monitor" || status=$?
		if [[ $status -eq 0 ]]; then
			export TEST_NATS_URL="nats://127.0.0.1:$port"
			echo "NATS $("$server" --version | awk '{print $2}') with JetStream listening on 127.0.0.1:$port (in $_NATS_DIR)"
			return 0
		fi
		[[ $status -eq 2 ]] || break
		echo "port $port or $monitor is taken; trying others"
	done
	echo "error: NATS failed to start; its log:" >&2
	cat "$_NATS_DIR/nats.log" >&2 2>/dev/null || true
	return 1
}

# Stops the server (at once: nothing in it is worth a clean shutdown) and deletes its
# directory. Safe to call when nothing was started, more than once, and from an EXIT trap.
stop_nats() {
	local i
	if [[ -n ${_NATS_PID:-} ]]; then
		kill -TERM "$_NATS_PID" 2>/dev/null || true
		# It exits within milliseconds; KILL after 5 s in case it hangs.
		for ((i = 0; i < 50; i++)); do
			kill -0 "$_NATS_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$_NATS_PID" 2>/dev/null || true
		wait "$_NATS_PID" 2>/dev/null || true
		_NATS_PID=""
	fi
	[[ -n ${_NATS_DIR:-} ]] || return 0
	case $_NATS_DIR in
	*/confab-nats.*) rm -rf -- "$_NATS_DIR" || true ;;
	esac
	_NATS_DIR=""
}
