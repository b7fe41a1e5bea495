//! Tests of the deployment files (`k8s/`, `docker-compose.yml`): see
//! `tests/k8s.rs`, `tests/monitoring.rs` and `tests/compose.rs`. This library
//! holds what they use: the workspace root, the services `k8s/base` deploys,
//! the `.venv` and `PATH` tools and a bounded runner for them, and the PromQL
//! of the monitoring component (`k8s/components/monitoring`): its expressions
//! and the metrics they read ([`monitored_metrics`]), which the tests of the
//! services compare with a live scrape.

use std::{
    collections::BTreeSet,
    env, fs,
    io::{Read, Write},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

/// Longest run of one tool.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

/// The workspace root: the nearest directory holding `Cargo.lock` above the
/// package under test. `cargo test` names that package in the run's
/// `CARGO_MANIFEST_DIR`; the one of this crate's build is the fallback (a
/// binary built from a copy of the repository, as tests/scaffold/run.sh
/// makes, would otherwise read the copy, gone by then).
pub fn workspace() -> PathBuf {
    let package = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    let root = package
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file())
        .map_or_else(|| package.join("../.."), Path::to_path_buf);
    root.canonicalize().unwrap_or(root)
}

/// The MCP services `k8s/base/kustomization.yaml` deploys, with the
/// `MCP_SERVER_PORT` of their `k8s/base/<name>/config.env`, in file order.
/// Panics when a listed service has no port.
pub fn base_services() -> Vec<(String, u16)> {
    let base = workspace().join("k8s/base");
    let text = read(&base.join("kustomization.yaml"));
    text.lines()
        .filter_map(|line| line.strip_prefix("  - "))
        .map(str::trim)
        .filter(|name| *name != "common")
        .map(|name| {
            let config = read(&base.join(name).join("config.env"));
            let port = config
                .lines()
                .find_map(|line| line.strip_prefix("MCP_SERVER_PORT="))
                .and_then(|port| port.trim().parse().ok())
                .unwrap_or_else(|| panic!("k8s/base/{name}/config.env: no MCP_SERVER_PORT"));
            (name.to_owned(), port)
        })
        .collect()
}

/// A file's text; panics naming the file when it cannot be read.
pub fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// The `.venv/bin` tools named, found beside `MCP_TEST_PYTHON` (the `.venv`
/// python that `scripts/test.sh` points to), python first; or `None` (after
/// saying why on stderr) when one is missing and not required. Panics when
/// one is missing and `MCP_INTEROP_REQUIRED=1`.
pub fn venv_tools(test: &str, names: &[&str]) -> Option<Vec<PathBuf>> {
    let found = (|| {
        let python = match env::var_os("MCP_TEST_PYTHON") {
            Some(value) if !value.is_empty() => PathBuf::from(value),
            _ => return Err("MCP_TEST_PYTHON is not set".to_owned()),
        };
        let bin = python.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut tools = vec![python];
        tools.extend(names.iter().map(|name| bin.join(name)));
        match tools.iter().find(|tool| !tool.is_file()) {
            Some(missing) => Err(format!("{} does not exist", missing.display())),
            None => Ok(tools),
        }
    })();
    match found {
        Ok(tools) => Some(tools),
        Err(reason) if env::var("MCP_INTEROP_REQUIRED").as_deref() == Ok("1") => panic!(
            "{test}: {reason}, and MCP_INTEROP_REQUIRED=1: install the tools with scripts/install-test-deps.sh (scripts/test.sh does)"
        ),
        Err(reason) => {
            // Written past the test harness's capture, so that it shows.
            let _ = writeln!(
                std::io::stderr(),
                "{test}: skipped: {reason}; run scripts/test.sh to install {}",
                names.join(", ")
            );
            None
        }
    }
}

