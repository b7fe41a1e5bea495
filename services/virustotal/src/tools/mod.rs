//! The service's MCP tools, one file each:
//!
//! - [`files`]: the tool `get_file_report` (MD5, SHA-1 or SHA-256);
//! - [`urls`]: the tools `get_url_report` and `scan_url`;
//! - [`analyses`]: the tool `get_analysis`, polling a submission;
//! - [`domains`]: the tool `get_domain_report`;
//! - [`ip_addresses`]: the tool `get_ip_report` (IPv4 and IPv6).
//!
//! Each file holds the tool's arguments and its `#[tool]` method, which
//! calls [`crate::lookup::VirusTotal`]; [`router`] merges their routers.
//! Every result carries structured content (the tool's output schema) and
//! two text blocks: a short human summary, then the same JSON (MCP
//! 2025-06-18, Server Features §Tools, "Structured Content": a tool
//! returning structured content SHOULD also return it serialized as text).
//! Failures are tool results flagged `isError` ([`crate::errors`]).

pub mod analyses;
pub mod domains;
pub mod files;
pub mod ip_addresses;
pub mod urls;

use rmcp::{
    handler::server::router::tool::ToolRouter,
    model::{CallToolResult, ContentBlock},
};
use serde::Serialize;

use crate::{errors::ToolError, lookup::Lookup, report::Summary, server::VirusTotalServer};

/// Every tool of the service.
pub fn router() -> ToolRouter<VirusTotalServer> {
    VirusTotalServer::files_router()
        + VirusTotalServer::urls_router()
        + VirusTotalServer::analyses_router()
        + VirusTotalServer::domains_router()
        + VirusTotalServer::ip_addresses_router()
}

/// A lookup's tool result: the summary, the JSON, or the error.
pub fn lookup_result<R: Serialize + Summary>(
    result: Result<Lookup<R>, ToolError>,
) -> CallToolResult {
    match result {
        Ok(lookup) => structured(&lookup, lookup.summary()),
        Err(error) => error.into_result(),
    }
}

/// A successful result: `summary` and `value` as text, `value` as
/// structured content.
pub fn structured<T: Serialize>(value: &T, summary: String) -> CallToolResult {
    match serde_json::to_value(value) {
        Ok(json) => {
            let mut result = CallToolResult::success(vec![
                ContentBlock::text(summary),
                ContentBlock::text(json.to_string()),
            ]);
            result.structured_content = Some(json);
            result
        }
        Err(error) => ToolError::UnexpectedResponse(error.to_string()).into_result(),
    }
}
