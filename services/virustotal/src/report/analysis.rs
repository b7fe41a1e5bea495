//! `scan_url` and `get_analysis`: the answer of `POST /urls`
//! (`{"data": {"type": "analysis", "id": "u-<sha256>-<time>", ...}}`) and an
//! analysis object (`GET /analyses/{id}`, docs.virustotal.com, "Analyses"
//! object: `date`, `status` (`queued`, `in-progress`, `completed`),
//! `stats`, `results`; `meta.url_info` or `meta.file_info` name the item).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{EngineAnalysis, Summary, attributes, rfc3339};

/// A URL submitted for scanning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ScanSubmission {
    /// The analysis to poll with `get_analysis`.
    pub analysis_id: String,
    /// The URL submitted.
    pub url: String,
    /// The URL's identifier for `get_url_report` (unpadded base64url).
    pub url_id: String,
}

impl ScanSubmission {
    /// Reads a `POST /urls` answer.
    ///
    /// # Errors
    /// A message when the answer names no analysis.
    pub fn from_api(document: &Value, url: &str, url_id: &str) -> Result<Self, String> {
        let analysis_id = super::data_id(document)
            .ok_or_else(|| "the API accepted the URL but named no analysis id".to_owned())?;
        Ok(Self {
            analysis_id,
            url: url.to_owned(),
            url_id: url_id.to_owned(),
        })
    }
}

impl Summary for ScanSubmission {
    fn summary(&self) -> String {
        format!(
            "Submitted {} for scanning: analysis {}. Poll it with get_analysis (a scan usually \
             completes within a minute); get_url_report then has the full report.",
            self.url, self.analysis_id
        )
    }
}

/// The state of an analysis: `queued`, `in-progress` or `completed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum AnalysisStatus {
    /// Waiting for the engines.
    #[serde(rename = "queued")]
    Queued,
    /// The engines are running.
    #[serde(rename = "in-progress")]
    InProgress,
    /// Every engine has answered: the result is final.
    #[serde(rename = "completed")]
    Completed,
}

/// What an analysis found so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AnalysisReport {
    /// The analysis id.
    pub id: String,
    /// Its state; `stats` and `flagged_by` are final once `completed`.
    pub status: AnalysisStatus,
    /// When it was created, RFC 3339 UTC.
    pub date: Option<String>,
    /// The URL analysed (URL analyses).
    pub url: Option<String>,
    /// The SHA-256 of the file analysed (file analyses).
    pub sha256: Option<String>,
    /// The engines' results so far.
    pub analysis: EngineAnalysis,
}

impl AnalysisReport {
    /// Reads a `GET /analyses/{id}` answer.
    pub fn from_api(document: &Value, id: &str) -> Self {
        let attributes = attributes(document);
        let meta = document.get("meta");
        let status = match attributes.get("status").and_then(Value::as_str) {
            Some("completed") => AnalysisStatus::Completed,
            Some("in-progress") => AnalysisStatus::InProgress,
            _ => AnalysisStatus::Queued,
        };
        Self {
            id: super::data_id(document).unwrap_or_else(|| id.to_owned()),
            status,
            date: attributes
                .get("date")
                .and_then(Value::as_i64)
                .and_then(rfc3339),
            url: meta
                .and_then(|meta| meta.get("url_info"))
                .and_then(|info| info.get("url"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            sha256: meta
                .and_then(|meta| meta.get("file_info"))
                .and_then(|info| info.get("sha256"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            analysis: EngineAnalysis::from_api(attributes.get("stats"), attributes.get("results")),
        }
    }

    /// Whether the result is final (only final analyses are cached).
    pub fn is_final(&self) -> bool {
        self.status == AnalysisStatus::Completed
    }
}

impl Summary for AnalysisReport {
    fn summary(&self) -> String {
        let item = match (&self.url, &self.sha256) {
            (Some(url), _) => format!(" of {url}"),
            (None, Some(sha256)) => format!(" of file {sha256}"),
            (None, None) => String::new(),
        };
        match self.status {
            AnalysisStatus::Completed => format!(
                "Analysis {}{item} is completed: {}.",
                self.id,
                self.analysis.describe()
            ),
            AnalysisStatus::Queued | AnalysisStatus::InProgress => format!(
                "Analysis {}{item} is {}: not every engine has answered yet; poll again in \
                 15 to 30 seconds (each poll costs one request of the API quota). So far: {}.",
                self.id,
                if self.status == AnalysisStatus::Queued {
                    "queued"
                } else {
                    "in progress"
                },
                self.analysis.describe()
            ),
        }
    }
}
