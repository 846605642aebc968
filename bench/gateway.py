#!/usr/bin/env python3
"""Gateway overhead and throughput of Confab's OpenAI-compatible API, side by side with
calling the upstream directly, and with LiteLLM's proxy in front of the same upstream.

Usage (release builds first):
    cargo build --release -p confab
    cargo build --release -p confab-bench
    python3 bench/gateway.py [--repeat 3] [--duration 10] [--warmup 2] [--rate 1000] [--concurrency 32]
                             [--skip-litellm] [--raw]

Everything runs on 127.0.0.1 and every load is bounded in time (and so in requests):
- `fake-upstream` (bench/loadgen): a fake OpenAI-compatible server with precomputed answers;
- `confab serve` on a fresh temporary data dir (SQLite) with a provider `fake` pointing at
  the fake, logs at `warn`, request and token limits on but far above what the load reaches,
  usage accounting, cache and metrics on as by default; a registered user and an API key
  with the `inference` scope, sent as `Authorization: Bearer cfk_…`;
- LiteLLM's proxy (`litellm --config … --num_workers 1`) from a virtualenv under
  target/litellm-venv (created with pip when missing), pointing at the same fake.

Measured with `loadgen` (bench/loadgen), one JSON line per run:
(a) open loop at --rate requests/s, direct vs through Confab: added p50/p99 latency
    (target: added p99 <= 1 ms);
(b) closed loop at --concurrency: max requests/s, Confab / direct (target >= 0.4x);
(c) (a) and (b) again with streamed answers (SSE, read to `[DONE]`);
(e) the stack floor: `passthrough` (bench/loadgen), a bare axum + reqwest forwarder with no
    auth, limits, accounting, metrics or JSON, at --concurrency; its max requests/s / direct is
    the most any gateway on Confab's HTTP stack can reach here, and Confab / floor shows how
    much of that Confab keeps;
(d) LiteLLM at --concurrency (max requests/s, p50/p99) and open loop at a rate it sustains
    (half its max), with Confab at the same rate for comparison; Confab / LiteLLM max
    requests/s (target >= 50x).
Rounds (a)-(c) run --repeat times, alternating which side goes first, and the table shows
medians; LiteLLM runs once. The request body has temperature 0.7, so Confab's exact-match
cache (deterministic requests only) never answers: every request goes to the upstream. CPU
cores per process (CPU time / wall time, from /proc) are printed with every run.
"""

import argparse
import http.client
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET_ADDED_P99_MS = 1.0
TARGET_THROUGHPUT_RATIO = 0.4
TARGET_LITELLM_RATIO = 50.0
PROMPT = "Say something short about foxes."


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(port, method, path, body=None, headers=None, timeout=10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    hdrs = {"content-type": "application/json"}
    hdrs.update(headers or {})
    conn.request(method, path, json.dumps(body) if body is not None else None, hdrs)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


def wait_until(check, proc, what, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{what} exited with {proc.returncode} before it was ready")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit(f"{what} was not ready after {timeout} s")


def cpu_seconds(pid):
    """User + system CPU time of a running process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


class Procs:
    """Processes this script started; all stopped on exit."""

    def __init__(self):
        self.procs = []

    def start(self, args, **kwargs):
        proc = subprocess.Popen(args, **kwargs)
        self.procs.append(proc)
        return proc

    def stop_all(self):
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def clean_env():
    """The environment without Confab configuration variables, so only the config file and
    the flags shape the server under test."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CONFAB_") and k != "DATABASE_URL"}


