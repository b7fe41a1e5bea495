//! Reports: the API v3 objects (docs.virustotal.com, "Files", "URLs",
//! "Domains", "IP addresses", "Analyses") reduced to what a model acts on,
//! as structured output, each with a short human [`Summary`].
//!
//! What every report shares is here: the engines' verdict counts
//! (`last_analysis_stats`), the engines that flag the object
//! (`last_analysis_results`), the overall [`Verdict`], and dates. The API
//! writes dates as Unix seconds; reports write them as RFC 3339 UTC.

pub mod analysis;
pub mod domain;
pub mod file;
pub mod ip_address;
pub mod url;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use analysis::{AnalysisReport, ScanSubmission};
pub use domain::DomainReport;
pub use file::FileReport;
pub use ip_address::IpReport;
pub use url::UrlReport;

/// Engines named in a summary, at most.
pub const SUMMARY_ENGINES: usize = 5;

/// A report's one-paragraph description for people (the tool result's text).
pub trait Summary {
    /// The description, e.g. `File 275a…fd0f (EICAR test file, 68 bytes):
    /// malicious: flagged by 8 of 12 engines…`.
    fn summary(&self) -> String;
}

/// The engines' verdict counts of the last analysis (`last_analysis_stats`
/// or an analysis' `stats`). Categories the API does not report are 0.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct AnalysisStats {
    /// Engines that call it malicious.
    pub malicious: u32,
    /// Engines that call it suspicious.
    pub suspicious: u32,
    /// Engines that found nothing.
    pub undetected: u32,
    /// Engines that call it harmless (URL, domain and IP scanners).
    pub harmless: u32,
    /// Engines that timed out.
    pub timeout: u32,
    /// Engines that could not scan this type of file (`type-unsupported`).
    #[serde(alias = "type-unsupported")]
    pub type_unsupported: u32,
    /// Engines that failed.
    pub failure: u32,
    /// Engines whose timeout was confirmed (`confirmed-timeout`).
    #[serde(alias = "confirmed-timeout")]
    pub confirmed_timeout: u32,
}

impl AnalysisStats {
    /// Engines that gave a verdict: malicious + suspicious + undetected +
    /// harmless (the "of N" of "flagged by M of N engines").
    pub fn engines_with_verdict(&self) -> u32 {
        self.malicious + self.suspicious + self.undetected + self.harmless
    }

    /// Reads the API's stats object (hyphenated names included).
    pub fn from_api(value: Option<&Value>) -> Self {
        value
            .and_then(|value| serde_json::from_value(value.clone()).ok())
            .unwrap_or_default()
    }
}

/// The overall verdict, from the counts: `malicious` when any engine says
/// malicious, else `suspicious` when any says suspicious, else `harmless`
/// when any says harmless, else `undetected` (engines ran, none flagged it),
/// else `unknown` (no engine result).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// At least one engine flags it malicious.
    Malicious,
    /// No malicious verdict, at least one suspicious.
    Suspicious,
    /// Engines call it harmless, none flags it.
    Harmless,
    /// Engines ran and found nothing.
    Undetected,
    /// No engine has a verdict yet.
    Unknown,
}

impl Verdict {
    /// The verdict the counts give.
    pub fn of(stats: &AnalysisStats) -> Self {
        if stats.malicious > 0 {
            Self::Malicious
        } else if stats.suspicious > 0 {
            Self::Suspicious
        } else if stats.harmless > 0 {
            Self::Harmless
        } else if stats.undetected > 0 {
            Self::Undetected
        } else {
            Self::Unknown
        }
    }

    /// `malicious`, `suspicious`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malicious => "malicious",
            Self::Suspicious => "suspicious",
            Self::Harmless => "harmless",
            Self::Undetected => "undetected",
            Self::Unknown => "unknown",
        }
    }
}

/// One engine that flags the object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EngineVerdict {
    /// The engine, e.g. `Kaspersky`.
    pub engine: String,
    /// `malicious` or `suspicious`.
    pub category: String,
    /// What it says, e.g. `EICAR-Test-File`, `phishing`; `null` when it
    /// names nothing.
    pub result: Option<String>,
}

/// The engines' view of an object: verdict, counts and who flags it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EngineAnalysis {
    /// The overall verdict.
    pub verdict: Verdict,
    /// The counts per category.
    pub stats: AnalysisStats,
    /// Every engine that calls it malicious or suspicious (malicious first,
    /// then by engine name).
    pub flagged_by: Vec<EngineVerdict>,
}

