# syntax=docker/dockerfile:1
# One image recipe for every MCP service of the workspace; SERVICE picks the
# binary (a workspace package whose binary has the same name):
#
#   docker build --build-arg SERVICE=calculator -t calculator .
#   docker build --build-arg SERVICE=postgres --build-arg PORT=9200 -t postgres .
#
# Stages: `chef` (toolchain + cargo-chef), `planner` (the dependency recipe:
# Cargo.toml files and Cargo.lock only), `builder` (dependencies first, in a
# layer that stays cached until Cargo.lock or a manifest changes; then the
# service), `runtime` (distroless: glibc, CA certificates, no shell, user
# 65532). The binary writes nothing to disk, so the container runs with a
# read-only root filesystem; Kubernetes probes /healthz and /readyz, so the
# image has no HEALTHCHECK.

# Debian 12 (bookworm) to match the runtime's glibc. The workspace needs Rust
# 1.88 or later; CI and the tests run the same 1.95.
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
ARG SERVICE=calculator
COPY --from=planner /src/recipe.json recipe.json
# Dependencies only: rebuilt when the recipe (manifests, Cargo.lock) changes.
RUN cargo chef cook --release --locked -p "${SERVICE}" --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked -p "${SERVICE}" --bin "${SERVICE}" \
 && cp "target/release/${SERVICE}" /mcp-service

FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
ARG SERVICE=calculator
# The service's default port (calculator 9100, postgres 9200); documentation
# only: MCP_SERVER_PORT decides.
ARG PORT=9100
LABEL org.opencontainers.image.title="${SERVICE}" \
      org.opencontainers.image.description="MCP service ${SERVICE} (mcp-session: Streamable HTTP /mcp, HTTP+SSE /sse)" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /mcp-service /usr/local/bin/mcp-service
# No .env in the image: configuration comes from the environment.
WORKDIR /
USER 65532:65532
EXPOSE ${PORT}
ENTRYPOINT ["/usr/local/bin/mcp-service"]