/// The tool `name` on `PATH` (e.g. `promtool`, from the Debian package
/// `prometheus`), or `None` (after saying why on stderr) when it is missing
/// and not required. Panics when it is missing and `MCP_INTEROP_REQUIRED=1`.
pub fn path_tool(test: &str, name: &str) -> Option<PathBuf> {
    let found = env::var_os("PATH").and_then(|path| {
        env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    if found.is_none() {
        if env::var("MCP_INTEROP_REQUIRED").as_deref() == Ok("1") {
            panic!(
                "{test}: {name} is not on PATH, and MCP_INTEROP_REQUIRED=1: install it with scripts/install-test-deps.sh (scripts/test.sh does)"
            );
        }
        // Written past the test harness's capture, so that it shows.
        let _ = writeln!(
            std::io::stderr(),
            "{test}: skipped: {name} is not on PATH; run scripts/test.sh to install it"
        );
    }
    found
}

/// What a finished tool said.
pub struct Output {
    /// Whether it exited with status 0.
    pub success: bool,
    /// Its standard output.
    pub stdout: String,
    /// stdout and stderr, for failure messages.
    pub text: String,
}

/// Runs a tool to its end, killing it past [`TOOL_TIMEOUT`]; its output is
/// read as it comes, so a large rendering never blocks on a full pipe.
/// Panics when it cannot start or runs too long.
pub fn run(command: &mut Command) -> Output {
    let shown = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("{shown}: {error}"));
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = drain(child.stdout.take().map(|pipe| Box::new(pipe) as _));
    let stderr = drain(child.stderr.take().map(|pipe| Box::new(pipe) as _));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child
            .try_wait()
            .unwrap_or_else(|error| panic!("{shown}: {error}"))
        {
            break status;
        }
        if started.elapsed() > TOOL_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{shown}: still running after {TOOL_TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    Output {
        success: status.success(),
        text: format!("{stdout}{stderr}"),
        stdout,
    }
}

// --- the monitoring component's PromQL ------------------------------------------

/// The monitoring component: `k8s/components/monitoring` (the ServiceMonitor,
/// the PrometheusRule `prometheusrule.yaml` and the Grafana dashboards
/// `dashboards/*.json`).
pub fn monitoring_component() -> PathBuf {
    workspace().join("k8s/components/monitoring")
}

/// Every PromQL expression of the monitoring component, as `(origin, expr)`:
/// the alerts of `prometheusrule.yaml` ([`rule_exprs`]), then the panels and
/// template variables of each `dashboards/*.json` ([`dashboard_exprs`]), the
/// origin naming the file and the rule, panel or variable. Panics when a file
/// cannot be read or a dashboard is not JSON.
pub fn monitoring_exprs() -> Vec<(String, String)> {
    let component = monitoring_component();
    let mut exprs: Vec<(String, String)> =
        rule_exprs(&read(&component.join("prometheusrule.yaml")))
            .into_iter()
            .map(|(rule, expr)| (format!("prometheusrule.yaml: {rule}"), expr))
            .collect();
    let dashboards = component.join("dashboards");
    let mut files: Vec<PathBuf> = fs::read_dir(&dashboards)
        .unwrap_or_else(|error| panic!("{}: {error}", dashboards.display()))
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "json")
        })
        .collect();
    files.sort();
    for file in files {
        let dashboard: Value = serde_json::from_str(&read(&file))
            .unwrap_or_else(|error| panic!("{}: {error}", file.display()));
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        exprs.extend(
            dashboard_exprs(&dashboard)
                .into_iter()
                .map(|(origin, expr)| (format!("dashboards/{name}: {origin}"), expr)),
        );
    }
    exprs
}

/// The families of our own metrics (`mcp_*`) that the monitoring component's
/// expressions ([`monitoring_exprs`]) read, named as the `# TYPE` lines of a
/// replica's `GET /metrics` name them (see [`metric_family`]): counters with
/// their `_total` (prometheus-client's text encoder declares
/// `# TYPE mcp_http_requests_total counter`), `mcp_replica_info` (an info
/// metric, declared as a gauge), histograms without `_bucket`, `_sum` and
/// `_count`. Every one of them must be in a live scrape
/// (`mcp_testkit::metric_families`) once the replica has answered a request;
/// the other names the expressions use are other exporters' (`up`,
/// kube-state-metrics), which `tests/monitoring.rs` lists.
pub fn monitored_metrics() -> BTreeSet<String> {
    monitoring_exprs()
        .iter()
        .flat_map(|(_, expr)| promql_metric_names(expr))
        .filter(|name| name.starts_with("mcp_"))
        .map(|name| metric_family(&name).to_owned())
        .collect()
}

