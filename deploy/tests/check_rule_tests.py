#!/usr/bin/env python3
"""Every alert of the rules file has a promtool unit test in which it fires.

    check_rule_tests.py RULES TESTS
"""

import sys

import yaml

rules = yaml.safe_load(open(sys.argv[1]))
tests = yaml.safe_load(open(sys.argv[2]))
alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
fired = {
    t["alertname"]
    for case in tests["tests"]
    for t in case.get("alert_rule_test", [])
    if t.get("exp_alerts")
}
missing = sorted(alerts - fired)
for name in missing:
    print(f"FAIL {name} has no test in which it fires")
print(f"rule tests: {len(alerts)} alerts, {len(alerts) - len(missing)} with a firing test")
sys.exit(1 if missing else 0)
