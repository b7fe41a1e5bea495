//! The one way a service starts: [`launch`] (or [`run`], its shorthand for a
//! service that has nothing but a handler factory). Configuration first, then
//! logging, then the service's own set-up, then serving until SIGTERM or
//! Ctrl-C; one line on standard error with a failing exit code when anything
//! goes wrong.

use std::{error::Error, future::Future, process::ExitCode};

use rmcp::ServerHandler;

use crate::{Config, McpServer, server::shutdown_signal, telemetry};

/// A service's whole `main` when all it has is a handler factory: [`launch`]
/// with a server that serves `factory`'s handlers.
///
/// # Exit codes
/// As [`launch`].
pub async fn run<S, F>(default_port: u16, factory: F) -> ExitCode
where
    S: ServerHandler,
    F: Fn() -> S + Send + Sync + 'static,
{
    launch(default_port, |config| async move {
        Ok(McpServer::new(config, factory))
    })
    .await
}

/// What a service's set-up step may fail with: any error, shown with its
/// `Display` (keep secrets out of it).
pub type StartError = Box<dyn Error + Send + Sync>;

/// Exit code for configuration and set-up errors (the `2` of `EX_USAGE`-like
/// "fix your input" failures, as [`run`](crate::run) uses).
const EXIT_CONFIG: u8 = 2;

/// A service's whole `main` when it sets up more than a handler factory.
///
/// Reads the [`Config`] from the environment (with `default_port` when
/// `MCP_SERVER_PORT` is unset), sets up logging, then calls `build` with the
/// config to make the [`McpServer`] (read the service's own settings, open
/// pools, add readiness checks), and serves it until SIGTERM or Ctrl-C.
///
/// ```rust,ignore
/// #[tokio::main]
/// async fn main() -> std::process::ExitCode {
///     mcp_session::launch(9200, |config| async move {
///         let settings = Settings::from_env()?;
///         let database = Arc::new(Database::new(settings)?);
///         let server = MyServer::new(database.clone());
///         Ok(mcp_session::McpServer::new(config, move || server.clone())
///             .with_readiness_check("database", move || { /* ... */ }))
///     })
///     .await
/// }
/// ```
///
/// # Exit codes
/// `2` with the error on standard error when the configuration is invalid or
/// `build` fails; `1` when binding or serving fails; `0` after a clean
/// shutdown.
pub async fn launch<S, B, Fut>(default_port: u16, build: B) -> ExitCode
where
    S: ServerHandler,
    B: FnOnce(Config) -> Fut,
    Fut: Future<Output = Result<McpServer<S>, StartError>>,
{
    let config = match Config::from_env(default_port) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Err(error) = telemetry::init_for(&config) {
        eprintln!("{error}");
        return ExitCode::from(EXIT_CONFIG);
    }
    crate::allocator::give_memory_back();
    let server = match build(config).await {
        Ok(server) => server,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let served = async { server.bind().await?.run(shutdown_signal()).await };
    let served = served.await;
    // The last spans leave before the process does.
    let _ = tokio::task::spawn_blocking(telemetry::traces::shutdown).await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "server stopped");
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
