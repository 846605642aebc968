#!/usr/bin/env python3
"""Writes Confab's Grafana dashboards (deploy/grafana/dashboards/*.json) from the panel lists
below: one place to add a panel, the same layout and datasource everywhere.

    python3 deploy/grafana/gen.py           # write
    python3 deploy/grafana/gen.py --check   # exit 1 when a dashboard would change
"""

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DS = {"type": "prometheus", "uid": "prometheus"}
JOB = '{job=~"$job"}'


def ts(title, exprs, unit="short", width=12):
    """A time series panel; exprs: [(promql, legend)]."""
    return {
        "type": "timeseries",
        "title": title,
        "datasource": DS,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DS, "expr": e, "legendFormat": legend}
            for i, (e, legend) in enumerate(exprs)
        ],
        "_w": width,
    }


def stat(title, expr, unit="short", legend=""):
    p = ts(title, [(expr, legend)], unit, width=6)
    p["type"] = "stat"
    p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "value"}
    return p


def q(pct, metric, by, matcher=JOB, window="5m"):
    return (
        f"histogram_quantile({pct}, sum by ({by}, le) (rate({metric}_bucket{matcher}[{window}])))"
    )


DASHBOARDS = {
    "confab-overview": (
        "Confab: overview",
        [
            stat("Processes up", f"sum(up{JOB})"),
            stat("Requests/s", f"sum(rate(confab_http_requests_total{JOB}[5m]))", "reqps"),
            stat(
                "5xx share",
                f'sum(rate(confab_http_requests_total{{job=~"$job", status=~"5.."}}[5m])) / sum(rate(confab_http_requests_total{JOB}[5m]))',
                "percentunit",
            ),
            stat("Build", f"count by (version, commit) (confab_build_info{JOB})", legend="{{version}} {{commit}}"),
            ts("Requests/s by service", [(f"sum by (job) (rate(confab_http_requests_total{JOB}[5m]))", "{{job}}")], "reqps"),
            ts(
                "Errors/s by service (5xx)",
                [(f'sum by (job) (rate(confab_http_requests_total{{job=~"$job", status=~"5.."}}[5m]))', "{{job}}")],
                "reqps",
            ),
            ts(
                "Latency p50 / p99 by service",
                [
                    (q(0.5, "confab_http_request_duration_seconds", "job"), "p50 {{job}}"),
                    (q(0.99, "confab_http_request_duration_seconds", "job"), "p99 {{job}}"),
                ],
                "s",
            ),
            ts(
                "Slowest routes (p99)",
                [(f"topk(10, {q(0.99, 'confab_http_request_duration_seconds', 'job, route')})", "{{job}} {{route}}")],
                "s",
            ),
            ts(
                "Gateway: upstream requests/s by service and class",
                [("sum by (service, class) (rate(confab_gateway_upstream_requests_total[5m]))", "{{service}} {{class}}")],
                "reqps",
            ),
            ts(
                "Gateway: upstream latency p99",
                [(q(0.99, "confab_gateway_upstream_latency_seconds", "service", ""), "{{service}}")],
                "s",
            ),
            ts(
                "Gateway: circuits (0 closed, 1 half-open, 2 open) and ejected instances",
                [
                    ("max by (service) (confab_gateway_circuit_state)", "circuit {{service}}"),
                    ("sum by (service) (confab_gateway_ejected_instances)", "ejected {{service}}"),
                ],
            ),
            ts(
                "Gateway: refusals and retries",
                [
                    ("sum by (reason) (rate(confab_gateway_refusals_total[5m]))", "refused {{reason}}"),
                    ("sum by (service) (rate(confab_gateway_upstream_retries_total[5m]))", "retried {{service}}"),
                    ("sum(rate(confab_gateway_rate_limiter_unavailable_total[5m]))", "limiter unavailable"),
                ],
                "reqps",
            ),
            ts("Resident memory", [(f"process_resident_memory_bytes{JOB}", "{{job}} {{instance}}")], "bytes"),
            ts("CPU", [(f"rate(process_cpu_seconds_total{JOB}[5m])", "{{job}} {{instance}}")], "percentunit"),
            ts(
                "Open file descriptors and threads",
                [
                    (f"process_open_fds{JOB}", "fds {{instance}}"),
                    (f"process_threads{JOB}", "threads {{instance}}"),
                ],
            ),
            ts("Uptime", [(f"time() - process_start_time_seconds{JOB}", "{{job}} {{instance}}")], "s"),
        ],
    ),
    "confab-inference": (
        "Confab: inference",
        [
            ts(
                "Tokens/s by model",
                [(f"sum by (model, kind) (rate(confab_inference_tokens_total{JOB}[5m]))", "{{model}} {{kind}}")],
                "short",
            ),
            ts(
                "Requests/s by backend and outcome",
                [(f"sum by (backend, outcome) (rate(confab_inference_requests_total{JOB}[5m]))", "{{backend}} {{outcome}}")],
                "reqps",
            ),
            ts(
                "Time to first token p50 / p95",
                [
                    (q(0.5, "confab_inference_ttft_seconds", "backend"), "p50 {{backend}}"),
                    (q(0.95, "confab_inference_ttft_seconds", "backend"), "p95 {{backend}}"),
                ],
                "s",
            ),
            ts(
                "Backend time and own overhead p95",
                [
                    (q(0.95, "confab_inference_upstream_seconds", "backend"), "backend {{backend}}"),
                    (q(0.95, "confab_inference_overhead_seconds", "backend"), "overhead {{backend}}"),
                ],
                "s",
            ),
            ts(
                "Circuits by backend (0 closed, 1 half-open, 2 open)",
                [(f"max by (backend) (confab_inference_circuit_state{JOB})", "{{backend}}")],
            ),
            ts(
                "Retries/s by backend",
                [(f"sum by (backend) (rate(confab_inference_retries_total{JOB}[5m]))", "{{backend}}")],
                "reqps",
            ),
            ts(
                "Answer cache hit ratio",
                [
                    (
                        f'sum(rate(confab_inference_cache_total{{job=~"$job", outcome="hit"}}[5m])) / sum(rate(confab_inference_cache_total{JOB}[5m]))',
                        "hit ratio",
                    )
                ],
                "percentunit",
            ),
            ts(
                "Answer cache lookups/s by outcome",
                [(f"sum by (outcome) (rate(confab_inference_cache_total{JOB}[5m]))", "{{outcome}}")],
                "reqps",
            ),
        ],
    ),
    "confab-chat": (
        "Confab: chat",
        [
            ts("Active SSE streams", [(f"sum by (job) (confab_sse_streams_active{JOB})", "{{job}}")]),
            ts("Active WebSockets", [(f"sum by (job) (confab_websockets_active{JOB})", "{{job}}")]),
            ts(
                "Messages sent/s",
                [
                    (
                        f'sum(rate(confab_http_requests_total{{job=~"$job", method="POST", route="/api/v1/conversations/{{id}}/messages", status=~"2.."}}[5m]))',
                        "messages",
                    )
                ],
                "reqps",
            ),
            ts(
                "Chat API requests/s by route",
                [
                    (
                        f'sum by (method, route) (rate(confab_http_requests_total{{job=~"$job", route=~"/api/v1/(conversations|shares|presets|ws).*"}}[5m]))',
                        "{{method}} {{route}}",
                    )
                ],
                "reqps",
            ),
        ],
    ),
    "confab-jobs": (
        "Confab: background jobs",
        [
            ts("Jobs by kind and state", [(f"sum by (kind, state) (confab_jobs{JOB})", "{{kind}} {{state}}")]),
            ts("Oldest queued job's age", [(f"max by (kind) (confab_job_queue_age_seconds{JOB})", "{{kind}}")], "s"),
            ts(
                "Runs/s by kind and outcome",
                [(f"sum by (kind, outcome) (rate(confab_job_runs_total{JOB}[5m]))", "{{kind}} {{outcome}}")],
                "ops",
            ),
        ],
    ),
    "confab-dependencies": (
        "Confab: database, Redis, NATS and storage",
        [
            ts(
                "Database pool by state",
                [(f"sum by (job, state) (confab_db_pool_connections{JOB})", "{{job}} {{state}}")],
            ),
            ts("Redis reachable (1 up)", [(f"min by (job) (confab_redis_up{JOB})", "{{job}}")]),
            ts("NATS reachable (1 up)", [(f"min by (job) (confab_nats_up{JOB})", "{{job}}")]),
            ts(
                "Redis fallbacks and cache errors/s",
                [
                    (f"sum by (port) (rate(confab_redis_fallbacks_total{JOB}[5m]))", "fallback {{port}}"),
                    (f"sum(rate(confab_redis_cache_errors_total{JOB}[5m]))", "cache errors"),
                ],
                "ops",
            ),
            ts(
                "Cache hit ratio by cache",
                [
                    (
                        f'sum by (cache) (rate(confab_cache_requests_total{{job=~"$job", result="hit"}}[5m])) / sum by (cache) (rate(confab_cache_requests_total{JOB}[5m]))',
                        "{{cache}}",
                    )
                ],
                "percentunit",
            ),
            ts(
                "Data directory free",
                [(f"confab_data_dir_available_bytes{JOB} / confab_data_dir_capacity_bytes{JOB}", "{{instance}}")],
                "percentunit",
            ),
            ts("Audit chain length", [(f"max(confab_audit_chain_length{JOB})", "entries")]),
            ts(
                "Last successful backup (age)",
                [(f"time() - max(confab_backup_last_success_timestamp_seconds{JOB})", "age")],
                "s",
            ),
            ts(
                "TLS certificate expires in",
                [(f"confab_tls_cert_not_after_timestamp_seconds{JOB} - time()", "{{instance}}")],
                "s",
            ),
        ],
    ),
}