/// The family a sample name belongs to: `name` less a histogram's (or
/// summary's) `_bucket`, `_sum` or `_count`, else `name` itself (a counter's
/// `_total` stays: it is part of the family's name in the text format 0.0.4).
pub fn metric_family(name: &str) -> &str {
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(name)
}

/// PromQL words that are not metric names: binary operators, modifiers and
/// the literals `Inf` and `NaN` (compared in lower case, as PromQL does).
const PROMQL_KEYWORDS: &[&str] = &[
    "and", "or", "unless", "atan2", "bool", "offset", "inf", "nan",
];

/// PromQL's aggregation operators, which may be followed by `by (...)` or
/// `without (...)` rather than by their parenthesis.
const PROMQL_AGGREGATIONS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];

/// PromQL words followed by a list of label names in parentheses.
const PROMQL_LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

fn is_identifier_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// The index just past the string literal that opens at `open_at` (`"`, `'`
/// or a raw `` ` ``), or the end of `chars`.
fn skip_quoted(chars: &[char], open_at: usize) -> usize {
    let quote = chars[open_at];
    let mut at = open_at + 1;
    while let Some(&c) = chars.get(at) {
        if c == '\\' && quote != '`' {
            at += 2;
            continue;
        }
        at += 1;
        if c == quote {
            break;
        }
    }
    at
}

/// The index just past the group that `open` opens at `open_at` and `close`
/// closes, nested groups and string literals included.
fn skip_group(chars: &[char], open_at: usize, open: char, close: char) -> usize {
    let mut depth = 0_usize;
    let mut at = open_at;
    while let Some(&c) = chars.get(at) {
        if matches!(c, '"' | '\'' | '`') {
            at = skip_quoted(chars, at);
            continue;
        }
        at += 1;
        if c == open {
            depth += 1;
        } else if c == close {
            depth = depth.saturating_sub(1);
            if depth == 0 {
                break;
            }
        }
    }
    at
}

