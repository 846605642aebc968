#!/usr/bin/env python3
"""Embedded generation speed: tokens/s through Confab's HTTP API vs the engine driven
directly, with the same GGUF file, prompt, sampling (greedy) and thread count.

Usage (release builds and the test model first):
    cargo build --release -p confab
    cargo build --release -p confab-bench
    scripts/fetch-model.sh target/test-models
    python3 bench/engine.py [--runs 3] [--max-tokens 256] [--threads 2]

- HTTP: `confab serve` on a fresh temporary data dir with CONFAB_INFERENCE__MODELS_DIR set to
  the models directory and CONFAB_INFERENCE__ENGINE__THREADS to --threads (other engine
  settings at their defaults: context 4096, batch 512, parallel 1), logs at `warn`; a
  streamed POST /v1/chat/completions with an API key, `temperature: 0`, `max_tokens`,
  `stream_options.include_usage`. Completion tokens come from the usage chunk; the span is
  from the arrival of the first content delta to the arrival of the last one.
- Direct: `engine-direct` (bench/loadgen) loads the same file with
  `confab_inference::engine::Engine::load` (same settings) and calls `Engine::generate`,
  timing the first and last text piece the same way.
tokens/s = (completion tokens - 1) / span on both sides. One unrecorded warm-up each (the
server loads the model on first use), then --runs generations each, interleaved (HTTP, direct,
HTTP, direct, ...) so background load affects both alike; medians are reported. Both sides
must produce the same text (a hash is compared). Target: HTTP / direct >= 0.95.

On a 2-core machine llama.cpp's threads are very sensitive to any other busy process, so each
run also reports the "other load": the cores kept busy by everything but the generating
process (this script's SSE parsing included) over the run, from /proc/stat.
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = "SmolLM2-135M-Instruct.Q4_1"
TARGET_RATIO = 0.95
DEFAULT_PROMPT = "Write a long, detailed story about a dragon who learns to fly, with many characters."


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fnv1a(text):
    h = 0xCBF29CE484222325
    for b in text.encode():
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def system_busy():
    """Busy CPU seconds of the whole machine so far (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def process_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(generate, pid):
    """Runs one generation; adds the cores that other processes kept busy meanwhile (background
    load that slows llama.cpp's threads down), from /proc/stat less the generating process."""
    busy, own, started = system_busy(), process_cpu(pid), time.monotonic()
    r = generate()
    wall = time.monotonic() - started
    r["other_cores"] = max(0.0, ((system_busy() - busy) - (process_cpu(pid) - own)) / wall)
    return r


def http_json(port, method, path, body=None, headers=None, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    hdrs = {"content-type": "application/json"}
    hdrs.update(headers or {})
    conn.request(method, path, json.dumps(body) if body is not None else None, hdrs)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


def start_server(args, work):
    port = free_port()
    data_dir = os.path.join(work, "data")
    os.makedirs(data_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONFAB_") and k != "DATABASE_URL"}
    env.update(
        CONFAB_LOG__LEVEL="warn",
        CONFAB_INFERENCE__MODELS_DIR=os.path.abspath(os.path.join(ROOT, args.models_dir)),
        CONFAB_INFERENCE__ENGINE__THREADS=str(args.threads),
    )
    proc = subprocess.Popen([os.path.join(ROOT, args.binary), "serve", "--listen", f"127.0.0.1:{port}",
                             "--data-dir", data_dir], cwd=work, env=env,
                            stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "confab.log"), "w"))
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            sys.exit(f"confab exited with {proc.returncode}; see {work}/confab.log")
        try:
            if http_json(port, "GET", "/readyz")[0] == 200:
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            sys.exit("confab was not ready after 30 s")
        time.sleep(0.05)
    creds = {"email": "bench@example.com", "password": "correct horse battery staple", "name": "Bench"}
    http_json(port, "POST", "/api/v1/auth/register", creds)
    status, data = http_json(port, "POST", "/api/v1/auth/login",
                             {"email": creds["email"], "password": creds["password"]})
    if status != 200:
        sys.exit(f"login failed: {status} {data[:200]!r}")
    token = json.loads(data)["access_token"]
    status, data = http_json(port, "POST", "/api/v1/auth/api-keys", {"name": "bench", "scopes": ["inference"]},
                             {"authorization": f"Bearer {token}"})
    if status not in (200, 201):
        sys.exit(f"api key creation failed: {status} {data[:200]!r}")
    return proc, port, json.loads(data)["key"]


def http_generation(port, key, args):
    body = {"model": MODEL, "messages": [{"role": "user", "content": args.prompt}], "temperature": 0,
            "max_tokens": args.max_tokens, "stream": True, "stream_options": {"include_usage": True}}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    started = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", json.dumps(body),
                 {"content-type": "application/json", "authorization": f"Bearer {key}"})
    resp = conn.getresponse()
    if resp.status != 200:
        sys.exit(f"generation failed: {resp.status} {resp.read()[:300]!r}")
    first = last = None
    text, pieces, usage, finish = [], 0, None, None
    while True:
        line = resp.readline()
        if not line:
            break
        line = line.strip()
        if not line.startswith(b"data: "):
            continue
        payload = line[6:]
        if payload == b"[DONE]":
            break
        chunk = json.loads(payload)
        if chunk.get("usage"):
            usage = chunk["usage"]
        for choice in chunk.get("choices", []):
            content = (choice.get("delta") or {}).get("content")
            if content:
                now = time.perf_counter()
                first = first or now
                last = now
                pieces += 1
                text.append(content)
            finish = choice.get("finish_reason") or finish
    conn.close()
    if usage is None or first is None:
        sys.exit("the stream had no usage chunk or no content")
    span = last - first
    tokens = usage["completion_tokens"]
    return {"completion_tokens": tokens, "prompt_tokens": usage["prompt_tokens"], "pieces": pieces,
            "finish_reason": finish, "span_s": span, "tokens_per_s": (tokens - 1) / span if span > 0 else 0.0,
            "ttft_s": first - started, "total_s": time.perf_counter() - started, "text_hash": fnv1a("".join(text))}


