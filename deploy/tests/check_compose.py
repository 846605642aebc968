#!/usr/bin/env python3
"""Facts of deploy/compose.yaml that `docker-compose config` does not check.

    check_compose.py COMPOSE ENV_EXAMPLE RENDERED

RENDERED is `docker-compose config` with every profile on. The seeds' variables are read, and
every variable the file reads is documented in .env.example; every service has a healthcheck and
waits for its dependencies to be healthy (the migration one-shot to have finished); the Confab
processes run read-only with every capability dropped; the gateway has an upstream for, and
waits for, every split service; no image is `latest`.
"""

import re
import sys

import yaml

SEEDS = ["YOUTUBE_API_KEY", "YOUTUBE_CREDENTIALS", "REDIS_URL", "DATABASE_URL", "OPENAI_API_KEY", "OLLAMA_BASE_URL"]
EXPECTED = {
    "gateway", "auth", "chat", "inference", "admin", "seo", "files", "migrate", "confab",
    "postgres", "redis", "nats", "minio", "minio-init", "clamav", "ollama", "prometheus",
    "grafana", "alertmanager", "backup",
}
CONFAB = {"gateway", "auth", "chat", "inference", "admin", "seo", "files", "confab", "backup"}
# Run once and exit: no healthcheck; whoever waits for them waits for their success.
ONE_SHOTS = {"migrate", "minio-init", "backup"}


def main():
    source = open(sys.argv[1]).read()
    example = open(sys.argv[2]).read()
    services = yaml.safe_load(open(sys.argv[3]))["services"]
    failures = []
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", example, re.M))
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", source))
    for name in SEEDS:
        if name not in used:
            failures.append(f"compose.yaml does not read the seeds' {name}")
    for name in sorted(used - documented):
        failures.append(f"{name} is read by compose.yaml but not documented in .env.example")
    if set(services) != EXPECTED:
        failures.append(f"services {sorted(services)} differ from {sorted(EXPECTED)}")
    for name, s in services.items():
        image = s.get("image", "")
        if image.endswith(":latest") or ":" not in image.rsplit("/", 1)[-1]:
            failures.append(f"{name}: image {image!r} is latest or untagged")
        if name not in ONE_SHOTS and "healthcheck" not in s:
            failures.append(f"{name}: no healthcheck")
        for dep, how in (s.get("depends_on") or {}).items():
            cond = how.get("condition") if isinstance(how, dict) else None
            if dep in ONE_SHOTS:
                if cond != "service_completed_successfully":
                    failures.append(f"{name}: waits for {dep} with {cond}")
            elif cond == "service_healthy":
                if "healthcheck" not in services.get(dep, {}):
                    failures.append(f"{name}: waits for {dep} to be healthy, which has no healthcheck")
            elif dep not in ("alertmanager",):
                failures.append(f"{name}: waits for {dep} with {cond}, not service_healthy")
        if name in CONFAB - {"confab"} and "migrate" not in (s.get("depends_on") or {}):
            failures.append(f"{name}: does not wait for the migrations")
        if name in CONFAB and not (s.get("read_only") and "ALL" in s.get("cap_drop", [])):
            failures.append(f"{name}: not read-only with every capability dropped")
    # The gateway forwards to every split service and starts after them.
    gateway = services.get("gateway", {})
    for name in sorted(CONFAB - {"gateway", "confab", "backup"}):
        if f"CONFAB_GATEWAY__UPSTREAMS__{name.upper()}" not in (gateway.get("environment") or {}):
            failures.append(f"gateway: no upstream for {name} (CONFAB_GATEWAY__UPSTREAMS__{name.upper()})")
        if name not in (gateway.get("depends_on") or {}):
            failures.append(f"gateway: does not wait for {name}")
    for name in ONE_SHOTS:
        if services.get(name, {}).get("restart") not in ("no", None):
            failures.append(f"{name} is not a one-shot")
    for f in failures:
        print(f"FAIL {f}")
    print(f"compose: {len(services)} services, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