/// The metric names a PromQL expression selects, as written (`_total`,
/// `_bucket` included): the identifiers outside label matchers (`{...}`),
/// ranges (`[...]`), strings and label lists (`by (...)`, `on (...)`, ...)
/// that are neither a function (followed by `(`), an aggregation operator nor
/// a keyword. Grafana's variables (`$service`, `${datasource}`,
/// `$__rate_interval`) are skipped; a selector written only as
/// `{__name__="..."}` names no metric here.
pub fn promql_metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut at = 0;
    while let Some(&c) = chars.get(at) {
        if matches!(c, '"' | '\'' | '`') {
            at = skip_quoted(&chars, at);
        } else if c == '{' {
            at = skip_group(&chars, at, '{', '}');
        } else if c == '[' {
            at = skip_group(&chars, at, '[', ']');
        } else if c == '#' {
            // A comment, to the end of the line.
            while chars.get(at).is_some_and(|&c| c != '\n') {
                at += 1;
            }
        } else if c == '$' {
            at += 1;
            if chars.get(at) == Some(&'{') {
                at = skip_group(&chars, at, '{', '}');
            } else {
                while chars.get(at).is_some_and(|&c| is_identifier_char(c)) {
                    at += 1;
                }
            }
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(at + 1).is_some_and(char::is_ascii_digit))
        {
            // A number or a duration: 0.99, 1e3, 0x1f, 67108864, 1d, 1h30m.
            while chars
                .get(at)
                .is_some_and(|&c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
            {
                at += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = at;
            while chars.get(at).is_some_and(|&c| is_identifier_char(c)) {
                at += 1;
            }
            let word: String = chars[start..at].iter().collect();
            let mut next = at;
            while chars.get(next).is_some_and(|c| c.is_whitespace()) {
                next += 1;
            }
            let opens = chars.get(next) == Some(&'(');
            let lower = word.to_ascii_lowercase();
            if PROMQL_LABEL_LISTS.contains(&lower.as_str()) {
                if opens {
                    at = skip_group(&chars, next, '(', ')');
                }
                continue;
            }
            let reserved = opens
                || PROMQL_KEYWORDS.contains(&lower.as_str())
                || PROMQL_AGGREGATIONS.contains(&lower.as_str());
            if !reserved {
                names.insert(word);
            }
        } else {
            at += 1;
        }
    }
    names
}

/// The PromQL of a Grafana dashboard, as `(origin, expr)`: every target's
/// `expr` of every panel (rows' nested panels included), origin
/// `panel <id> "<title>" <refId>`, then the selector of each query variable
/// (`label_values(<selector>, <label>)`, `query_result(<expr>)`), origin
/// `variable <name>`. Variable queries that name no metric
/// (`label_values(<label>)`, `label_names()`, `metrics(...)`) are left out.
pub fn dashboard_exprs(dashboard: &Value) -> Vec<(String, String)> {
    fn panels(list: &Value, exprs: &mut Vec<(String, String)>) {
        for panel in list.as_array().into_iter().flatten() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    exprs.push((
                        format!(
                            "panel {} {} {}",
                            panel["id"],
                            panel["title"],
                            target["refId"].as_str().unwrap_or("?")
                        ),
                        expr.to_owned(),
                    ));
                }
            }
            panels(&panel["panels"], exprs);
        }
    }
    let mut exprs = Vec::new();
    panels(&dashboard["panels"], &mut exprs);
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if variable["type"] != "query" {
            continue;
        }
        let query = variable["query"]
            .as_str()
            .or_else(|| variable["query"]["query"].as_str())
            .unwrap_or_default();
        if let Some(expr) = variable_query_expr(query) {
            exprs.push((
                format!("variable {}", variable["name"].as_str().unwrap_or("?")),
                expr,
            ));
        }
    }
    exprs
}

/// The PromQL inside a Grafana Prometheus variable query, if it has any.
fn variable_query_expr(query: &str) -> Option<String> {
    let query = query.trim();
    if let Some(arguments) = arguments_of(query, "label_values") {
        // label_values(<selector>, <label>); label_values(<label>) has none.
        let comma = last_top_level_comma(arguments)?;
        return Some(arguments[..comma].trim().to_owned());
    }
    arguments_of(query, "query_result").map(|expr| expr.trim().to_owned())
}

/// The arguments of `call` if it is a call of `function`: `f(a, b)` gives
/// `a, b`.
fn arguments_of<'a>(call: &'a str, function: &str) -> Option<&'a str> {
    call.strip_prefix(function)?
        .trim_start()
        .strip_prefix('(')?
        .strip_suffix(')')
}

/// The byte index of the last `,` of `text` outside brackets and strings.
fn last_top_level_comma(text: &str) -> Option<usize> {
    let mut depth = 0_usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut found = None;
    for (index, c) in text.char_indices() {
        if let Some(open) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == open {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '(' | '{' | '[' => depth += 1,
            ')' | '}' | ']' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => found = Some(index),
            _ => {}
        }
    }
    found
}

