//! `get_url_report` and `scan_url`: URLs, looked up by their API identifier
//! (the unpadded base64url of the URL) or submitted for a new analysis.

use rmcp::{
    handler::server::{common::schema_for_output, wrapper::Parameters},
    model::CallToolResult,
    schemars::{self, JsonSchema},
    tool, tool_router,
};
use serde::Deserialize;

use crate::{
    lookup::Lookup,
    report::{ScanSubmission, Summary, UrlReport},
    server::VirusTotalServer,
};

/// Arguments of `get_url_report` and `scan_url`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UrlRequest {
    /// The absolute URL, with its scheme (http, https or ftp), e.g.
    /// "https://example.com/login".
    pub url: String,
}

#[tool_router(router = urls_router, vis = "pub(crate)")]
impl VirusTotalServer {
    #[tool(
        description = "Look up a URL on VirusTotal (give the full URL with its scheme). Returns the URL scanners' verdict (malicious/suspicious/harmless/undetected with counts, and every engine that flags it, e.g. phishing or malware), categories, the final URL after redirects, page title, reputation, and first/last seen dates. found=false means VirusTotal has no report for this URL yet: call scan_url to submit it, then get_analysis. Answers from the shared cache say so (cached, age_seconds) and cost no API quota; when the quota is spent the tool error says after how many seconds to retry.",
        output_schema = schema_for_output::<Lookup<UrlReport>>(),
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = true)
    )]
    async fn get_url_report(&self, Parameters(request): Parameters<UrlRequest>) -> CallToolResult {
        super::lookup_result(self.vt().url_report(&request.url).await)
    }

    #[tool(
        description = "Submit a URL to VirusTotal for a new scan. Returns the analysis_id to poll with get_analysis (a scan usually completes within a minute), and the url_id. Use it when get_url_report found nothing or the report is old. Every call spends one request of the API quota; when the quota is spent the tool error says after how many seconds to retry.",
        output_schema = schema_for_output::<ScanSubmission>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = true)
    )]
    async fn scan_url(&self, Parameters(request): Parameters<UrlRequest>) -> CallToolResult {
        match self.vt().scan_url(&request.url).await {
            Ok(submission) => super::structured(&submission, submission.summary()),
            Err(error) => error.into_result(),
        }
    }
}
