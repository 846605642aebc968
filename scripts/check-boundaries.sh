#!/usr/bin/env bash
# Dependency boundaries the compiler alone does not keep: services that call models depend on
# the model-calling port (confab-model-client), never on the inference service's crate, so they
# can run in a process of their own and reach it over HTTP; and the NATS adapters (async-nats)
# and the Redis adapters (the `redis` crate, confab-cache's `redis` feature) are built only for
# the composition root. Fails naming the crate and the path by which the
# forbidden dependency came in.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

status=0
# Crates that must not depend on confab-inference, in any build (normal, build or dev).
for crate in confab-chat confab-seo confab-model-client; do
	tree=$(cargo tree --locked -p "$crate" -e normal,build,dev --prefix none --format '{p}')
	if grep -q '^confab-inference ' <<<"$tree"; then
		echo "boundary: $crate depends on confab-inference; call models through confab-model-client:" >&2
		cargo tree --locked -p "$crate" -e normal,build,dev -i confab-inference >&2 || true
		status=1
	fi
done
# Only the composition root builds the NATS client: the services use the bus's ports alone.
for crate in confab-chat confab-seo confab-auth confab-auth-client confab-admin confab-inference; do
	if cargo tree --locked -p "$crate" -e normal,build --prefix none --format '{p}' | grep -q '^async-nats '; then
		echo "boundary: $crate builds async-nats; depend on confab-bus without its \`nats\` feature" >&2
		status=1
	fi
done
# Only the composition root builds the Redis client: services and the gateway use the cache
# and limiter ports alone (confab-cache without its `redis` feature).
for crate in confab-chat confab-seo confab-auth confab-admin confab-inference confab-gateway; do
	[[ -f crates/${crate#confab-}/Cargo.toml ]] || continue # not in this workspace (yet)
	if cargo tree --locked -p "$crate" -e normal,build --prefix none --format '{p}' | grep -q '^redis '; then
		echo "boundary: $crate builds the redis crate; depend on confab-cache without its \`redis\` feature:" >&2
		cargo tree --locked -p "$crate" -e normal,build -i redis >&2 || true
		status=1
	fi
done
# The same check in the issue's words: nothing on stdout.
if [[ -n $(cargo tree --locked -p confab-chat -i confab-inference 2>/dev/null) ]]; then
	echo "boundary: \`cargo tree -p confab-chat -i confab-inference\` is not empty" >&2
	status=1
fi
if ((status == 0)); then
	echo "boundaries: chat, the SEO studio and the model client do not depend on the inference service; only the composition root builds async-nats and redis"
fi
exit $status
