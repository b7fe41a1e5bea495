//! [`launch`]: the `main` of a service that needs more than a handler
//! factory (its own settings, a database, readiness checks), with the same
//! start-up rules as [`run`](crate::run): configuration first, then logging,
//! then serving until SIGTERM or Ctrl-C, and one line on standard error with
//! a failing exit code when anything goes wrong.

use std::{error::Error, future::Future, process::ExitCode};

use rmcp::ServerHandler;

use crate::{Config, McpServer, server::shutdown_signal, telemetry};

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
///         Ok(mcp_session::server_for(config, move || server.clone())
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
    telemetry::init(config.log_format);
    let server = match build(config).await {
        Ok(server) => server,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let served = async { server.bind().await?.run(shutdown_signal()).await };
    match served.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "server stopped");
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// An [`McpServer`] for `factory`'s handlers, named and versioned as the
/// handler reports in [`ServerHandler::get_info`] (its `serverInfo`, MCP
/// 2025-06-18, Lifecycle §Initialization).
pub fn server_for<S, F>(config: Config, factory: F) -> McpServer<S>
where
    S: ServerHandler,
    F: Fn() -> S + Send + Sync + 'static,
{
    let info = factory().get_info().server_info;
    McpServer::new(info.name, info.version, config, factory)
}
