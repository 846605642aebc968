#!/usr/bin/env python3
"""Cold and warm start-to-ready time, idle RSS and shutdown time of `confab serve`.

Usage: bench/startup.py [--runs N] [--binary target/release/confab]

A cold start uses a fresh data directory (the database is created, migrations applied, a
signing key generated); a warm start reuses it. Ready means /readyz answered 200; the clock
starts just before the process is spawned. RSS is read from /proc after the server has been
idle for one second. Prints medians side by side and the ratio to the targets (0.3 s, 60 MB).
"""

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

TARGET_READY_S = 0.3
TARGET_RSS_MB = 60.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ready(port):
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        conn.request("GET", "/readyz")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def exercise(port):
    """One registration (or a failed one when the user exists) and ten logins: argon2id's
    19 MiB per hash is the largest allocation a request makes."""
    body = json.dumps({"email": "bench@example.com", "password": "correct horse battery", "name": "B"})
    for path in ["/api/v1/auth/register"] + ["/api/v1/auth/login"] * 10:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", path, body, {"content-type": "application/json"})
        conn.getresponse().read()
        conn.close()


def one_run(binary, data_dir):
    port = free_port()
    env = dict(os.environ, CONFAB_LOG__LEVEL="warn")
    started = time.perf_counter()
    proc = subprocess.Popen(
        [binary, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data_dir],
        cwd=data_dir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = started + 30
    while not ready(port):
        if proc.poll() is not None or time.perf_counter() > deadline:
            proc.kill()
            sys.exit(f"confab did not become ready (exit {proc.returncode})")
        time.sleep(0.001)
    ready_s = time.perf_counter() - started
    time.sleep(1.0)
    rss = rss_mb(proc.pid)
    exercise(port)
    time.sleep(0.5)
    rss_used = rss_mb(proc.pid)
    stop = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=30)
    stop_s = time.perf_counter() - stop
    if code != 0:
        sys.exit(f"confab exited with {code} on SIGTERM")
    return ready_s, rss, stop_s, rss_used


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--binary", default="target/release/confab")
    args = parser.parse_args()
    binary = os.path.abspath(args.binary)
    results = {"cold": [], "warm": []}
    with tempfile.TemporaryDirectory() as warm_dir:
        one_run(binary, warm_dir)  # creates the database the warm runs reuse
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as cold_dir:
                results["cold"].append(one_run(binary, cold_dir))
            results["warm"].append(one_run(binary, warm_dir))

    print(f"confab serve, {args.runs} runs each, medians (SQLite in the data dir)")
    print(f"{'':6} {'ready s':>9} {'vs 0.3 s':>9} {'idle RSS MB':>12} {'vs 60 MB':>9} {'stop s':>8} {'RSS after 11 auth MB':>21}")
    for kind, rows in results.items():
        r = statistics.median(x[0] for x in rows)
        m = statistics.median(x[1] for x in rows)
        s = statistics.median(x[2] for x in rows)
        u = statistics.median(x[3] for x in rows)
        print(f"{kind:6} {r:9.4f} {r / TARGET_READY_S:9.2f}x {m:12.1f} {m / TARGET_RSS_MB:9.2f}x {s:8.4f} {u:21.1f}")
    cold = statistics.median(x[0] for x in results["cold"])
    warm = statistics.median(x[0] for x in results["warm"])
    print(f"cold/warm ready ratio: {cold / warm:.2f}")


if __name__ == "__main__":
    main()
