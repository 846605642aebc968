#!/usr/bin/env python3
"""Prints every Grafana panel query as a Prometheus recording rule (Grafana's `$job` variable
replaced by its "All" value), so that `promtool check rules` parses them all.

    dashboard_rules.py DASHBOARDS_DIR > rules.yml
"""

import json
import sys
from pathlib import Path

import yaml

rules = []
for f in sorted(Path(sys.argv[1]).glob("*.json")):
    for p in json.loads(f.read_text())["panels"]:
        for t in p.get("targets", []):
            rules.append(
                {
                    "record": f"dashboard:{f.stem.replace('-', '_')}:{p['id']}_{t['refId']}",
                    "expr": t["expr"].replace("$job", "confab.*"),
                }
            )
print(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}, sort_keys=False))
