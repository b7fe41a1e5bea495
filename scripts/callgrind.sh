#!/usr/bin/env bash
# Instructions per operation, counted by valgrind's callgrind (which this
# machine's noise does not move), for the same `add` tool served by:
#   calculator-memory  the calculator, in-memory store
#   calculator-redis   the calculator on Redis
#   rmcp-bare          rmcp's own example-server shape (crates/mcp-bench/src/bin/rmcp_bare.rs)
#   floor              a hand-written axum JSON-RPC server (crates/mcp-bench/src/bin/mcp_floor.rs)
# and three paths, each loaded by mcp-load with a fixed number of operations:
#   tool call       one session (2025-06-18) making CALLS `tools/call`s
#                   (its session start subtracted)
#   session start   SESSIONS sessions opened (`initialize` + `initialized`)
#   stateless call  CALLS 2026-07-28 `tools/call`s without a session
# Each server runs under callgrind; its counters are zeroed before a path's
# load and dumped after it (callgrind_control), so start-up and warm-up are
# not counted. Prints instructions per operation and the ratios to rmcp bare
# and to the floor; the dumps stay in the output directory for
# callgrind_annotate (where the instructions go).
#
# Usage: scripts/callgrind.sh [CALLS] [SESSIONS]     (defaults 300 and 60)
#   CALLGRIND_OUT=dir   where the dumps and the table go (default target/callgrind/<UTC time>)
#   CALLGRIND_ONLY="rmcp-bare floor"   measure only these servers
set -euo pipefail
cd "$(dirname "$0")/.."
calls=${1:-300}
sessions=${2:-60}
out=${CALLGRIND_OUT:-target/callgrind/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
only=${CALLGRIND_ONLY:-calculator-memory calculator-redis rmcp-bare floor}

command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
command -v redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; }
cargo build --release --locked -p calculator -p mcp-bench
load=target/release/mcp-load

# shellcheck source=scripts/lib/processes.sh
source scripts/lib/processes.sh
start_redis "$out"

# The environment (NAME=value words) and the command line of server $1 on
# port $2: the environment goes before valgrind, which runs the binary itself
# (an `env` under valgrind would exec it unmeasured).
server_env() {
  case $1 in
    calculator-memory) echo "MCP_SERVER_HOST=127.0.0.1 MCP_SERVER_PORT=$2 REPLICA_ID=cg RUST_LOG=warn MAX_SESSIONS_PER_USER=unlimited" ;;
    calculator-redis) echo "MCP_SERVER_HOST=127.0.0.1 MCP_SERVER_PORT=$2 REPLICA_ID=cg RUST_LOG=warn MAX_SESSIONS_PER_USER=unlimited REDIS_URL=redis://127.0.0.1:$redis_port" ;;
    *) echo "RUST_LOG=warn" ;;
  esac
}
server_command() {
  case $1 in
    calculator-*) echo "target/release/calculator" ;;
    rmcp-bare) echo "target/release/rmcp-bare $2" ;;
    floor) echo "target/release/mcp-floor $2" ;;
    *) echo "unknown server $1" >&2; return 1 ;;
  esac
}

# Instructions of callgrind dump file $1 (its PROGRAM TOTALS).
instructions() { callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }'; }

# Zeroes server $1's counters (pid $2), runs the load "${@:4}", dumps as path
# $3; prints the dump's instructions.
measure() { # name pid path load-args...
  local name=$1 pid=$2 path=$3; shift 3
  callgrind_control -z "$pid" >/dev/null
  "$load" "$@" --json "$out/$name.$path.json" >/dev/null
  sleep 1 # what the load set off (a session's worker, writes) settles
  callgrind_control -d "$path" "$pid" >/dev/null
  local dump=
  for _ in $(seq 100); do
    dump=$(ls -t "$out/$name".callgrind.out.* 2>/dev/null | head -1)
    [ -n "$dump" ] && [ -s "$dump" ] && break
    sleep 0.2
  done
  mv "$dump" "$out/$name.$path.callgrind"
  errors=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["error_count"])' "$out/$name.$path.json")
  [ "$errors" = 0 ] || { echo "$name $path: $errors errors (see $out/$name.$path.json)" >&2; return 1; }
  instructions "$out/$name.$path.callgrind"
}

results=$out/results.txt
: >"$results"
for name in $only; do
  port=$(free_port)
  url=http://127.0.0.1:$port/mcp
  # shellcheck disable=SC2046
  env $(server_env "$name" "$port") valgrind --tool=callgrind --callgrind-out-file="$out/$name.callgrind.out" \
    $(server_command "$name" "$port") >"$out/$name.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 600); do
    curl -s -o /dev/null "http://127.0.0.1:$port/mcp" && break
    sleep 0.2
  done
  echo "== $name (pid $pid, port $port)" >&2
  # Warm-up: every path once over, so that lazy start-up work is not counted.
  "$load" --url "$url" --mode session -c 2 --calls 20 >/dev/null
  "$load" --url "$url" --mode stateless -c 2 --calls 20 >/dev/null
  start=$(measure "$name" "$pid" start --url "$url" --mode session -c "$sessions" --calls 0 --timeout 120)
  one=$(measure "$name" "$pid" call --url "$url" --mode session -c 1 --calls "$calls" --timeout 120)
  stateless=$(measure "$name" "$pid" stateless --url "$url" --mode stateless -c 1 --calls "$calls" --timeout 120)
  echo "$name $start $one $stateless" >>"$results"
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
done

python3 - "$results" "$calls" "$sessions" <<'EOF' | tee "$out/table.md"
import sys
path, calls, sessions = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rows = {}
for line in open(path):
    name, start, one, stateless = line.split()
    start = int(start) / sessions
    call = (int(one) - start) / calls
    rows[name] = {"tool call": call, "session start": start, "stateless call": int(stateless) / calls}
paths = ["tool call", "session start", "stateless call"]
print(f"instructions per operation (callgrind; {calls} calls, {sessions} sessions)")
print("| server | " + " | ".join(paths) + " |")
print("|---|" + "---|" * len(paths))
for name, row in rows.items():
    print(f"| {name} | " + " | ".join(f"{row[p]/1000:,.0f}k" for p in paths) + " |")
for reference in ["rmcp-bare", "floor"]:
    if reference not in rows:
        continue
    print(f"\nratio to {reference}")
    print("| server | " + " | ".join(paths) + " |")
    print("|---|" + "---|" * len(paths))
    for name, row in rows.items():
        print(f"| {name} | " + " | ".join(f"{row[p]/rows[reference][p]:.2f}" for p in paths) + " |")
EOF
echo "dumps: $out (callgrind_annotate $out/<server>.<path>.callgrind)" >&2
