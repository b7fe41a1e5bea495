//! `get_file_report`: what VirusTotal knows about a file, by hash.

use rmcp::{
    handler::server::{common::schema_for_output, wrapper::Parameters},
    model::CallToolResult,
    schemars::{self, JsonSchema},
    tool, tool_router,
};
use serde::Deserialize;

use crate::{lookup::Lookup, report::FileReport, server::VirusTotalServer};

/// Arguments of `get_file_report`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileReportRequest {
    /// The file's MD5 (32 hex digits), SHA-1 (40) or SHA-256 (64), e.g.
    /// "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f".
    pub hash: String,
}

#[tool_router(router = files_router, vis = "pub(crate)")]
impl VirusTotalServer {
    #[tool(
        description = "Look up a file on VirusTotal by its MD5, SHA-1 or SHA-256 hash (anything else is refused before any API call). Returns what the antivirus engines say (verdict malicious/suspicious/harmless/undetected, counts per category, and every engine that flags it with its detection name), the community reputation score, threat label, file type, size, names, and first/last seen dates. found=false means VirusTotal has never seen the file: a normal answer, not an error. The result says whether it came from the shared cache (cached, age_seconds); a cached answer costs no API quota. When the API quota is spent the tool error says after how many seconds to retry.",
        output_schema = schema_for_output::<Lookup<FileReport>>(),
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = true)
    )]
    async fn get_file_report(
        &self,
        Parameters(request): Parameters<FileReportRequest>,
    ) -> CallToolResult {
        super::lookup_result(self.vt().file_report(&request.hash).await)
    }
}
