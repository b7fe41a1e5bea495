//! The virustotal MCP service: VirusTotal lookups on Streamable HTTP
//! (`/mcp`) and HTTP+SSE (`/sse`), on port 9400 unless `MCP_SERVER_PORT`
//! says otherwise. Settings come from the environment: `VIRUSTOTAL_API_KEY`
//! and the other `VIRUSTOTAL_*` variables of `docs/services/virustotal.md`.

use std::{process::ExitCode, sync::Arc};

use mcp_session::RedisConnection;
use virustotal::{DEFAULT_PORT, Settings, VirusTotal, VirusTotalServer};

/// Redis connections of the quota and the cache (each multiplexes many
/// requests; the session store has its own).
const QUOTA_POOL_SIZE: usize = 2;

#[tokio::main]
async fn main() -> ExitCode {
    mcp_session::launch(DEFAULT_PORT, |config| async move {
        let settings = Settings::from_env()?;
        // The quota and the cache live where the sessions do: in the Redis
        // of REDIS_URL, shared by every replica; without it, in this process.
        let redis = match &config.redis_url {
            Some(url) => Some(
                RedisConnection::connect(url, QUOTA_POOL_SIZE, config.redis_command_timeout)?
                    .pool()
                    .clone(),
            ),
            None => None,
        };
        let vt = Arc::new(VirusTotal::new(settings, redis)?);
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
        Ok(mcp_session::McpServer::new(config, move || server.clone())
            // `/readyz` fails while VirusTotal refuses the key (a 401): a
            // configuration problem the operator must see.
            .with_readiness_check("virustotal_api_key", move || {
                let result = vt.readiness();
                async move { result }
            }))
    })
    .await
}
