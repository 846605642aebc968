# shellcheck shell=bash
# A throwaway PostgreSQL server for the test suite. Source this file, then:
#
#   trap stop_postgres EXIT   # first, so that a half-started server is cleaned up too
#   start_postgres            # exports TEST_POSTGRES_URL; PG_EXTRA_CONF (lines of
#                             # postgresql.conf settings) is appended to its configuration
#   start_postgres_replica    # optional: a streaming replica of it (pg_basebackup -R);
#                             # exports TEST_POSTGRES_REPLICA_URL and TEST_POSTGRES_REPLICA_CTL
#
# The server listens on 127.0.0.1 only, on a free port, trusts every local connection and
# runs without fsync: for tests, never for data worth keeping. Its data directory, log and
# unix socket live in one `mktemp -d` directory that stop_postgres deletes.
# As root the server runs as the system user `postgres` (PostgreSQL refuses to run as root).

_PG_DIR=""     # the temporary directory; empty when no server was started
_PG_BINDIR=""  # initdb, pg_ctl, postgres
_PG_OWNER=""   # the user the server runs as when we are root; empty otherwise

# Prints the directory holding the PostgreSQL server binaries: `pg_config --bindir` when it
# has them (on Debian, pg_config from libpq-dev alone points at /usr/bin, which lacks them),
# else the newest /usr/lib/postgresql/*/bin, else wherever `initdb` on PATH really lives.
_pg_has_server() { [[ -x $1/initdb && -x $1/pg_ctl && -x $1/postgres ]]; }

pg_find_bindir() {
	local dir candidate
	if command -v pg_config >/dev/null 2>&1; then
		dir=$(pg_config --bindir 2>/dev/null || true)
		if [[ -n $dir ]] && _pg_has_server "$dir"; then
			printf '%s\n' "$dir"
			return 0
		fi
	fi
	dir=""
	while IFS= read -r candidate; do
		if _pg_has_server "$candidate"; then dir=$candidate; fi
	done < <(compgen -G '/usr/lib/postgresql/*/bin' | sort -V)
	if [[ -n $dir ]]; then
		printf '%s\n' "$dir"
		return 0
	fi
	if candidate=$(command -v initdb 2>/dev/null); then
		dir=$(dirname "$(readlink -f "$candidate")")
		if _pg_has_server "$dir"; then
			printf '%s\n' "$dir"
			return 0
		fi
	fi
	return 1
}

# Runs a command as the server's owner, from a directory that user can enter (the PostgreSQL
# tools fail when they cannot resolve the current directory).
_pg_as_owner() {
	if [[ -z $_PG_OWNER ]]; then
		(cd "${_PG_DIR:-/}" && "$@")
	elif command -v runuser >/dev/null 2>&1; then
		(cd / && runuser -u "$_PG_OWNER" -- "$@")
	else
		(cd / && su -s /bin/bash "$_PG_OWNER" -c "$(printf '%q ' "$@")")
	fi
}

_pg_isready() {
	local tool=$_PG_BINDIR/pg_isready
	[[ -x $tool ]] || tool=pg_isready
	"$tool" -q -h 127.0.0.1 -p "$1" -U postgres -d postgres >/dev/null 2>&1
}

# A port nobody listens on, by letting the kernel pick one; without python3, 54329 upward.
_pg_pick_port() {
	local attempt=$1
	if command -v python3 >/dev/null 2>&1; then
		python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
	else
		echo $((54328 + attempt))
	fi
}

# Starts the server on one port and waits until it accepts connections. Returns 1 when it
# failed to start, 2 when it failed because the port was taken (worth another port).
# DATA and LOG default to the primary's.
_pg_start_on() {
	local port=$1 data=${2:-$_PG_DIR/data} log=${3:-$_PG_DIR/postgres.log} i
	rm -f "$log"
	if ! _pg_as_owner "$_PG_BINDIR/pg_ctl" -D "$data" -l "$log" -o "-p $port" -W start >/dev/null; then
		return 1
	fi
	# Up to 60 s: a cold start on a loaded machine is slow, a healthy one takes well under 1 s.
	for ((i = 0; i < 600; i++)); do
		if _pg_isready "$port"; then
			return 0
		fi
		# A failed start always logs FATAL (or PANIC) before the postmaster exits.
		if [[ -f $log ]] && grep -qE '(FATAL|PANIC):' "$log"; then
			if grep -qE 'could not (bind|create any TCP/IP sockets)|Address already in use' "$log"; then
				return 2
			fi
			return 1
		fi
		sleep 0.1
	done
	echo "error: PostgreSQL did not accept connections on 127.0.0.1:$port within 60 s" >&2
	_pg_as_owner "$_PG_BINDIR/pg_ctl" -D "$data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
	return 1
}

