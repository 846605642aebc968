# shellcheck shell=bash
# A throwaway ClamAV daemon (clamd) for the test suite. Source this file, then:
#
#   trap stop_clamd EXIT   # first, so that a half-started server is cleaned up too
#   start_clamd            # exports TEST_CLAMD_ADDRESS and TEST_CLAMD_MAX_BYTES
#
# With SKIP_CLAMD=1, start_clamd starts nothing and unsets TEST_CLAMD_ADDRESS (the clamd tests
# skip themselves). When TEST_CLAMD_ADDRESS is already set, start_clamd uses that server and
# starts nothing; set TEST_CLAMD_MAX_BYTES to its StreamMaxLength in bytes (the tests assume
# clamd's default, 25 MiB, otherwise), and give it the signatures below for the tests to pass.
#
# Otherwise clamd listens on 127.0.0.1 only, on a free port, and loads only signatures that
# this file writes (nothing is downloaded; freshclam is not used):
#   Confab.Test.Eicar     an .ndb body signature for the EICAR test string, anywhere in a file
#   Confab.Test.HashSig   an .hdb MD5 signature of a file holding exactly the bytes
#                         "confab clamd hash-signature test file\n"
# (clamd reports them with `.UNOFFICIAL` appended). Its configuration, databases, log, pid file
# and temporary files are one `mktemp -d` directory that stop_clamd deletes. With only these
# signatures it answers within a second. For tests, never for scanning anything real.

_CLAMD_DIR=""  # the temporary directory; empty when no server was started
_CLAMD_PID=""  # the server's process id

# StreamMaxLength of the started server: the longest INSTREAM body it takes.
_CLAMD_MAX_BYTES=$((64 * 1024 * 1024))

# Prints the path of clamd: on PATH, else where the Debian package puts it (/usr/sbin is not
# on every user's PATH).
clamd_find_server() {
	local candidate
	if candidate=$(command -v clamd 2>/dev/null); then
		printf '%s\n' "$candidate"
		return 0
	fi
	for candidate in /usr/sbin/clamd /usr/local/sbin/clamd /usr/local/bin/clamd; do
		if [[ -x $candidate ]]; then
			printf '%s\n' "$candidate"
			return 0
		fi
	done
	return 1
}

# A port nobody listens on, by letting the kernel pick one; without python3, 44220 upward.
_clamd_pick_port() {
	local attempt=$1
	if command -v python3 >/dev/null 2>&1; then
		python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
	else
		echo $((44220 + attempt))
	fi
}

# True when clamd answers zPING with PONG (bash's /dev/tcp: no client needed). In a subshell,
# so that the descriptor closes with it.
_clamd_ready() (
	local answer=""
	exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
	printf 'zPING\0' >&3 || exit 1
	IFS= read -r -t 2 -d '' answer <&3 || true
	[[ $answer == PONG ]]
) 2>/dev/null

# Writes the signature databases into $1: clamd refuses to start without any.
# shellcheck disable=SC2016 # the EICAR string's dollars are literal
_clamd_write_databases() {
	local db=$1 eicar hex
	# The EICAR test string, in pieces so that this file is not itself taken for it.
	eicar='X5O!P%@AP[4\PZX54(P^)7CC)7}$'
	eicar+='EICAR-STANDARD-ANTIVIRUS-'
	eicar+='TEST-FILE!$H+H*'
	hex=$(printf '%s' "$eicar" | od -An -v -tx1 | tr -d ' \n') || return 1
	# Name:TargetType:Offset:HexSignature; target 0 is any file, offset * anywhere.
	printf 'Confab.Test.Eicar:0:*:%s\n' "$hex" >"$db/confab-test.ndb" || return 1
	# md5:size:Name, from sigtool with its name (the file's) replaced.
	printf 'confab clamd hash-signature test file\n' >"$_CLAMD_DIR/hashsig.txt" || return 1
	sigtool --md5 "$_CLAMD_DIR/hashsig.txt" |
		awk -F: 'NF >= 3 { print $1 ":" $2 ":Confab.Test.HashSig" }' >"$db/confab-test.hdb" || return 1
	[[ -s $db/confab-test.hdb ]]
}

# Writes clamd.conf for a port.
_clamd_write_config() {
	local port=$1
	{
		echo "Foreground yes"
		echo "TCPSocket $port"
		echo "TCPAddr 127.0.0.1"
		echo "DatabaseDirectory $_CLAMD_DIR/db"
		echo "TemporaryDirectory $_CLAMD_DIR/tmp"
		echo "LogFile $_CLAMD_DIR/clamd.log"
		echo "LogTime yes"
		echo "PidFile $_CLAMD_DIR/clamd.pid"
		echo "StreamMaxLength $_CLAMD_MAX_BYTES"
		echo "ScanArchive yes"
		# Zip in zip in zip is 3 deep; this is clamd's default, written down because tests rely on it.
		echo "MaxRecursion 17"
		echo "MaxThreads 4"
		# A reload would need the memory of two engines; the databases never change anyway.
		echo "SelfCheck 0"
		echo "ConcurrentDatabaseReload no"
		# No LocalSocket and no User: clamd runs as whoever starts it and drops nothing.
	} >"$_CLAMD_DIR/clamd.conf"
}

