//! The hub: the MCP servers of `HUB_CONFIG` behind one endpoint, on
//! Streamable HTTP (`/mcp`, `/mcp/<group>`, `/mcp/<server>`) and HTTP+SSE
//! (`/sse`), on port 9500 unless `MCP_SERVER_PORT` says otherwise. Settings:
//! `docs/hub.md`.

use std::{process::ExitCode, sync::Arc};

use hub::{
    DEFAULT_PORT, Hub, HubConfig, HubServer, admin,
    client_sessions::{
        self, ClientSessions,
        sealing::Sealer,
        store::{ClientSessionStore, MemoryClientSessionStore, RedisClientSessionStore},
    },
    console,
    context_key::ContextKeys,
    hub::EndUpstreamSessions,
    metrics::HubMetrics,
    upstream::{
        Upstreams,
        store::{MemoryUpstreamStore, RedisUpstreamStore, UpstreamSessionStore},
    },
};
use mcp_session::RedisConnection;

/// Redis connections of the upstream session store (each multiplexes many
/// requests; the downstream session store has its own).
const STORE_POOL_SIZE: usize = 2;

#[tokio::main]
async fn main() -> ExitCode {
    mcp_session::launch(DEFAULT_PORT, |config| async move {
        let fleet = config.redis_url.is_some();
        let hub_config = HubConfig::from_env(fleet)?;
        let (store, client_store): (Arc<dyn UpstreamSessionStore>, Arc<dyn ClientSessionStore>) =
            match &config.redis_url {
                Some(url) => {
                    let redis =
                        RedisConnection::connect(url, STORE_POOL_SIZE, config.redis_command_timeout)?;
                    (
                        Arc::new(RedisUpstreamStore::new(redis.clone())),
                        Arc::new(RedisClientSessionStore::new(redis)),
                    )
                }
                None => (
                    MemoryUpstreamStore::new(),
                    MemoryClientSessionStore::new(hub_config.client_sessions.ttl),
                ),
            };
        // Every replica must open what another sealed: with Redis the key
        // comes from the environment (none: credentials are refused).
        let sealer = Sealer::from_env(&|var| std::env::var(var).ok(), !fleet)?;
        let keys = match std::env::var("HUB_CONTEXT_KEY_SECRET") {
            Ok(secret) if secret.len() >= 16 => ContextKeys::new(secret),
            Ok(_) => return Err("HUB_CONTEXT_KEY_SECRET: at least 16 characters".into()),
            Err(_) if fleet => {
                return Err("HUB_CONTEXT_KEY_SECRET is required with REDIS_URL: every hub replica must derive the same context keys (32 random bytes, e.g. `openssl rand -hex 32`)".into());
            }
            Err(_) => ContextKeys::random(),
        };
        let metrics = HubMetrics::default();
        let upstreams = Upstreams::new(
            store,
            keys,
            hub_config.session_ttl,
            config.replica_id.clone(),
            metrics.clone(),
            hub_config.client_sessions.egress.clone(),
        );
        for upstream in hub_config.servers.values() {
            tracing::info!(
                upstream = %upstream.name,
                transport = upstream.transport.as_str(),
                sharing = upstream.sharing.as_str(),
                forwarded_headers = upstream.forward_headers.len(),
                static_headers = upstream.headers.len(),
                timeout_ms = upstream.timeout.as_millis() as u64,
                "upstream configured"
            );
        }
        for upstream in hub_config.servers.values().filter(|upstream| {
            fleet && upstream.headers.is_empty() && upstream.forward_headers.is_empty()
        }) {
            tracing::warn!(
                upstream = %upstream.name,
                "upstream reached without credentials: if it tells anonymous callers apart by address \
                 (mcp-session services do), each hub replica is another caller to it, and a session one \
                 replica made is unknown to the others (re-established again and again); give the hub \
                 a credential for it (`headers`) or forward the caller's (`forward_headers`)"
            );
        }
        if hub_config.servers.is_empty() {
            tracing::warn!("no upstreams configured (HUB_CONFIG): the hub serves no tools");
        }
        let hub = Arc::new(Hub::new(hub_config, upstreams));
        Hub::keep_house(&hub);
        let server = HubServer::new(hub.clone());
        let ends = Arc::new(EndUpstreamSessions(Arc::downgrade(&hub)));
        let client_sessions =
            ClientSessions::new(hub.clone(), client_store, sealer, metrics.clone());
        Ok(mcp_session::McpServer::new(config, move || server.clone())
            .with_scoped_endpoints()
            .on_session_end(ends)
            .with_routes(admin::routes(hub))
            .with_routes(client_sessions::routes(client_sessions))
            .with_public_routes(client_sessions::openapi_routes().merge(console::routes()))
            .with_metrics(move |registry| metrics.register(registry)))
    })
    .await
}