def dashboard(uid, title, panels):
    x = y = 0
    laid = []
    for i, p in enumerate(panels):
        w = p.pop("_w")
        if x + w > 24:
            x, y = 0, y + 8
        p["id"] = i + 1
        p["gridPos"] = {"x": x, "y": y, "w": w, "h": 8 if p["type"] == "timeseries" else 4}
        x += w
        laid.append(p)
    return {
        "uid": uid,
        "title": title,
        "tags": ["confab"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "job",
                    "label": "Process",
                    "type": "query",
                    "datasource": DS,
                    "query": {"query": 'label_values(up{job=~"confab.*"}, job)', "refId": "job"},
                    "definition": 'label_values(up{job=~"confab.*"}, job)',
                    "includeAll": True,
                    "multi": True,
                    "allValue": "confab.*",
                    "current": {"text": "All", "value": "$__all"},
                    "refresh": 2,
                }
            ]
        },
        "links": [{"title": "Confab dashboards", "type": "dashboards", "tags": ["confab"], "asDropdown": True}],
        "panels": laid,
    }


def main():
    check = "--check" in sys.argv[1:]
    stale = []
    for uid, (title, panels) in DASHBOARDS.items():
        path = HERE / "dashboards" / f"{uid}.json"
        text = json.dumps(dashboard(uid, title, panels), indent=2) + "\n"
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path)
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    for path in stale if check else []:
        print(f"stale: {path.name} (run python3 deploy/grafana/gen.py)")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
