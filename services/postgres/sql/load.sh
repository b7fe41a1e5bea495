#!/usr/bin/env bash
# Loads the sample HR database into $DATABASE_URL: the tables (schema.sql),
# 3,000 deterministic employees (seed.sql) and the read-only role
# (readonly_role.sql). Re-running it recreates the tables and resets the role.
#
#   DATABASE_URL=postgres://postgres:secret@localhost:5432/hr services/postgres/sql/load.sh
#
# Optional: PG_READONLY_ROLE (default mcp_readonly); PG_READONLY_PASSWORD lets
# that role log in, so the service can run run_readonly_query under its own
# login (see docs/services/postgres.md); PSQL, the psql binary to use.

# Mounted as /docker-entrypoint-initdb.d (docker-compose.yml), the postgres
# image runs the .sql files itself, in an order they are written to accept;
# this script (executed or sourced there) then has nothing to do.
if [ -z "${DATABASE_URL:-}" ] && [ -n "${POSTGRES_DB:-}" ] \
  && [ "$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")" && pwd)" = /docker-entrypoint-initdb.d ]; then
  echo "load.sh: docker-entrypoint-initdb.d runs the .sql files; nothing to do"
  return 0 2>/dev/null || exit 0
fi

set -euo pipefail

: "${DATABASE_URL:?set DATABASE_URL, e.g. postgres://postgres@localhost:5432/hr}"
dir="$(cd "$(dirname "$0")" && pwd)"
psql="${PSQL:-psql}"

args=(-X -q -v ON_ERROR_STOP=1 -v "readonly_role=${PG_READONLY_ROLE:-mcp_readonly}")
if [ -n "${PG_READONLY_PASSWORD:-}" ]; then
  args+=(-v "readonly_password=${PG_READONLY_PASSWORD}")
fi

"$psql" "${args[@]}" -d "$DATABASE_URL" \
  -f "$dir/schema.sql" \
  -f "$dir/seed.sql" \
  -f "$dir/readonly_role.sql"
echo "loaded departments, employees and role ${PG_READONLY_ROLE:-mcp_readonly}"