class Direct:
    def __init__(self, args, work):
        cmd = [os.path.join(ROOT, args.bin_dir, "engine-direct"), "--stdin",
               "--model", os.path.join(ROOT, args.models_dir, f"{MODEL}.gguf"),
               "--threads", str(args.threads), "--max-tokens", str(args.max_tokens), "--prompt", args.prompt]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     stderr=open(os.path.join(work, "direct.log"), "w"))
        line = self.proc.stdout.readline()
        if not line or not json.loads(line).get("ready"):
            sys.exit(f"engine-direct did not start; see {work}/direct.log")

    def generate(self):
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            sys.exit("engine-direct stopped")
        return json.loads(line)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def loadavg():
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--prompt", default=DEFAULT_PROMPT)
    parser.add_argument("--models-dir", default="target/test-models")
    parser.add_argument("--binary", default="target/release/confab")
    parser.add_argument("--bin-dir", default="target/release", help="where engine-direct is")
    args = parser.parse_args()

    gguf = os.path.join(ROOT, args.models_dir, f"{MODEL}.gguf")
    if not os.path.exists(gguf):
        sys.exit(f"{gguf} is missing: scripts/fetch-model.sh {args.models_dir}")
    for exe in (args.binary, os.path.join(args.bin_dir, "engine-direct")):
        if not os.path.exists(os.path.join(ROOT, exe)):
            sys.exit(f"{exe} is missing: cargo build --release -p confab -p confab-bench")

    work = tempfile.mkdtemp(prefix="confab-engine-bench-")
    server = direct = None
    try:
        server, port, key = start_server(args, work)
        direct = Direct(args, work)
        print(f"load average before: {loadavg()}", flush=True)
        warm_http, warm_direct = http_generation(port, key, args), direct.generate()
        if warm_http["text_hash"] != warm_direct["text_hash"]:
            print(f"warning: different answers: HTTP {warm_http['text_hash']} vs direct {warm_direct['text_hash']}")
        rows = {"http": [], "direct": []}
        for i in range(args.runs):
            order = ("http", "direct") if i % 2 == 0 else ("direct", "http")
            for side in order:
                if side == "http":
                    r = measured(lambda: http_generation(port, key, args), server.pid)
                else:
                    r = measured(direct.generate, direct.proc.pid)
                rows[side].append(r)
                print(f"  run {i + 1} {side:6} {r['completion_tokens']} tokens ({r['finish_reason']}), "
                      f"{r['tokens_per_s']:.1f} tokens/s over {r['span_s']:.3f} s, ttft {r['ttft_s'] * 1000:.1f} ms, "
                      f"text {r['text_hash']}, other load {r['other_cores']:.2f} cores", flush=True)
        print(f"load average after: {loadavg()}", flush=True)
    finally:
        if direct:
            direct.stop()
        if server and server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
        shutil.rmtree(work, ignore_errors=True)

    med = {side: {k: statistics.median(r[k] for r in rs)
                  for k in ("tokens_per_s", "ttft_s", "span_s", "completion_tokens", "other_cores")}
           for side, rs in rows.items()}
    same = len({r["text_hash"] for rs in rows.values() for r in rs}) == 1
    ratio = med["http"]["tokens_per_s"] / med["direct"]["tokens_per_s"]
    print()
    print(f"{MODEL}, greedy, max_tokens {args.max_tokens}, {args.threads} threads, "
          f"{args.runs} runs each (interleaved), medians")
    print(f"{'':22} {'tokens/s':>10} {'tokens':>7} {'ttft ms':>9} {'span s':>8} {'other load':>11}")
    for side, label in (("direct", "engine directly"), ("http", "confab HTTP (SSE)")):
        m = med[side]
        print(f"{label:22} {m['tokens_per_s']:10.1f} {m['completion_tokens']:7.0f} {m['ttft_s'] * 1000:9.1f} {m['span_s']:8.3f} {m['other_cores']:11.2f}")
    print(f"HTTP / direct tokens/s: {ratio:.3f}x (target >= {TARGET_RATIO}x); same text on every run: {same}")
    print(f"{'MET' if ratio >= TARGET_RATIO else 'NOT MET'}: HTTP / direct {ratio:.3f}x")


if __name__ == "__main__":
    main()
