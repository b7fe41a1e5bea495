# Sourced by the benchmark scripts (bench.sh, callgrind.sh, ab.sh,
# session-memory.sh): the processes they start on loopback ports, stopped
# when the script exits.
#   free_port            prints a free TCP port on 127.0.0.1
#   pids+=($!)           a started process, killed at exit
#   at_exit+=("command") a command run at exit, after the kills (e.g. removing
#                        a temporary directory)
#   wait_ready URL       waits up to 10 s for URL to answer 2xx
#   start_redis DIR      starts a throwaway redis-server (no persistence,
#                        its log in DIR/redis.log) and sets redis_port

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

pids=()
at_exit=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for command in "${at_exit[@]}"; do eval "$command" || true; done
}
trap cleanup EXIT
trap "exit 130" INT TERM

wait_ready() { for _ in $(seq 100); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done; echo "not ready: $1" >&2; return 1; }

start_redis() { # dir
  redis_port=$(free_port)
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$1" >"$1/redis.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
}