# Starts the server on a port and waits until it answers. Returns 1 when it failed to start,
# 2 when it failed because the port was taken (worth another).
_clamd_start_on() {
	local server=$1 port=$2 log=$_CLAMD_DIR/clamd.log out=$_CLAMD_DIR/clamd.out i
	rm -f "$log" "$out"
	_clamd_write_config "$port" || return 1
	"$server" --config-file="$_CLAMD_DIR/clamd.conf" >"$out" 2>&1 &
	_CLAMD_PID=$!
	# Up to 60 s: with these two signatures it answers in about 0.5 s, but a loaded machine can
	# slow the engine's start (the official databases alone would take tens of seconds).
	for ((i = 0; i < 600; i++)); do
		if _clamd_ready "$port"; then
			return 0
		fi
		if ! kill -0 "$_CLAMD_PID" 2>/dev/null; then
			wait "$_CLAMD_PID" 2>/dev/null || true
			_CLAMD_PID=""
			if cat "$log" "$out" 2>/dev/null | grep -qi 'address already in use'; then
				return 2
			fi
			return 1
		fi
		sleep 0.1
	done
	echo "error: clamd did not answer on 127.0.0.1:$port within 60 s" >&2
	kill -KILL "$_CLAMD_PID" 2>/dev/null || true
	wait "$_CLAMD_PID" 2>/dev/null || true
	_CLAMD_PID=""
	return 1
}

start_clamd() {
	local server port attempt status=0
	case ${SKIP_CLAMD:-} in
	'' | 0 | false | no) ;;
	*)
		echo "SKIP_CLAMD is set: no clamd (the clamd tests skip themselves)"
		unset TEST_CLAMD_ADDRESS
		return 0
		;;
	esac
	if [[ -n ${TEST_CLAMD_ADDRESS:-} ]]; then
		echo "using the clamd in TEST_CLAMD_ADDRESS from the environment"
		export TEST_CLAMD_ADDRESS
		[[ -z ${TEST_CLAMD_MAX_BYTES:-} ]] || export TEST_CLAMD_MAX_BYTES
		return 0
	fi
	if [[ -n $_CLAMD_DIR ]]; then
		echo "error: start_clamd: a server is already running in $_CLAMD_DIR" >&2
		return 1
	fi
	if ! server=$(clamd_find_server); then
		echo "error: clamd not found; run scripts/deps.sh" >&2
		return 1
	fi
	if ! command -v sigtool >/dev/null 2>&1; then
		echo "error: sigtool not found (it writes the test signatures); run scripts/deps.sh" >&2
		return 1
	fi

	_CLAMD_DIR=$(mktemp -d "${TMPDIR:-/tmp}/confab-clamd.XXXXXX") || return 1
	mkdir -p "$_CLAMD_DIR/db" "$_CLAMD_DIR/tmp" || return 1
	if ! _clamd_write_databases "$_CLAMD_DIR/db"; then
		echo "error: could not write clamd's test signatures in $_CLAMD_DIR/db" >&2
		return 1
	fi

	for attempt in 1 2 3 4 5 6 7 8 9 10; do
		port=$(_clamd_pick_port "$attempt")
		status=0
		_clamd_start_on "$server" "$port" || status=$?
		if [[ $status -eq 0 ]]; then
			export TEST_CLAMD_ADDRESS="tcp://127.0.0.1:$port"
			export TEST_CLAMD_MAX_BYTES=$_CLAMD_MAX_BYTES
			echo "clamd $("$server" --version | cut -d/ -f1 | awk '{print $2}') listening on 127.0.0.1:$port (in $_CLAMD_DIR)"
			return 0
		fi
		[[ $status -eq 2 ]] || break
		echo "port $port is taken; trying another"
	done
	echo "error: clamd failed to start; its output and log:" >&2
	cat "$_CLAMD_DIR/clamd.out" "$_CLAMD_DIR/clamd.log" >&2 2>/dev/null || true
	return 1
}

# Stops the server (at once: nothing in it is worth a clean shutdown) and deletes its
# directory. Safe to call when nothing was started, more than once, and from an EXIT trap.
stop_clamd() {
	local i
	if [[ -n ${_CLAMD_PID:-} ]]; then
		kill -TERM "$_CLAMD_PID" 2>/dev/null || true
		# It exits within a second; KILL after 5 s in case it hangs.
		for ((i = 0; i < 50; i++)); do
			kill -0 "$_CLAMD_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$_CLAMD_PID" 2>/dev/null || true
		wait "$_CLAMD_PID" 2>/dev/null || true
		_CLAMD_PID=""
	fi
	[[ -n ${_CLAMD_DIR:-} ]] || return 0
	case $_CLAMD_DIR in
	*/confab-clamd.*) rm -rf -- "$_CLAMD_DIR" || true ;;
	esac
	_CLAMD_DIR=""
}
