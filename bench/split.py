#!/usr/bin/env python3
"""Split mode side by side with the all-in-one process (issue 15): the gateway hop on
`/v1/chat/completions`, and WebSocket fan-out of a chat answer's live events across chat
replicas.

Usage (release builds first; PostgreSQL, NATS and Redis from scripts/lib, on loopback):
    cargo build --release -p confab -p confab-bench
    bash -c 'source scripts/lib/postgres.sh; source scripts/lib/nats.sh; source scripts/lib/redis.sh
             trap "stop_redis; stop_nats; stop_postgres" EXIT
             start_postgres && start_nats && start_redis && python3 bench/split.py'
    # options: [--repeat 3] [--duration 5] [--warmup 1] [--rate 1000] [--concurrency 32[,64…]]
    #          [--answers 300] [--ws-delay-ms 5] [--skip-hop] [--skip-ws] [--raw]
    #          [--slice-ms 100] [--sequential]
    #          [--nginx PATH] [--nginx-workers N|auto] [--no-nginx]
    #          diagnosis: [--limits off] [--split-redis off] [--kinds plain,stream] [--creds key,jwt]
    #                     [--gateway-threads N] [--split-workers N] [--perf LABEL] [--dump-dir DIR]
    #                     [--no-wake-probe]

The servers it reads from the environment: TEST_POSTGRES_URL (a fresh database is created for
each deployment), TEST_NATS_URL, TEST_REDIS_URL (a fresh namespace / key prefix per run).

Deployments, every process a release `confab serve` on 127.0.0.1 with logs at `warn`, one
scripted provider answering at once (`fast`, `delay_ms = 0`) and one answering a word every
--ws-delay-ms (`paced`):
- all-in-one: `confab serve` (no --services): MemoryBus, the SQL outbox and job queue,
  in-process limiters and caches; PostgreSQL (its own database);
- split: `--services auth`, `admin`, `inference`, `chat` twice and `gateway`, each its own
  process, on PostgreSQL (one shared database), NATS JetStream and Redis; chat calls inference
  through the gateway (`chat.inference_url`), as the cluster test does.
Request and token limits are on everywhere (gateway per IP, user and key; inference per user
and key) but far above what the load reaches, so their cost (Redis in split mode) is measured.

1. The gateway hop, `/v1/chat/completions` non-streamed and streamed (SSE read to `[DONE]`),
   with an API key (scope `inference`) and with a JWT access token, each against
   (a) the all-in-one process, (b) the inference process directly, (c) the gateway in front of
   (b). Load from `loadgen` (bench/loadgen, one tokio thread):
   - open loop at --rate requests/s: a dedicated thread sleeps until each request's due time
     (start + i/rate) and hands it to the runtime, whether or not earlier ones have answered;
     latency counts from the due time, so a server falling behind shows (no coordinated
     omission);
   - closed loop with each of --concurrency connections sending its next request as soon as
     the previous answer was read: max requests/s (the best of the listed concurrencies).
   (d) the peer: nginx (Debian's `nginx-light`, --nginx-workers, `auto` by default: one per
   core) as a bare reverse proxy in front of (b), with kept-alive upstream connections and
   response buffering off; it forwards the credential as it came, so (b) does the same work
   behind it as alone. Left out when nginx is not installed (or with --no-nginx).
   The fixed-rate runs of (a)-(d) are one interleaved run (`loadgen --sides`): time cut into
   --slice-ms slices (100 ms), each cycle of slices visiting every side once in a random
   order, each side at --rate during its slices, for --duration x sides seconds, so every
   side gets --duration seconds of samples and all of them the same machine: its background
   work and its late wake-ups spread over the sides alike. Separate runs one after another
   (--sequential, the method before 2026-12-04) differ by the drift between them: nginx's
   hop p99 ranged from -0.29 to +2.06 ms over six such runs on one evening, four times the
   target it is compared with.
   Beside each fixed-rate run a probe process sleeps 1 ms at a time and records how late it
   wakes up: the wait of a thread that is due on this machine under that load (the table's
   "wake-up late p99.9"), which every hop of a request pays. --dump-dir writes each request's
   due time and latency, to see whether the slow ones come together.
   The added latency of the gateway hop is (c) - (b) at each percentile, nginx's (d) - (b).
   Rounds run --repeat times (the max runs rotating which side goes first); the table shows
   medians. Body temperature 0.7: the inference exact-match cache never answers. Before each
   run both databases are vacuumed and the machine left to go idle, so PostgreSQL's upkeep of
   the usage rows earlier runs wrote does not land in whichever run crosses autovacuum's
   threshold.
2. WebSocket fan-out (`ws-fanout`, bench/loadgen): one user, messages sent one at a time to a
   chat process (`paced` model), each answer's SSE read to `done`; meanwhile sockets on
   `/api/v1/ws` receive its `message.delta` events. Delay per piece = arrival on the socket
   - arrival of the same piece on the sender's SSE stream (the generating process writes the
   piece to the SSE stream and then publishes it; the envelope's `at` is whole milliseconds,
   too coarse). All-in-one: the socket on the same process. Split: one socket on the chat
   replica that generates ("same": through NATS all the same) and one on the other replica
   ("other").
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.dont_write_bytecode = True  # importing bench/gateway.py leaves no __pycache__ here
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gateway import (  # noqa: E402  (bench/gateway.py: the shared helpers)
    Bench,
    Procs,
    clean_env,
    fmt,
    free_port,
    http_json,
    loadavg,
    median_result,
    wait_until,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET_HOP_P99_MS = 0.5
TARGET_SPLIT_RATIO = 0.5
PROMPT = "Say something short about foxes."
REPLY = "You said: {last} The quick brown fox jumps over the lazy dog, twice."
SERVICES_TOKEN = "bench-" + os.urandom(24).hex()
HIGH = 100_000_000


def limit(args, value):
    """A limit of the benchmark's configuration: `value`, or 0 (off) with --limits off."""
    return 0 if args.limits == "off" else value


