-- The read-only role of the MCP postgres service (default `mcp_readonly`):
-- SELECT on the sample tables and nothing else. `run_readonly_query` runs
-- every statement under this role.
--
-- psql variables (load.sh sets them from the environment):
--   readonly_role      role name (PG_READONLY_ROLE), default mcp_readonly
--   readonly_password  optional (PG_READONLY_PASSWORD; psql 15+ also reads that
--                      environment variable itself): when set, the role can
--                      log in with it, and the service connects as this role
--                      for run_readonly_query (recommended); when unset the
--                      role is NOLOGIN and the service reaches it with
--                      SET ROLE, which needs the DATABASE_URL user to be a
--                      member of it (GRANT mcp_readonly TO that_user).
--
-- Re-running the script resets the role to exactly these privileges.

\set ON_ERROR_STOP on
\if :{?readonly_role}
\else
\set readonly_role mcp_readonly
\endif
-- psql 15+ can also take the password from the environment (as the
-- postgres image's docker-entrypoint-initdb.d runs this file).
\if :{?readonly_password}
\else
SELECT :VERSION_NUM >= 150000 AS psql_has_getenv \gset
\if :psql_has_getenv
\getenv readonly_password PG_READONLY_PASSWORD
\endif
\endif

BEGIN;

SELECT format('CREATE ROLE %I', :'readonly_role')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'readonly_role')
\gexec

-- No attribute that grants more than reading.
ALTER ROLE :"readonly_role" NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    INHERIT CONNECTION LIMIT 50;

\if :{?readonly_password}
ALTER ROLE :"readonly_role" LOGIN PASSWORD :'readonly_password';
\else
ALTER ROLE :"readonly_role" NOLOGIN PASSWORD NULL;
\endif

-- Session defaults for every connection of the role: read-only transactions
-- and bounded statements, even for a client that forgets to ask for them.
ALTER ROLE :"readonly_role" SET default_transaction_read_only = on;
ALTER ROLE :"readonly_role" SET statement_timeout = '30s';
ALTER ROLE :"readonly_role" SET lock_timeout = '5s';
ALTER ROLE :"readonly_role" SET idle_in_transaction_session_timeout = '60s';

-- Membership in other roles would lend their privileges: drop it all.
SELECT format('REVOKE %I FROM %I', g.rolname, m.rolname)
FROM pg_auth_members am
JOIN pg_roles g ON g.oid = am.roleid
JOIN pg_roles m ON m.oid = am.member
WHERE m.rolname = :'readonly_role'
\gexec

-- Start from nothing in the schema, then grant exactly what is needed.
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM :"readonly_role";
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM :"readonly_role";
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public FROM :"readonly_role";
REVOKE ALL ON SCHEMA public FROM :"readonly_role";
REVOKE ALL ON DATABASE :"DBNAME" FROM :"readonly_role";

GRANT CONNECT ON DATABASE :"DBNAME" TO :"readonly_role";
GRANT USAGE ON SCHEMA public TO :"readonly_role";
-- The tables may not exist yet (schema.sql grants again when it creates them).
SELECT format('GRANT SELECT ON TABLE %s TO %I', c.oid::regclass, :'readonly_role')
FROM pg_class c
WHERE c.oid IN (to_regclass('public.departments'), to_regclass('public.employees'))
\gexec

COMMIT;
