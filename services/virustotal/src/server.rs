//! [`VirusTotalServer`], the rmcp handler: the tools of [`crate::tools`]
//! (and the library's session tools) over one shared [`VirusTotal`].

use std::sync::Arc;

use mcp_session::tools::ServiceTools;
use rmcp::{
    ServerHandler,
    model::{Implementation, ServerCapabilities, ServerConfig},
    tool_handler,
};

use crate::lookup::VirusTotal;

/// The virustotal MCP server. Cloning is cheap (`Arc`s): build one at
/// start-up and hand clones to `mcp_session`'s factory.
#[derive(Clone)]
pub struct VirusTotalServer {
    pub(crate) vt: Arc<VirusTotal>,
    pub(crate) tools: ServiceTools<Self>,
}

impl std::fmt::Debug for VirusTotalServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirusTotalServer")
            .field("vt", &self.vt)
            .finish_non_exhaustive()
    }
}

impl VirusTotalServer {
    /// The lookups the tools make.
    pub fn vt(&self) -> &VirusTotal {
        &self.vt
    }
}

#[tool_handler(router = self.tools)]
impl ServerHandler for VirusTotalServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("virustotal", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Threat intelligence from VirusTotal (API v3). get_file_report (MD5, SHA-1 or \
                 SHA-256), get_url_report, get_domain_report and get_ip_report (IPv4/IPv6) say \
                 what the antivirus and URL scanners make of an indicator; scan_url submits a \
                 URL and get_analysis polls the result. found=false means VirusTotal knows \
                 nothing about the indicator (an answer, not an error). The API key's quota is \
                 small and shared by everyone using this service (public keys: 4 requests a \
                 minute, 500 a day): cached answers (cached=true) cost nothing, and when the \
                 quota is spent the tool error says after how many seconds to retry.",
            )
    }
}
