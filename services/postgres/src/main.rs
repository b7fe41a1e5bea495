//! The postgres MCP service: HR tools over PostgreSQL on Streamable HTTP
//! (`/mcp`) and HTTP+SSE (`/sse`), on port 9200 unless `MCP_SERVER_PORT` says
//! otherwise. Settings come from the environment: `DATABASE_URL` and the
//! `PG_*` variables of `docs/services/postgres.md`.

use std::{process::ExitCode, sync::Arc};

use postgres::{Database, PostgresServer, ReadOnlyLogin, Settings};

/// The service's default port.
const DEFAULT_PORT: u16 = 9200;

#[tokio::main]
async fn main() -> ExitCode {
    mcp_session::launch(DEFAULT_PORT, |config| async move {
        let database = Arc::new(Database::new(Settings::from_env()?)?);
        let settings = database.settings();
        tracing::info!(
            database = %database.target(),
            ssl_mode = ?settings.ssl_mode,
            pool_size = settings.pool_size,
            statement_timeout_ms = settings.limits.statement_timeout.as_millis() as u64,
            max_rows = settings.limits.max_rows,
            max_result_bytes = settings.limits.max_result_bytes,
            readonly_role = %settings.readonly_role,
            readonly_login = ?settings.readonly_login,
            "postgres service configured"
        );
        // The database may come up after the service: tools report it until then.
        match database.server_version().await {
            Ok(version) => tracing::info!(%version, "database reachable"),
            Err(error) => {
                tracing::warn!(%error, "database not reachable yet; tools will report it")
            }
        }
        if settings.readonly_login == ReadOnlyLogin::SetRole
            && database.superuser_login().await == Ok(true)
        {
            tracing::warn!(
                readonly_role = %settings.readonly_role,
                "DATABASE_URL logs in as a superuser and PG_READONLY_PASSWORD is unset: \
                 run_readonly_query is disabled (a superuser can undo SET ROLE from inside a \
                 statement). Set PG_READONLY_PASSWORD so that the read-only role logs in \
                 itself, and give DATABASE_URL a user that is not a superuser \
                 (docs/services/postgres.md)"
            );
        }
        let server = PostgresServer::new(database.clone());
        Ok(mcp_session::McpServer::new(config, move || server.clone())
            // `/readyz` fails while the database does not answer, so that a
            // replica cut off from it is taken out of the load balancer.
            .with_readiness_check("database", move || {
                let database = database.clone();
                async move { database.server_version().await.map(drop) }
            }))
    })
    .await
}