impl EngineAnalysis {
    /// From `stats` and `results` (`last_analysis_results`: engine name →
    /// `{category, engine_name, result, ...}`).
    pub fn from_api(stats: Option<&Value>, results: Option<&Value>) -> Self {
        let stats = AnalysisStats::from_api(stats);
        let mut flagged_by: Vec<EngineVerdict> = results
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(key, result)| {
                let category = result.get("category")?.as_str()?;
                if category != "malicious" && category != "suspicious" {
                    return None;
                }
                Some(EngineVerdict {
                    engine: result
                        .get("engine_name")
                        .and_then(Value::as_str)
                        .unwrap_or(key)
                        .to_owned(),
                    category: category.to_owned(),
                    result: result
                        .get("result")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                })
            })
            .collect();
        flagged_by.sort_by(|a, b| {
            (a.category != "malicious", &a.engine).cmp(&(b.category != "malicious", &b.engine))
        });
        Self {
            verdict: Verdict::of(&stats),
            stats,
            flagged_by,
        }
    }

    /// `malicious: flagged by 8 of 12 engines (suspicious 1, undetected 3);
    /// notable: Avast (EICAR Test-NOT virus!!!), …`.
    pub fn describe(&self) -> String {
        let stats = &self.stats;
        let total = stats.engines_with_verdict();
        let mut text = match self.verdict {
            Verdict::Unknown => "no engine verdict yet".to_owned(),
            Verdict::Malicious | Verdict::Suspicious => format!(
                "{}: flagged by {} of {total} engines (malicious {}, suspicious {}, undetected {}, harmless {})",
                self.verdict.as_str(),
                stats.malicious + stats.suspicious,
                stats.malicious,
                stats.suspicious,
                stats.undetected,
                stats.harmless
            ),
            Verdict::Harmless | Verdict::Undetected => format!(
                "{}: flagged by none of {total} engines (harmless {}, undetected {})",
                self.verdict.as_str(),
                stats.harmless,
                stats.undetected
            ),
        };
        if !self.flagged_by.is_empty() {
            let named: Vec<String> = self
                .flagged_by
                .iter()
                .take(SUMMARY_ENGINES)
                .map(|engine| match &engine.result {
                    Some(result) => format!("{} ({result})", engine.engine),
                    None => engine.engine.clone(),
                })
                .collect();
            text.push_str("; notable: ");
            text.push_str(&named.join(", "));
            if self.flagged_by.len() > SUMMARY_ENGINES {
                text.push_str(&format!(
                    ", and {} more",
                    self.flagged_by.len() - SUMMARY_ENGINES
                ));
            }
        }
        text
    }
}

/// Community votes (`total_votes`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct Votes {
    /// Votes for harmless.
    pub harmless: u32,
    /// Votes for malicious.
    pub malicious: u32,
}

impl Votes {
    /// Reads `total_votes`.
    pub fn from_api(value: Option<&Value>) -> Self {
        value
            .and_then(|value| serde_json::from_value(value.clone()).ok())
            .unwrap_or_default()
    }
}

/// Reading the API's `attributes` object.
pub(crate) struct Attributes<'a>(pub &'a Value);

impl<'a> Attributes<'a> {
    pub(crate) fn get(&self, name: &str) -> Option<&'a Value> {
        self.0.get(name).filter(|value| !value.is_null())
    }

    pub(crate) fn text(&self, name: &str) -> Option<String> {
        self.get(name)
            .and_then(Value::as_str)
            .filter(|text| !text.is_empty())
            .map(str::to_owned)
    }

    pub(crate) fn integer(&self, name: &str) -> Option<i64> {
        self.get(name).and_then(Value::as_i64)
    }

    /// A Unix-seconds date as RFC 3339 UTC.
    pub(crate) fn date(&self, name: &str) -> Option<String> {
        self.integer(name).and_then(rfc3339)
    }

    /// Up to `limit` strings of an array.
    pub(crate) fn strings(&self, name: &str, limit: usize) -> Vec<String> {
        self.get(name)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .take(limit)
            .map(str::to_owned)
            .collect()
    }

    /// A map of string values (`categories`: engine → category).
    pub(crate) fn string_map(&self, name: &str) -> BTreeMap<String, String> {
        self.get(name)
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(key, value)| Some((key.clone(), value.as_str()?.to_owned())))
            .collect()
    }

    pub(crate) fn analysis(&self) -> EngineAnalysis {
        EngineAnalysis::from_api(
            self.get("last_analysis_stats"),
            self.get("last_analysis_results"),
        )
    }
}

/// `data.attributes` of an API answer (an empty object when absent).
pub(crate) fn attributes(document: &Value) -> &Value {
    static EMPTY: Value = Value::Null;
    document
        .get("data")
        .and_then(|data| data.get("attributes"))
        .unwrap_or(&EMPTY)
}

