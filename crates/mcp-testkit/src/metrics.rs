//! Scrapes of a replica's `/metrics`: the Prometheus text exposition format
//! (version 0.0.4), parsed into samples that tests compare before and after
//! a run.

use std::collections::BTreeMap;

/// One sample line: `name{label="value",...} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The metric name, with its suffix (`_total`, `_bucket`, ...).
    pub name: String,
    /// The labels.
    pub labels: BTreeMap<String, String>,
    /// The value.
    pub value: f64,
}

/// Every sample of one scrape.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    /// The samples, in exposition order.
    pub samples: Vec<Sample>,
}

/// Parses `{key="value",...}` at the start of `text`; returns the labels and
/// the rest of the line. Values undo the format's escapes (`\\`, `\"`, `\n`).
fn parse_labels(text: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let mut chars = text.char_indices().skip(1).peekable();
    loop {
        while let Some((_, ',' | ' ')) = chars.peek() {
            chars.next();
        }
        let mut key = String::new();
        loop {
            match chars.next() {
                Some((end, '}')) if key.is_empty() => return Ok((labels, &text[end + 1..])),
                Some((_, '=')) => break,
                Some((_, c)) => key.push(c),
                None => return Err("unterminated label set".into()),
            }
        }
        if !matches!(chars.next(), Some((_, '"'))) {
            return Err(format!("label {key} has no quoted value"));
        }
        let mut value = String::new();
        loop {
            match chars.next() {
                Some((_, '"')) => break,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, escaped @ ('\\' | '"'))) => value.push(escaped),
                    other => return Err(format!("bad escape {other:?}")),
                },
                Some((_, c)) => value.push(c),
                None => return Err("unterminated label value".into()),
            }
        }
        labels.insert(key.trim().to_owned(), value);
    }
}

fn parse_line(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .ok_or("no value")?;
    let name = line[..name_end].to_owned();
    let (labels, rest) = match &line[name_end..] {
        rest if rest.starts_with('{') => parse_labels(rest)?,
        rest => (BTreeMap::new(), rest),
    };
    let value = rest.split_whitespace().next().ok_or("no value")?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        number => number
            .parse()
            .map_err(|error| format!("value {number}: {error}"))?,
    };
    Ok(Sample {
        name,
        labels,
        value,
    })
}

impl Scrape {
    /// Parses a text exposition (comments and blank lines are skipped).
    ///
    /// # Errors
    /// The first malformed line, with the reason.
    pub fn parse(text: &str) -> Result<Self, String> {
        let samples = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|line| parse_line(line).map_err(|error| format!("{error}: {line}")))
            .collect::<Result<_, _>>()?;
        Ok(Self { samples })
    }

    /// `GET <base>/metrics` and its samples; panics (with the reason) unless
    /// the answer is a `200` in the Prometheus text format.
    pub async fn fetch(base: &str) -> Self {
        let response = reqwest::get(format!("{base}/metrics"))
            .await
            .unwrap_or_else(|error| panic!("GET {base}/metrics: {error}"));
        assert_eq!(response.status().as_u16(), 200, "GET {base}/metrics");
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "content type {content_type}"
        );
        let text = response.text().await.expect("metrics body");
        Self::parse(&text).unwrap_or_else(|error| panic!("{error}\n{text}"))
    }

    /// The sum of the samples called `name` whose labels include every pair
    /// of `labels` (0 when there is none).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|sample| sample.name == name)
            .filter(|sample| {
                labels
                    .iter()
                    .all(|(key, value)| sample.labels.get(*key).map(String::as_str) == Some(value))
            })
            .map(|sample| sample.value)
            .sum()
    }

    /// Whether a sample called `name` exists at all.
    pub fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|sample| sample.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_labels_and_escapes_are_read() {
        let scrape = Scrape::parse(
            "# HELP a_total A.\n# TYPE a_total counter\n\
             a_total{method=\"POST\",route=\"/mcp\",status=\"200\"} 3\n\
             a_total{method=\"GET\",route=\"/mcp\",status=\"200\"} 4\n\
             b{text=\"q\\\"uo\\\\te\\n\",x=\"1\"} 2.5 1700000000\n\
             h_bucket{le=\"+Inf\"} 7\n\
             g -1\n\
             i +Inf\n",
        )
        .unwrap();
        assert_eq!(scrape.value("a_total", &[]), 7.0);
        assert_eq!(scrape.value("a_total", &[("method", "POST")]), 3.0);
        assert_eq!(scrape.value("a_total", &[("method", "PUT")]), 0.0);
        assert_eq!(
            scrape.value("b", &[("text", "q\"uo\\te\n"), ("x", "1")]),
            2.5
        );
        assert_eq!(scrape.value("h_bucket", &[("le", "+Inf")]), 7.0);
        assert_eq!(scrape.value("g", &[]), -1.0);
        assert!(scrape.value("i", &[]).is_infinite());
        assert!(scrape.has("g") && !scrape.has("nope"));
    }

    #[test]
    fn malformed_lines_are_errors() {
        for bad in ["a{b=\"1} 2", "a{b=1} 2", "a", "a{} x"] {
            assert!(Scrape::parse(bad).is_err(), "{bad}");
        }
    }
}
