#!/usr/bin/env python3
"""Files service (issue 17): uploads, memory while uploading, concurrent uploads, virus
scanning through Confab vs clamdscan, and image thumbnails vs the resizer called directly.

Usage (release builds first; clamd from scripts/lib/clamd.sh, started by this script when
TEST_CLAMD_ADDRESS is unset):
    cargo build --release -p confab --bin confab
    cargo build --release -p confab-files --example thumbs      # for part 5
    python3 bench/files.py [--repeat 3] [--big-mb 100] [--rss-mb 1024] [--rss-repeat 3] [--concurrency 100]
                           [--rounds 3] [--scan-small 50] [--scan-large 5] [--scan-repeat 3]
                           [--skip-upload] [--skip-rss] [--skip-concurrent] [--skip-scan]
                           [--skip-thumbs]
    # with an S3 server too (scripts/lib/s3.sh; s3s-fs must be installed):
    bash -c 'source scripts/lib/s3.sh; trap stop_s3 EXIT; start_s3 && python3 bench/files.py'

Everything runs on 127.0.0.1: release `confab serve` processes on fresh temporary data dirs
(SQLite, blobs in the default `<data_dir>/blobs`, logs at `warn`, the embedded engine off, one
scripted provider), one registered user, `Authorization: Bearer <access token>`. Files are
text (typed `text/plain` by content), each with a unique first line.
1. Upload of a --big-mb file: `PUT /api/v1/files/raw` vs `cp` of the same file (source and
   destination in the same temporary directory, so the same filesystem), with two clients:
   Python's http.client (reads the file and sends it in 1 MiB writes: two user-space copies on
   the cores the server shares) and a raw socket that sends the body with sendfile(2) (no
   user-space copy, as cp makes none; the verdict takes this one). --repeat runs each,
   rotating which goes first, `sync` before each run and no cache dropped; medians. MB/s,
   server and client CPU, and API/cp (target >= 0.7). With
   TEST_S3_ENDPOINT set (scripts/lib/s3.sh), the same upload to a second Confab whose
   `storage.backend = "s3"` points at that server. Beside them, the floor of any server on
   this machine: bare receivers (Python, no HTTP) that take the same sendfile body on a socket
   and write it to a file in the same directory: with splice (no user-space copy), through one
   256 KiB buffer, and through the buffer with SHA-256 (hashlib) on the same thread.
2. RSS growth of a fresh confab process (its user registered and logged in) during each of
   --rss-repeat uploads of --rss-mb MiB, one after the other, the body from a generator (one
   1 MiB block sent over and over; the client never holds more): VmRSS from /proc every 50 ms,
   max minus the value just before that upload (target < 20 MB, the worst upload counts).
3. --concurrency uploads of --concurrent-mb each at once, one user, one connection each,
   released together by a barrier; --rounds rounds. MB/s and uploads/s of each round (all
   bytes / wall time from the barrier to the last answer) and p50/p99 latency of all uploads.
4. Scanning: a Confab with `files.clamd_address` = the clamd under test (bus.job_poll_ms 20,
   bus.job_concurrency --job-concurrency) gets --scan-small files of 1 MB and --scan-large of
   20 MB uploaded one after the other; the time is from the first upload's start until the list
   shows every file `clean` (polled every 20 ms). Against it, on the same files from disk:
   `clamdscan --stream` (one file after another) and `clamdscan --stream --multiscan` (clamd's
   parallel session), with a clamdscan config naming the same TCP port. --scan-repeat rounds,
   rotating the order; medians. files/s, MB/s, and Confab / clamdscan.
5. Thumbnails: runs target/release/examples/thumbs (crates/files/examples/thumbs.rs), which
   times `confab_files::images::variants` against decode + one fast_image_resize resize.
"""

import argparse
import http.client
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # importing bench/gateway.py leaves no __pycache__ here
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gateway import Procs, clean_env, cpu_seconds, free_port, http_json, loadavg, wait_until  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MB = 1_000_000
MIB = 1024 * 1024
TARGET_UPLOAD_RATIO = 0.7
TARGET_RSS_MB = 20.0
BLOCK = MIB
PASSWORD = "correct horse battery staple"


