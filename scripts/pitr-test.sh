#!/usr/bin/env bash
# PostgreSQL point-in-time recovery, exercised once on a throwaway server (the steps of
# docs/operations.md, "Point-in-time recovery (PostgreSQL)"): WAL archiving into a directory, a
# base backup, rows, the time noted, more rows, then a new server restored from the base backup
# and the archive to that time — the rows written before it are there, the later ones are not.
# Bounded: every wait gives up after 60 s. Run by scripts/test.sh in its PostgreSQL pass.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=SCRIPTDIR/lib/postgres.sh
source scripts/lib/postgres.sh

restored=""
cleanup() {
	if [[ -n $restored && -f $restored/postmaster.pid ]]; then
		_pg_as_owner "$_PG_BINDIR/pg_ctl" -D "$restored" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
	fi
	stop_postgres
}
trap cleanup EXIT

# Archiving is on from the start, but its command fails (WAL is kept, and retried) until the
# archive directory, which lives in the server's temporary directory, is set below.
PG_EXTRA_CONF="wal_level = replica
archive_mode = on
full_page_writes = on
archive_command = 'false'"
unset TEST_POSTGRES_URL
start_postgres
port=${TEST_POSTGRES_URL##*:}
port=${port%%/*}
archive=$_PG_DIR/wal-archive
_pg_as_owner mkdir -p "$archive"

sql() {
	"$_PG_BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" -U postgres -d postgres -c "$2"
}

# Wait up to 60 s for a command to succeed.
wait_for() {
	local what=$1 i
	shift
	for ((i = 0; i < 600; i++)); do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	echo "error: timed out waiting for $what" >&2
	return 1
}

echo "==> 1. WAL archiving into $archive"
sql "$port" "ALTER SYSTEM SET archive_command = 'test ! -f $archive/%f && cp %p $archive/%f'"
sql "$port" "SELECT pg_reload_conf()" >/dev/null
sql "$port" "CREATE TABLE pitr (id bigint PRIMARY KEY, batch text NOT NULL)"

echo "==> 2. base backup (pg_basebackup)"
_pg_as_owner "$_PG_BINDIR/pg_basebackup" -h 127.0.0.1 -p "$port" -U postgres \
	-D "$_PG_DIR/base" -X stream --checkpoint=fast --no-sync

echo "==> 3. rows before the target time"
sql "$port" "INSERT INTO pitr SELECT g, 'before' FROM generate_series(1, 100) g"
target=$(sql "$port" "SELECT clock_timestamp()::text")
echo "    target time: $target"

echo "==> 4. rows after it"
sql "$port" "INSERT INTO pitr SELECT g, 'after' FROM generate_series(101, 200) g"
# Close the WAL segment holding them and wait until it is archived.
segment=$(sql "$port" "SELECT pg_walfile_name(pg_current_wal_lsn())")
sql "$port" "SELECT pg_switch_wal()" >/dev/null
wait_for "WAL segment $segment in the archive" test -f "$archive/$segment"

echo "==> 5. the disaster: the server stops"
_pg_as_owner "$_PG_BINDIR/pg_ctl" -D "$_PG_DIR/data" -m fast -w -t 30 stop >/dev/null

echo "==> 6. restore: the base backup, restore_command, recovery_target_time"
restored=$_PG_DIR/restored
_pg_as_owner cp -a "$_PG_DIR/base" "$restored"
_pg_as_owner chmod 700 "$restored"
# postgresql.auto.conf is read last: these settings win over the copied ones.
_pg_as_owner tee -a "$restored/postgresql.auto.conf" >/dev/null <<EOF
restore_command = 'cp $archive/%f %p'
recovery_target_time = '$target'
recovery_target_action = 'promote'
archive_mode = off
EOF
_pg_as_owner touch "$restored/recovery.signal"
port2=$(_pg_pick_port 1)
_pg_as_owner "$_PG_BINDIR/pg_ctl" -D "$restored" -l "$_PG_DIR/restored.log" -o "-p $port2" -W start >/dev/null
wait_for "the restored server to accept connections" _pg_isready "$port2"
promoted() { [[ $(sql "$port2" "SELECT pg_is_in_recovery()") == f ]]; }
wait_for "the restored server to reach the target and promote" promoted

echo "==> 7. check"
before=$(sql "$port2" "SELECT count(*) FROM pitr WHERE batch = 'before'")
after=$(sql "$port2" "SELECT count(*) FROM pitr WHERE batch = 'after'")
echo "    rows before the target: $before (want 100); after it: $after (want 0)"
grep -E 'recovery stopping|starting point-in-time recovery' "$_PG_DIR/restored.log" | sed 's/^/    log: /' || true
if [[ $before != 100 || $after != 0 ]]; then
	echo "error: point-in-time recovery restored the wrong rows" >&2
	cat "$_PG_DIR/restored.log" >&2
	exit 1
fi
echo "==> point-in-time recovery: passed"