class Bench:
    def __init__(self, args, work):
        self.args = args
        self.work = work
        self.loadgen = os.path.join(ROOT, args.bin_dir, "loadgen")
        self.watch = {}  # name -> pid, for CPU accounting

    def body_file(self, name, stream, model):
        body = {"model": model, "messages": [{"role": "user", "content": PROMPT}], "temperature": 0.7}
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        path = os.path.join(self.work, f"{name}.json")
        with open(path, "w") as f:
            json.dump(body, f)
        return path

    def run(self, label, url, body, stream, headers=(), rate=None, concurrency=None, duration=None, sides=None):
        """One loadgen run against `url`; or, with `sides` (a list of {"name", "url",
        "headers"}) and a rate, against each side in turn, in slices of --slice-ms (the
        result's "sides" has each one's figures)."""
        duration = duration or self.args.duration
        cmd = [self.loadgen, "--label", label, "--body-file", body,
               "--duration", str(duration), "--warmup", str(self.args.warmup),
               "--threads", str(self.args.loadgen_threads)]
        if sides:
            path = os.path.join(self.work, "sides.json")
            with open(path, "w") as f:
                json.dump(sides, f)
            cmd += ["--sides", path, "--slice-ms", str(getattr(self.args, "slice_ms", 100))]
        else:
            cmd += ["--url", url]
        for h in headers:
            cmd += ["--header", h]
        if stream:
            cmd.append("--stream")
        if rate is not None:
            cmd += ["--rate", str(rate)]
            dump_dir = getattr(self.args, "dump_dir", "")
            if dump_dir:
                # Each request's due time and latency, to see whether slow ones come together.
                os.makedirs(dump_dir, exist_ok=True)
                name = "".join(c if c.isalnum() else "_" for c in label)
                cmd += ["--dump", os.path.join(dump_dir, f"{name}.txt")]
        else:
            cmd += ["--concurrency", str(concurrency)]
        before = {name: cpu_seconds(pid) for name, pid in self.watch.items()}
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + self.args.warmup + 120)
        wall = time.monotonic() - started
        if out.returncode != 0:
            sys.exit(f"loadgen failed ({label}): {out.stderr.strip()}")
        after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        # CPU cores used on average over the whole run (warm-up included) by each process.
        cpu = {name: (cpu_seconds(pid) - before[name]) / wall for name, pid in self.watch.items()}
        cpu["loadgen"] = ((after_children.ru_utime + after_children.ru_stime)
                          - (children.ru_utime + children.ru_stime)) / wall
        result["cpu_cores"] = {k: round(v, 2) for k, v in cpu.items()}
        lat = result["latency_ms"] or {}
        print(f"  {label:28} rps {result['rps']:>9.1f}  p50 {lat.get('p50', float('nan')):8.3f} ms  "
              f"p99 {lat.get('p99', float('nan')):8.3f} ms  errors {result['errors']}  cpu {result['cpu_cores']}",
              flush=True)
        for side in result.get("sides") or []:
            lat = side["latency_ms"] or {}
            print(f"    {side['name']:26} rps {side['rps']:>9.1f}  p50 {lat.get('p50', float('nan')):8.3f} ms  "
                  f"p99 {lat.get('p99', float('nan')):8.3f} ms  errors {side['errors']}", flush=True)
        if self.args.raw:
            print("    " + json.dumps(result), flush=True)
        return result


def start_fake(procs, args, log):
    port = free_port()
    proc = procs.start([os.path.join(ROOT, args.bin_dir, "fake-upstream"), "--listen", f"127.0.0.1:{port}",
                        "--threads", str(args.fake_threads)], stdout=log, stderr=log)
    wait_until(lambda: http_json(port, "GET", "/v1/models")[0] == 200, proc, "fake-upstream", 10)
    return port, proc


def start_passthrough(procs, args, fake_port, log):
    port = free_port()
    proc = procs.start([os.path.join(ROOT, args.bin_dir, "passthrough"), "--listen", f"127.0.0.1:{port}",
                        "--upstream", f"http://127.0.0.1:{fake_port}/v1/chat/completions"], stdout=log, stderr=log)
    body = {"model": "fake-model", "messages": [{"role": "user", "content": PROMPT}]}
    wait_until(lambda: http_json(port, "POST", "/v1/chat/completions", body)[0] == 200, proc, "passthrough", 10)
    return port, proc


