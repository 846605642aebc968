#!/usr/bin/env python3
"""Backup and restore times of a ~1 GB Confab database, against the 4 h RTO.

Usage: bench/backup.py [--binary target/release/confab] [--messages 700000]
                       [--backend sqlite|postgres|both] [--postgres-url URL]

For each backend: a fresh database gets Confab's schema (`confab migrate`), a user made with
`confab users create` (an audit entry), then `--messages` chat messages of about 1 KB each
(28 made-up 32-character words, so the full-text index grows like real text's would) in
conversations of 50, written straight with SQL (sqlite3 for SQLite, psql for PostgreSQL) so
the fill is fast; the full-text triggers and indexes run as in production. Then it times:
  backup   `confab backup --to DIR`             (SQLite VACUUM INTO / pg_dump -Fd)
  verify   `confab backup verify DIR`            (checksums, scratch restore, counts, audit)
  restore  `confab restore --from DIR`           (into an empty data dir / database)
and prints each with the database and backup sizes, and restore as a share of the 4 h RTO.

PostgreSQL: --postgres-url names a server whose user may CREATE DATABASE (the script makes
two databases and drops them); without it, `scripts/lib/postgres.sh` starts a throwaway one.
"""

import argparse
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid

RTO_S = 4 * 3600
PASSWORD = "correct horse battery"


def run(binary, args, env, stdin=None):
    started = time.monotonic()
    done = subprocess.run(
        [binary, *args], env=env, input=stdin, capture_output=True, text=True, check=False
    )
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"confab {' '.join(args)} failed:\n{done.stderr}")
    return elapsed, done.stdout


