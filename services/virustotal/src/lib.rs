//! # virustotal: the MCP virustotal service
//!
//! Threat-intelligence lookups against the VirusTotal API v3 for models,
//! served by [`mcp_session`] over Streamable HTTP (`/mcp`) and HTTP+SSE
//! (`/sse`): `get_file_report`, `get_url_report`, `scan_url`,
//! `get_analysis`, `get_domain_report`, `get_ip_report` ([`tools`]).
//!
//! The API key's request budget is one for the whole fleet: every replica
//! takes its requests from one [`quota`] in Redis, and reports are kept in
//! one [`cache`], so a repeated lookup on any replica costs no quota.
//!
//! Layers: [`config`] (environment) → [`indicator`] (validation) →
//! [`lookup`] (cache, quota, retries) → [`api`] (HTTP) → [`report`]
//! (reading the API's objects) → [`tools`], [`server`] (the rmcp handler).
//! [`errors`] writes what a model reads when a lookup fails;
//! [`credentials`] puts a rejected key on `/readyz`.
//! `docs/services/virustotal.md` describes the service for operators.

pub mod api;
pub mod cache;
pub mod config;
pub mod credentials;
pub mod errors;
pub mod indicator;
pub mod lookup;
pub mod quota;
pub mod report;
pub mod server;
pub mod tools;

pub use config::Settings;
pub use lookup::{Lookup, VirusTotal};
pub use server::VirusTotalServer;

use std::sync::Arc;

use mcp_session::tools::ServiceTools;

// The handler assembled from its parts: the tools are methods of
// `VirusTotalServer` (rmcp's macros), defined in `tools`.
impl VirusTotalServer {
    /// A server with every tool (the session tools `health_check`,
    /// `get_user_sessions`, `get_session_analytics` included), over `vt`.
    pub fn new(vt: Arc<VirusTotal>) -> Self {
        Self {
            vt,
            tools: ServiceTools::new(tools::router()),
        }
    }
}

/// The service's default port (`MCP_SERVER_PORT` overrides it).
pub const DEFAULT_PORT: u16 = 9400;
