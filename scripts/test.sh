#!/usr/bin/env bash
# The whole test suite, as the README and CI run it: installs what the tests
# need, then runs every Rust test (unit, integration, interop with the official
# Python and TypeScript SDKs), then the test of the service generator
# (tests/scaffold/run.sh, after cargo test so that the two builds never wait
# on each other's lock).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
export MCP_INTEROP_REQUIRED=1
export MCP_TEST_PYTHON="$PWD/.venv/bin/python"
export MCP_TEST_NODE_DIR="$PWD/tests/interop/typescript"
cargo test --workspace --all-targets --locked "$@"
# mcp_heap_bytes exists only in a build with jemalloc's statistics (mcp-session's feature
# heap-stats, off by default): its reading of them.
cargo test -p mcp-session --lib --locked -F heap-stats allocator
# --- service generator (scripts/new-service.sh) ---
tests/scaffold/run.sh
