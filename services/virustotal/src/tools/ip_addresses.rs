//! `get_ip_report`: what VirusTotal knows about an IPv4 or IPv6 address.

use rmcp::{
    handler::server::{common::schema_for_output, wrapper::Parameters},
    model::CallToolResult,
    schemars::{self, JsonSchema},
    tool, tool_router,
};
use serde::Deserialize;

use crate::{lookup::Lookup, report::IpReport, server::VirusTotalServer};

/// Arguments of `get_ip_report`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IpRequest {
    /// One IPv4 or IPv6 address, e.g. "8.8.8.8" or "2001:4860:4860::8888"
    /// (no port, no CIDR range).
    pub ip: String,
}

#[tool_router(router = ip_addresses_router, vis = "pub(crate)")]
impl VirusTotalServer {
    #[tool(
        description = "Look up an IPv4 or IPv6 address on VirusTotal (one address: no port, no CIDR range). Returns the URL scanners' verdict (malicious/suspicious/harmless/undetected with counts, and every engine that flags it), the autonomous system (ASN and owner), network, country, regional internet registry, reputation and last analysis date. found=false means VirusTotal knows nothing about it. Cached answers say so (cached, age_seconds) and cost no API quota; when the quota is spent the tool error says after how many seconds to retry.",
        output_schema = schema_for_output::<Lookup<IpReport>>(),
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = true)
    )]
    async fn get_ip_report(&self, Parameters(request): Parameters<IpRequest>) -> CallToolResult {
        super::lookup_result(self.vt().ip_report(&request.ip).await)
    }
}
