# shellcheck shell=bash
# A throwaway Redis server for the test suite. Source this file, then:
#
#   trap stop_redis EXIT   # first, so that a half-started server is cleaned up too
#   start_redis            # exports TEST_REDIS_URL
#
# When TEST_REDIS_URL is already set, start_redis uses that server and starts nothing. Otherwise
# the server listens on 127.0.0.1 only, on a free port, without a password and without
# persistence (no RDB snapshots, no AOF); its log, pid file and working directory are one
# `mktemp -d` directory that stop_redis deletes. For tests, never for data worth keeping.

_REDIS_DIR=""  # the temporary directory; empty when no server was started
_REDIS_PID=""  # the server's process id

# Prints the path of redis-server: on PATH, else where the Debian package puts it.
redis_find_server() {
	local candidate
	if candidate=$(command -v redis-server 2>/dev/null); then
		printf '%s\n' "$candidate"
		return 0
	fi
	for candidate in /usr/bin/redis-server /usr/sbin/redis-server /usr/local/bin/redis-server; do
		if [[ -x $candidate ]]; then
			printf '%s\n' "$candidate"
			return 0
		fi
	done
	return 1
}

# A port nobody listens on, by letting the kernel pick one; without python3, 43220 upward.
_redis_pick_port() {
	local attempt=$1
	if command -v python3 >/dev/null 2>&1; then
		python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
	else
		echo $((43220 + attempt))
	fi
}

# True when the server answers PING (redis-cli comes with the server's package).
_redis_ready() {
	local answer
	answer=$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null) && [[ $answer == PONG ]]
}

# Starts the server on a port and waits until it answers. Returns 1 when it failed to start,
# 2 when it failed because the port was taken (worth another).
_redis_start_on() {
	local server=$1 port=$2 log=$_REDIS_DIR/redis.log i
	rm -f "$log"
	"$server" --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
		--dir "$_REDIS_DIR" --logfile "$log" --pidfile "$_REDIS_DIR/redis.pid" \
		--daemonize no >/dev/null 2>&1 &
	_REDIS_PID=$!
	# Up to 30 s: a healthy server answers well under 1 s.
	for ((i = 0; i < 300; i++)); do
		if _redis_ready "$port"; then
			return 0
		fi
		if ! kill -0 "$_REDIS_PID" 2>/dev/null; then
			wait "$_REDIS_PID" 2>/dev/null || true
			_REDIS_PID=""
			if [[ -f $log ]] && grep -qi 'address already in use' "$log"; then
				return 2
			fi
			return 1
		fi
		sleep 0.1
	done
	echo "error: Redis did not answer on 127.0.0.1:$port within 30 s" >&2
	kill -KILL "$_REDIS_PID" 2>/dev/null || true
	wait "$_REDIS_PID" 2>/dev/null || true
	_REDIS_PID=""
	return 1
}

start_redis() {
	local server port attempt status=0
	if [[ -n ${TEST_REDIS_URL:-} ]]; then
		echo "using the Redis server in TEST_REDIS_URL from the environment"
		export TEST_REDIS_URL
		return 0
	fi
	if [[ -n $_REDIS_DIR ]]; then
		echo "error: start_redis: a server is already running in $_REDIS_DIR" >&2
		return 1
	fi
	if ! server=$(redis_find_server); then
		echo "error: redis-server not found; run scripts/deps.sh" >&2
		return 1
	fi
	if ! command -v redis-cli >/dev/null 2>&1; then
		echo "error: redis-cli not found (it checks that Redis is ready); run scripts/deps.sh" >&2
		return 1
	fi

	_REDIS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/confab-redis.XXXXXX") || return 1

	for attempt in 1 2 3 4 5 6 7 8 9 10; do
		port=$(_redis_pick_port "$attempt")
		status=0
		_redis_start_on "$server" "$port" || status=$?
		if [[ $status -eq 0 ]]; then
			export TEST_REDIS_URL="redis://127.0.0.1:$port"
			echo "Redis $("$server" --version | awk '{print $3}' | cut -d= -f2) listening on 127.0.0.1:$port (in $_REDIS_DIR)"
			return 0
		fi
		[[ $status -eq 2 ]] || break
		echo "port $port is taken; trying another"
	done
	echo "error: Redis failed to start; its log:" >&2
	cat "$_REDIS_DIR/redis.log" >&2 2>/dev/null || true
	return 1
}

# Stops the server (at once: nothing in it is worth keeping) and deletes its directory. Safe
# to call when nothing was started, more than once, and from an EXIT trap.
stop_redis() {
	local i
	if [[ -n ${_REDIS_PID:-} ]]; then
		kill -TERM "$_REDIS_PID" 2>/dev/null || true
		# Without persistence it exits within milliseconds; KILL after 5 s in case it hangs.
		for ((i = 0; i < 50; i++)); do
			kill -0 "$_REDIS_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$_REDIS_PID" 2>/dev/null || true
		wait "$_REDIS_PID" 2>/dev/null || true
		_REDIS_PID=""
	fi
	[[ -n ${_REDIS_DIR:-} ]] || return 0
	case $_REDIS_DIR in
	*/confab-redis.*) rm -rf -- "$_REDIS_DIR" || true ;;
	esac
	_REDIS_DIR=""
}
