//! The virustotal MCP service: VirusTotal lookups on Streamable HTTP
//! (`/mcp`) and HTTP+SSE (`/sse`), on port 9400 unless `MCP_SERVER_PORT`
//! says otherwise. Settings come from the environment: `VIRUSTOTAL_API_KEY`
//! and the other `VIRUSTOTAL_*` variables of `docs/services/virustotal.md`.

use std::{process::ExitCode, sync::Arc};

use mcp_session::{McpServer, redis::RedisConnection};
use virustotal::{DEFAULT_PORT, Settings, VirusTotal, VirusTotalServer};

/// Redis connections of the quota and the cache (each multiplexes many
/// requests; the session store has its own).
const QUOTA_POOL_SIZE: usize = 2;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match mcp_session::Config::from_env(DEFAULT_PORT) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    mcp_session::telemetry::init(config.log_format);
    // The quota and the cache live where the sessions do: in the Redis of
    // REDIS_URL, shared by every replica; without it, in this process.
    let redis = match &config.redis_url {
        Some(url) => {
            match RedisConnection::connect(url, QUOTA_POOL_SIZE, config.redis_command_timeout) {
                Ok(connection) => Some(connection.pool().clone()),
                Err(error) => {
                    eprintln!("error: {error}");
                    return ExitCode::from(2);
                }
            }
        }
        None => None,
    };
    let vt = match VirusTotal::new(settings, redis) {
        Ok(vt) => Arc::new(vt),
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let settings = vt.settings();
    match settings.key_id() {
        Some(key_id) => tracing::info!(
            api_key_id = %key_id,
            base_url = %settings.base_url,
            per_minute = ?settings.rate_limits.per_minute,
            per_day = ?settings.rate_limits.per_day,
            quota = vt.quota().backend(),
            cache = vt.cache().backend(),
            cache_ttl_seconds = settings.cache_ttl.found.map(|ttl| ttl.as_secs()),
            "virustotal service configured"
        ),
        None => tracing::warn!(
            base_url = %settings.base_url,
            "VIRUSTOTAL_API_KEY is not set: every tool will answer that the key is not configured"
        ),
    }
    let server = VirusTotalServer::new(vt.clone());
    let info = rmcp::ServerHandler::get_info(&server).server_info;
    let served = async move {
        McpServer::new(info.name, info.version, config, move || server.clone())
            // `/readyz` fails while VirusTotal refuses the key (a 401): a
            // configuration problem the operator must see.
            .with_readiness_check("virustotal_api_key", move || {
                let result = vt.readiness();
                async move { result }
            })
            .bind()
            .await?
            .run(mcp_session::shutdown_signal())
            .await
    };
    match served.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "server stopped");
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