/// The `expr`s of a Prometheus rule file or of a PrometheusRule's YAML, as
/// `(name, expr)`: the name is the `alert` (or `record`) written before the
/// `expr` in the same rule, else `rule <n>`.
///
/// A reader of the YAML this needs, not of all YAML: `expr` as a block scalar
/// (`expr: |`, `|-`, `>`, ...), a single-line quoted scalar, or a plain
/// scalar (continued on deeper-indented lines); comment lines are skipped.
/// `tests/monitoring.rs` checks that it reads `prometheusrule.yaml` as PyYAML
/// does. Panics on a quoted `expr` that does not end on its line.
pub fn rule_exprs(yaml: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut exprs = Vec::new();
    let mut name: Option<String> = None;
    let mut at = 0;
    while let Some(line) = lines.get(at) {
        at += 1;
        let Some((column, key, value)) = yaml_key(line) else {
            continue;
        };
        match key {
            "alert" | "record" => {
                name = Some(yaml_scalar(value).unwrap_or_else(|| value.to_owned()));
            }
            "expr" => {
                let expr = if value.starts_with('|') || value.starts_with('>') {
                    let (block, next) = yaml_block(&lines, at, column);
                    at = next;
                    block
                } else {
                    let mut expr = yaml_scalar(value).unwrap_or_else(|| {
                        panic!("expr on line {at}: a quoted scalar must end on its line (or use `expr: |`): {line}")
                    });
                    if !value.starts_with(['"', '\'']) {
                        while let Some(next) = lines
                            .get(at)
                            .filter(|next| !next.trim().is_empty() && indentation(next) > column)
                        {
                            expr.push(' ');
                            expr.push_str(next.trim());
                            at += 1;
                        }
                    }
                    expr
                };
                let origin = name
                    .take()
                    .unwrap_or_else(|| format!("rule {}", exprs.len() + 1));
                exprs.push((origin, expr));
            }
            _ => {}
        }
    }
    exprs
}

fn indentation(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// A `key: value` line of YAML: the key's column (after a list item's `- `),
/// the key and the value (trimmed, possibly empty). `None` for comments and
/// other lines.
fn yaml_key(line: &str) -> Option<(usize, &str, &str)> {
    let content = line.trim_start();
    if content.starts_with('#') {
        return None;
    }
    let mut column = line.len() - content.len();
    let content = match content.strip_prefix('-') {
        Some(item) if item.starts_with(' ') => {
            let key = item.trim_start();
            column += 1 + item.len() - key.len();
            key
        }
        _ => content,
    };
    let (key, value) = content.split_once(':')?;
    let is_key = !key.is_empty()
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && (value.is_empty() || value.starts_with(' '));
    if is_key {
        Some((column, key, value.trim()))
    } else {
        None
    }
}

/// A single-line scalar: double-quoted (JSON escapes), single-quoted (`''`
/// for a quote) or plain (a ` #` comment cut off). `None` for a quoted
/// scalar that does not end on the line.
fn yaml_scalar(value: &str) -> Option<String> {
    if value.starts_with('"') {
        let mut escaped = false;
        let close = value.char_indices().skip(1).find_map(|(index, c)| {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                return Some(index);
            }
            None
        })?;
        serde_json::from_str(&value[..=close]).ok()
    } else if let Some(rest) = value.strip_prefix('\'') {
        let mut text = String::new();
        let mut chars = rest.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '\'' {
                text.push(c);
            } else if chars.peek() == Some(&'\'') {
                chars.next();
                text.push('\'');
            } else {
                return Some(text);
            }
        }
        None
    } else {
        let plain = value.find(" #").map_or(value, |comment| &value[..comment]);
        Some(plain.trim_end().to_owned())
    }
}

