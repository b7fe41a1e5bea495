# Everyday commands. Each recipe runs the same command the README documents.

set dotenv-load := false

# List the recipes.
default:
    @just --list

# Run a service locally (calculator, postgres, ...); no Redis needed.
run service="calculator":
    cargo run -p {{service}}

# The whole test suite: installs Redis, nginx, PostgreSQL and the official
# MCP clients it needs, then runs every test (same as CI).
test *args:
    scripts/test.sh {{args}}

# Formatting and lints, as CI checks them.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets --locked -- -D warnings

# Format the code.
fmt:
    cargo fmt --all

# Build release binaries of every service.
build:
    cargo build --workspace --release --locked

# Create a new MCP service: services/<name>, its k8s base and overlay
# components, its compose block (docs/adding-a-service.md).
new-service name *port:
    scripts/new-service.sh {{name}} {{port}}

# Build a service's container image (the one Dockerfile, by name).
image service tag="dev":
    docker build --build-arg SERVICE={{service}} \
        --build-arg PORT="$(sed -n 's/^MCP_SERVER_PORT=//p' k8s/base/{{service}}/config.env)" \
        -t mcp/{{service}}:{{tag}} .

# The local stack without Docker: Redis, 2 replicas of each service, nginx.
stack:
    scripts/local-stack.sh start

# Stop the local stack.
stack-down:
    scripts/local-stack.sh stop

# What of the local stack runs.
stack-status:
    scripts/local-stack.sh status

# Load the postgres service's sample HR database into $DATABASE_URL.
db-load:
    services/postgres/sql/load.sh

# What CI runs.
ci:
    bash .ci/run

# Benchmarks (docs/benchmarks.md): in-memory vs Redis vs 3 replicas behind
# nginx vs the Python SDK, on this machine; run it on a quiet machine.
bench concurrency="16" seconds="10":
    scripts/bench.sh {{concurrency}} {{seconds}}

# b/a alone: the in-memory and the Redis replica in alternating rounds, with
# perf's CPU time and context switches per call where perf works.
ab rounds="6" concurrency="16" seconds="10":
    scripts/ab.sh {{rounds}} {{concurrency}} {{seconds}}

# Instructions per tool call, session start and stateless call (callgrind):
# the calculator against rmcp bare and a hand-written floor.
callgrind calls="300" sessions="60":
    scripts/callgrind.sh {{calls}} {{sessions}}