def text_block(size, tag):
    """`size` bytes of printable text lines, the first naming `tag` (so every file differs)."""
    line = b"The quick brown fox jumps over the lazy dog; 0123456789 pack my box with jugs.\n"
    head = f"confab files benchmark {tag} {os.urandom(8).hex()}\n".encode()
    body = head + line * ((size - len(head)) // len(line) + 1)
    return body[:size]


def write_text_file(path, size, tag):
    block = text_block(min(size, BLOCK), tag)
    filler = text_block(BLOCK, "filler")
    with open(path, "wb") as f:
        f.write(block)
        left = size - len(block)
        while left > 0:
            f.write(filler[:left])
            left -= min(left, len(filler))


def config_text(clamd=None, clamd_max=None, s3=None, job_concurrency=4):
    files = f"""[files]
max_file_bytes = {4 * 1024 * MIB}
quota_bytes = {1024 * 1024 * MIB}
quota_files = 1000000
uploads_per_user = 1000
"""
    if clamd:
        files += f'clamd_address = "{clamd}"\nclamd_max_bytes = {clamd_max}\nclamd_timeout_secs = 120\n'
    storage = ""
    if s3:
        storage = f"""
[storage]
backend = "s3"

[storage.s3]
bucket = "{s3['bucket']}"
endpoint = "{s3['endpoint']}"
region = "us-east-1"
access_key_id = "{s3['access']}"
secret_access_key = "{s3['secret']}"
timeout_secs = 600
"""
    return f"""[log]
level = "warn"

[server]
request_timeout_secs = 1800

[auth]
access_token_ttl_secs = 7200

[inference]
default_model = "fast"
providers = [{{ name = "script", kind = "scripted", models = ["fast"], reply = "ok", delay_ms = 0 }}]

[inference.engine]
enabled = false

[bus]
job_poll_ms = 20
job_concurrency = {job_concurrency}

{files}{storage}"""


class Server:
    """One `confab serve` on a fresh data dir, with a registered and logged-in user."""

    def __init__(self, procs, args, work, name, config, log):
        self.port = free_port()
        self.data_dir = os.path.join(work, f"data-{name}")
        os.makedirs(self.data_dir)
        path = os.path.join(work, f"{name}.toml")
        with open(path, "w") as f:
            f.write(config)
        cmd = [os.path.join(ROOT, args.binary), "--config", path, "serve", "--listen",
               f"127.0.0.1:{self.port}", "--data-dir", self.data_dir]
        self.proc = procs.start(cmd, cwd=work, env=clean_env(), stdout=log, stderr=log)
        wait_until(lambda: http_json(self.port, "GET", "/readyz")[0] == 200, self.proc, f"confab {name}", 60)
        creds = {"email": f"{name}@example.com", "password": PASSWORD, "name": "Bench"}
        status, data = http_json(self.port, "POST", "/api/v1/auth/register", creds)
        if status not in (200, 201):
            sys.exit(f"register failed: {status} {data[:300]!r}")
        status, data = http_json(self.port, "POST", "/api/v1/auth/login",
                                 {"email": creds["email"], "password": PASSWORD})
        if status != 200:
            sys.exit(f"login failed: {status} {data[:300]!r}")
        self.auth = {"authorization": f"Bearer {json.loads(data)['access_token']}"}

    def upload(self, name, body, length):
        """PUT /api/v1/files/raw; `body` is bytes, a file object or an iterable of bytes.
        Returns (seconds, the file's JSON)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1800, blocksize=BLOCK)
        headers = dict(self.auth)
        headers["content-length"] = str(length)
        headers["content-type"] = "text/plain"
        started = time.monotonic()
        conn.request("PUT", f"/api/v1/files/raw?name={name}", body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        took = time.monotonic() - started
        conn.close()
        if resp.status != 201:
            raise RuntimeError(f"upload {name}: {resp.status} {data[:300]!r}")
        return took, json.loads(data)

    def upload_sendfile(self, name, path, length):
        """The same PUT, its body sent from the page cache with sendfile(2): the client copies
        nothing in user space, as `cp` does not. Returns (seconds, the file's JSON)."""
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=1800)
        head = (f"PUT /api/v1/files/raw?name={name} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                f"Authorization: {self.auth['authorization']}\r\nContent-Length: {length}\r\n"
                "Content-Type: text/plain\r\nConnection: close\r\n\r\n")
        started = time.monotonic()
        sock.sendall(head.encode())
        with open(path, "rb") as f:
            sock.sendfile(f)
        resp = http.client.HTTPResponse(sock)
        resp.begin()
        data = resp.read()
        took = time.monotonic() - started
        resp.close()
        sock.close()
        if resp.status != 201:
            raise RuntimeError(f"upload {name}: {resp.status} {data[:300]!r}")
        return took, json.loads(data)

    def delete(self, file_id):
        status, data = http_json(self.port, "DELETE", f"/api/v1/files/{file_id}", None, self.auth)
        if status not in (200, 204):
            sys.exit(f"delete failed: {status} {data[:300]!r}")

    def list_all(self):
        files, before = [], None
        while True:
            path = "/api/v1/files?limit=100" + (f"&before={before}" if before else "")
            status, data = http_json(self.port, "GET", path, None, self.auth)
            if status != 200:
                sys.exit(f"list failed: {status} {data[:300]!r}")
            page = json.loads(data)
            files += page["files"]
            before = page.get("next")
            if not before:
                return files

    def rss_kb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def cpu(self):
        return cpu_seconds(self.proc.pid)


def med(values):
    return statistics.median(values) if values else float("nan")


def pct(values, p):
    """Nearest-rank percentile."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, int(round(p / 100 * len(ordered) + 0.4999)))
    return ordered[min(rank, len(ordered)) - 1]


def verdict(ok):
    return "MET" if ok else "NOT MET"


# 1. One big upload vs cp ---------------------------------------------------------------------

UPLOAD_SIDES = (("api", "API, local blobs, http.client"), ("api-sf", "API, local blobs, sendfile"),
                ("s3", "API, S3 (s3s-fs), http.client"), ("s3-sf", "API, S3 (s3s-fs), sendfile"),
                ("bare-splice", "bare: socket -> file, splice"), ("bare-copy", "bare: socket -> buffer -> file"),
                ("bare-sha", "bare: ... + SHA-256"))

# The floor of any server that takes a body over TCP on this machine: a process that does
# nothing but receive the bytes (sent with sendfile, as to the API) and write them to a file in
# the same directory, with no HTTP, no limits, no metadata. `splice`: socket to pipe to file,
# no user-space copy at all (what no HTTP server can do while it reads the body); `copy`:
# recv_into a 256 KiB buffer and write it (what every user-space server does at least);
# `sha`: the same plus hashlib's SHA-256 (OpenSSL, SHA-NI) of each buffer on the same thread.
BARE_RECEIVER = r"""
import hashlib, os, socket, sys
mode, directory = sys.argv[1], sys.argv[2]
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(8)
print(srv.getsockname()[1], flush=True)
buf = bytearray(256 * 1024)
view = memoryview(buf)
while True:
    conn, _ = srv.accept()
    head = b""
    while len(head) < 8:
        head += conn.recv(8 - len(head))
    left = int.from_bytes(head, "big")
    path = os.path.join(directory, "bare-" + os.urandom(4).hex())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    if mode == "splice":
        r, w = os.pipe()
        while left:
            n = os.splice(conn.fileno(), w, min(left, 1 << 20))
            if not n:
                break
            left -= n
            while n:
                n -= os.splice(r, fd, n)
        os.close(r)
        os.close(w)
    else:
        digest = hashlib.sha256() if mode == "sha" else None
        while left:
            n = conn.recv_into(view[:min(left, len(buf))])
            if not n:
                break
            if digest:
                digest.update(view[:n])
            os.write(fd, view[:n])
            left -= n
    os.close(fd)
    os.remove(path)
    conn.sendall(b"k")
    conn.close()
"""


class BareReceiver:
    """A BARE_RECEIVER process (its CPU read from /proc like a server's)."""

    def __init__(self, procs, mode, work):
        self.proc = procs.start([sys.executable, "-c", BARE_RECEIVER, mode, work], stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline())

    def cpu(self):
        return cpu_seconds(self.proc.pid)

    def upload_sendfile(self, path, length):
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=1800)
        started = time.monotonic()
        sock.sendall(length.to_bytes(8, "big"))
        with open(path, "rb") as f:
            sock.sendfile(f)
        if sock.recv(1) != b"k":
            raise RuntimeError("the bare receiver did not take the body")
        took = time.monotonic() - started
        sock.close()
        return took


def client_cpu():
    t = os.times()
    return t.user + t.system


def bench_upload(args, work, procs, server, s3_server):
    size = args.big_mb * MB
    src = os.path.join(work, "big.txt")
    write_text_file(src, size, "big")
    with open(src, "rb") as f:  # in the page cache for every run, cp's and the API's alike
        while f.read(8 * MIB):
            pass
    servers = {"api": server, "api-sf": server}
    if s3_server:
        servers.update({"s3": s3_server, "s3-sf": s3_server})
    for mode in ("splice", "copy", "sha"):
        servers[f"bare-{mode}"] = BareReceiver(procs, mode, work)
    names = ["cp"] + [n for n, _ in UPLOAD_SIDES if n in servers]
    times = {name: [] for name in names}
    cpu = {name: [] for name in servers}
    ccpu = {name: [] for name in servers}
    for rep in range(args.repeat):
        order = names[rep % len(names):] + names[:rep % len(names)]
        for name in order:
            os.sync()
            if name == "cp":
                dst = os.path.join(work, "big-copy.txt")
                started = time.monotonic()
                subprocess.run(["cp", src, dst], check=True)
                took = time.monotonic() - started
                os.remove(dst)
            else:
                srv = servers[name]
                before, cbefore = srv.cpu(), client_cpu()
                if name.startswith("bare-"):
                    took = srv.upload_sendfile(src, size)
                    cpu[name].append(srv.cpu() - before)
                    ccpu[name].append(client_cpu() - cbefore)
                    times[name].append(took)
                    print(f"  upload {args.big_mb} MB #{rep + 1} {name:11} {took:7.3f} s  "
                          f"{size / MB / took:8.1f} MB/s", flush=True)
                    continue
                if name.endswith("-sf"):
                    took, file = srv.upload_sendfile(f"big-{rep}.txt", src, size)
                else:
                    with open(src, "rb") as f:
                        took, file = srv.upload(f"big-{rep}.txt", f, size)
                cpu[name].append(srv.cpu() - before)
                ccpu[name].append(client_cpu() - cbefore)
                if file["size"] != size:
                    sys.exit(f"uploaded {file['size']} bytes, not {size}")
                srv.delete(file["id"])
            times[name].append(took)
            print(f"  upload {args.big_mb} MB #{rep + 1} {name:7} {took:7.3f} s  {size / MB / took:8.1f} MB/s",
                  flush=True)
    os.remove(src)
    rows = {name: {"s": med(t), "mbps": size / MB / med(t)} for name, t in times.items()}
    for name in cpu:
        rows[name]["cpu_s"] = med(cpu[name])
        rows[name]["client_s"] = med(ccpu[name])
    return rows


def report_upload(args, rows):
    print(f"\n1. Upload of {args.big_mb} MB: PUT /api/v1/files/raw vs cp (same filesystem), "
          f"median of {args.repeat}")
    print(f"{'':32} {'seconds':>8} {'MB/s':>8} {'server CPU s':>13} {'client CPU s':>13} {'vs cp':>7}")
    cp = rows["cp"]["mbps"]
    for name, label in (("cp", "cp"),) + UPLOAD_SIDES:
        if name not in rows:
            continue
        r = rows[name]
        cpu = f"{r['cpu_s']:13.3f}" if "cpu_s" in r else f"{'':13}"
        client = f"{r['client_s']:13.3f}" if "client_s" in r else f"{'':13}"
        print(f"{label:32} {r['s']:8.3f} {r['mbps']:8.1f} {cpu} {client} {r['mbps'] / cp:6.2f}x")
    # The verdict takes the sendfile client: like cp, it copies nothing in user space, so the
    # ratio is the server's; http.client's own copies share the 2 cores with the server.
    ratio = rows["api-sf"]["mbps"] / cp
    plain = rows["api"]["mbps"] / cp
    floors = "".join(f"; bare {mode} {rows[f'bare-{mode}']['mbps'] / cp:.2f}" for mode in ("splice", "copy", "sha")
                     if f"bare-{mode}" in rows)
    return [(f"upload API/cp {ratio:.2f} >= {TARGET_UPLOAD_RATIO} (sendfile client; http.client {plain:.2f}"
             f"{floors})", ratio >= TARGET_UPLOAD_RATIO)]


# 2. RSS during a large upload ----------------------------------------------------------------

def bench_rss(args, server):
    """--rss-repeat uploads of --rss-mb MiB to `server` (a fresh process), one after the other."""
    size = args.rss_mb * MIB
    block = text_block(BLOCK, "rss")
    filler = text_block(BLOCK, "filler")

    def body():
        yield block
        left = size - len(block)
        while left > 0:
            piece = filler if left >= len(filler) else filler[:left]
            left -= len(piece)
            yield piece

    runs = []
    for rep in range(args.rss_repeat):
        time.sleep(1.0)  # let the server settle after the previous upload
        baseline = server.rss_kb()
        samples, stop = [], threading.Event()

        def sample():
            while not stop.is_set():
                samples.append(server.rss_kb())
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        before_cpu = server.cpu()
        try:
            took, file = server.upload(f"rss-{rep}.txt", body(), size)
        finally:
            stop.set()
            sampler.join()
        cpu = server.cpu() - before_cpu
        after = server.rss_kb()
        server.delete(file["id"])
        if file["size"] != size:
            sys.exit(f"uploaded {file['size']} bytes, not {size}")
        peak = max(samples + [after])
        run = {"bytes": size, "s": took, "baseline_mb": baseline / 1024, "peak_mb": peak / 1024,
               "after_mb": after / 1024, "growth_mb": (peak - baseline) / 1024, "samples": len(samples),
               "cpu_s": cpu}
        runs.append(run)
        print(f"  rss #{rep + 1}: {took:.2f} s, before {run['baseline_mb']:.1f} MB, peak {run['peak_mb']:.1f} MB, "
              f"growth {run['growth_mb']:.1f} MB", flush=True)
    return runs


def report_rss(args, runs):
    print(f"\n2. RSS of confab during a {args.rss_mb} MiB upload (body from a generator; VmRSS every 50 ms), "
          f"{len(runs)} upload(s) one after the other on a fresh process")
    print(f"{'upload':>7} {'seconds':>8} {'MB/s':>7} {'server CPU s':>13} {'RSS before MB':>14} {'peak MB':>8} "
          f"{'after MB':>9} {'growth MB':>10} {'samples':>8}")
    for i, r in enumerate(runs):
        print(f"{'#' + str(i + 1):>7} {r['s']:8.2f} {r['bytes'] / MB / r['s']:7.1f} {r['cpu_s']:13.2f} "
              f"{r['baseline_mb']:14.1f} {r['peak_mb']:8.1f} {r['after_mb']:9.1f} {r['growth_mb']:10.1f} "
              f"{r['samples']:8}")
    worst = max(r["growth_mb"] for r in runs)
    return [(f"RSS growth (worst of {len(runs)}) {worst:.1f} MB < {TARGET_RSS_MB:g} MB", worst < TARGET_RSS_MB)]


# 3. Concurrent uploads -----------------------------------------------------------------------

def bench_concurrent(args, server):
    size = int(args.concurrent_mb * MB)
    rounds = []
    latencies = []
    for rnd in range(args.rounds):
        bodies = [text_block(size, f"c{rnd}-{i}") for i in range(args.concurrency)]
        barrier = threading.Barrier(args.concurrency + 1)
        results = [None] * args.concurrency
        errors = []

        def one(i):
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600, blocksize=BLOCK)
            conn.connect()
            headers = dict(server.auth)
            headers["content-length"] = str(size)
            headers["content-type"] = "text/plain"
            barrier.wait()
            started = time.monotonic()
            try:
                conn.request("PUT", f"/api/v1/files/raw?name=c{rnd}-{i}.txt", body=bodies[i], headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                done = time.monotonic()
                if resp.status != 201:
                    errors.append(f"{resp.status} {data[:200]!r}")
                else:
                    results[i] = (started, done, json.loads(data)["id"])
            except OSError as e:
                errors.append(str(e))
            finally:
                conn.close()

        threads = [threading.Thread(target=one, args=(i,)) for i in range(args.concurrency)]
        for t in threads:
            t.start()
        before_cpu = server.cpu()
        barrier.wait()
        t0 = time.monotonic()
        for t in threads:
            t.join()
        wall = time.monotonic() - t0
        cpu = server.cpu() - before_cpu
        if errors:
            sys.exit(f"{len(errors)} concurrent uploads failed, e.g. {errors[0]}")
        lat = [done - started for started, done, _ in results]
        latencies += lat
        total = size * args.concurrency
        rounds.append({"wall": wall, "mbps": total / MB / wall, "ups": args.concurrency / wall, "cpu_s": cpu,
                       "p50": med(lat), "p99": pct(lat, 99)})
        print(f"  concurrent round {rnd + 1}: {wall:.3f} s, {total / MB / wall:.1f} MB/s, "
              f"{args.concurrency / wall:.1f} uploads/s, p50 {med(lat) * 1000:.0f} ms, "
              f"p99 {pct(lat, 99) * 1000:.0f} ms, server CPU {cpu:.2f} s", flush=True)
        for _, _, file_id in results:
            server.delete(file_id)
    return rounds, latencies


def report_concurrent(args, rounds, latencies):
    print(f"\n3. {args.concurrency} concurrent uploads of {args.concurrent_mb:g} MB (one user), "
          f"{args.rounds} round(s): median round, latency over all {len(latencies)} uploads")
    print(f"{'MB/s':>8} {'uploads/s':>10} {'wall s':>8} {'server CPU s':>13} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'max ms':>8}")
    print(f"{med([r['mbps'] for r in rounds]):8.1f} {med([r['ups'] for r in rounds]):10.1f} "
          f"{med([r['wall'] for r in rounds]):8.3f} {med([r['cpu_s'] for r in rounds]):13.2f} "
          f"{med(latencies) * 1000:8.0f} {pct(latencies, 99) * 1000:8.0f} {max(latencies) * 1000:8.0f}")
    return []


# 4. Scanning ---------------------------------------------------------------------------------

def make_scan_files(args, work):
    folder = os.path.join(work, "scan")
    os.makedirs(folder)
    paths = []
    for i in range(args.scan_small):
        paths.append(os.path.join(folder, f"small-{i:03}.txt"))
        write_text_file(paths[-1], 1 * MB, f"small-{i}")
    for i in range(args.scan_large):
        paths.append(os.path.join(folder, f"large-{i:03}.txt"))
        write_text_file(paths[-1], 20 * MB, f"large-{i}")
    return paths


def clamdscan_config(work, address):
    m = re.fullmatch(r"(?:tcp://)?([^:/]+):(\d+)", address)
    if not m:
        sys.exit(f"TEST_CLAMD_ADDRESS {address!r} is not tcp://host:port")
    path = os.path.join(work, "clamdscan.conf")
    with open(path, "w") as f:
        f.write(f"TCPSocket {m.group(2)}\nTCPAddr {m.group(1)}\n")
    return path


def run_clamdscan(conf, paths, multiscan):
    cmd = ["clamdscan", f"--config-file={conf}", "--stream", "--no-summary", "--quiet"]
    if multiscan:
        cmd.append("--multiscan")
    started = time.monotonic()
    out = subprocess.run(cmd + paths, capture_output=True, text=True)
    took = time.monotonic() - started
    if out.returncode != 0:
        sys.exit(f"clamdscan exited with {out.returncode}: {out.stdout[-500:]} {out.stderr[-500:]}")
    return took


def run_confab_scan(server, paths, rnd):
    """Uploads every file, then waits for all to be clean; returns (total s, upload s, CPU s)."""
    before_cpu = server.cpu()
    ids = set()
    started = time.monotonic()
    for i, path in enumerate(paths):
        with open(path, "rb") as f:
            _, file = server.upload(f"s{rnd}-{i}.txt", f, os.path.getsize(path))
        ids.add(file["id"])
    uploaded = time.monotonic() - started
    deadline = time.monotonic() + 600
    while True:
        files = [f for f in server.list_all() if f["id"] in ids]
        states = [f["state"] for f in files]
        if len(files) == len(ids) and all(s == "clean" for s in states):
            break
        if any(s not in ("pending", "clean") for s in states):
            sys.exit(f"unexpected states: {sorted(set(states))}")
        if time.monotonic() > deadline:
            sys.exit("files were not all clean within 600 s")
        time.sleep(0.02)
    total = time.monotonic() - started
    cpu = server.cpu() - before_cpu
    for file_id in ids:
        server.delete(file_id)
    return total, uploaded, cpu


def run_plain_uploads(server, paths, rnd):
    """The same uploads to a Confab without a scanner: what uploading alone takes."""
    ids = []
    started = time.monotonic()
    for i, path in enumerate(paths):
        with open(path, "rb") as f:
            _, file = server.upload(f"p{rnd}-{i}.txt", f, os.path.getsize(path))
        ids.append(file["id"])
    took = time.monotonic() - started
    for file_id in ids:
        server.delete(file_id)
    return took


def bench_scan(args, work, procs, log, plain_server):
    address = os.environ["TEST_CLAMD_ADDRESS"]
    clamd_max = int(os.environ.get("TEST_CLAMD_MAX_BYTES") or 25 * MIB)
    conf = clamdscan_config(work, address)
    paths = make_scan_files(args, work)
    total_bytes = sum(os.path.getsize(p) for p in paths)
    for path in paths:  # in the page cache for every side
        with open(path, "rb") as f:
            while f.read(8 * MIB):
                pass
    server = Server(procs, args, work, "scan",
                    config_text(clamd=address, clamd_max=clamd_max, job_concurrency=args.job_concurrency), log)
    results = {"confab": [], "confab_upload": [], "confab_cpu": [], "clamdscan": [], "clamdscan -m": [],
               "plain": []}
    sides = ["confab", "clamdscan", "clamdscan -m"]
    for rnd in range(args.scan_repeat):
        for side in sides[rnd % 3:] + sides[:rnd % 3]:
            os.sync()
            if side == "confab":
                total, uploaded, cpu = run_confab_scan(server, paths, rnd)
                results["confab"].append(total)
                results["confab_upload"].append(uploaded)
                results["confab_cpu"].append(cpu)
                extra = f" (uploads {uploaded:.2f} s, server CPU {cpu:.2f} s)"
            else:
                total = run_clamdscan(conf, paths, side.endswith("-m"))
                results[side].append(total)
                extra = ""
            print(f"  scan #{rnd + 1} {side:12} {total:7.2f} s  {len(paths) / total:6.1f} files/s  "
                  f"{total_bytes / MB / total:7.1f} MB/s{extra}", flush=True)
        if plain_server:
            os.sync()
            took = run_plain_uploads(plain_server, paths, rnd)
            results["plain"].append(took)
            print(f"  scan #{rnd + 1} {'(no clamd)':12} {took:7.2f} s  uploads alone to a Confab without a scanner",
                  flush=True)
    return {"files": len(paths), "bytes": total_bytes, "clamd": address, "results": results}


def report_scan(args, r):
    n, size = r["files"], r["bytes"]
    res = r["results"]
    print(f"\n4. Scanning {n} files ({args.scan_small} x 1 MB + {args.scan_large} x 20 MB = {size / MB:.0f} MB), "
          f"clamd {r['clamd']}, median of {args.scan_repeat}")
    print(f"{'':40} {'seconds':>8} {'files/s':>8} {'MB/s':>8} {'Confab/this':>12}")
    confab = med(res["confab"])
    rows = [("Confab: first upload -> all clean", confab),
            ("  of which the uploads (scans overlap)", med(res["confab_upload"])),
            ("  same uploads, Confab without clamd", med(res["plain"])),
            ("clamdscan --stream (serial)", med(res["clamdscan"])),
            ("clamdscan --stream --multiscan", med(res["clamdscan -m"]))]
    for label, s in rows:
        ratio = f"{s / confab:11.2f}x" if label.startswith("clamdscan") else ""
        print(f"{label:40} {s:8.2f} {n / s:8.1f} {size / MB / s:8.1f} {ratio:>12}")
    print(f"(Confab/this = this side's time / Confab's: Confab's throughput as a share of clamdscan's; "
          f"server CPU {med(res['confab_cpu']):.2f} s per round; job_concurrency {args.job_concurrency})")
    return []


# 5. Thumbnails -------------------------------------------------------------------------------

def bench_thumbs(args):
    exe = os.path.join(ROOT, "target", "release", "examples", "thumbs")
    if not os.path.exists(exe):
        print("\n5. Thumbnails: target/release/examples/thumbs is missing: "
              "cargo build --release -p confab-files --example thumbs")
        return
    print("\n5. Thumbnails (crates/files/examples/thumbs.rs)", flush=True)
    subprocess.run([exe, "--jpegs", str(args.jpegs), "--pngs", str(args.pngs), "--rounds",
                    str(args.thumb_rounds)], check=True)


def s3_settings():
    if not os.environ.get("TEST_S3_ENDPOINT"):
        return None
    return {"endpoint": os.environ["TEST_S3_ENDPOINT"], "bucket": os.environ["TEST_S3_BUCKET"],
            "access": os.environ["TEST_S3_ACCESS_KEY"], "secret": os.environ["TEST_S3_SECRET_KEY"]}


def git_head():
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default="target/release/confab")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side of part 1")
    parser.add_argument("--big-mb", type=int, default=100)
    parser.add_argument("--rss-mb", type=int, default=1024, help="MiB of each upload of part 2")
    parser.add_argument("--rss-repeat", type=int, default=3, help="uploads of part 2, one after the other")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--concurrent-mb", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of part 3")
    parser.add_argument("--scan-small", type=int, default=50, help="1 MB files of part 4")
    parser.add_argument("--scan-large", type=int, default=5, help="20 MB files of part 4")
    parser.add_argument("--scan-repeat", type=int, default=3)
    parser.add_argument("--job-concurrency", type=int, default=4, help="bus.job_concurrency of the scanning Confab")
    parser.add_argument("--jpegs", type=int, default=20)
    parser.add_argument("--pngs", type=int, default=20)
    parser.add_argument("--thumb-rounds", type=int, default=3)
    for part in ("upload", "rss", "concurrent", "scan", "thumbs"):
        parser.add_argument(f"--skip-{part}", action="store_true")
    args = parser.parse_args()

    if not os.path.exists(os.path.join(ROOT, args.binary)):
        sys.exit(f"{args.binary} is missing: cargo build --release -p confab --bin confab")
    if not args.skip_scan and not os.environ.get("TEST_CLAMD_ADDRESS"):
        # A throwaway clamd from the test scripts, for this run only.
        script = (f"source {ROOT}/scripts/lib/clamd.sh; trap stop_clamd EXIT; start_clamd >/dev/null && "
                  f"python3 {os.path.abspath(__file__)} " + " ".join(f"'{a}'" for a in sys.argv[1:]))
        sys.exit(subprocess.run(["bash", "-c", script]).returncode)

    procs = Procs()
    work = tempfile.mkdtemp(prefix="confab-files-bench-", dir=os.environ.get("BENCH_TMPDIR"))
    log = open(os.path.join(work, "servers.log"), "w")
    verdicts, reports = [], []
    try:
        print(f"commit {git_head()}, {os.cpu_count()} cores, load average before: {loadavg()}; work dir {work}",
              flush=True)
        need_main = not (args.skip_upload and args.skip_concurrent)
        server = Server(procs, args, work, "local", config_text(), log) if need_main else None
        s3 = s3_settings()
        s3_server = Server(procs, args, work, "s3", config_text(s3=s3), log) if s3 and not args.skip_upload else None
        if not args.skip_upload:
            rows = bench_upload(args, work, procs, server, s3_server)
            reports.append(lambda: report_upload(args, rows))
        if not args.skip_rss:
            rss_server = Server(procs, args, work, "rss", config_text(), log)
            rss = bench_rss(args, rss_server)
            rss_server.proc.terminate()
            rss_server.proc.wait(timeout=15)
            reports.append(lambda: report_rss(args, rss))
        if not args.skip_concurrent:
            rounds, latencies = bench_concurrent(args, server)
            reports.append(lambda: report_concurrent(args, rounds, latencies))
        if not args.skip_scan:
            scan = bench_scan(args, work, procs, log, server)
            reports.append(lambda: report_scan(args, scan))
        procs.stop_all()
        print(f"load average after: {loadavg()}", flush=True)
        for report in reports:
            verdicts += report()
        if not args.skip_thumbs:
            bench_thumbs(args)
        print()
        for what, ok in verdicts:
            print(f"{verdict(ok):7} {what}")
    finally:
        procs.stop_all()
        log.close()
        if os.environ.get("KEEP_BENCH_DIR"):
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
