#!/usr/bin/env bash
# docker-compose.yml's topology from local processes, without Docker:
# Redis, two replicas of each MCP service sharing their sessions through it,
# and a round-robin nginx in front (no stickiness), as the ALB in production.
#
#   scripts/local-stack.sh start     # or `just stack`
#   scripts/local-stack.sh status
#   scripts/local-stack.sh stop      # or `just stack-down`
#
# The services are those k8s/base/kustomization.yaml deploys, each on the
# MCP_SERVER_PORT of its k8s/base/<name>/config.env (P): replicas on P+1 and
# P+2, nginx on P-1000 (calculator: 9101, 9102 behind :8100), so a service
# made by scripts/new-service.sh joins without an edit here. A service that
# needs more than Redis says so in prepare_service below.
#
# Needs redis-server and nginx (scripts/install-test-deps.sh installs both).
# The postgres service runs when it has a database: DATABASE_URL if set,
# else a local PostgreSQL cluster loaded with the sample HR data when
# /usr/lib/postgresql/*/bin is installed (run as the `postgres` OS user when
# this script runs as root), else it is left out. The hub gets a hub.json
# naming the services started before it by their nginx ports (HUB_CONFIG if
# set), and one HUB_CONTEXT_KEY_SECRET for both replicas (random unless set).
#
# State (pid files, logs, generated configs, the cluster) lives in .stack/
# (git-ignored). Ports, overridable from the environment:
#   STACK_<SERVICE>_PORT         nginx's port for a service (STACK_CALCULATOR_PORT=8100,
#                                STACK_POSTGRES_PORT=8200; `-` in a name becomes `_`)
#   STACK_REDIS_PORT=6390       STACK_PG_PORT=5440 (local cluster)
# STACK_PROFILE=debug runs debug builds (faster to build) instead of release.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
state=$root/.stack
redis_port=${STACK_REDIS_PORT:-6390}
pg_port=${STACK_PG_PORT:-5440}
profile=${STACK_PROFILE:-release}
case "$profile" in
  release) build_flags=(--release) ;;
  debug) build_flags=() ;;
  *) echo "STACK_PROFILE must be release or debug, not '$profile'" >&2; exit 2 ;;
esac

# "name:port" of every service of k8s/base, in its order.
services() {
  local name port
  sed -n 's/^  - //p' k8s/base/kustomization.yaml | while read -r name; do
    [ "$name" = common ] && continue
    port=$(sed -n 's/^MCP_SERVER_PORT=//p' "k8s/base/$name/config.env")
    echo "$name:$port"
  done
}
# nginx's port for a service: STACK_<NAME>_PORT, else its port - 1000.
public_port() { # name port
  local variable
  variable=STACK_$(echo "$1" | tr 'a-z-' 'A-Z_')_PORT
  echo "${!variable:-$(($2 - 1000))}"
}

nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Runs a PostgreSQL server binary, as the postgres user when we are root
# (initdb and postgres refuse to run as root).
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

wait_ready() { # url, log file
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "not ready: $1; last lines of $2:" >&2
  tail -n 20 "$2" >&2
  return 1
}

start_redis() {
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    --daemonize yes --pidfile "$state/redis.pid" --logfile "$state/redis.log" --dir "$state"
  for _ in $(seq 1 50); do alive "$state/redis.pid" && return 0; sleep 0.1; done
  echo "redis-server did not start: $state/redis.log" >&2
  return 1
}

