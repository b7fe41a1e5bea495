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

# Load the postgres service's sample HR database into $DATABASE_URL.
db-load:
    services/postgres/sql/load.sh

# What CI runs.
ci:
    bash .ci/run