/// The block scalar whose lines start at `from`, under a key at `column`:
/// its text (the common indentation removed, lines joined with `\n`) and the
/// index of the first line after it.
fn yaml_block(lines: &[&str], from: usize, column: usize) -> (String, usize) {
    let mut end = from;
    while lines
        .get(end)
        .is_some_and(|line| line.trim().is_empty() || indentation(line) > column)
    {
        end += 1;
    }
    // Blank lines before a line of the parent belong to neither.
    while end > from && lines[end - 1].trim().is_empty() {
        end -= 1;
    }
    let body = &lines[from..end];
    let indent = body
        .iter()
        .filter(|line| !line.trim().is_empty())
        .copied()
        .map(indentation)
        .min()
        .unwrap_or(0);
    let text = body
        .iter()
        .map(|line| line.get(indent..).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    (text, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(expr: &str) -> Vec<String> {
        promql_metric_names(expr).into_iter().collect()
    }

    #[test]
    fn metric_names_are_read_from_promql() {
        assert_eq!(
            names(
                r#"sum by (namespace, service) (rate(mcp_store_errors_total{op=~"a|b", x="}{"}[5m])) > 0"#
            ),
            ["mcp_store_errors_total"]
        );
        assert_eq!(
            names(
                "histogram_quantile(0.99, sum by (le) (rate(mcp_http_request_duration_seconds_bucket{route=\"/mcp\"}[$__rate_interval])))"
            ),
            ["mcp_http_request_duration_seconds_bucket"]
        );
        assert_eq!(
            names(
                "(a_total / b_total offset 1d) > 1.5 * c[1h] offset 1d and on (namespace) group_left (pod) label_replace(group by (x) (max_over_time(d[1d])), \"deployment\", \"$1\", \"service\", \"(.*)\") unless e == bool Inf"
            ),
            ["a_total", "b_total", "c", "d", "e"]
        );
        assert_eq!(
            names("sum without (pod) (x) / ignoring(le) count(y) or vector(0) # z"),
            ["x", "y"]
        );
        assert_eq!(
            names("max by (pod) (mcp_event_buffer_bytes) > 0.9 * 67108864"),
            ["mcp_event_buffer_bytes"]
        );
        assert_eq!(names("up{job=\"j\"} == 0"), ["up"]);
        assert_eq!(
            names("${datasource} $service 12 0x1f 1e3 .5"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn families_drop_histogram_suffixes_only() {
        assert_eq!(
            metric_family("mcp_http_request_duration_seconds_bucket"),
            "mcp_http_request_duration_seconds"
        );
        assert_eq!(metric_family("x_count"), "x");
        assert_eq!(
            metric_family("mcp_http_requests_total"),
            "mcp_http_requests_total"
        );
        assert_eq!(metric_family("mcp_replica_info"), "mcp_replica_info");
    }

    #[test]
    fn rule_exprs_read_block_quoted_and_plain_scalars() {
        let yaml = "\
groups:
  - name: g
    rules:
      # expr: not this one
      - alert: Block
        expr: |
          sum(rate(a_total[5m]))

            > 0
        for: 5m
      - alert: 'Single ''quoted'''
        expr: 'b{x=\"1\"} > 0'
      - record: double
        expr: \"c{x=\\\"1\\\"}\"
      - expr: d > 0
          and e
        alert: After
      - alert: Commented
        expr: f # a comment
";
        assert_eq!(
            rule_exprs(yaml),
            [
                (
                    "Block".to_owned(),
                    "sum(rate(a_total[5m]))\n\n  > 0".to_owned()
                ),
                ("Single 'quoted'".to_owned(), "b{x=\"1\"} > 0".to_owned()),
                ("double".to_owned(), "c{x=\"1\"}".to_owned()),
                ("rule 4".to_owned(), "d > 0 and e".to_owned()),
                ("Commented".to_owned(), "f".to_owned()),
            ]
        );
    }

    #[test]
    fn dashboard_exprs_read_panels_rows_and_variables() {
        let dashboard = serde_json::json!({
            "panels": [
                {"id": 1, "title": "t", "targets": [{"refId": "A", "expr": "a"}]},
                {"id": 2, "type": "row", "panels": [
                    {"id": 3, "title": "u", "targets": [{"refId": "B", "expr": "b"}]}
                ]}
            ],
            "templating": {"list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus"},
                {"name": "n", "type": "query", "query": "label_values(c{x=~\"$y,z\"}, namespace)"},
                {"name": "s", "type": "query", "query": {"query": "label_values( d , service )"}},
                {"name": "l", "type": "query", "query": "label_values(pod)"},
                {"name": "q", "type": "query", "query": "query_result(topk(5, e))"}
            ]}
        });
        let exprs: Vec<String> = dashboard_exprs(&dashboard)
            .into_iter()
            .map(|(_, expr)| expr)
            .collect();
        assert_eq!(exprs, ["a", "b", "c{x=~\"$y,z\"}", "d", "topk(5, e)"]);
    }
}
