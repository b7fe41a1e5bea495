//! Scrapes of a replica's `/metrics`: the Prometheus text exposition format
//! (version 0.0.4), parsed into samples that tests compare before and after
//! a run; the metric families a scrape declares ([`metric_families`]); and
//! Prometheus' own check of a scrape ([`promtool_check_metrics`]).

use std::{
    collections::{BTreeMap, BTreeSet},
    io::Write,
    process::{Command, Stdio},
    thread,
};

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
        let text = Self::fetch_text(base).await;
        Self::parse(&text).unwrap_or_else(|error| panic!("{error}\n{text}"))
    }

    /// `GET <base>/metrics` as served, for [`metric_families`] and
    /// [`promtool_check_metrics`]; panics (with the reason) unless the
    /// answer is a `200` in the Prometheus text format.
    pub async fn fetch_text(base: &str) -> String {
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
        response.text().await.expect("metrics body")
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

/// The metric families a scrape declares: the names of its `# TYPE` lines.
///
/// These are the names PromQL selects, less a histogram's suffixes:
/// prometheus-client's text encoder (format 0.0.4, as `GET /metrics` serves
/// it) declares a counter under the name of its samples
/// (`# TYPE mcp_http_requests_total counter`), an info metric as a gauge
/// (`mcp_replica_info`), and a histogram under its base name
/// (`mcp_http_request_duration_seconds`, samples `_bucket`, `_sum`,
/// `_count`). A labelled family that nothing has counted into yet (requests
/// and their durations before the first answered request) has no `# TYPE`
/// line: scrape after the replica has answered a request.
pub fn metric_families(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("# TYPE "))
        .filter_map(|declared| declared.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Runs `promtool check metrics` on a scrape's text (as `GET /metrics`
/// served it, e.g. from [`Scrape::fetch_text`]), and panics with promtool's
/// findings and the scrape unless promtool accepts it: a malformed
/// exposition, or a name its linter objects to (a counter without `_total`,
/// a `_count` or `_sum` outside a histogram or summary, a unit that is not a
/// base unit, ...).
///
/// Needs `promtool` on `PATH` (the Debian package `prometheus`, which
/// `scripts/install-test-deps.sh` installs) and panics without it. It blocks
/// the calling thread until promtool exits (a fraction of a second).
pub fn promtool_check_metrics(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| {
            panic!("promtool on PATH (scripts/install-test-deps.sh installs it): {error}")
        });
    let mut stdin = child.stdin.take().expect("promtool's standard input");
    let input = text.to_owned();
    // Written from a thread, so that promtool's output never blocks the write.
    let writer = thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().expect("promtool check metrics");
    let written = writer.join().expect("the writer of promtool's input");
    let findings = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && written.is_ok(),
        "promtool check metrics: {} ({written:?}):\n{findings}\n--- the scrape:\n{text}",
        output.status
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_the_declared_names() {
        let families = metric_families(
            "# HELP a_total A.\n# TYPE a_total counter\na_total 1\n\
             # HELP h_seconds H.\n# TYPE h_seconds histogram\nh_seconds_count 0\n\
             # TYPE r_info gauge\nr_info{x=\"1\"} 1\n",
        );
        assert_eq!(
            families.into_iter().collect::<Vec<_>>(),
            ["a_total", "h_seconds", "r_info"]
        );
    }

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
