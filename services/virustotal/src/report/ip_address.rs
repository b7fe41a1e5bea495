//! `get_ip_report`: an IP address object (`GET /ip_addresses/{ip}`,
//! docs.virustotal.com, "IP addresses" object: `as_owner`, `asn`,
//! `continent`, `country`, `network`, `regional_internet_registry`,
//! `reputation`, `tags`, `total_votes`, `last_analysis_date`,
//! `last_modification_date`, `last_analysis_stats`,
//! `last_analysis_results`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    Attributes, EngineAnalysis, Summary, Votes, attributes, dates_sentence, reputation_sentence,
};

/// What VirusTotal knows about an IP address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IpReport {
    /// The address (IPv6 in its canonical, compressed form).
    pub ip: String,
    /// Its autonomous system number.
    pub asn: Option<u64>,
    /// The autonomous system's owner, e.g. `GOOGLE`.
    pub as_owner: Option<String>,
    /// The network (CIDR) it belongs to.
    pub network: Option<String>,
    /// Country, ISO 3166 code.
    pub country: Option<String>,
    /// Continent code.
    pub continent: Option<String>,
    /// The registry: `ARIN`, `RIPE NCC`, ...
    pub regional_internet_registry: Option<String>,
    /// The community reputation score.
    pub reputation: Option<i64>,
    /// VirusTotal tags.
    pub tags: Vec<String>,
    /// Community votes.
    pub total_votes: Votes,
    /// The engines' last analysis.
    pub analysis: EngineAnalysis,
    /// Latest analysis, RFC 3339 UTC.
    pub last_analysis_date: Option<String>,
    /// Latest change of the object, RFC 3339 UTC.
    pub last_modification_date: Option<String>,
    /// The report in VirusTotal's web interface.
    pub link: String,
}

impl IpReport {
    /// Reads a `GET /ip_addresses/{ip}` answer for `ip`.
    pub fn from_api(document: &Value, ip: &str) -> Self {
        let attributes = Attributes(attributes(document));
        let ip = super::data_id(document).unwrap_or_else(|| ip.to_owned());
        Self {
            asn: attributes.get("asn").and_then(Value::as_u64),
            as_owner: attributes.text("as_owner"),
            network: attributes.text("network"),
            country: attributes.text("country"),
            continent: attributes.text("continent"),
            regional_internet_registry: attributes.text("regional_internet_registry"),
            reputation: attributes.integer("reputation"),
            tags: attributes.strings("tags", 50),
            total_votes: Votes::from_api(attributes.get("total_votes")),
            analysis: attributes.analysis(),
            last_analysis_date: attributes.date("last_analysis_date"),
            last_modification_date: attributes.date("last_modification_date"),
            link: format!("https://www.virustotal.com/gui/ip-address/{ip}"),
            ip,
        }
    }
}

impl Summary for IpReport {
    fn summary(&self) -> String {
        let mut about = Vec::new();
        if let Some(asn) = self.asn {
            match &self.as_owner {
                Some(owner) => about.push(format!("AS{asn} {owner}")),
                None => about.push(format!("AS{asn}")),
            }
        }
        if let Some(network) = &self.network {
            about.push(network.clone());
        }
        if let Some(country) = &self.country {
            about.push(country.clone());
        }
        let mut text = format!("IP address {}", self.ip);
        if !about.is_empty() {
            text.push_str(&format!(" ({})", about.join(", ")));
        }
        text.push_str(&format!(": {}.", self.analysis.describe()));
        text.push_str(&reputation_sentence(self.reputation));
        text.push_str(&dates_sentence(
            None,
            "",
            self.last_analysis_date.as_deref(),
        ));
        text
    }
}
