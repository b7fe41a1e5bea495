//! `get_file_report`: a file object (`GET /files/{id}`, docs.virustotal.com,
//! "Files" object: `md5`, `sha1`, `sha256`, `size`, `type_description`,
//! `meaningful_name`, `names`, `tags`, `reputation`, `times_submitted`,
//! `total_votes`, `popular_threat_classification`, `first_submission_date`,
//! `last_submission_date`, `last_analysis_date`, `last_analysis_stats`,
//! `last_analysis_results`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    Attributes, EngineAnalysis, Summary, Votes, attributes, dates_sentence, reputation_sentence,
};

/// File names listed, at most.
const MAX_NAMES: usize = 10;

/// What VirusTotal knows about a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FileReport {
    /// SHA-256, lower-case hex.
    pub sha256: String,
    /// SHA-1.
    pub sha1: Option<String>,
    /// MD5.
    pub md5: Option<String>,
    /// Size in bytes.
    pub size: Option<u64>,
    /// File type, e.g. `Win32 EXE`, `text`.
    pub type_description: Option<String>,
    /// The most telling of its names.
    pub meaningful_name: Option<String>,
    /// Names it was submitted under (at most 10).
    pub names: Vec<String>,
    /// VirusTotal tags, e.g. `peexe`, `signed`.
    pub tags: Vec<String>,
    /// The community reputation score (negative: considered bad).
    pub reputation: Option<i64>,
    /// How often it was submitted.
    pub times_submitted: Option<u64>,
    /// Community votes.
    pub total_votes: Votes,
    /// The suggested threat label, e.g. `trojan.emotet/heodo`.
    pub threat_label: Option<String>,
    /// The engines' last analysis.
    pub analysis: EngineAnalysis,
    /// First submission (first seen by VirusTotal), RFC 3339 UTC.
    pub first_submission_date: Option<String>,
    /// Latest submission, RFC 3339 UTC.
    pub last_submission_date: Option<String>,
    /// Latest analysis, RFC 3339 UTC.
    pub last_analysis_date: Option<String>,
    /// The report in VirusTotal's web interface.
    pub link: String,
}

impl FileReport {
    /// Reads a `GET /files/{id}` answer; `requested` is the hash asked for,
    /// used when the answer names no SHA-256.
    pub fn from_api(document: &Value, requested: &str) -> Self {
        let attributes = Attributes(attributes(document));
        let sha256 = attributes
            .text("sha256")
            .or_else(|| super::data_id(document))
            .unwrap_or_else(|| requested.to_owned())
            .to_ascii_lowercase();
        Self {
            sha1: attributes.text("sha1"),
            md5: attributes.text("md5"),
            size: attributes.get("size").and_then(Value::as_u64),
            type_description: attributes.text("type_description"),
            meaningful_name: attributes.text("meaningful_name"),
            names: attributes.strings("names", MAX_NAMES),
            tags: attributes.strings("tags", 50),
            reputation: attributes.integer("reputation"),
            times_submitted: attributes.get("times_submitted").and_then(Value::as_u64),
            total_votes: Votes::from_api(attributes.get("total_votes")),
            threat_label: attributes
                .get("popular_threat_classification")
                .and_then(|classification| classification.get("suggested_threat_label"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            analysis: attributes.analysis(),
            first_submission_date: attributes.date("first_submission_date"),
            last_submission_date: attributes.date("last_submission_date"),
            last_analysis_date: attributes.date("last_analysis_date"),
            link: format!("https://www.virustotal.com/gui/file/{sha256}"),
            sha256,
        }
    }

    /// The hashes it can be found by, for the cache.
    pub fn hashes(&self) -> Vec<String> {
        [Some(&self.sha256), self.sha1.as_ref(), self.md5.as_ref()]
            .into_iter()
            .flatten()
            .map(|hash| hash.to_ascii_lowercase())
            .collect()
    }
}

impl Summary for FileReport {
    fn summary(&self) -> String {
        let mut about = Vec::new();
        if let Some(name) = &self.meaningful_name {
            about.push(name.clone());
        }
        if let Some(kind) = &self.type_description {
            about.push(kind.clone());
        }
        if let Some(size) = self.size {
            about.push(format!("{size} bytes"));
        }
        let mut text = format!("File {}", self.sha256);
        if !about.is_empty() {
            text.push_str(&format!(" ({})", about.join(", ")));
        }
        text.push_str(&format!(": {}.", self.analysis.describe()));
        if let Some(label) = &self.threat_label {
            text.push_str(&format!(" Threat label: {label}."));
        }
        text.push_str(&reputation_sentence(self.reputation));
        text.push_str(&dates_sentence(
            self.first_submission_date.as_deref(),
            "first seen",
            self.last_analysis_date.as_deref(),
        ));
        text
    }
}
