//! `get_url_report`: a URL object (`GET /urls/{id}`, docs.virustotal.com,
//! "URLs" object: `url`, `last_final_url`, `title`, `categories`,
//! `reputation`, `times_submitted`, `total_votes`, `threat_names`,
//! `last_http_response_code`, `first_submission_date`,
//! `last_submission_date`, `last_analysis_date`, `last_analysis_stats`,
//! `last_analysis_results`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    Attributes, EngineAnalysis, Summary, Votes, attributes, categories_sentence, dates_sentence,
    reputation_sentence,
};

/// What VirusTotal knows about a URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UrlReport {
    /// The URL as VirusTotal recorded it.
    pub url: String,
    /// VirusTotal's identifier of the URL (SHA-256 of its canonical form).
    pub id: Option<String>,
    /// Where it led after redirects, when that differs.
    pub final_url: Option<String>,
    /// The page title.
    pub title: Option<String>,
    /// Categories by service, e.g. `{"Forcepoint ThreatSeeker": "phishing"}`.
    pub categories: BTreeMap<String, String>,
    /// Threat names engines gave it.
    pub threat_names: Vec<String>,
    /// HTTP status of the last fetch.
    pub last_http_response_code: Option<u16>,
    /// The community reputation score.
    pub reputation: Option<i64>,
    /// How often it was submitted.
    pub times_submitted: Option<u64>,
    /// Community votes.
    pub total_votes: Votes,
    /// The engines' last analysis.
    pub analysis: EngineAnalysis,
    /// First submission, RFC 3339 UTC.
    pub first_submission_date: Option<String>,
    /// Latest submission, RFC 3339 UTC.
    pub last_submission_date: Option<String>,
    /// Latest analysis, RFC 3339 UTC.
    pub last_analysis_date: Option<String>,
    /// The report in VirusTotal's web interface.
    pub link: Option<String>,
}

impl UrlReport {
    /// Reads a `GET /urls/{id}` answer; `requested` is the URL asked for.
    pub fn from_api(document: &Value, requested: &str) -> Self {
        let attributes = Attributes(attributes(document));
        let url = attributes
            .text("url")
            .unwrap_or_else(|| requested.to_owned());
        let id = super::data_id(document);
        let final_url = attributes
            .text("last_final_url")
            .filter(|final_url| *final_url != url);
        Self {
            link: id
                .as_ref()
                .map(|id| format!("https://www.virustotal.com/gui/url/{id}")),
            id,
            final_url,
            title: attributes.text("title"),
            categories: attributes.string_map("categories"),
            threat_names: attributes.strings("threat_names", 20),
            last_http_response_code: attributes
                .integer("last_http_response_code")
                .and_then(|code| u16::try_from(code).ok()),
            reputation: attributes.integer("reputation"),
            times_submitted: attributes.get("times_submitted").and_then(Value::as_u64),
            total_votes: Votes::from_api(attributes.get("total_votes")),
            analysis: attributes.analysis(),
            first_submission_date: attributes.date("first_submission_date"),
            last_submission_date: attributes.date("last_submission_date"),
            last_analysis_date: attributes.date("last_analysis_date"),
            url,
        }
    }
}

impl Summary for UrlReport {
    fn summary(&self) -> String {
        let mut text = format!("URL {}", self.url);
        if let Some(title) = &self.title {
            text.push_str(&format!(" (\"{title}\")"));
        }
        text.push_str(&format!(": {}.", self.analysis.describe()));
        if let Some(final_url) = &self.final_url {
            text.push_str(&format!(" Redirects to {final_url}."));
        }
        text.push_str(&categories_sentence(&self.categories));
        text.push_str(&reputation_sentence(self.reputation));
        text.push_str(&dates_sentence(
            self.first_submission_date.as_deref(),
            "first seen",
            self.last_analysis_date.as_deref(),
        ));
        text
    }
}
