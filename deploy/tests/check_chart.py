#!/usr/bin/env python3
"""Checks of the Helm chart that need no `helm` binary (none is in the registries we reach):
values.yaml against values.schema.json (and the schema against its metaschema), Chart.yaml's
required fields, and the templates' references: every `.Values.x.y` names a key of values.yaml,
every `include` a defined template, and every block (`if`, `range`, `with`, `define`) is closed.

    check_chart.py CHART_DIR
"""

import json
import re
import sys
from pathlib import Path

import jsonschema
import yaml

chart = Path(sys.argv[1])
failures = []
values = yaml.safe_load((chart / "values.yaml").read_text())
schema = json.loads((chart / "values.schema.json").read_text())
validator = jsonschema.Draft202012Validator
try:
    validator.check_schema(schema)
    for e in validator(schema, format_checker=validator.FORMAT_CHECKER).iter_errors(values):
        failures.append(f"values.yaml: {'/'.join(map(str, e.absolute_path))}: {e.message}")
except jsonschema.SchemaError as e:
    failures.append(f"values.schema.json: {e.message}")

meta = yaml.safe_load((chart / "Chart.yaml").read_text())
if meta.get("apiVersion") != "v2" or not meta.get("name") or not re.match(r"^\d+\.\d+\.\d+", str(meta.get("version", ""))):
    failures.append("Chart.yaml: apiVersion v2, name and a SemVer version are required")

templates = sorted((chart / "templates").glob("*"))
defined = set()
for t in templates:
    defined |= set(re.findall(r'{{-?\s*define\s+"([^"]+)"', t.read_text()))


def has_path(obj, path):
    for part in path:
        if not isinstance(obj, dict) or part not in obj:
            return False
        obj = obj[part]
    return True


for t in templates:
    text = t.read_text()
    for ref in re.findall(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)", text):
        if not has_path(values, ref.strip(".").split(".")):
            failures.append(f"{t.name}: .Values{ref} is not in values.yaml")
    for name in re.findall(r'include\s+"([^"]+)"', text):
        if name not in defined:
            failures.append(f"{t.name}: include {name!r} is not defined")
    actions = re.findall(r"{{-?\s*(if|range|with|define|end)\b", text)
    opened = sum(1 for a in actions if a != "end")
    if opened != actions.count("end"):
        failures.append(f"{t.name}: {opened} blocks opened, {actions.count('end')} closed")
    if len(re.findall(r"{{(?:[^}]|}(?!}))*}}", text)) != text.count("{{"):
        failures.append(f"{t.name}: an action {{{{ is not closed")
    for f in re.findall(r'\.Files\.Get\s+"([^"]+)"', text):
        if not (chart / f).is_file():
            failures.append(f"{t.name}: .Files.Get {f} is not in the chart")

for f in failures:
    print(f"FAIL {f}")
print(f"chart: {len(templates)} templates, {len(failures)} failures")
sys.exit(1 if failures else 0)
