#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine, idempotently:
# system packages (Redis, nginx, PostgreSQL), the pinned Python SDK in .venv,
# and the pinned npm packages of the interop tests.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need_apt+=(nginx-light)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing system packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
# The packages start their own daemons on the default ports; the tests start
# their own instances on free ports, so stop those to keep the machine quiet.
for svc in redis-server nginx postgresql; do
  service "$svc" stop >/dev/null 2>&1 || true
done

# --- Python SDK (interop tests) -------------------------------------------
# (filled in by the interop tests: .venv with the pinned `mcp` package)

# --- TypeScript SDK and MCP Inspector (interop tests) ---------------------
# (filled in by the interop tests: npm ci in tests/interop/typescript)