def fresh_database(server_url, name):
    """Creates database `name` on the server of `server_url`; returns its URL."""
    out = subprocess.run(["psql", server_url, "-v", "ON_ERROR_STOP=1", "-qc", f'CREATE DATABASE "{name}"'],
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"cannot create database {name}: {out.stderr.strip()}")
    parts = urllib.parse.urlsplit(server_url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


def vacuum(url):
    """`VACUUM (ANALYZE)` of every table of the database at `url`."""
    out = subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-qc", "VACUUM (ANALYZE)"],
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        sys.exit(f"cannot vacuum {url}: {out.stderr.strip()}")


def common_config(args, database_url):
    return f"""[log]
level = "warn"

[database]
url = "{database_url}"

[auth]
access_token_ttl_secs = 7200

[inference]
default_model = "fast"
providers = [
  {{ name = "script", kind = "scripted", models = ["fast"], reply = "{REPLY}", delay_ms = 0 }},
  {{ name = "paced", kind = "scripted", models = ["paced"], reply = "{REPLY}", delay_ms = {args.ws_delay_ms} }},
]

[inference.limits]
# On, but far above anything the benchmark reaches.
user_requests_per_minute = {limit(args, HIGH)}
key_requests_per_minute = {limit(args, HIGH)}
user_tokens_per_day = {limit(args, 1000000000000)}
key_tokens_per_day = {limit(args, 1000000000000)}

[inference.concurrency]
user_requests = 100000
key_requests = 100000

[chat]
auto_titles = false
"""


def split_config(args, database_url, ports, run_id):
    redis = "" if args.split_redis == "off" else f"""[redis]
url = "{os.environ['TEST_REDIS_URL']}"
key_prefix = "{run_id}"
"""
    up = lambda *names: "[" + ", ".join(f'"http://127.0.0.1:{ports[n]}"' for n in names) + "]"  # noqa: E731
    # [chat] and [inference] are in the common part: their extra keys go in place.
    text = common_config(args, database_url).replace(
        "[chat]\nauto_titles = false\n",
        f"[chat]\nauto_titles = false\ninference_url = \"http://127.0.0.1:{ports['gateway']}\"\n")
    return text + f"""
[bus]
nats_url = "{os.environ['TEST_NATS_URL']}"
nats_namespace = "{run_id}"

{redis}
[services]
token = "{SERVICES_TOKEN}"
auth_url = "http://127.0.0.1:{ports['auth']}"
admin_url = "http://127.0.0.1:{ports['admin']}"
purge_participants = ["chat"]

[gateway]
ip_per_minute = {limit(args, HIGH)}
ip_burst = {HIGH}
user_per_minute = {limit(args, HIGH)}
user_burst = {HIGH}
key_per_minute = {limit(args, HIGH)}
key_burst = {HIGH}

[gateway.upstreams]
auth = {up('auth')}
admin = {up('admin')}
inference = {up('inference')}
chat = {up('chat1', 'chat2')}
"""


def start_confab(procs, args, work, name, config, port, services, log):
    data_dir = os.path.join(work, f"data-{name}")
    os.makedirs(data_dir)
    cmd = [os.path.join(ROOT, args.binary), "--config", config, "serve", "--listen", f"127.0.0.1:{port}",
           "--data-dir", data_dir]
    if services:
        cmd += ["--services", services]
    env = clean_env()
    if services and args.split_workers:
        env["TOKIO_WORKER_THREADS"] = str(args.split_workers)
    if services == "gateway" and args.gateway_threads:
        env["CONFAB_GATEWAY__THREADS"] = str(args.gateway_threads)
    proc = procs.start(cmd, cwd=work, env=env, stdout=log, stderr=log)
    wait_until(lambda: http_json(port, "GET", "/readyz")[0] == 200, proc, f"confab {name}", 60)
    return proc


def user(port, email):
    """Registers a user; returns (access token, API key with scope `inference`)."""
    creds = {"email": email, "password": "correct horse battery staple", "name": "Bench"}
    status, data = http_json(port, "POST", "/api/v1/auth/register", creds)
    if status not in (200, 201):
        sys.exit(f"register failed on {port}: {status} {data[:300]!r}")
    status, data = http_json(port, "POST", "/api/v1/auth/login",
                             {"email": creds["email"], "password": creds["password"]})
    if status != 200:
        sys.exit(f"login failed on {port}: {status} {data[:300]!r}")
    token = json.loads(data)["access_token"]
    status, data = http_json(port, "POST", "/api/v1/auth/api-keys", {"name": "bench", "scopes": ["inference"]},
                             {"authorization": f"Bearer {token}"})
    if status not in (200, 201):
        sys.exit(f"api key creation failed on {port}: {status} {data[:300]!r}")
    return token, json.loads(data)["key"]


def check_answers(port, credential):
    auth = {"authorization": f"Bearer {credential}"}
    body = {"model": "fast", "messages": [{"role": "user", "content": PROMPT}], "temperature": 0.7}
    status, data = http_json(port, "POST", "/v1/chat/completions", body, auth)
    if status != 200 or "quick brown fox" not in json.loads(data)["choices"][0]["message"]["content"]:
        sys.exit(f"unexpected answer on port {port}: {status} {data[:300]!r}")
    body.update(stream=True, stream_options={"include_usage": True})
    status, data = http_json(port, "POST", "/v1/chat/completions", body, auth)
    if status != 200 or b"[DONE]" not in data:
        sys.exit(f"unexpected stream on port {port}: {status} {data[:300]!r}")


def body_file(work, name, stream):
    body = {"model": "fast", "messages": [{"role": "user", "content": PROMPT}], "temperature": 0.7}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    path = os.path.join(work, f"{name}.json")
    with open(path, "w") as f:
        json.dump(body, f)
    return path


def busy_seconds():
    """CPU seconds the whole machine spent busy (all cores; not idle or waiting), /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def switches(pid):
    """Context switches (voluntary and not) of every thread of a running process, from /proc:
    each is a thread going to sleep or being put off a core, and most come back as a wake-up."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total


def postgres_seconds():
    """CPU seconds of every PostgreSQL process (the postmaster and its backends, one per
    connection; pools keep theirs through a run), from /proc."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                raw = f.read()
        except OSError:
            continue
        name = raw[raw.find("(") + 1:raw.rfind(")")]
        if name != "postgres":
            continue
        fields = raw[raw.rfind(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def redis_calls():
    """Commands Redis has run, by name (`INFO commandstats`; a script's own calls count under
    their names too), from the server of TEST_REDIS_URL; empty when it cannot be asked."""
    parts = urllib.parse.urlsplit(os.environ.get("TEST_REDIS_URL", ""))
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=5) as conn:
            conn.sendall(b"INFO commandstats\r\n")
            reply = b""
            while b"\r\n" not in reply:
                reply += conn.recv(65536)
            header, _, rest = reply.partition(b"\r\n")
            size = int(header[1:])
            while len(rest) < size:
                rest += conn.recv(65536)
    except (OSError, ValueError):
        return {}
    calls = {}
    for line in rest[:size].decode().splitlines():
        if line.startswith("cmdstat_"):
            name, _, stats = line[len("cmdstat_"):].partition(":")
            calls[name] = int(dict(kv.split("=") for kv in stats.split(","))["calls"])
    return calls


# A process that sleeps 1 ms at a time for the given seconds and prints how late it woke up
# (ms past the millisecond): how long a thread of this machine waits for a core once it is due,
# under the load of the run beside it. Every hop of a request is such a wake-up.
WAKE_PROBE = r"""
import json, sys, time
end = time.monotonic() + float(sys.argv[1])
late = []
while time.monotonic() < end:
    started = time.perf_counter()
    time.sleep(0.001)
    late.append((time.perf_counter() - started) * 1000 - 1.0)
late.sort()
n = len(late)
print(json.dumps({"p50": late[n // 2], "p99": late[int(n * 0.99)], "p999": late[int(n * 0.999)], "max": late[-1]}))
"""


class SplitBench(Bench):
    """`Bench` (bench/gateway.py) plus PostgreSQL's cores, the cores the whole machine was
    busy during each run (other people's work on a shared machine included) and, for runs at a
    fixed rate, the Redis commands per request."""

    databases = ()

    def run(self, label, *args, **kwargs):
        # Each run starts from vacuumed tables: PostgreSQL's own upkeep of the usage tables the
        # earlier runs filled (autovacuum, up to 0.9 cores here) would otherwise land in
        # whichever run crossed its threshold, a different side each time.
        for url in self.databases:
            vacuum(url)
        settle()
        perf = self.perf_start(label)
        before, pg_before, started = busy_seconds(), postgres_seconds(), time.monotonic()
        calls_before = redis_calls()
        switches_before = {name: switches(pid) for name, pid in self.watch.items()}
        rate = kwargs.get("rate")
        length = self.args.warmup + (kwargs.get("duration") or self.args.duration)
        probe = None
        if rate and not self.args.no_wake_probe:
            probe = subprocess.Popen([sys.executable, "-c", WAKE_PROBE, str(length)],
                                     stdout=subprocess.PIPE, text=True)
        result = super().run(label, *args, **kwargs)
        if probe:
            out, _ = probe.communicate(timeout=60)
            result["wakeup_late_ms"] = json.loads(out)
            late = result["wakeup_late_ms"]
            print(f"    a sleeping process woke up late by p99 {late['p99']:.3f} ms, p99.9 {late['p999']:.3f} ms, "
                  f"max {late['max']:.3f} ms", flush=True)
        self.perf_stop(perf)
        took = time.monotonic() - started
        result["cpu_cores"]["postgres"] = round((postgres_seconds() - pg_before) / took, 2)
        result["cpu_cores"]["machine"] = round((busy_seconds() - before) / took, 2)
        # Open loop: every request of the warm-up and the run was sent, at `rate`.
        sent = int(length * rate) if rate else 0
        if rate and calls_before:
            calls = redis_calls()
            per = {name: round((n - calls_before.get(name, 0)) / sent, 2) for name, n in calls.items()}
            result["redis_per_request"] = {k: v for k, v in sorted(per.items()) if v >= 0.01}
            print(f"    redis commands per request: {result['redis_per_request']}", flush=True)
        if rate:
            per = {name: round((switches(pid) - switches_before[name]) / sent, 2)
                   for name, pid in self.watch.items()}
            result["switches_per_request"] = {k: v for k, v in per.items() if v >= 0.05}
            print(f"    context switches per request (all sides' requests): {result['switches_per_request']}",
                  flush=True)
        result["after"] = settle()
        if result["after"]["cpu_s"] >= 0.2:
            print(f"    work left after the run: {result['after']['cpu_s']} CPU s over "
                  f"{result['after']['wall_s']} s before the machine was idle", flush=True)
        return result


    def perf_start(self, label):
        """With --perf TEXT, a run whose label contains TEXT is profiled: `perf record` on
        every watched Confab process, reports in the --perf-dir."""
        if not self.args.perf or self.args.perf not in label:
            return []
        os.makedirs(self.args.perf_dir, exist_ok=True)
        recorders = []
        for name, pid in self.watch.items():
            if name not in self.confab:
                continue
            out = os.path.join(self.args.perf_dir, f"{label.replace(' ', '_').replace('/', '')}.{name}.data")
            recorders.append(subprocess.Popen(
                ["perf", "record", "-q", "-F", "499", "-p", str(pid), "-o", out],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        return recorders

    @staticmethod
    def perf_stop(recorders):
        for rec in recorders:
            rec.send_signal(signal.SIGINT)
        for rec in recorders:
            rec.wait(timeout=60)


def settle(idle_cores=0.1, window=0.25, limit=60.0):
    """Waits until the machine is idle (below `idle_cores` over `window` seconds), so work a
    run left behind (queued usage events, say) neither counts in the next run nor goes
    unseen: returns the CPU seconds and wall seconds it took (the idle window excluded)."""
    started, busy_before = time.monotonic(), busy_seconds()
    while time.monotonic() - started < limit:
        mark, at = busy_seconds(), time.monotonic()
        time.sleep(window)
        if (busy_seconds() - mark) / (time.monotonic() - at) < idle_cores:
            return {"cpu_s": round(mark - busy_before, 2), "wall_s": round(at - started, 2)}
    return {"cpu_s": round(busy_seconds() - busy_before, 2), "wall_s": round(limit, 2)}


SIDES = ("aio", "inference", "gateway")
SIDE_NAMES = {"aio": "all-in-one", "inference": "inference", "gateway": "gw>inference",
              "nginx": "nginx>inference"}


def nginx_binary():
    """Debian's nginx (`apt-get install nginx-light`), or None."""
    # /usr/sbin is not on every user's PATH.
    return shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)


def start_nginx(procs, args, work, port, upstream_port, log):
    """nginx as a bare reverse proxy in front of the inference process: the peer of the hop.
    It forwards as it came (no authentication, limits or service tokens: the inference process
    checks the API key or JWT itself, as on the `inference` side), over kept-alive upstream
    connections, with response buffering off so SSE events pass as they come. Returns the pids
    of its workers (the master only supervises)."""
    conf = os.path.join(work, "nginx.conf")
    temp = os.path.join(work, "nginx-temp")
    os.makedirs(temp)
    with open(conf, "w") as f:
        f.write(f"""
daemon off;
user root;
worker_processes {args.nginx_workers};
pid {work}/nginx.pid;
error_log {work}/nginx.err warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    upstream inference {{ server 127.0.0.1:{upstream_port}; keepalive 128; keepalive_requests 1000000; }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        keepalive_requests 1000000;
        location / {{
            proxy_pass http://inference;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }}
    }}
}}
""")
    proc = procs.start([args.nginx, "-c", conf, "-e", os.path.join(work, "nginx.err")], cwd=work,
                       stdout=log, stderr=log)
    wait_until(lambda: http_json(port, "GET", "/readyz")[0] == 200, proc, "nginx", 30)
    children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    return [int(pid) for pid in children]


def hop(args, work, bench, ports, creds, sides):
    plain, streamed = body_file(work, "plain", False), body_file(work, "stream", True)
    concurrencies = [int(c) for c in str(args.concurrency).split(",")]
    runs = {}
    for rep in range(args.repeat):
        tag = f" #{rep + 1}" if args.repeat > 1 else ""
        # Rotate which side goes first, so drift in background load hits each in turn.
        n = len(sides)
        order = sides[rep % n:] + sides[:rep % n]
        for kind, body, stream in (("plain", plain, False), ("stream", streamed, True)):
            if kind not in args.kinds.split(","):
                continue
            for cred in args.creds.split(","):
                for mode in ("rate", "max"):
                    if mode == "rate" and not args.sequential:
                        # Every side in one run, in slices of --slice-ms in a random order per
                        # cycle: each at --rate during its slices, all under the same machine.
                        spec = [{"name": side, "url": f"http://127.0.0.1:{ports[side]}/v1/chat/completions",
                                 "headers": [f"authorization: Bearer {creds[side][cred]}"]} for side in sides]
                        whole = bench.run(f"{kind} {cred} {args.rate:g}/s interleaved{tag}", None, body, stream,
                                          rate=args.rate, duration=args.duration * len(sides), sides=spec)
                        for side_result in whole["sides"]:
                            result = dict(side_result)
                            # The whole run's, as the medians and the table expect of each side.
                            for key in ("wakeup_late_ms", "cpu_cores"):
                                if key in whole:
                                    result[key] = whole[key]
                            runs.setdefault((kind, cred, mode, side_result["name"]), []).append(result)
                        continue
                    for side in order:
                        url = f"http://127.0.0.1:{ports[side]}/v1/chat/completions"
                        headers = [f"authorization: Bearer {creds[side][cred]}"]
                        if mode == "rate":
                            result = bench.run(f"{kind} {cred} {args.rate:g}/s {side}{tag}", url, body, stream,
                                               headers, rate=args.rate)
                        else:
                            best = None
                            for c in concurrencies:
                                r = bench.run(f"{kind} {cred} c{c} {side}{tag}", url, body, stream, headers,
                                              concurrency=c)
                                r["concurrency"] = c
                                if best is None or r["rps"] > best["rps"]:
                                    best = r
                            result = best
                        runs.setdefault((kind, cred, mode, side), []).append(result)
    return {key: median_result(results) for key, results in runs.items()}, runs


def report_hop(args, r, raw_runs, sides):
    """The table of the hop runs. With nginx, its column and its hop (d-b) are the peer's: what
    a bare reverse proxy adds on this machine, beside what the gateway adds."""
    peer = "nginx" in sides

    def lat(res, q, key="latency_ms"):
        return (res.get(key) or {}).get(q)

    def row(label, cells, target=""):
        text = [fmt(v) if isinstance(v, float) or v is None else str(v) for v in cells]
        print(f"{label:34}" + "".join(f"{c:>13}" for c in text) + f"  {target}")

    def cells(values, hops, ratios):
        # all-in-one, inference, gateway[, nginx], hop gateway[, hop nginx], ratio gateway[, ratio nginx]
        keep = len(sides)
        return list(values[:keep]) + list(hops[:keep - 2]) + list(ratios[:keep - 2])

    print()
    print(f"Gateway hop, /v1/chat/completions, scripted model answering at once: median of {args.repeat} "
          f"round(s) of {args.duration:g} s each (after {args.warmup:g} s warm-up)")
    row("", cells(["all-in-one", "inference", "gw>inference", "nginx>infer."], ["hop gw", "hop nginx"],
                  ["gw/aio", "nginx/aio"]), "target")
    verdicts = []
    for kind in args.kinds.split(","):
        for cred in args.creds.split(","):
            res = [r[(kind, cred, "rate", s)] for s in sides]
            b = res[1]
            for q in ("p50", "p90", "p99"):
                vals = [lat(x, q) for x in res]
                hops = [v - vals[1] for v in vals[2:]]
                row(f"{kind} {cred} {args.rate:g}/s {q} ms", cells(vals, hops, ["", ""]),
                    f"hop <= {TARGET_HOP_P99_MS:g} ms" if q == "p99" else "")
                if q == "p99":
                    verdicts.append((f"{kind} {cred}: gateway hop adds {hops[0]:.3f} ms p99 at {args.rate:g}/s "
                                     f"(target <= {TARGET_HOP_P99_MS:g} ms)"
                                     + (f"; nginx's hop {hops[1]:.3f} ms" if peer else ""),
                                     hops[0] <= TARGET_HOP_P99_MS))
            if kind == "stream":
                for q in ("p50", "p99"):
                    vals = [lat(x, q, "ttfb_ms") for x in res]
                    hops = [None if None in (v, vals[1]) else v - vals[1] for v in vals[2:]]
                    row(f"{kind} {cred} {args.rate:g}/s ttfb {q} ms", cells(vals, hops, ["", ""]))
            if all(x.get("wakeup_late_ms") for x in res):
                row(f"{kind} {cred} {args.rate:g}/s wake-up late p99.9 ms",
                    cells([x["wakeup_late_ms"]["p999"] for x in res], ["", ""], ["", ""]))
            row(f"{kind} {cred} {args.rate:g}/s achieved rps / errors",
                cells([f"{x['rps']:.0f} / {x['errors']}" for x in res], ["", ""], ["", ""]))
            res = [r[(kind, cred, "max", s)] for s in sides]
            a = res[0]
            ratios = [x["rps"] / a["rps"] if a["rps"] else float("nan") for x in res[1:]]
            best_c = "/".join(str(x[0]["concurrency"]) if len(set(y["concurrency"] for y in x)) == 1 else "mixed"
                              for x in (raw_runs[(kind, cred, "max", s)] for s in sides))
            row(f"{kind} {cred} max rps (c {best_c})",
                cells([f"{x['rps']:.0f}" for x in res], ["", ""], [f"{v:.3f}x" for v in ratios[1:]]),
                f"gw/aio >= {TARGET_SPLIT_RATIO:g}x")
            row(f"{kind} {cred} inference alone / all-in-one",
                cells([""] * 4, ["", ""], [f"{ratios[0]:.3f}x", ""]))
            for q in ("p50", "p99"):
                row(f"{kind} {cred} max-load latency {q} ms", cells([lat(x, q) for x in res], ["", ""], ["", ""]))
            row(f"{kind} {cred} max-load errors", cells([x["errors"] for x in res], ["", ""], ["", ""]))
            for s, x in zip(sides, res):
                cpu = " ".join(f"{k} {v}" for k, v in x["cpu_cores"].items() if v >= 0.01)
                print(f"{'':34} CPU cores, {SIDE_NAMES[s]} max run: {cpu}")
            verdicts.append((f"{kind} {cred}: split through the gateway / all-in-one max rps {ratios[1]:.3f}x "
                             f"(target >= {TARGET_SPLIT_RATIO:g}x)"
                             + (f"; through nginx {ratios[2]:.3f}x" if peer else ""),
                             ratios[1] >= TARGET_SPLIT_RATIO))
    return verdicts


def ws_run(args, label, send_port, sockets, token):
    cmd = [os.path.join(ROOT, args.bin_dir, "ws-fanout"), "--label", label, "--send", f"http://127.0.0.1:{send_port}",
           "--token", token, "--model", "paced", "--answers", str(args.answers), "--warmup", str(args.ws_warmup)]
    for name, port in sockets:
        cmd += ["--socket", f"{name}=ws://127.0.0.1:{port}/api/v1/ws"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        sys.exit(f"ws-fanout failed ({label}): {out.stderr.strip()}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if args.raw:
        print("    " + json.dumps(result), flush=True)
    return result


def report_ws(args, results):
    print()
    print(f"WebSocket fan-out of message.delta: {args.answers} answers (after {args.ws_warmup} warm-up) from the "
          f"`paced` scripted model (a word every {args.ws_delay_ms} ms), one at a time; ms")
    print(f"{'':34}{'pieces':>12}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}")
    rows = {}
    for res in results:
        for s in res["sockets"]:
            name = f"{res['label']} socket {s['socket']}"
            rows[name] = s
            for what, key in (("after SSE", "after_sse_ms"), ("first delta from send", "first_delta_from_send_ms"),
                              ("completed from send", "completed_from_send_ms")):
                d = s[key] or {}
                pieces = f"{s['pieces_seen']}/{s['pieces_expected']}" if key == "after_sse_ms" else ""
                print(f"{name + ' ' + what:34}{pieces:>12}" + "".join(f"{fmt(d.get(q)):>9}"
                                                                      for q in ("p50", "p90", "p99", "max")))
        d = res["sse_first_delta_from_send_ms"] or {}
        print(f"{res['label'] + ' SSE first delta from send':34}{'':>12}" + "".join(f"{fmt(d.get(q)):>9}"
                                                                                   for q in ("p50", "p90", "p99", "max")))
        if res["missed_completions"]:
            print(f"  {res['label']}: {res['missed_completions']} message.completed missed")
    base = rows.get("all-in-one socket aio")
    for name in ("split socket same", "split socket other"):
        other = rows.get(name)
        if base and other and base["after_sse_ms"] and other["after_sse_ms"]:
            added = {q: other["after_sse_ms"][q] - base["after_sse_ms"][q] for q in ("p50", "p99")}
            print(f"{name} vs all-in-one, after SSE: +{added['p50']:.3f} ms p50, +{added['p99']:.3f} ms p99")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds recorded per loadgen run")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of unrecorded load before each run")
    parser.add_argument("--rate", type=float, default=1000.0, help="open-loop requests/s")
    parser.add_argument("--concurrency", default="32", help="closed-loop connections; a comma list: the best")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the hop runs; medians are reported")
    parser.add_argument("--loadgen-threads", type=int, default=1)
    parser.add_argument("--answers", type=int, default=300, help="recorded answers of the fan-out runs")
    parser.add_argument("--ws-warmup", type=int, default=20)
    parser.add_argument("--ws-delay-ms", type=int, default=5, help="the paced model's delay between words")
    parser.add_argument("--binary", default="target/release/confab")
    parser.add_argument("--bin-dir", default="target/release", help="where loadgen and ws-fanout are")
    parser.add_argument("--limits", choices=("on", "off"), default="on",
                        help="request and token limits (far above the load) on, or off everywhere (diagnosis)")
    parser.add_argument("--split-redis", choices=("on", "off"), default="on",
                        help="off: split processes without Redis, each limiting and caching alone (diagnosis)")
    parser.add_argument("--slice-ms", type=int, default=100,
                        help="fixed-rate runs: each side's slice of time in the interleaved run")
    parser.add_argument("--sequential", action="store_true",
                        help="fixed-rate runs one side after another instead of interleaved (the method "
                             "before 2026-12-04: each side under whatever the machine did during its run)")
    parser.add_argument("--kinds", default="plain,stream", help="hop runs: plain, stream or both")
    parser.add_argument("--creds", default="key,jwt", help="hop runs: API key, JWT or both")
    parser.add_argument("--skip-hop", action="store_true")
    parser.add_argument("--skip-ws", action="store_true")
    parser.add_argument("--raw", action="store_true", help="also print each JSON line")
    parser.add_argument("--gateway-threads", type=int, default=0,
                        help="the gateway's serving threads, gateway.threads (0: one per core, the default)")
    parser.add_argument("--split-workers", type=int, default=0,
                        help="TOKIO_WORKER_THREADS of each split process (0: one per core, the default)")
    parser.add_argument("--nginx", default=nginx_binary(),
                        help="nginx for the peer column (a bare reverse proxy in front of the inference process)")
    parser.add_argument("--nginx-workers", default="auto", help="nginx's worker_processes")
    parser.add_argument("--no-nginx", action="store_true", help="leave the peer column out")
    parser.add_argument("--perf", default="", help="profile the runs whose label contains this (perf record)")
    parser.add_argument("--perf-dir", default="target/perf", help="where --perf writes its data")
    parser.add_argument("--no-wake-probe", action="store_true",
                        help="leave out the process that measures how late a sleeper wakes up during fixed-rate runs")
    parser.add_argument("--dump-dir", default="",
                        help="diagnosis: each fixed-rate request's due time and latency, a file per run")
    args = parser.parse_args()

    for exe in (args.binary, *(os.path.join(args.bin_dir, b) for b in ("loadgen", "ws-fanout"))):
        if not os.path.exists(os.path.join(ROOT, exe)):
            sys.exit(f"{exe} is missing: cargo build --release -p confab -p confab-bench")
    missing = [v for v in ("TEST_POSTGRES_URL", "TEST_NATS_URL", "TEST_REDIS_URL") if not os.environ.get(v)]
    if missing:
        sys.exit(f"{', '.join(missing)} unset: start the servers with scripts/lib (see --help)")

    run_id = "bench" + os.urandom(4).hex()
    procs = Procs()
    work = tempfile.mkdtemp(prefix="confab-split-bench-")
    log = open(os.path.join(work, "servers.log"), "w")
    try:
        pg = os.environ["TEST_POSTGRES_URL"]
        ports = {n: free_port() for n in ("aio", "auth", "admin", "inference", "chat1", "chat2", "gateway", "nginx")}
        databases = (fresh_database(pg, f"{run_id}_aio"), fresh_database(pg, f"{run_id}_split"))
        aio_conf = os.path.join(work, "aio.toml")
        with open(aio_conf, "w") as f:
            f.write(common_config(args, databases[0]))
        split_conf = os.path.join(work, "split.toml")
        with open(split_conf, "w") as f:
            f.write(split_config(args, databases[1], ports, run_id))

        watch = {"aio": start_confab(procs, args, work, "aio", aio_conf, ports["aio"], None, log)}
        for name, services in (("auth", "auth"), ("admin", "admin"), ("inference", "inference"),
                               ("chat1", "chat"), ("chat2", "chat"), ("gateway", "gateway")):
            watch[name] = start_confab(procs, args, work, name, split_conf, ports[name], services, log)
        sides = SIDES
        nginx_workers = []
        if args.nginx and not args.no_nginx:
            nginx_workers = start_nginx(procs, args, work, ports["nginx"], ports["inference"], log)
            sides = SIDES + ("nginx",)
        else:
            print("no nginx (apt-get install nginx-light): the peer column is left out", flush=True)
        aio_token, aio_key = user(ports["aio"], "bench@example.com")
        split_token, split_key = user(ports["gateway"], "bench@example.com")
        creds = {"aio": {"key": aio_key, "jwt": aio_token},
                 "inference": {"key": split_key, "jwt": split_token},
                 "gateway": {"key": split_key, "jwt": split_token},
                 "nginx": {"key": split_key, "jwt": split_token}}
        for side in sides:
            for cred in ("key", "jwt"):
                check_answers(ports[side], creds[side][cred])

        bench = SplitBench(args, work)
        bench.databases = databases
        bench.loadgen = os.path.join(ROOT, args.bin_dir, "loadgen")
        bench.watch = {name: proc.pid for name, proc in watch.items()}
        bench.confab = set(watch)
        bench.watch.update(infra_pids())
        bench.watch.update({f"nginx{i + 1}": pid for i, pid in enumerate(nginx_workers)})
        print(f"limits {args.limits}, split Redis {args.split_redis}; watching {sorted(bench.watch)}", flush=True)
        print(f"commit {git_head()}, load average before: {loadavg()}", flush=True)
        verdicts = []
        if not args.skip_hop:
            r, raw_runs = hop(args, work, bench, ports, creds, sides)
        ws = []
        if not args.skip_ws:
            ws.append(ws_run(args, "all-in-one", ports["aio"], [("aio", ports["aio"])], aio_token))
            ws.append(ws_run(args, "split", ports["chat1"], [("same", ports["chat1"]), ("other", ports["chat2"])],
                             split_token))
        print(f"load average after: {loadavg()}", flush=True)
        if not args.skip_hop:
            verdicts = report_hop(args, r, raw_runs, sides)
        if ws:
            report_ws(args, ws)
        print()
        for what, ok in verdicts:
            print(f"{'MET    ' if ok else 'NOT MET'} {what}")
    finally:
        procs.stop_all()
        log.close()
        if os.environ.get("KEEP_BENCH_DIR"):
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def listener_pid(url):
    """The pid of the process listening on `url`'s port on 127.0.0.1 (`ss`), or None."""
    port = urllib.parse.urlsplit(url).port
    out = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True)
    marker = "pid="
    at = out.stdout.find(marker)
    if at < 0:
        return None
    digits = out.stdout[at + len(marker):].split(",", 1)[0]
    return int(digits) if digits.isdigit() else None


def infra_pids():
    """NATS and Redis (PostgreSQL's work is in its backends, one process per connection: the
    machine-wide figure covers it)."""
    found = {}
    for name, var in (("nats", "TEST_NATS_URL"), ("redis", "TEST_REDIS_URL")):
        pid = listener_pid(os.environ[var])
        if pid:
            found[name] = pid
    return found


def git_head():
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


if __name__ == "__main__":
    main()
