#!/usr/bin/env bash
# b/a in interleaved rounds: one calculator replica on the in-memory store (a)
# and one on Redis (b), both from one release build, loaded in turn by the
# same `mcp-load --mode session` (the a and b of scripts/bench.sh, without
# the other configurations idling beside them). The order alternates (a then
# b, then b then a) so that a drift of the machine does not favour either.
# Where `perf` works, each run is also counted by `perf stat` on the server:
# CPU time and context switches per 1,000 calls, and `sched_yield` calls
# (a lock's spinning wait, see docs/benchmarks.md, "the event buffer's
# lock"). Prints one line per run, then b/a per round and its median.
#
# Usage: scripts/ab.sh [ROUNDS] [CONCURRENCY] [SECONDS]   (defaults 6, 16, 10)
#   AB_B_ENV="NAME=value ..."   extra environment for b (e.g. EVENT_BUFFER_BYTES=1048576)
#   AB_OUT=dir                  where the reports go (default target/ab/<UTC time>)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-6}
concurrency=${2:-16}
seconds=${3:-10}
out=${AB_OUT:-target/ab/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
out=$(cd "$out" && pwd)

command -v redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; }
cargo build --release --locked -p calculator -p mcp-bench
load=target/release/mcp-load

# shellcheck source=scripts/lib/processes.sh
source scripts/lib/processes.sh
start_redis "$out"

declare -A port pid
start() { # name extra-env...
  local name=$1; shift
  port[$name]=$(free_port)
  # shellcheck disable=SC2068
  env MCP_SERVER_HOST=127.0.0.1 MCP_SERVER_PORT="${port[$name]}" REPLICA_ID="$name" RUST_LOG=warn \
    MAX_SESSIONS_PER_USER=unlimited $@ target/release/calculator >"$out/$name.log" 2>&1 &
  pid[$name]=$!
  pids+=($!)
  wait_ready "http://127.0.0.1:${port[$name]}/readyz"
}
start a
# shellcheck disable=SC2086
start b REDIS_URL="redis://127.0.0.1:$redis_port" ${AB_B_ENV:-}

# The events perf can count here (a VM may lack some): software counters,
# and the sched_yield tracepoint where tracing is allowed.
events=task-clock,context-switches
if perf stat -e "$events,syscalls:sys_enter_sched_yield" -- true >/dev/null 2>&1; then
  events="$events,syscalls:sys_enter_sched_yield"
elif ! perf stat -e "$events" -- true >/dev/null 2>&1; then
  events=
fi

run() { # name round
  local name=$1 round=$2 counter=
  if [ -n "$events" ]; then
    perf stat -e "$events" -p "${pid[$name]}" -o "$out/$name.$round.perf" 2>/dev/null &
    counter=$!
  fi
  "$load" --url "http://127.0.0.1:${port[$name]}/mcp" --mode session -c "$concurrency" -d "$seconds" \
    --json "$out/$name.$round.json" >/dev/null
  if [ -n "$counter" ]; then
    kill -INT "$counter"
    wait "$counter" 2>/dev/null || true
  fi
  python3 - "$out" "$name" "$round" <<'EOF'
import json, os, re, sys
out, name, round_ = sys.argv[1:]
report = json.load(open(f"{out}/{name}.{round_}.json"))
calls = report["throughput_rps"] * report["elapsed_s"]
line = f"round {round_} {name}: {report['throughput_rps']:.0f} calls/s, {report['error_count']} errors"
perf = f"{out}/{name}.{round_}.perf"
if os.path.exists(perf):
    counts = {}
    for text in open(perf):
        match = re.match(r"\s*([\d,.]+)\s+(?:msec\s+)?(\S+)", text)
        if match:
            counts[match.group(2)] = float(match.group(1).replace(",", ""))
    if "task-clock" in counts:
        line += f"; per 1,000 calls: {counts['task-clock'] / calls * 1000:.1f} ms CPU"
    if "context-switches" in counts:
        line += f", {counts['context-switches'] / calls * 1000:.0f} context switches"
    if "syscalls:sys_enter_sched_yield" in counts:
        line += f"; sched_yield {counts['syscalls:sys_enter_sched_yield']:.0f}"
print(line)
EOF
}

for round in $(seq "$rounds"); do
  if [ $((round % 2)) = 1 ]; then order="a b"; else order="b a"; fi
  for name in $order; do run "$name" "$round"; done
done

python3 - "$out" "$rounds" <<'EOF'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
ratios = []
for round_ in range(1, rounds + 1):
    a = json.load(open(f"{out}/a.{round_}.json"))["throughput_rps"]
    b = json.load(open(f"{out}/b.{round_}.json"))["throughput_rps"]
    ratios.append(b / a)
print("b/a per round: " + ", ".join(f"{ratio:.2f}" for ratio in ratios))
print(f"b/a median {statistics.median(ratios):.3f} (min {min(ratios):.2f}, max {max(ratios):.2f}) ({out})")
EOF
