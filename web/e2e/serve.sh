#!/usr/bin/env bash
# Starts the Confab server the end-to-end tests talk to: a fresh data directory under
# target/e2e, an admin made with the CLI, and a scripted (deterministic, word-by-word) model;
# the SEO studio writes with a second scripted model whose answer is a fixed JSON draft (the
# one crates/confab/tests/it/seo.rs uses: a first title too long, chapters out of order).
# Playwright runs this as its web server and stops it when the run ends.
#   TEST_CONFAB_BIN         the binary (default: target/debug/confab)
#   E2E_PORT    the port on 127.0.0.1
#   TEST_CLAMD_ADDRESS      a clamd to scan uploads with (scripts/lib/clamd.sh's start_clamd sets
#                           it, and TEST_CLAMD_MAX_BYTES); unset, files are stored unscanned
#                           and the files test skips its virus check
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=${TEST_CONFAB_BIN:-$root/target/debug/confab}
port=${E2E_PORT:?E2E_PORT is not set}
dir=$root/target/e2e/server
rm -rf "$dir"
mkdir -p "$dir/data"
cat >"$dir/confab.toml" <<TOML
listen = "127.0.0.1:$port"
data_dir = "$dir/data"

[log]
level = "warn"

[auth]
# Every test signs in from 127.0.0.1.
ip_rate_limit_per_minute = 10000
ip_rate_limit_burst = 1000

[chat]
auto_titles = false

[inference]
default_model = "confab-scripted"
providers = [
  { name = "script", kind = "scripted", models = ["confab-scripted"], reply = "You said: {last}. Here is an answer that arrives word by word, with **bold words**, a list:\n\n- first item\n- second item\n\nand a code block:\n\n\`\`\`rust\nfn main() { println!(\"hello\"); }\n\`\`\`\n\nThat is the whole answer.", delay_ms = 90 },
  { name = "script-seo", kind = "scripted", models = ["confab-seo"], reply = '{"summary": "How to start a sourdough starter and bake a first loaf.", "main_topics": ["starter", "feeding", "baking"], "audience": "home bakers", "structure": ["intro", "starter", "bake"], "titles": [{"text": "Sourdough bread for beginners really really really really really really really really really really really really really really really really really really really really ", "strategy": "keyword_first"}, {"text": "How do you make sourdough bread at home?", "strategy": "question"}, {"text": "7 sourdough mistakes every beginner makes", "strategy": "listicle"}, {"text": "Bake better sourdough bread this weekend", "strategy": "benefit"}, {"text": "The one sourdough trick nobody told you", "strategy": "curiosity"}], "hook": "Sourdough bread at home, from starter to loaf, explained step by step.", "body": "We feed a starter, mix the dough, shape it and bake it in a Dutch oven.", "tags": ["sourdough bread", "sourdough starter", "baking", "bread recipe", "how to make sourdough bread at home"], "hashtags": ["#sourdough", "#baking", "#bread"], "chapters": [{"start": "0:40", "title": "Feeding the starter"}, {"start": 0, "title": "Introduction"}, {"start": 95, "title": "Baking the loaf"}], "thumbnail_texts": ["Sourdough made easy", "First loaf"]}' },
]

[seo]
model = "confab-seo"
TOML
export CONFAB_CONFIG=$dir/confab.toml
if [[ -n ${TEST_CLAMD_ADDRESS:-} ]]; then
	export CONFAB_FILES__CLAMD_ADDRESS=$TEST_CLAMD_ADDRESS
	[[ -z ${TEST_CLAMD_MAX_BYTES:-} ]] || export CONFAB_FILES__CLAMD_MAX_BYTES=$TEST_CLAMD_MAX_BYTES
fi
echo "${E2E_ADMIN_PASSWORD:-admin-password-1}" |
	"$bin" users create --email "${E2E_ADMIN_EMAIL:-admin@example.com}" --name Admin --admin
exec "$bin" serve
