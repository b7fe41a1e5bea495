//! `get_domain_report`: a domain object (`GET /domains/{domain}`,
//! docs.virustotal.com, "Domains" object: `registrar`, `creation_date`,
//! `categories`, `popularity_ranks`, `reputation`, `tags`, `total_votes`,
//! `last_dns_records`, `last_analysis_date`, `last_modification_date`,
//! `last_analysis_stats`, `last_analysis_results`). Domains have no
//! submission dates: the first date is the WHOIS creation date.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    Attributes, EngineAnalysis, Summary, Votes, attributes, categories_sentence, dates_sentence,
    reputation_sentence,
};

/// DNS records listed, at most.
const MAX_DNS_RECORDS: usize = 20;

/// One DNS record of the last resolution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DnsRecord {
    /// Record type: `A`, `AAAA`, `MX`, `NS`, `TXT`, ...
    #[serde(rename = "type")]
    pub record_type: String,
    /// Its value.
    pub value: String,
    /// Its TTL in seconds.
    pub ttl: Option<u64>,
}

/// What VirusTotal knows about a domain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DomainReport {
    /// The domain (ASCII, lower case).
    pub domain: String,
    /// Its registrar.
    pub registrar: Option<String>,
    /// Categories by service, e.g. `{"BitDefender": "searchengines"}`.
    pub categories: BTreeMap<String, String>,
    /// Popularity ranks by list, e.g. `{"Majestic": 1}`.
    pub popularity_ranks: BTreeMap<String, u64>,
    /// The community reputation score.
    pub reputation: Option<i64>,
    /// VirusTotal tags.
    pub tags: Vec<String>,
    /// Community votes.
    pub total_votes: Votes,
    /// The last DNS resolution (at most 20 records).
    pub last_dns_records: Vec<DnsRecord>,
    /// The engines' last analysis.
    pub analysis: EngineAnalysis,
    /// WHOIS creation date, RFC 3339 UTC.
    pub creation_date: Option<String>,
    /// Latest analysis, RFC 3339 UTC.
    pub last_analysis_date: Option<String>,
    /// Latest change of the object, RFC 3339 UTC.
    pub last_modification_date: Option<String>,
    /// The report in VirusTotal's web interface.
    pub link: String,
}

impl DomainReport {
    /// Reads a `GET /domains/{domain}` answer for `domain`.
    pub fn from_api(document: &Value, domain: &str) -> Self {
        let attributes = Attributes(attributes(document));
        let popularity_ranks = attributes
            .get("popularity_ranks")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(list, rank)| Some((list.clone(), rank.get("rank")?.as_u64()?)))
            .collect();
        let last_dns_records = attributes
            .get("last_dns_records")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|record| {
                Some(DnsRecord {
                    record_type: record.get("type")?.as_str()?.to_owned(),
                    value: record.get("value")?.as_str()?.to_owned(),
                    ttl: record.get("ttl").and_then(Value::as_u64),
                })
            })
            .take(MAX_DNS_RECORDS)
            .collect();
        let domain = super::data_id(document).unwrap_or_else(|| domain.to_owned());
        Self {
            registrar: attributes.text("registrar"),
            categories: attributes.string_map("categories"),
            popularity_ranks,
            reputation: attributes.integer("reputation"),
            tags: attributes.strings("tags", 50),
            total_votes: Votes::from_api(attributes.get("total_votes")),
            last_dns_records,
            analysis: attributes.analysis(),
            creation_date: attributes.date("creation_date"),
            last_analysis_date: attributes.date("last_analysis_date"),
            last_modification_date: attributes.date("last_modification_date"),
            link: format!("https://www.virustotal.com/gui/domain/{domain}"),
            domain,
        }
    }
}

impl Summary for DomainReport {
    fn summary(&self) -> String {
        let mut text = format!("Domain {}", self.domain);
        if let Some(registrar) = &self.registrar {
            text.push_str(&format!(" (registrar {registrar})"));
        }
        text.push_str(&format!(": {}.", self.analysis.describe()));
        text.push_str(&categories_sentence(&self.categories));
        text.push_str(&reputation_sentence(self.reputation));
        text.push_str(&dates_sentence(
            self.creation_date.as_deref(),
            "registered",
            self.last_analysis_date.as_deref(),
        ));
        text
    }
}