def start_confab(procs, args, work, fake_port, log):
    port = free_port()
    data_dir = os.path.join(work, "confab-data")
    os.makedirs(data_dir)
    config = os.path.join(work, "confab.toml")
    with open(config, "w") as f:
        f.write(f"""[log]
level = "warn"

[inference]
providers = [{{ name = "fake", kind = "openai", base_url = "http://127.0.0.1:{fake_port}/v1", models = ["fake-model"] }}]

[inference.limits]
# On, but far above anything the benchmark reaches.
user_requests_per_minute = 10000000
key_requests_per_minute = 10000000
user_tokens_per_day = 1000000000000
key_tokens_per_day = 1000000000000

[inference.concurrency]
# The one benchmark key runs --concurrency requests at once: a cap far above that.
user_requests = 100000
key_requests = 100000
""")
    binary = os.path.join(ROOT, args.binary)
    proc = procs.start([binary, "--config", config, "serve", "--listen", f"127.0.0.1:{port}",
                        "--data-dir", data_dir], cwd=work, env=clean_env(), stdout=log, stderr=log)
    wait_until(lambda: http_json(port, "GET", "/readyz")[0] == 200, proc, "confab serve", 30)
    creds = {"email": "bench@example.com", "password": "correct horse battery staple", "name": "Bench"}
    status, data = http_json(port, "POST", "/api/v1/auth/register", creds)
    if status not in (200, 201):
        sys.exit(f"register failed: {status} {data[:200]!r}")
    status, data = http_json(port, "POST", "/api/v1/auth/login",
                             {"email": creds["email"], "password": creds["password"]})
    if status != 200:
        sys.exit(f"login failed: {status} {data[:200]!r}")
    token = json.loads(data)["access_token"]
    status, data = http_json(port, "POST", "/api/v1/auth/api-keys", {"name": "bench", "scopes": ["inference"]},
                             {"authorization": f"Bearer {token}"})
    if status not in (200, 201):
        sys.exit(f"api key creation failed: {status} {data[:200]!r}")
    return port, proc, json.loads(data)["key"], config


def litellm_bin(args):
    venv = os.path.join(ROOT, args.litellm_venv)
    exe = os.path.join(venv, "bin", "litellm")
    if os.path.exists(exe):
        return exe, None
    print(f"creating {venv} and installing litellm[proxy] (once)", flush=True)
    steps = [[sys.executable, "-m", "venv", venv],
             [os.path.join(venv, "bin", "pip"), "install", "--quiet", "litellm[proxy]"]]
    for step in steps:
        out = subprocess.run(step, capture_output=True, text=True)
        if out.returncode != 0:
            return None, f"`{' '.join(step)}` failed: {(out.stderr or out.stdout).strip()[-2000:]}"
    return (exe, None) if os.path.exists(exe) else (None, f"{exe} missing after install")


def start_litellm(procs, args, work, fake_port, log):
    exe, why = litellm_bin(args)
    if exe is None:
        return None, None, None, why
    config = os.path.join(work, "litellm.yaml")
    # LiteLLM refuses to start without a master key; without a database it is checked in
    # memory, as Confab checks its API key (against SQLite).
    master_key = "sk-bench-" + os.urandom(16).hex()
    with open(config, "w") as f:
        f.write(f"""model_list:
  - model_name: fake-model
    litellm_params:
      model: openai/fake-model
      api_base: http://127.0.0.1:{fake_port}/v1
      api_key: fake-key
litellm_settings:
  telemetry: false
general_settings:
  master_key: {master_key}
""")
    port = free_port()
    env = dict(clean_env(), LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_LOG="ERROR", NO_DOCS="True")
    proc = procs.start([exe, "--config", config, "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"],
                       cwd=work, env=env, stdout=log, stderr=log)
    try:
        wait_until(lambda: http_json(port, "GET", "/health/liveliness")[0] == 200, proc, "litellm", 180)
    except SystemExit as e:
        return None, None, None, f"{e}; its log: {tail(log.name)}"
    return port, proc, master_key, None


def tail(path, n=1500):
    with open(path, errors="replace") as f:
        return f.read()[-n:]


