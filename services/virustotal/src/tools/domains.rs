//! `get_domain_report`: what VirusTotal knows about a domain.

use rmcp::{
    handler::server::{common::schema_for_output, wrapper::Parameters},
    model::CallToolResult,
    schemars::{self, JsonSchema},
    tool, tool_router,
};
use serde::Deserialize;

use crate::{lookup::Lookup, report::DomainReport, server::VirusTotalServer};

/// Arguments of `get_domain_report`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DomainRequest {
    /// The domain name only, without scheme, port or path, e.g. "example.com"
    /// (internationalised names are accepted).
    pub domain: String,
}

#[tool_router(router = domains_router, vis = "pub(crate)")]
impl VirusTotalServer {
    #[tool(
        description = "Look up a domain name on VirusTotal (the host name only: for a full URL use get_url_report, for an IP address get_ip_report). Returns the URL scanners' verdict (malicious/suspicious/harmless/undetected with counts, and every engine that flags it), categories, registrar, WHOIS creation date, popularity ranks, last DNS records, reputation and last analysis date. found=false means VirusTotal knows nothing about it. Cached answers say so (cached, age_seconds) and cost no API quota; when the quota is spent the tool error says after how many seconds to retry.",
        output_schema = schema_for_output::<Lookup<DomainReport>>(),
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = true)
    )]
    async fn get_domain_report(
        &self,
        Parameters(request): Parameters<DomainRequest>,
    ) -> CallToolResult {
        super::lookup_result(self.vt().domain_report(&request.domain).await)
    }
}
