//! `get_analysis`: the state of an analysis started with `scan_url`.

use rmcp::{
    handler::server::{common::schema_for_output, wrapper::Parameters},
    model::CallToolResult,
    schemars::{self, JsonSchema},
    tool, tool_router,
};
use serde::Deserialize;

use crate::{lookup::Lookup, report::AnalysisReport, server::VirusTotalServer};

/// Arguments of `get_analysis`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalysisRequest {
    /// The `analysis_id` scan_url returned, e.g.
    /// "u-dd014af5ed6b38d9130e3f466f850e46d21b951199d53a18ef29ee9341614eaf-1700000000".
    pub analysis_id: String,
}

#[tool_router(router = analyses_router, vis = "pub(crate)")]
impl VirusTotalServer {
    #[tool(
        description = "Poll a VirusTotal analysis started with scan_url. Returns its status (queued, in-progress or completed) and the engines' results so far (verdict, counts, engines that flag it). While it is queued or in progress, wait 15 to 30 seconds and call again; each poll spends one request of the API quota, and completed analyses are cached. found=false means the analysis id is unknown.",
        output_schema = schema_for_output::<Lookup<AnalysisReport>>(),
        annotations(read_only_hint = true, idempotent_hint = false, open_world_hint = true)
    )]
    async fn get_analysis(
        &self,
        Parameters(request): Parameters<AnalysisRequest>,
    ) -> CallToolResult {
        super::lookup_result(self.vt().analysis(&request.analysis_id).await)
    }
}