/// `data.id` of an API answer.
pub(crate) fn data_id(document: &Value) -> Option<String> {
    document
        .get("data")
        .and_then(|data| data.get("id"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Unix seconds as RFC 3339 UTC (`2024-05-01T12:00:00Z`).
pub fn rfc3339(seconds: i64) -> Option<String> {
    chrono::DateTime::from_timestamp(seconds, 0)
        .map(|date| date.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// ` First seen 2006-05-22, last analysed 2024-05-01.` for summaries (with
/// a leading space; empty without dates), from RFC 3339 dates (their date
/// part only). `first_label` names the first date (`first seen`,
/// `registered`).
pub(crate) fn dates_sentence(first: Option<&str>, first_label: &str, last: Option<&str>) -> String {
    let day = |date: &str| date.get(..10).unwrap_or(date).to_owned();
    let mut parts = Vec::new();
    if let Some(first) = first {
        parts.push(format!("{first_label} {}", day(first)));
    }
    if let Some(last) = last {
        parts.push(format!("last analysed {}", day(last)));
    }
    let sentence = parts.join(", ");
    let mut chars = sentence.chars();
    match chars.next() {
        Some(first) => format!(" {}{}.", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}

/// ` Categories: malware, phishing.` (distinct values, sorted), or empty.
pub(crate) fn categories_sentence(categories: &BTreeMap<String, String>) -> String {
    let mut names: Vec<&str> = categories.values().map(String::as_str).collect();
    names.sort_unstable();
    names.dedup();
    if names.is_empty() {
        String::new()
    } else {
        format!(" Categories: {}.", names.join(", "))
    }
}

/// ` Reputation -87.`, or empty.
pub(crate) fn reputation_sentence(reputation: Option<i64>) -> String {
    reputation.map_or_else(String::new, |score| format!(" Reputation {score}."))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn stats_with_hyphenated_names() {
        let stats = AnalysisStats::from_api(Some(&json!({
            "harmless": 0, "type-unsupported": 16, "suspicious": 1,
            "confirmed-timeout": 0, "timeout": 2, "failure": 1,
            "malicious": 61, "undetected": 5
        })));
        assert_eq!(stats.type_unsupported, 16);
        assert_eq!(stats.engines_with_verdict(), 67);
        assert_eq!(Verdict::of(&stats), Verdict::Malicious);
        assert_eq!(AnalysisStats::from_api(None), AnalysisStats::default());
    }

    #[test]
    fn verdicts_in_order_of_severity() {
        let stats = |malicious, suspicious, harmless, undetected| AnalysisStats {
            malicious,
            suspicious,
            harmless,
            undetected,
            ..AnalysisStats::default()
        };
        assert_eq!(Verdict::of(&stats(1, 5, 60, 10)), Verdict::Malicious);
        assert_eq!(Verdict::of(&stats(0, 1, 60, 10)), Verdict::Suspicious);
        assert_eq!(Verdict::of(&stats(0, 0, 60, 10)), Verdict::Harmless);
        assert_eq!(Verdict::of(&stats(0, 0, 0, 10)), Verdict::Undetected);
        assert_eq!(Verdict::of(&stats(0, 0, 0, 0)), Verdict::Unknown);
    }

    #[test]
    fn flagging_engines_malicious_first() {
        let analysis = EngineAnalysis::from_api(
            Some(&json!({"malicious": 2, "suspicious": 1, "undetected": 1})),
            Some(&json!({
                "Zillya": {"category": "malicious", "engine_name": "Zillya", "result": "EICAR.TestFile"},
                "Avast": {"category": "malicious", "engine_name": "Avast", "result": "EICAR Test-NOT virus!!!"},
                "Acronis": {"category": "suspicious", "engine_name": "Acronis", "result": null},
                "Baidu": {"category": "undetected", "engine_name": "Baidu", "result": null},
            })),
        );
        let engines: Vec<&str> = analysis
            .flagged_by
            .iter()
            .map(|e| e.engine.as_str())
            .collect();
        assert_eq!(engines, ["Avast", "Zillya", "Acronis"]);
        assert_eq!(
            analysis.describe(),
            "malicious: flagged by 3 of 4 engines (malicious 2, suspicious 1, undetected 1, harmless 0); \
             notable: Avast (EICAR Test-NOT virus!!!), Zillya (EICAR.TestFile), Acronis"
        );
    }

    #[test]
    fn dates_are_rfc3339_utc() {
        assert_eq!(
            rfc3339(1_148_301_722).as_deref(),
            Some("2006-05-22T12:42:02Z")
        );
        assert_eq!(
            dates_sentence(
                Some("2006-05-22T12:42:02Z"),
                "first seen",
                Some("2024-05-01T00:00:00Z")
            ),
            " First seen 2006-05-22, last analysed 2024-05-01."
        );
        assert_eq!(
            dates_sentence(None, "first seen", Some("2024-05-01T00:00:00Z")),
            " Last analysed 2024-05-01."
        );
        assert_eq!(dates_sentence(None, "first seen", None), "");
    }
}
