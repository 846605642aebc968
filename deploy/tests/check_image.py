#!/usr/bin/env python3
"""The image's build context holds what deploy/Dockerfile builds from: no pattern of
deploy/Dockerfile.dockerignore excludes a workspace member, Cargo.lock, the toolchain file or the
web UI's sources, and every path the Dockerfile COPYs from the context exists.

    check_image.py ROOT
"""

import fnmatch
import re
import sys
import tomllib
from pathlib import Path

root = Path(sys.argv[1])
failures = []
patterns = [
    line.strip()
    for line in (root / "deploy/Dockerfile.dockerignore").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]


def excluded(path):
    parts = Path(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return [p for p in patterns for pre in prefixes if fnmatch.fnmatch(pre, p.lstrip("/")) or fnmatch.fnmatch(pre, p.replace("**/", ""))]


members = tomllib.loads((root / "Cargo.toml").read_text())["workspace"]["members"]
needed = ["Cargo.toml", "Cargo.lock", "rust-toolchain.toml", "web/package.json", "web/package-lock.json", "web/src", "web/index.html"]
for m in members:
    needed += [str(p.relative_to(root)) for p in sorted(root.glob(m)) if (p / "Cargo.toml").exists()]
for path in needed:
    if not (root / path).exists():
        failures.append(f"{path} is missing")
    elif excluded(path):
        failures.append(f"{path} is excluded from the build context by {excluded(path)}")

text = (root / "deploy/Dockerfile").read_text()
for line in re.findall(r"^COPY\s+(?!--from)(.+)$", text, re.M):
    sources = line.split()[:-1]
    for src in sources:
        if src != "." and not (root / src).exists():
            failures.append(f"COPY {src}: not in the repository")

for f in failures:
    print(f"FAIL {f}")
print(f"image context: {len(needed)} paths checked, {len(failures)} failures")
sys.exit(1 if failures else 0)
