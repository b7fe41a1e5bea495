#!/usr/bin/env bash
# Benchmarks, in one go on one machine (see docs/benchmarks.md):
#   a: one calculator replica, in-memory store
#   b: one calculator replica, Redis store
#   c: three replicas behind round-robin nginx (no stickiness), Redis store
#   d: the same `add` tool on the official Python SDK server, Streamable HTTP sessions
#   e: the Python server with stateless_http=True
# each loaded by mcp-load (C sessions calling `add` for D seconds), plus our
# stateless and SSE modes, and a cross-check of the stateless mode with wrk.
# Prints the table, the ratios b/a, c/a, a/d, and Redis commands per tool call
# (from INFO commandstats before and after).
#
# Usage: scripts/bench.sh [CONCURRENCY] [SECONDS]    (defaults 16 and 10)
set -euo pipefail
cd "$(dirname "$0")/.."
concurrency=${1:-16}
seconds=${2:-10}
out=${BENCH_OUT:-target/bench/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"

scripts/install-test-deps.sh
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --locked -p calculator -p mcp-bench
load=target/release/mcp-load
calculator=target/release/calculator
python=.venv/bin/python

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT
wait_ready() { for _ in $(seq 100); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done; echo "not ready: $1" >&2; return 1; }

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$out" >"$out/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis_url=redis://127.0.0.1:$redis_port

start_calculator() { # name port [REDIS_URL]
  env MCP_SERVER_HOST=127.0.0.1 MCP_SERVER_PORT="$2" REPLICA_ID="$1" RUST_LOG=warn ${3:+REDIS_URL=$3} \
    "$calculator" >"$out/$1.log" 2>&1 &
  pids+=($!)
  wait_ready "http://127.0.0.1:$2/readyz"
}
run_load() { # key label url mode
  "$load" --url "$3" --mode "$4" -c "$concurrency" -d "$seconds" --label "$2" --json "$out/$1.json" >/dev/null
}
with_redis_stats() { # key command...
  local key=$1; shift
  redis-cli -p "$redis_port" config resetstat >/dev/null
  "$@"
  redis-cli -p "$redis_port" info commandstats >"$out/$key.redis.txt"
}

echo "== a: 1 replica, memory"
port=$(free_port); start_calculator a "$port"
run_load a "1 replica, memory" "http://127.0.0.1:$port/mcp" session
run_load extra-a-stateless "1 replica, memory, stateless 2026-07-28" "http://127.0.0.1:$port/mcp" stateless
run_load extra-a-sse "1 replica, memory, HTTP+SSE 2024-11-05" "http://127.0.0.1:$port/sse" sse
echo "== cross-check of the stateless mode with wrk"
wrk -t2 -c"$concurrency" -d"${seconds}s" --latency -s bench/stateless_call.lua "http://127.0.0.1:$port/mcp" | tee "$out/wrk-a-stateless.txt"

echo "== b: 1 replica, Redis"
port=$(free_port); start_calculator b "$port" "$redis_url"
with_redis_stats b run_load b "1 replica, Redis" "http://127.0.0.1:$port/mcp" session

echo "== c: 3 replicas behind nginx, Redis"
upstreams=()
for i in 1 2 3; do
  p=$(free_port); start_calculator "c$i" "$p" "$redis_url"; upstreams+=("$p")
done
nginx_port=$(free_port)
mkdir -p "$out/nginx"
{
  echo "worker_processes 1; daemon off; pid $PWD/$out/nginx/nginx.pid; error_log $PWD/$out/nginx/error.log warn;"
  echo "events { worker_connections 4096; }"
  echo "http { access_log off; client_body_temp_path $PWD/$out/nginx/b; proxy_temp_path $PWD/$out/nginx/p;"
  echo "  fastcgi_temp_path $PWD/$out/nginx/f; uwsgi_temp_path $PWD/$out/nginx/u; scgi_temp_path $PWD/$out/nginx/s;"
  echo "  upstream replicas {"; for p in "${upstreams[@]}"; do echo "    server 127.0.0.1:$p;"; done; echo "    keepalive 64; }"
  echo "  server { listen 127.0.0.1:$nginx_port; location / { proxy_pass http://replicas; proxy_http_version 1.1;"
  echo "    proxy_set_header Connection \"\"; proxy_set_header Host \$http_host; proxy_buffering off; proxy_request_buffering off; } } }"
} >"$out/nginx/nginx.conf"
nginx -c "$PWD/$out/nginx/nginx.conf" -p "$PWD/$out/nginx" &
pids+=($!)
wait_ready "http://127.0.0.1:$nginx_port/healthz"
with_redis_stats c run_load c "3 replicas + nginx, Redis" "http://127.0.0.1:$nginx_port/mcp" session

echo "== d: Python SDK server, sessions"
port=$(free_port)
"$python" bench/python_server.py "$port" >"$out/d.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/mcp" && break; sleep 0.1; done
run_load d "Python SDK, sessions" "http://127.0.0.1:$port/mcp" session

echo "== e: Python SDK server, stateless_http"
port=$(free_port)
"$python" bench/python_server.py "$port" --stateless >"$out/e.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/mcp" && break; sleep 0.1; done
run_load e "Python SDK, stateless_http" "http://127.0.0.1:$port/mcp" session

echo
echo "== results: $concurrency sessions, ${seconds}s each, $(nproc) cores ($out)"
python3 bench/summarize.py "$out"