start_postgres() {
	local port attempt status=0 conf escaped
	if [[ -n $_PG_DIR ]]; then
		echo "error: start_postgres: a server is already running in $_PG_DIR" >&2
		return 1
	fi
	if ! _PG_BINDIR=$(pg_find_bindir); then
		echo "error: PostgreSQL server binaries (initdb, pg_ctl, postgres) not found; run scripts/deps.sh" >&2
		return 1
	fi

	if [[ $(id -u) -eq 0 ]]; then
		_PG_OWNER=postgres
		if ! id -u "$_PG_OWNER" >/dev/null 2>&1; then
			echo "creating the system user $_PG_OWNER"
			useradd --system --user-group --no-create-home --home-dir /var/lib/postgresql \
				--shell /bin/bash "$_PG_OWNER" || return 1
		fi
	fi

	_PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/confab-pg.XXXXXX") || return 1
	if [[ -n $_PG_OWNER ]]; then
		chown "$_PG_OWNER:" "$_PG_DIR" || return 1
		# A TMPDIR under a private home (/root/tmp) is out of reach for the postgres user.
		if ! _pg_as_owner test -w "$_PG_DIR"; then
			rmdir "$_PG_DIR"
			_PG_DIR=$(mktemp -d /tmp/confab-pg.XXXXXX) || return 1
			chown "$_PG_OWNER:" "$_PG_DIR" || return 1
		fi
	fi

	# The superuser is called postgres whoever runs this, so the URL below is always right.
	if ! _pg_as_owner "$_PG_BINDIR/initdb" -D "$_PG_DIR/data" -U postgres -A trust -E UTF8 \
		--locale=C --no-sync >"$_PG_DIR/initdb.log" 2>&1; then
		echo "error: initdb failed:" >&2
		cat "$_PG_DIR/initdb.log" >&2
		return 1
	fi
	conf=$_PG_DIR/data/postgresql.conf
	escaped=${_PG_DIR//\'/\'\'}
	cat >>"$conf" <<-EOF || return 1

		# Throwaway test server (scripts/lib/postgres.sh)
		listen_addresses = '127.0.0.1'
		unix_socket_directories = '$escaped'
		max_connections = 200
		fsync = off
		synchronous_commit = off
		full_page_writes = off
	EOF
	# Extra settings, one per line (benchmarks size shared_buffers this way).
	if [[ -n ${PG_EXTRA_CONF:-} ]]; then
		printf '%s\n' "$PG_EXTRA_CONF" >>"$conf" || return 1
	fi

	for attempt in 1 2 3 4 5 6 7 8 9 10; do
		port=$(_pg_pick_port "$attempt")
		status=0
		_pg_start_on "$port" || status=$?
		if [[ $status -eq 0 ]]; then
			export TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
			echo "PostgreSQL $("$_PG_BINDIR/postgres" --version | awk '{print $3}') listening on 127.0.0.1:$port (in $_PG_DIR)"
			return 0
		fi
		[[ $status -eq 2 ]] || break
		echo "port $port is taken; trying another"
	done
	echo "error: PostgreSQL failed to start; its log:" >&2
	cat "$_PG_DIR/postgres.log" >&2 2>/dev/null || true
	return 1
}

# Starts a streaming replica of the server start_postgres started: a base backup taken with
# `pg_basebackup -R` (standby.signal and primary_conninfo written for it) through a
# replication slot (the primary keeps the WAL the replica has not received while it is
# stopped), started as a hot standby on a free port in $_PG_DIR/replica. Exports
# TEST_POSTGRES_REPLICA_URL, and TEST_POSTGRES_REPLICA_CTL: a script taking `stop` or
# `start`, with which the replica tests stop the replica and start it again on its port.
start_postgres_replica() {
	local primary_port data log ctl port attempt status=0 owner_prefix=""
	if [[ -z ${_PG_DIR:-} || ! -f $_PG_DIR/data/postmaster.pid ]]; then
		echo "error: start_postgres_replica: start_postgres first" >&2
		return 1
	fi
	if [[ -d $_PG_DIR/replica ]]; then
		echo "error: start_postgres_replica: a replica already exists in $_PG_DIR/replica" >&2
		return 1
	fi
	data=$_PG_DIR/replica
	log=$_PG_DIR/replica.log
	primary_port=${TEST_POSTGRES_URL##*:}
	primary_port=${primary_port%%/*}
	if ! _pg_as_owner "$_PG_BINDIR/pg_basebackup" -h 127.0.0.1 -p "$primary_port" -U postgres \
		-D "$data" -R -X stream -C -S confab_test_replica --no-sync \
		>"$_PG_DIR/basebackup.log" 2>&1; then
		echo "error: pg_basebackup failed:" >&2
		cat "$_PG_DIR/basebackup.log" >&2
		return 1
	fi
	for attempt in 1 2 3 4 5 6 7 8 9 10; do
		port=$(_pg_pick_port "$((attempt + 10))")
		status=0
		_pg_start_on "$port" "$data" "$log" || status=$?
		[[ $status -eq 2 ]] || break
		echo "port $port is taken; trying another"
	done
	if [[ $status -ne 0 ]]; then
		echo "error: the PostgreSQL replica failed to start; its log:" >&2
		cat "$log" >&2 2>/dev/null || true
		return 1
	fi
	if [[ -n $_PG_OWNER ]]; then
		owner_prefix="runuser -u $(printf '%q' "$_PG_OWNER") --"
	fi
	ctl=$_PG_DIR/replica-ctl
	cat >"$ctl" <<-EOF || return 1
		#!/usr/bin/env bash
		# Stops or starts the test replica on its port (written by scripts/lib/postgres.sh).
		set -euo pipefail
		cd /
		case \${1:-} in
		stop) $owner_prefix $(printf '%q' "$_PG_BINDIR/pg_ctl") -D $(printf '%q' "$data") -m fast -w -t 30 stop >/dev/null ;;
		start) $owner_prefix $(printf '%q' "$_PG_BINDIR/pg_ctl") -D $(printf '%q' "$data") -l $(printf '%q' "$log") -o "-p $port" -w -t 60 start >/dev/null ;;
		*) echo "usage: \$0 stop|start" >&2; exit 2 ;;
		esac
	EOF
	chmod 755 "$ctl" || return 1
	export TEST_POSTGRES_REPLICA_URL="postgres://postgres@127.0.0.1:$port/postgres"
	export TEST_POSTGRES_REPLICA_CTL=$ctl
	echo "PostgreSQL replica streaming from 127.0.0.1:$primary_port, listening on 127.0.0.1:$port"
}

# Stops the replica, if one runs (its directory goes with the primary's).
stop_postgres_replica() {
	local pid
	[[ -n ${_PG_DIR:-} && -f $_PG_DIR/replica/postmaster.pid ]] || return 0
	if ! _pg_as_owner "$_PG_BINDIR/pg_ctl" -D "$_PG_DIR/replica" -m immediate -w -t 30 stop >/dev/null 2>&1; then
		pid=$(head -n 1 "$_PG_DIR/replica/postmaster.pid" 2>/dev/null || true)
		if [[ $pid =~ ^[0-9]+$ ]]; then
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	unset TEST_POSTGRES_REPLICA_URL TEST_POSTGRES_REPLICA_CTL
}

# Stops the server (immediately: nothing in it is worth a clean shutdown) and deletes its
# directory. Safe to call when nothing was started, more than once, and from an EXIT trap.
stop_postgres() {
	local pid
	[[ -n ${_PG_DIR:-} ]] || return 0
	stop_postgres_replica
	if [[ -f $_PG_DIR/data/postmaster.pid ]]; then
		if ! _pg_as_owner "$_PG_BINDIR/pg_ctl" -D "$_PG_DIR/data" -m immediate -w -t 30 stop >/dev/null 2>&1; then
			pid=$(head -n 1 "$_PG_DIR/data/postmaster.pid" 2>/dev/null || true)
			if [[ $pid =~ ^[0-9]+$ ]]; then
				kill -KILL "$pid" 2>/dev/null || true
			fi
		fi
	fi
	case $_PG_DIR in
	*/confab-pg.*) rm -rf -- "$_PG_DIR" || true ;;
	esac
	_PG_DIR=""
}