def check_answers(port, key, model, prefix="/v1"):
    """One plain and one streamed request must come back right before any load."""
    auth = {"authorization": f"Bearer {key}"} if key else {}
    body = {"model": model, "messages": [{"role": "user", "content": PROMPT}], "temperature": 0.7}
    status, data = http_json(port, "POST", f"{prefix}/chat/completions", body, auth)
    if status != 200 or "quick brown fox" not in json.loads(data)["choices"][0]["message"]["content"]:
        sys.exit(f"unexpected answer on port {port}: {status} {data[:300]!r}")
    body.update(stream=True, stream_options={"include_usage": True})
    status, data = http_json(port, "POST", f"{prefix}/chat/completions", body, auth)
    if status != 200 or b"[DONE]" not in data or b'"usage"' not in data:
        sys.exit(f"unexpected stream on port {port}: {status} {data[:300]!r}")


def median_result(results):
    """The median of each figure over repeated runs (one run: itself)."""
    if len(results) == 1:
        return results[0]

    def med(values):
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None

    def quantiles(key):
        if any(r.get(key) is None for r in results):
            return None
        return {q: med(r[key][q] for r in results) for q in results[0][key]}

    return {
        "rps": med(r["rps"] for r in results),
        "errors": sum(r["errors"] for r in results),
        "latency_ms": quantiles("latency_ms"),
        "ttfb_ms": quantiles("ttfb_ms"),
        "wakeup_late_ms": quantiles("wakeup_late_ms"),
        "cpu_cores": {k: round(med(r["cpu_cores"][k] for r in results), 2) for k in results[0]["cpu_cores"]},
    }


def fmt(v, spec=".3f"):
    return "n/a" if v is None else format(v, spec)


