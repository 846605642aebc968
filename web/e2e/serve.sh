#!/usr/bin/env bash
# Starts the Confab server the end-to-end tests talk to: a fresh data directory under
# target/e2e, an admin made with the CLI, and a scripted (deterministic, word-by-word) model.
# Playwright runs this as its web server and stops it when the run ends.
#   TEST_CONFAB_BIN         the binary (default: target/debug/confab)
#   E2E_PORT    the port on 127.0.0.1
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
providers = [{ name = "script", kind = "scripted", models = ["confab-scripted"], reply = "You said: {last}. Here is an answer that arrives word by word, with **bold words**, a list:\n\n- first item\n- second item\n\nand a code block:\n\n\`\`\`rust\nfn main() { println!(\"hello\"); }\n\`\`\`\n\nThat is the whole answer.", delay_ms = 90 }]
TOML
export CONFAB_CONFIG=$dir/confab.toml
echo "${E2E_ADMIN_PASSWORD:-admin-password-1}" |
	"$bin" users create --email "${E2E_ADMIN_EMAIL:-admin@example.com}" --name Admin --admin
exec "$bin" serve