# Sets DATABASE_URL (and PG_READONLY_PASSWORD) for the postgres service, or
# returns 1 when there is no database to use.
start_database() {
  if [ -n "${DATABASE_URL:-}" ]; then
    echo "postgres service: using DATABASE_URL from the environment"
    return 0
  fi
  if [ -z "$pg_bin" ]; then
    echo "postgres service: left out (no DATABASE_URL, no /usr/lib/postgresql/*/bin)"
    return 1
  fi
  local dir=$state/pg
  if [ ! -d "$dir/data" ]; then
    echo "postgres service: creating a local PostgreSQL cluster in $dir"
    mkdir -p "$dir"
    echo mcp >"$dir/pwfile"
    [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$dir"
    as_pg "$pg_bin/initdb" -D "$dir/data" -U postgres --auth-local=trust \
      --auth-host=scram-sha-256 --pwfile="$dir/pwfile" -E UTF8 --locale=C >"$state/initdb.log"
    local load=1
  fi
  as_pg "$pg_bin/pg_ctl" -D "$dir/data" -w -t 60 -l "$dir/server.log" \
    -o "-p $pg_port -k $dir -c listen_addresses=127.0.0.1" start >/dev/null
  export DATABASE_URL="postgres://postgres:mcp@127.0.0.1:$pg_port/hr?sslmode=disable"
  export PG_READONLY_PASSWORD=mcp-readonly
  if [ -n "${load:-}" ]; then
    as_pg "$pg_bin/psql" -X -q -h "$dir" -p "$pg_port" -U postgres -d postgres -c "CREATE DATABASE hr"
    PSQL=$pg_bin/psql services/postgres/sql/load.sh >/dev/null
    echo "postgres service: sample HR database loaded"
  fi
}

# The hub's configuration (docs/hub.md), or HUB_CONFIG from the environment:
# $state/hub.json with every service started before it (k8s/base lists the
# hub last; `started` of start()) as an upstream behind its nginx port, as
# deploy/hub/hub.json names the compose services; and the
# HUB_CONTEXT_KEY_SECRET both replicas must share (required with REDIS_URL).
write_hub_config() {
  if [ -z "${HUB_CONTEXT_KEY_SECRET:-}" ]; then
    HUB_CONTEXT_KEY_SECRET=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
    export HUB_CONTEXT_KEY_SECRET
  fi
  if [ -z "${CLIENT_SESSION_ENCRYPTION_KEY:-}" ]; then
    CLIENT_SESSION_ENCRYPTION_KEY=$(head -c 32 /dev/urandom | base64)
    export CLIENT_SESSION_ENCRYPTION_KEY
  fi
  if [ -n "${HUB_CONFIG:-}" ]; then
    echo "hub: using HUB_CONFIG=$HUB_CONFIG from the environment"
    return 0
  fi
  local entry name url sharing servers='' tools=''
  for entry in "${started[@]}"; do
    name=${entry%%:*}
    url=http://127.0.0.1:$(public_port "$name" "${entry##*:}")/mcp
    case "$name" in
      # No per-user state: one upstream session for every caller.
      calculator) sharing='"sharing": "shared"' ;;
      # Its own retries take up to 3 x VIRUSTOTAL_TIMEOUT_MS (30 s).
      virustotal) sharing='"sharing": "user", "forward_headers": ["authorization", "x-api-key"], "timeout_ms": 100000' ;;
      # Each user's own upstream session, with the caller's credential.
      *) sharing='"sharing": "user", "forward_headers": ["authorization", "x-api-key"]' ;;
    esac
    servers+=${servers:+,}$'\n'"    \"$name\": {\"url\": \"$url\", $sharing}"
    case "$name" in calculator | virustotal) tools+="${tools:+, }\"$name\"" ;; esac
  done
  printf '{\n  "servers": {%s\n  },\n  "groups": {%s},\n  "session_ttl_seconds": 3600\n}\n' \
    "$servers" "${tools:+\"tools\": [$tools]}" >"$state/hub.json"
  export HUB_CONFIG=$state/hub.json
  echo "hub: upstreams in $HUB_CONFIG"
}

start_replica() { # service, port
  local name=$1-$2
  env REDIS_URL="redis://127.0.0.1:$redis_port" MCP_SERVER_HOST=127.0.0.1 MCP_SERVER_PORT="$2" \
    REPLICA_ID="$name" ALLOWED_HOSTS=localhost,127.0.0.1 TRUSTED_PROXY_HOPS=1 \
    "${CARGO_TARGET_DIR:-$root/target}/$profile/$1" >"$state/$name.log" 2>&1 &
  echo $! >"$state/$name.pid"
}