def loadavg():
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds recorded per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of unrecorded load before each run")
    parser.add_argument("--rate", type=float, default=1000.0, help="open-loop requests/s for (a) and (c)")
    parser.add_argument("--concurrency", type=int, default=32, help="closed-loop workers for (b), (c), (d)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds of (a)-(c), alternating which side goes first; medians are reported")
    parser.add_argument("--loadgen-threads", type=int, default=1)
    parser.add_argument("--fake-threads", type=int, default=1)
    parser.add_argument("--binary", default="target/release/confab")
    parser.add_argument("--bin-dir", default="target/release", help="where fake-upstream and loadgen are")
    parser.add_argument("--litellm-venv", default="target/litellm-venv")
    parser.add_argument("--skip-litellm", action="store_true")
    parser.add_argument("--raw", action="store_true", help="also print each loadgen JSON line")
    args = parser.parse_args()

    for exe in (args.binary, *(os.path.join(args.bin_dir, b) for b in ("fake-upstream", "loadgen", "passthrough"))):
        if not os.path.exists(os.path.join(ROOT, exe)):
            sys.exit(f"{exe} is missing: cargo build --release -p confab -p confab-bench")

    procs = Procs()
    work = tempfile.mkdtemp(prefix="confab-gateway-bench-")
    log = open(os.path.join(work, "servers.log"), "w")
    try:
        fake_port, fake = start_fake(procs, args, log)
        confab_port, confab, key, _ = start_confab(procs, args, work, fake_port, log)
        floor_port, floor = start_passthrough(procs, args, fake_port, log)
        check_answers(fake_port, None, "fake-model")
        check_answers(confab_port, key, "fake-model")
        check_answers(floor_port, None, "fake-model")
        bench = Bench(args, work)
        bench.watch = {"fake": fake.pid, "confab": confab.pid, "floor": floor.pid}
        auth = [f"authorization: Bearer {key}"]
        direct_url = f"http://127.0.0.1:{fake_port}/v1/chat/completions"
        confab_url = f"http://127.0.0.1:{confab_port}/v1/chat/completions"
        floor_url = f"http://127.0.0.1:{floor_port}/v1/chat/completions"
        plain = bench.body_file("plain", False, "fake-model")
        streamed = bench.body_file("stream", True, "fake-model")
        print(f"load average before: {loadavg()}", flush=True)
        print(f"load: {args.duration:g} s recorded after {args.warmup:g} s warm-up per run; "
              f"loadgen threads {args.loadgen_threads}, fake threads {args.fake_threads}", flush=True)

        runs = {}
        for rep in range(args.repeat):
            tag = f" #{rep + 1}" if args.repeat > 1 else ""
            for kind, body, stream in (("plain", plain, False), ("stream", streamed, True)):
                for mode in ("rate", "max"):
                    load = {"rate": args.rate} if mode == "rate" else {"concurrency": args.concurrency}
                    what = f"{args.rate:g}/s" if mode == "rate" else f"c{args.concurrency}"
                    # Alternate which side goes first so drift in background load hits both.
                    sides = ("direct", "confab") if rep % 2 == 0 else ("confab", "direct")
                    if mode == "max":
                        sides += ("floor",)
                    for side in sides:
                        url, headers = {"direct": (direct_url, ()), "confab": (confab_url, auth),
                                        "floor": (floor_url, ())}[side]
                        runs.setdefault((kind, mode, side), []).append(
                            bench.run(f"{kind} {what} {side}{tag}", url, body, stream, headers, **load))
        r = {key: median_result(results) for key, results in runs.items()}

        litellm = {"why": "skipped (--skip-litellm)"} if args.skip_litellm else {}
        if not args.skip_litellm:
            port, proc, master_key, why = start_litellm(procs, args, work, fake_port, log)
            if port is None:
                litellm["why"] = why
                print(f"LiteLLM unavailable: {why}", flush=True)
            else:
                check_answers(port, master_key, "fake-model")
                lauth = [f"authorization: Bearer {master_key}"]
                bench.watch["litellm"] = proc.pid
                litellm_url = f"http://127.0.0.1:{port}/v1/chat/completions"
                litellm["max"] = bench.run(f"plain c{args.concurrency} litellm", litellm_url, plain, False, lauth,
                                           concurrency=args.concurrency)
                sustain = max(1, int(litellm["max"]["rps"] * 0.5))
                litellm["rate"] = sustain
                litellm["at_rate"] = bench.run(f"plain {sustain}/s litellm", litellm_url, plain, False, lauth, rate=sustain)
                litellm["confab_at_rate"] = bench.run(f"plain {sustain}/s confab", confab_url, plain, False, auth,
                                                      rate=sustain)
                litellm["stream_max"] = bench.run(f"stream c{args.concurrency} litellm", litellm_url, streamed, True, lauth,
                                                  concurrency=args.concurrency)
                del bench.watch["litellm"]

        print(f"load average after: {loadavg()}", flush=True)
        report(args, r, litellm)
    finally:
        procs.stop_all()
        log.close()
        if os.environ.get("KEEP_BENCH_DIR"):
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def report(args, r, litellm):
    def lat(res, q, key="latency_ms"):
        return (res.get(key) or {}).get(q)

    def row(label, first, second, third="", fourth="", target=""):
        cells = [fmt(v) if isinstance(v, float) or v is None else str(v) for v in (first, second, third, fourth)]
        print(f"{label:30} {cells[0]:>10} {cells[1]:>10} {cells[2]:>9} {cells[3]:>8}  {target}")

    def cpu(res):
        return " ".join(f"{k} {v}" for k, v in res["cpu_cores"].items())

    print()
    print(f"Confab gateway vs direct to the fake upstream: median of {args.repeat} run(s) of {args.duration:g} s "
          f"each (after {args.warmup:g} s warm-up)")
    row("", "direct", "confab", "added", "ratio", "target")
    verdicts = []
    for kind in ("plain", "stream"):
        d, c = r[(kind, "rate", "direct")], r[(kind, "rate", "confab")]
        for q in ("p50", "p90", "p99"):
            added = lat(c, q) - lat(d, q)
            row(f"{kind} {args.rate:g}/s latency {q} ms", lat(d, q), lat(c, q), added, "",
                f"added <= {TARGET_ADDED_P99_MS:g} ms" if q == "p99" else "")
            if q == "p99":
                verdicts.append((f"{kind}: added p99 latency at {args.rate:g}/s {added:.3f} ms "
                                 f"(target <= {TARGET_ADDED_P99_MS:g} ms)", added <= TARGET_ADDED_P99_MS))
        if kind == "stream":
            for q in ("p50", "p99"):
                dv, cv = lat(d, q, "ttfb_ms"), lat(c, q, "ttfb_ms")
                row(f"{kind} {args.rate:g}/s ttfb {q} ms", dv, cv, None if dv is None or cv is None else cv - dv)
        row(f"{kind} {args.rate:g}/s achieved rps", f"{d['rps']:.1f}", f"{c['rps']:.1f}")
        row(f"{kind} {args.rate:g}/s errors", d["errors"], c["errors"])
        d, c = r[(kind, "max", "direct")], r[(kind, "max", "confab")]
        ratio = c["rps"] / d["rps"] if d["rps"] else float("nan")
        row(f"{kind} c{args.concurrency} max rps", f"{d['rps']:.1f}", f"{c['rps']:.1f}", "", f"{ratio:.3f}x",
            f">= {TARGET_THROUGHPUT_RATIO:g}x")
        for q in ("p50", "p99"):
            row(f"{kind} c{args.concurrency} latency {q} ms", lat(d, q), lat(c, q))
        row(f"{kind} c{args.concurrency} errors", d["errors"], c["errors"])
        print(f"{'':30} CPU cores: direct run: {cpu(d)}; confab run: {cpu(c)}")
        f = r[(kind, "max", "floor")]
        floor_ratio = f["rps"] / d["rps"] if d["rps"] else float("nan")
        kept = c["rps"] / f["rps"] if f["rps"] else float("nan")
        row(f"{kind} c{args.concurrency} floor max rps", f"{d['rps']:.1f}", f"{f['rps']:.1f}", "",
            f"{floor_ratio:.3f}x", "bare axum + reqwest forwarder")
        row(f"{kind} c{args.concurrency} confab / floor", "", "", "", f"{kept:.3f}x")
        print(f"{'':30} CPU cores: floor run: {cpu(f)}")
        verdicts.append((f"{kind}: max rps through Confab / direct {ratio:.3f}x "
                         f"(target >= {TARGET_THROUGHPUT_RATIO:g}x)", ratio >= TARGET_THROUGHPUT_RATIO))

    print()
    if "max" in litellm:
        m, c = litellm["max"], r[("plain", "max", "confab")]
        ratio = c["rps"] / m["rps"] if m["rps"] else float("inf")
        print(f"Confab vs LiteLLM proxy (--num_workers 1), same fake upstream: one LiteLLM run of {args.duration:g} s "
              f"each (after {args.warmup:g} s warm-up); Confab's max rps is the median above")
        row("", "litellm", "confab", "", "ratio", "target")
        row(f"plain c{args.concurrency} max rps", f"{m['rps']:.1f}", f"{c['rps']:.1f}", "", f"{ratio:.1f}x",
            f">= {TARGET_LITELLM_RATIO:g}x")
        for q in ("p50", "p99"):
            row(f"plain c{args.concurrency} latency {q} ms", lat(m, q), lat(c, q))
        row(f"plain c{args.concurrency} errors", m["errors"], c["errors"])
        a, ca = litellm["at_rate"], litellm["confab_at_rate"]
        rate = litellm["rate"]
        row(f"plain {rate}/s achieved rps", f"{a['rps']:.1f}", f"{ca['rps']:.1f}")
        for q in ("p50", "p90", "p99"):
            row(f"plain {rate}/s latency {q} ms", lat(a, q), lat(ca, q))
        row(f"plain {rate}/s errors", a["errors"], ca["errors"])
        sm, cs = litellm["stream_max"], r[("stream", "max", "confab")]
        sratio = cs["rps"] / sm["rps"] if sm["rps"] else float("inf")
        row(f"stream c{args.concurrency} max rps", f"{sm['rps']:.1f}", f"{cs['rps']:.1f}", "", f"{sratio:.1f}x")
        for q in ("p50", "p99"):
            row(f"stream c{args.concurrency} latency {q} ms", lat(sm, q), lat(cs, q))
        print(f"{'':30} CPU cores, LiteLLM c{args.concurrency} run: {cpu(m)}")
        verdicts.append((f"max rps Confab / LiteLLM {ratio:.1f}x (target >= {TARGET_LITELLM_RATIO:g}x)",
                         ratio >= TARGET_LITELLM_RATIO))
    else:
        print(f"LiteLLM: not measured: {litellm.get('why')}")
    print()
    for what, ok in verdicts:
        print(f"{'MET    ' if ok else 'NOT MET'} {what}")


if __name__ == "__main__":
    main()