def dir_size(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            total += os.path.getsize(os.path.join(root, name))
    return total


def rows(messages, user):
    """Conversations and messages, as tuples, in batches."""
    rng = random.Random(7)
    at = int(time.time() * 1000) - 10_000_000
    per = 50
    batch_c, batch_m = [], []
    for start in range(0, messages, per):
        conv = str(uuid.uuid4())
        at += 1
        batch_c.append((conv, user, f"conversation {start // per}", "{}", at, at))
        parent = None
        for m in range(min(per, messages - start)):
            mid = str(uuid.uuid4())
            at += 1
            content = " ".join("%032x" % rng.getrandbits(128) for _ in range(28))
            role = "user" if m % 2 == 0 else "assistant"
            batch_m.append((mid, conv, parent, role, content, "complete", at, at, user))
            parent = mid
        if len(batch_m) >= 5000:
            yield batch_c, batch_m
            batch_c, batch_m = [], []
    if batch_m:
        yield batch_c, batch_m


CONV_SQL = (
    "INSERT INTO conversations (id, user_id, title, params, created_at, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
MSG_SQL = (
    "INSERT INTO messages (id, conversation_id, parent_id, role, content, status, "
    "created_at, updated_at, user_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def fill_sqlite(path, messages, user):
    db = sqlite3.connect(path)
    for convs, msgs in rows(messages, user):
        with db:
            db.executemany(CONV_SQL, convs)
            db.executemany(MSG_SQL, msgs)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def fill_postgres(psql, url, messages, user):
    """COPY through psql: the fastest way in without a driver."""
    proc = subprocess.Popen(
        [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url],
        stdin=subprocess.PIPE,
        text=True,
    )

    def esc(v):
        if v is None:
            return "\\N"
        return str(v).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")

    for convs, msgs in rows(messages, user):
        proc.stdin.write(
            "COPY conversations (id, user_id, title, params, created_at, updated_at) FROM STDIN;\n"
        )
        for r in convs:
            proc.stdin.write("\t".join(esc(v) for v in r) + "\n")
        proc.stdin.write("\\.\n")
        proc.stdin.write(
            "COPY messages (id, conversation_id, parent_id, role, content, status, "
            "created_at, updated_at, user_id) FROM STDIN;\n"
        )
        for r in msgs:
            proc.stdin.write("\t".join(esc(v) for v in r) + "\n")
        proc.stdin.write("\\.\n")
    proc.stdin.close()
    if proc.wait() != 0:
        sys.exit("filling PostgreSQL failed")


def user_id(binary, env):
    _, out = run(binary, ["users", "list"], env)
    return out.split("\t")[0].strip()


def bench(backend, binary, messages, pg_url, psql):
    work = tempfile.mkdtemp(prefix=f"confab-bench-backup-{backend}-")
    try:
        data = os.path.join(work, "data")
        target = os.path.join(work, "restored")
        backups = os.path.join(work, "backups")
        env = dict(os.environ, CONFAB_DATA_DIR=data, CONFAB_LOG__LEVEL="warn")
        target_env = dict(env, CONFAB_DATA_DIR=target)
        dbs = []
        if backend == "postgres":
            name = f"bench_backup_{uuid.uuid4().hex[:8]}"
            base = pg_url.rsplit("/", 1)[0]
            for db in (name, name + "_restored"):
                subprocess.run([psql, "-X", "-q", "-d", pg_url, "-c", f'CREATE DATABASE "{db}"'], check=True)
                dbs.append(db)
            env["CONFAB_DATABASE__URL"] = f"{base}/{name}"
            target_env["CONFAB_DATABASE__URL"] = f"{base}/{name}_restored"
        run(binary, ["migrate"], env)
        run(binary, ["users", "create", "--email", "bench@example.com", "--admin"], env, PASSWORD)
        user = user_id(binary, env)
        started = time.monotonic()
        if backend == "sqlite":
            fill_sqlite(os.path.join(data, "confab.db"), messages, user)
            db_bytes = os.path.getsize(os.path.join(data, "confab.db"))
        else:
            fill_postgres(psql, env["CONFAB_DATABASE__URL"], messages, user)
            out = subprocess.run(
                [psql, "-X", "-At", "-d", env["CONFAB_DATABASE__URL"], "-c", "SELECT pg_database_size(current_database())"],
                check=True, capture_output=True, text=True,
            ).stdout
            db_bytes = int(out.strip())
        fill_s = time.monotonic() - started
        backup_s, _ = run(binary, ["backup", "--to", backups], env)
        backup_bytes = dir_size(backups)
        verify_s, _ = run(binary, ["backup", "verify", backups], env)
        restore_s, _ = run(binary, ["restore", "--from", backups], target_env)
        print(
            f"{backend:9} {messages:>9,} messages  db {db_bytes / 1e9:5.2f} GB  "
            f"backup {backup_bytes / 1e9:5.2f} GB  (fill {fill_s:6.1f} s)\n"
            f"          backup {backup_s:7.1f} s   verify {verify_s:7.1f} s   "
            f"restore {restore_s:7.1f} s = {100 * restore_s / RTO_S:.2f} % of the 4 h RTO",
            flush=True,
        )
        for db in dbs:
            subprocess.run([psql, "-X", "-q", "-d", pg_url, "-c", f'DROP DATABASE "{db}"'], check=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default="target/release/confab")
    parser.add_argument("--messages", type=int, default=700_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--postgres-url")
    args = parser.parse_args()
    binary = os.path.abspath(args.binary)
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    psql = shutil.which("psql") or "psql"
    for backend in backends:
        if backend == "postgres" and not args.postgres_url:
            # A throwaway server from the test scripts, for this run only.
            root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            script = (
                f"source {root}/scripts/lib/postgres.sh; trap stop_postgres EXIT; "
                f"PG_EXTRA_CONF='shared_buffers = 512MB' start_postgres >/dev/null; "
                f"python3 {os.path.abspath(__file__)} --binary {binary} --messages {args.messages} "
                f"--backend postgres --postgres-url \"$TEST_POSTGRES_URL\""
            )
            subprocess.run(["bash", "-c", script], check=True)
            continue
        bench(backend, binary, args.messages, args.postgres_url, psql)


if __name__ == "__main__":
    main()
