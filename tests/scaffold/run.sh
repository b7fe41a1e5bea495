#!/usr/bin/env bash
# The test of scripts/new-service.sh (docs/adding-a-service.md), run by
# scripts/test.sh after `cargo test`: in a copy of the repository's files
# (tracked and untracked-but-not-ignored) in a temporary directory, so that
# the repository itself is never touched, it
#
#   1. checks that bad names and ports are refused and change nothing;
#   2. creates a service, and checks that a second run with its name is refused;
#   3. builds, lints (clippy -D warnings, rustfmt) and tests the new crate
#      (`cargo test -p <name>`: its unit tests, then its binary over
#      Streamable HTTP and legacy SSE, alone and as 2 replicas on Redis behind
#      nginx), with the lock file as the generator left it (--locked);
#   4. runs crates/deploy-tests there: every overlay, the new service
#      included, renders with kubectl kustomize, validates against the
#      Kubernetes schemas and keeps the deployment rules, and
#      docker-compose.yml runs the new service twice behind nginx.
#
# Builds go to the repository's own target/ (CARGO_TARGET_DIR), where the
# dependencies are built already: only the path crates rebuild. Needs what
# scripts/test.sh sets: MCP_TEST_PYTHON (the .venv with kubectl,
# kubernetes-validate and docker-compose) and redis-server and nginx.
# Prints `scaffold: N passed, M failed` last and exits non-zero on a failure.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
name=scaffold-probe
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}

work=$(mktemp -d "${TMPDIR:-/tmp}/mcp-scaffold.XXXXXX")
trap 'rm -rf "$work"' EXIT
copy=$work/repo
logs=$work/logs
mkdir -p "$copy" "$logs"

passed=0
failed=0
# check <description> <command...>: runs the command in the copy, its output
# in a log shown on failure.
check() {
  local description=$1 log
  shift
  log=$logs/$((passed + failed)).log
  if (cd "$copy" && "$@") >"$log" 2>&1; then
    passed=$((passed + 1))
    echo "scaffold: ok      $description"
  else
    failed=$((failed + 1))
    echo "scaffold: FAILED  $description"
    tail -n 60 "$log" | sed 's/^/    | /'
  fi
}
# refuses <description> <args...>: the generator exits non-zero with a message
# and the copy is unchanged.
refuses() {
  local description=$1
  shift
  check "refuses $description" bash -c '
    before=$(find . -type f -newer "$0" | wc -l)
    if scripts/new-service.sh "$@"; then echo "accepted: $*"; exit 1; fi
    [ "$(find . -type f -newer "$0" | wc -l)" = "$before" ] || { echo "files changed"; exit 1; }
  ' "$work/stamp" "$@"
}

(cd "$root" && git ls-files -z --cached --others --exclude-standard) \
  | (cd "$root" && tar --null --ignore-failed-read -T - -cf - 2>/dev/null) \
  | tar -xf - -C "$copy"
touch -d '-1 second' "$work/stamp"
echo "scaffold: copied the repository to $copy"

refuses "a name with capitals" Weather
refuses "a name with an underscore" weather_alerts
refuses "a name ending in -" weather-
refuses "a Rust keyword" type
refuses "an existing service" calculator
refuses "a dependency's name" tokio
refuses "a port next to calculator's" "$name" 9101
refuses "a port out of range" "$name" 80

check "creates services/$name" bash -c "scripts/new-service.sh $name | tee $logs/generator.out"
check "refuses $name a second time" bash -c "! scripts/new-service.sh $name"
check "the new service has its files" bash -c "
  for file in services/$name/Cargo.toml services/$name/src/main.rs services/$name/src/tools.rs \
    services/$name/tests/mcp.rs k8s/base/$name/kustomization.yaml \
    k8s/overlays/dev/services/$name/kustomization.yaml \
    k8s/overlays/prod/services/$name/kustomization.yaml deploy/nginx/compose/$name.conf; do
    [ -f \"\$file\" ] || { echo \"missing \$file\"; exit 1; }
  done
  grep -q '\"services/$name\"' Cargo.toml && grep -qx 'name = \"$name\"' Cargo.lock"
check "cargo fmt --check -p $name" cargo fmt --check -p "$name"
check "cargo clippy -p $name -D warnings" cargo clippy -p "$name" --all-targets --locked -- -D warnings
check "cargo test -p $name" cargo test -p "$name" --locked
check "deploy-tests with $name (kustomize, schemas, rules, compose)" \
  env MCP_INTEROP_REQUIRED=1 cargo test -p deploy-tests --locked

echo "scaffold: $passed passed, $failed failed"
[ "$failed" = 0 ]