# nginx.conf for the replicas started: one server (port) per service, with
# deploy/nginx/mcp-proxy.conf, the settings docker compose uses too.
write_nginx_conf() { # "service:public-port:replica-port,replica-port" ...
  {
    echo "pid $state/nginx.pid;"
    echo "error_log $state/nginx-error.log warn;"
    echo "events { worker_connections 1024; }"
    echo "http {"
    echo "  log_format mcp '\$remote_addr \"\$request\" \$status upstream=\$upstream_addr session=\$http_mcp_session_id';"
    echo "  access_log $state/nginx-access.log mcp;"
    for temp in client_body proxy fastcgi uwsgi scgi; do
      echo "  ${temp}_temp_path $state/nginx-temp/$temp;"
    done
    for entry in "$@"; do
      IFS=: read -r service public replicas <<<"$entry"
      echo "  upstream $service {"
      for port in ${replicas//,/ }; do echo "    server 127.0.0.1:$port;"; done
      echo "    keepalive 32;"
      echo "  }"
      echo "  server {"
      echo "    listen 127.0.0.1:$public;"
      echo "    location / { proxy_pass http://$service; include $root/deploy/nginx/mcp-proxy.conf; }"
      echo "  }"
    done
    echo "}"
  } >"$state/nginx.conf"
}

# What a service needs besides Redis, set up before its replicas start;
# returns 1 (after saying why) to leave the service out. Add a case for a
# service with its own dependencies or credentials.
prepare_service() { # name
  case "$1" in
    postgres) start_database ;;
    hub) write_hub_config ;;
    *) return 0 ;;
  esac
}

start() {
  if alive "$state/nginx.pid" || alive "$state/redis.pid"; then
    echo "already running (scripts/local-stack.sh status); stop it first" >&2
    exit 1
  fi
  # On any failure below, stop whatever did start.
  trap 'status=$?; if [ $status -ne 0 ]; then echo "start failed; stopping what started" >&2; stop; fi' EXIT
  mkdir -p "$state/nginx-temp"
  local entry name port packages=() started=() upstreams=()
  for entry in $(services); do
    name=${entry%%:*}
    if prepare_service "$name"; then
      started+=("$entry")
      packages+=(-p "$name")
    fi
  done
  [ ${#started[@]} -gt 0 ] || { echo "no service to start" >&2; exit 1; }
  echo "building ${packages[*]} ($profile)"
  cargo build "${build_flags[@]}" --locked "${packages[@]}"
  start_redis
  for entry in "${started[@]}"; do
    name=${entry%%:*} port=${entry##*:}
    start_replica "$name" $((port + 1))
    start_replica "$name" $((port + 2))
    upstreams+=("$name:$(public_port "$name" "$port"):$((port + 1)),$((port + 2))")
  done
  for entry in "${started[@]}"; do
    name=${entry%%:*} port=${entry##*:}
    for replica in $((port + 1)) $((port + 2)); do
      wait_ready "http://127.0.0.1:$replica/readyz" "$state/$name-$replica.log"
    done
  done
  write_nginx_conf "${upstreams[@]}"
  "$nginx_bin" -c "$state/nginx.conf" -p "$state/" -e "$state/nginx-error.log"
  trap - EXIT
  echo
  for entry in "${upstreams[@]}"; do
    IFS=: read -r name public replicas <<<"$entry"
    printf '%-12s http://localhost:%s/mcp  http://localhost:%s/sse  (replicas on %s)\n' \
      "$name:" "$public" "$public" "${replicas//,/ }"
  done
  echo "redis:       redis://127.0.0.1:$redis_port"
  echo "logs:        $state/*.log (nginx-access.log names the replica of each request)"
  echo "stop:        scripts/local-stack.sh stop"
}

stop_pid() { # pid file, what
  local file=$1
  alive "$file" || { rm -f "$file"; return 0; }
  local pid
  pid=$(cat "$file")
  kill -TERM "$pid"
  # SHUTDOWN_GRACE_SECONDS (25 s) plus a margin.
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "$2 did not stop; killing it" >&2
    kill -KILL "$pid"
  fi
  rm -f "$file"
  echo "stopped $2"
}

stop() {
  stop_pid "$state/nginx.pid" nginx
  local entry
  for entry in $(services); do
    for file in "$state/${entry%%:*}"-[0-9]*.pid; do
      [ -e "$file" ] && stop_pid "$file" "$(basename "$file" .pid)"
    done
  done
  stop_pid "$state/redis.pid" redis
  if [ -f "$state/pg/data/postmaster.pid" ] && [ -n "$pg_bin" ]; then
    as_pg "$pg_bin/pg_ctl" -D "$state/pg/data" -m fast -w -t 30 stop >/dev/null && echo "stopped PostgreSQL"
  fi
  return 0
}

status() {
  local any=
  for file in "$state"/*.pid; do
    [ -e "$file" ] || continue
    any=1
    if alive "$file"; then echo "running  $(basename "$file" .pid) (pid $(cat "$file"))"
    else echo "dead     $(basename "$file" .pid)"; fi
  done
  [ -n "$any" ] || echo "not running"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
