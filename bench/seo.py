#!/usr/bin/env python3
"""SEO studio generation on the local model: seconds per package and tokens/s through the
studio, beside plain /v1/chat/completions calls asking the same model for the same amount of
JSON, and the studio's own overhead (its time beyond waiting for the model).

Usage (release build and the test model first):
    cargo build --release -p confab
    scripts/fetch-model.sh target/test-models
    python3 bench/seo.py [--runs 3] [--max-tokens 256] [--threads 2]

- The server: `confab serve` on a fresh temporary data dir with the models directory, the
  engine at --threads, `seo.model` = SmolLM2-135M-Instruct.Q4_1, `seo.temperature = 0`
  (greedy, so every run writes the same package), `seo.max_tokens` = --max-tokens, and the
  inference service's response cache off (greedy answers would be served from it).
- Studio: a project with a four-segment SRT transcript; POST …/generation, then poll
  GET …/generation every 20 ms until it ends. Wall time is the client's, from the POST to
  the end. The job's result (GET /api/v1/admin/jobs/{id}) gives the model calls, their
  completion tokens and the time spent waiting for the model (`model_ms`).
- Plain: as many POST /v1/chat/completions calls as the studio made, one after another, each
  with a prompt of the project's text and transcript, `response_format: json_object`,
  `temperature: 0` and the same `max_tokens`.
tokens/s = completion tokens / wall time on both sides. Overhead ratio = studio wall time /
model time (target <= 1.1): what validation, repair, scoring, storage and the job queue add.
One unrecorded warm-up generation first (the server loads the model on first use), then
--runs of each, interleaved; medians are reported.
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = "SmolLM2-135M-Instruct.Q4_1"
TARGET_RATIO = 1.1
SRT = (
    "1\n00:00:00,000 --> 00:00:12,000\nWelcome! Today we bake sourdough bread.\n\n"
    "2\n00:00:12,000 --> 00:00:41,500\nFirst, the starter: flour and water.\n\n"
    "3\n00:00:41,500 --> 00:01:30,000\nFeed it every day for a week.\n\n"
    "4\n00:01:30,000 --> 00:03:00,000\nNow we bake the loaf in a hot Dutch oven.\n"
)
PROJECT = {
    "topic": "Sourdough bread for beginners",
    "primary_keyword": "sourdough bread",
    "secondary_keywords": ["sourdough starter", "bread recipe"],
    "tone": "friendly",
    "duration_secs": 180,
    "transcript": SRT,
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    def __init__(self, port):
        self.port = port
        self.token = None

    def call(self, method, path, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        headers = {"content-type": "application/json"}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        conn.request(method, path, json.dumps(body) if body is not None else None, headers)
        response = conn.getresponse()
        data = response.read()
        conn.close()
        return response.status, (json.loads(data) if data else None)


def start_server(data_dir, port, threads, max_tokens):
    config = os.path.join(data_dir, "confab.toml")
    with open(config, "w") as f:
        f.write(
            f'listen = "127.0.0.1:{port}"\ndata_dir = "{data_dir}"\n\n[log]\nlevel = "warn"\n\n'
            f'[bus]\njob_poll_ms = 20\n\n'
            f'[inference]\nmodels_dir = "{os.path.join(ROOT, "target", "test-models")}"\n\n'
            f'[inference.engine]\nthreads = {threads}\n\n'
            # Greedy answers would come from the exact-match cache after the first run.
            f'[inference.cache]\nenabled = false\n\n'
            f'[seo]\nmodel = "{MODEL}"\ntemperature = 0.0\nmax_tokens = {max_tokens}\n'
        )
    env = dict(os.environ, CONFAB_CONFIG=config)
    binary = os.path.join(ROOT, "target", "release", "confab")
    proc = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = Client(port)
    for _ in range(300):
        try:
            if client.call("GET", "/readyz")[0] == 200:
                return proc, client
        except OSError:
            pass
        time.sleep(0.1)
    proc.kill()
    sys.exit("the server did not start")


def studio_run(client, project_id):
    path = f"/api/v1/seo/projects/{project_id}/generation"
    started = time.monotonic()
    status, body = client.call("POST", path, {})
    if status != 202:
        sys.exit(f"generation refused: {status} {body}")
    while True:
        status, now = client.call("GET", path)
        if now["state"] not in ("queued", "running"):
            break
        time.sleep(0.02)
    wall = time.monotonic() - started
    if now["state"] != "succeeded":
        sys.exit(f"generation failed: {now}")
    _, job = client.call("GET", f"/api/v1/admin/jobs/{now['job_id']}")
    stats = job["result"]["stats"]
    return wall, stats


def plain_run(client, calls, max_tokens):
    prompt = (
        "Write YouTube metadata as JSON (titles, hook, body, tags, hashtags, chapters, thumbnail_texts) "
        f"for this video.\nTopic: {PROJECT['topic']}\nPrimary keyword: {PROJECT['primary_keyword']}\n"
        f"Transcript:\n{SRT}"
    )
    started, tokens = time.monotonic(), 0
    for _ in range(calls):
        status, body = client.call(
            "POST",
            "/v1/chat/completions",
            {
                "model": MODEL,
                "messages": [
                    {"role": "system", "content": "You are a YouTube SEO specialist. Answer with one JSON object."},
                    {"role": "user", "content": prompt},
                ],
                "temperature": 0,
                "max_tokens": max_tokens,
                "response_format": {"type": "json_object"},
            },
        )
        if status != 200:
            sys.exit(f"plain call failed: {status} {body}")
        tokens += body["usage"]["completion_tokens"]
    return time.monotonic() - started, tokens


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        port = free_port()
        proc, client = start_server(data_dir, port, args.threads, args.max_tokens)
        try:
            account = {"email": "bench@example.com", "password": "correct horse battery", "name": "Bench"}
            client.call("POST", "/api/v1/auth/register", account)
            _, login = client.call("POST", "/api/v1/auth/login", {k: account[k] for k in ("email", "password")})
            client.token = login["access_token"]
            _, project = client.call("POST", "/api/v1/seo/projects", PROJECT)
            studio_run(client, project["id"])  # warm-up: loads the model
            walls, model_ms, studio_tokens, calls = [], [], [], []
            plain_walls, plain_tokens = [], []
            for _ in range(args.runs):
                wall, stats = studio_run(client, project["id"])
                walls.append(wall)
                model_ms.append(stats["model_ms"] / 1000)
                studio_tokens.append(stats["completion_tokens"])
                calls.append(stats["calls"])
                p_wall, p_tokens = plain_run(client, stats["calls"], args.max_tokens)
                plain_walls.append(p_wall)
                plain_tokens.append(p_tokens)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    wall = statistics.median(walls)
    model = statistics.median(model_ms)
    studio_tps = statistics.median(t / w for t, w in zip(studio_tokens, walls))
    plain_tps = statistics.median(t / w for t, w in zip(plain_tokens, plain_walls))
    ratio = wall / model
    print(f"runs {args.runs}, max_tokens {args.max_tokens}, threads {args.threads}, model calls a package {statistics.median(calls):.0f}")
    print(f"studio: {wall:.2f} s a package (model {model:.2f} s), {statistics.median(studio_tokens):.0f} completion tokens, {studio_tps:.1f} tokens/s")
    print(f"plain:  {statistics.median(plain_walls):.2f} s for as many calls, {statistics.median(plain_tokens):.0f} completion tokens, {plain_tps:.1f} tokens/s")
    print(f"studio tokens/s / plain tokens/s: {studio_tps / plain_tps:.3f}")
    print(f"overhead ratio (studio wall / model time): {ratio:.3f} (target <= {TARGET_RATIO})")
    sys.exit(0 if ratio <= TARGET_RATIO else 1)


if __name__ == "__main__":
    main()
