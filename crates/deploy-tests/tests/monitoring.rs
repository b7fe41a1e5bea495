//! The monitoring component (`k8s/components/monitoring`), as the overlays
//! that include it render it (`prod` must be one):
//!
//! - the PrometheusRule's spec passes `promtool check rules`, and the
//!   promtool unit tests of `k8s/components/monitoring/tests/` pass against
//!   it: every alert has a case where it stays quiet and one where it fires
//!   for the failing service only;
//! - every alert has a `for`, a severity, a summary, a description and a
//!   `runbook_url` whose anchor is a heading of `docs/operations.md`; an
//!   alert on `up` reads the ServiceMonitor's job; the event buffer alert's
//!   threshold is a share of the rendered `EVENT_BUFFER_BYTES`;
//! - the ServiceMonitor, a custom resource that kubernetes-validate has no
//!   schema for (`tests/k8s.rs` skips it), uses only fields of the
//!   Prometheus Operator's CRD, selects the Service of every MCP service and
//!   names a port they have, backed by a named container port; each selected
//!   Service has a Deployment of its name (the replica alert joins on it);
//! - the Grafana dashboards are rendered into a ConfigMap of a stable name
//!   with the sidecar's label, and are valid dashboards: a schema version,
//!   unique panel ids, panels on the 24-column grid without overlap, every
//!   query over `${datasource}` and filtered by `$namespace` and `$service`;
//! - the expressions read only our own metrics (`mcp_*`:
//!   `deploy_tests::monitored_metrics`, for the services' tests to compare
//!   with a live scrape) and the other exporters' metrics listed in
//!   [`EXTERNAL_METRICS`].
//!
//! `kubectl` and PyYAML come from `.venv`, `promtool` from `PATH` (the
//! Debian package `prometheus`), all installed by
//! `scripts/install-test-deps.sh`; without them the tests that need them say
//! so on stderr and pass, unless `MCP_INTEROP_REQUIRED=1` (set by
//! `scripts/test.sh`), which fails them.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use deploy_tests::{
    base_services, monitored_metrics, monitoring_component, monitoring_exprs, path_tool,
    promql_metric_names, read, rule_exprs, run, venv_tools, workspace,
};
use serde_json::Value;

/// Metrics the expressions read that are not ours: kube-state-metrics'
/// replicas of a Deployment (MCPReplicasUnavailable) and Prometheus' own `up`
/// of the ServiceMonitor's job (MCPMetricsDown). Every other name must be one
/// of our `mcp_*` metrics.
const EXTERNAL_METRICS: [&str; 3] = [
    "kube_deployment_spec_replicas",
    "kube_deployment_status_replicas_available",
    "up",
];

/// The `job` of our scrape targets: the ServiceMonitor's `jobLabel` is the
/// Services' `app.kubernetes.io/part-of`, whose value this is.
const JOB: &str = "mcp-microservices";

/// The severities an alert may have.
const SEVERITIES: [&str; 3] = ["critical", "warning", "info"];

/// The ConfigMap the dashboards are rendered into.
const DASHBOARD_CONFIG_MAP: &str = "mcp-services-dashboard";

/// The datasource of every panel and query: the dashboard's variable.
const DATASOURCE: &str = "${datasource}";

/// The fields of a ServiceMonitor's `spec` in the Prometheus Operator's CRD
/// (monitoring.coreos.com/v1, operator 0.84): anything else is a typo that
/// the API server would reject.
const SERVICE_MONITOR_FIELDS: &[&str] = &[
    "attachMetadata",
    "bodySizeLimit",
    "convertClassicHistogramsToNHCB",
    "endpoints",
    "fallbackScrapeProtocol",
    "jobLabel",
    "keepDroppedTargets",
    "labelLimit",
    "labelNameLengthLimit",
    "labelValueLengthLimit",
    "namespaceSelector",
    "nativeHistogramBucketLimit",
    "nativeHistogramMinBucketFactor",
    "podTargetLabels",
    "sampleLimit",
    "scrapeClass",
    "scrapeClassicHistograms",
    "scrapeNativeHistograms",
    "scrapeProtocols",
    "selector",
    "selectorMechanism",
    "serviceDiscoveryRole",
    "targetLabels",
    "targetLimit",
];

/// The fields of one of a ServiceMonitor's `endpoints`, in the same CRD.
const ENDPOINT_FIELDS: &[&str] = &[
    "authorization",
    "basicAuth",
    "bearerTokenFile",
    "bearerTokenSecret",
    "enableHttp2",
    "filterRunning",
    "followRedirects",
    "honorLabels",
    "honorTimestamps",
    "interval",
    "metricRelabelings",
    "noProxy",
    "oauth2",
    "params",
    "path",
    "port",
    "proxyConnectHeader",
    "proxyFromEnvironment",
    "proxyUrl",
    "relabelings",
    "scheme",
    "scrapeTimeout",
    "targetPort",
    "tlsConfig",
    "trackTimestampsStaleness",
];

#[test]
fn rules_pass_promtool_check_and_unit_tests() {
    let test = "rules_pass_promtool_check_and_unit_tests";
    let Some(tools) = tools(test) else {
        return;
    };
    let Some(promtool) = path_tool(test, "promtool") else {
        return;
    };
    let unit_tests = files_of(&monitoring_component().join("tests"), "yaml");
    assert!(
        !unit_tests.is_empty(),
        "no promtool unit test in k8s/components/monitoring/tests"
    );
    for (overlay, objects) in monitored_overlays(&tools, test) {
        let mut problems = Vec::new();
        let Some(rule) = one(&objects, "PrometheusRule", &mut problems) else {
            panic!("k8s/overlays/{overlay}: {problems:?}");
        };
        // promtool reads rule files, not PrometheusRules: the spec is one
        // (in JSON, which is YAML), beside which the unit tests name it.
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("monitoring-{overlay}"));
        fs::create_dir_all(&dir).unwrap_or_else(|error| panic!("{}: {error}", dir.display()));
        let rules = dir.join("mcp-services.rules.yaml");
        let spec = serde_json::to_string_pretty(&rule["spec"]).expect("the spec as JSON");
        fs::write(&rules, spec).unwrap_or_else(|error| panic!("{}: {error}", rules.display()));
        let checked = run(Command::new(&promtool).args(["check", "rules"]).arg(&rules));
        assert!(
            checked.success,
            "k8s/overlays/{overlay}: promtool check rules {}:\n{}",
            rules.display(),
            checked.text
        );
        for unit_test in &unit_tests {
            let copy = dir.join(unit_test.file_name().expect("a file name"));
            fs::copy(unit_test, &copy)
                .unwrap_or_else(|error| panic!("{}: {error}", copy.display()));
            let tested = run(Command::new(&promtool).args(["test", "rules"]).arg(&copy));
            assert!(
                tested.success,
                "k8s/overlays/{overlay}: promtool test rules {}:\n{}",
                unit_test.display(),
                tested.text
            );
        }
    }
    // Every alert is tested both ways: quiet (`exp_alerts: []`), and firing.
    let mut cases: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    for unit_test in &unit_tests {
        for document in yaml_documents(&tools, unit_test) {
            for group in document["tests"].as_array().into_iter().flatten() {
                for case in group["alert_rule_test"].as_array().into_iter().flatten() {
                    let alert = case["alertname"].as_str().unwrap_or("?").to_owned();
                    let fires = case["exp_alerts"]
                        .as_array()
                        .is_some_and(|alerts| !alerts.is_empty());
                    let (quiet, firing) = cases.entry(alert).or_default();
                    if fires {
                        *firing = true;
                    } else {
                        *quiet = true;
                    }
                }
            }
        }
    }
    let untested: Vec<String> =
        rule_exprs(&read(&monitoring_component().join("prometheusrule.yaml")))
            .into_iter()
            .map(|(alert, _)| alert)
            .filter(|alert| cases.get(alert) != Some(&(true, true)))
            .collect();
    assert!(
        untested.is_empty(),
        "alerts without a quiet case (exp_alerts: []) and a firing case in k8s/components/monitoring/tests: {untested:?}"
    );
}

#[test]
fn monitoring_objects_fit_the_services() {
    let test = "monitoring_objects_fit_the_services";
    let Some(tools) = tools(test) else {
        return;
    };
    let runbooks = runbook_base();
    let anchors = anchors(&read(&workspace().join("docs/operations.md")));
    let mut problems = Vec::new();
    for (overlay, objects) in monitored_overlays(&tools, test) {
        let mut found = Vec::new();
        check_service_monitor(&objects, &mut found);
        check_rules(&objects, &runbooks, &anchors, &mut found);
        check_dashboard_config_map(&objects, &mut found);
        problems.extend(
            found
                .into_iter()
                .map(|problem| format!("k8s/overlays/{overlay}: {problem}")),
        );
    }
    assert!(problems.is_empty(), "\n- {}", problems.join("\n- "));
}

#[test]
fn dashboards_are_grafana_dashboards_over_our_variables() {
    let files = files_of(&monitoring_component().join("dashboards"), "json");
    assert!(
        !files.is_empty(),
        "no dashboard in k8s/components/monitoring/dashboards"
    );
    let mut problems = Vec::new();
    for file in &files {
        let at = file.file_name().unwrap_or_default().to_string_lossy();
        let text = read(file);
        // `kubectl apply` (client side) keeps the whole object in an
        // annotation of at most 256 KiB.
        if text.len() > 200_000 {
            problems.push(format!(
                "{at}: {} bytes, too large for `kubectl apply`'s last-applied annotation",
                text.len()
            ));
        }
        let dashboard: Value = match serde_json::from_str(&text) {
            Ok(dashboard) => dashboard,
            Err(error) => {
                problems.push(format!("{at}: {error}"));
                continue;
            }
        };
        let mut found = Vec::new();
        check_dashboard(&dashboard, &mut found);
        problems.extend(found.into_iter().map(|problem| format!("{at}: {problem}")));
    }
    assert!(problems.is_empty(), "\n- {}", problems.join("\n- "));
}

#[test]
fn monitoring_reads_our_metrics_and_the_listed_others() {
    let exprs = monitoring_exprs();
    assert!(
        exprs.len() >= 20,
        "too few expressions read from k8s/components/monitoring: {exprs:#?}"
    );
    let mut used = BTreeSet::new();
    for (origin, expr) in &exprs {
        let names = promql_metric_names(expr);
        assert!(!names.is_empty(), "{origin}: no metric name in `{expr}`");
        used.extend(names);
    }
    let others: BTreeSet<&str> = used
        .iter()
        .map(String::as_str)
        .filter(|name| !name.starts_with("mcp_"))
        .collect();
    assert_eq!(
        others,
        BTreeSet::from(EXTERNAL_METRICS),
        "metrics of other exporters used by k8s/components/monitoring (list them in EXTERNAL_METRICS, and only those used)"
    );
    let ours = monitored_metrics();
    assert!(
        ours.contains("mcp_http_requests_total")
            && ours.contains("mcp_http_request_duration_seconds")
            && ours.contains("mcp_replica_info"),
        "{ours:?}"
    );
    for family in &ours {
        let suffixed = ["_bucket", "_sum", "_count"]
            .iter()
            .any(|suffix| family.ends_with(suffix));
        assert!(!suffixed, "{family}: not a family name");
    }
}

// --- the ServiceMonitor ----------------------------------------------------------

fn check_service_monitor(objects: &[Value], problems: &mut Vec<String>) {
    let Some(monitor) = one(objects, "ServiceMonitor", problems) else {
        return;
    };
    let at = format!("ServiceMonitor {}", name_of(monitor));
    let spec = &monitor["spec"];
    for field in keys(spec) {
        if !SERVICE_MONITOR_FIELDS.contains(&field) {
            problems.push(format!(
                "{at}: spec.{field} is no field of a ServiceMonitor"
            ));
        }
    }
    let endpoints = spec["endpoints"].as_array().cloned().unwrap_or_default();
    if endpoints.is_empty() {
        problems.push(format!("{at}: no endpoints"));
    }
    for endpoint in &endpoints {
        for field in keys(endpoint) {
            if !ENDPOINT_FIELDS.contains(&field) {
                problems.push(format!(
                    "{at}: endpoints[].{field} is no field of a ServiceMonitor endpoint"
                ));
            }
        }
        if endpoint["path"] != "/metrics" {
            problems.push(format!("{at}: endpoint path is not /metrics"));
        }
        if endpoint["interval"].as_str().unwrap_or_default().is_empty() {
            problems.push(format!("{at}: endpoint without an interval"));
        }
    }
    if !spec["namespaceSelector"].is_null() {
        problems.push(format!(
            "{at}: namespaceSelector: the Services are in the ServiceMonitor's own namespace (the overlay's)"
        ));
    }
    let selector = &spec["selector"];
    let wanted: BTreeMap<&str, &str> = selector["matchLabels"]
        .as_object()
        .map(|labels| {
            labels
                .iter()
                .filter_map(|(key, value)| Some((key.as_str(), value.as_str()?)))
                .collect()
        })
        .unwrap_or_default();
    if wanted.is_empty() || keys(selector) != ["matchLabels"] {
        problems.push(format!(
            "{at}: the selector must be matchLabels alone, not empty"
        ));
        return;
    }
    let namespace = &monitor["metadata"]["namespace"];
    let selected: Vec<&Value> = of_kind(objects, "Service")
        .into_iter()
        .filter(|service| {
            &service["metadata"]["namespace"] == namespace
                && wanted
                    .iter()
                    .all(|(key, value)| service["metadata"]["labels"][*key] == *value)
        })
        .collect();
    let selected_names: BTreeSet<&str> = selected.iter().copied().map(name_of).collect();
    for (service, _) in base_services() {
        if !selected_names.contains(service.as_str()) {
            problems.push(format!(
                "{at}: does not select the Service {service} (its labels lack {wanted:?})"
            ));
        }
    }
    let job_label = spec["jobLabel"].as_str().unwrap_or_default();
    for service in &selected {
        let name = name_of(service);
        if service["metadata"]["labels"][job_label] != JOB {
            problems.push(format!(
                "Service {name}: its label {job_label:?} (the ServiceMonitor's jobLabel) is not {JOB}, the job the alerts read"
            ));
        }
        let deployment = of_kind(objects, "Deployment")
            .into_iter()
            .find(|deployment| name_of(deployment) == name);
        if deployment.is_none() {
            problems.push(format!(
                "Service {name}: no Deployment {name} (MCPReplicasUnavailable takes the Deployment of a Service's name)"
            ));
        }
        let ports = service["spec"]["ports"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for endpoint in &endpoints {
            let wanted_port = endpoint["port"].as_str().unwrap_or_default();
            let Some(port) = ports.iter().find(|port| port["name"] == wanted_port) else {
                problems.push(format!(
                    "Service {name}: no port named {wanted_port:?} (the ServiceMonitor's endpoint port)"
                ));
                continue;
            };
            if let (Some(target), Some(deployment)) = (port["targetPort"].as_str(), deployment) {
                let container = &deployment["spec"]["template"]["spec"]["containers"][0];
                let named = container["ports"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|container_port| container_port["name"] == target);
                if !named {
                    problems.push(format!(
                        "Deployment {name}: no container port named {target:?} (the targetPort of Service {name}'s port {wanted_port:?})"
                    ));
                }
            }
        }
    }
}

// --- the PrometheusRule ------------------------------------------------------------

fn check_rules(
    objects: &[Value],
    runbooks: &str,
    anchors: &BTreeSet<String>,
    problems: &mut Vec<String>,
) {
    let Some(rule) = one(objects, "PrometheusRule", problems) else {
        return;
    };
    let spec = &rule["spec"];
    if keys(spec) != ["groups"] {
        problems.push(format!(
            "PrometheusRule {}: spec has {:?}, a PrometheusRule has groups only",
            name_of(rule),
            keys(spec)
        ));
    }
    let mut rendered = Vec::new();
    for group in spec["groups"].as_array().into_iter().flatten() {
        for rule in group["rules"].as_array().into_iter().flatten() {
            let expr = rule["expr"].as_str().unwrap_or_default();
            let Some(alert) = rule["alert"].as_str() else {
                let record = rule["record"].as_str().unwrap_or("?");
                rendered.push((record.to_owned(), normalized(expr)));
                continue;
            };
            rendered.push((alert.to_owned(), normalized(expr)));
            let at = format!("alert {alert}");
            if rule["for"].as_str().unwrap_or_default().is_empty() {
                problems.push(format!("{at}: no `for`"));
            }
            let severity = rule["labels"]["severity"].as_str().unwrap_or_default();
            if !SEVERITIES.contains(&severity) {
                problems.push(format!(
                    "{at}: severity {severity:?} is none of {SEVERITIES:?}"
                ));
            }
            for annotation in ["summary", "description"] {
                let text = rule["annotations"][annotation].as_str().unwrap_or_default();
                if text.trim().is_empty() {
                    problems.push(format!("{at}: no {annotation} annotation"));
                }
            }
            let runbook = rule["annotations"]["runbook_url"]
                .as_str()
                .unwrap_or_default();
            match runbook.strip_prefix(runbooks) {
                Some(anchor) if anchors.contains(anchor) => {}
                Some(anchor) => problems.push(format!(
                    "{at}: runbook_url {runbook}: docs/operations.md has no heading #{anchor}"
                )),
                None => problems.push(format!(
                    "{at}: runbook_url {runbook:?} does not point into {runbooks}"
                )),
            }
            if promql_metric_names(expr).contains("up") && !expr.contains(&format!("job=\"{JOB}\""))
            {
                problems.push(format!(
                    "{at}: reads `up` of another job than the ServiceMonitor's ({JOB})"
                ));
            }
        }
    }
    // The library's reader of rule files (behind monitored_metrics) reads
    // the PrometheusRule as kustomize and PyYAML do.
    let read_by_library: Vec<(String, String)> =
        rule_exprs(&read(&monitoring_component().join("prometheusrule.yaml")))
            .into_iter()
            .map(|(name, expr)| (name, normalized(&expr)))
            .collect();
    if read_by_library != rendered {
        problems.push(format!(
            "deploy_tests::rule_exprs reads prometheusrule.yaml as {read_by_library:#?}, but the rendered PrometheusRule has {rendered:#?}"
        ));
    }
    // The event buffer's budget is no metric: the alert writes it out.
    let budget = of_kind(objects, "ConfigMap")
        .into_iter()
        .filter(|config_map| name_of(config_map).starts_with("mcp-common"))
        .find_map(|config_map| config_map["data"]["EVENT_BUFFER_BYTES"].as_str())
        .unwrap_or("67108864")
        .trim()
        .to_owned();
    for (alert, expr) in &rendered {
        if promql_metric_names(expr).contains("mcp_event_buffer_bytes")
            && !expr.contains(&format!("* {budget}"))
        {
            problems.push(format!(
                "alert {alert}: its threshold is not a share of EVENT_BUFFER_BYTES={budget} (k8s/base/common/common.env): `{expr}`"
            ));
        }
    }
}

/// `{repository}/blob/main/docs/operations.md#`: where every runbook is.
fn runbook_base() -> String {
    let manifest = read(&workspace().join("Cargo.toml"));
    let repository = manifest
        .lines()
        .find_map(|line| line.strip_prefix("repository = \"")?.strip_suffix('"'))
        .expect("Cargo.toml: workspace.package.repository");
    format!("{repository}/blob/main/docs/operations.md#")
}

/// The anchors GitHub gives the headings of a Markdown file (lower case,
/// spaces to `-`, punctuation dropped), fenced code left out.
fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut fenced = false;
    let mut anchors: BTreeSet<String> = BTreeSet::new();
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        let heading = line.trim_start_matches('#');
        if fenced || heading.len() == line.len() || !heading.starts_with(' ') {
            continue;
        }
        anchors.insert(
            heading
                .trim()
                .chars()
                .filter_map(|c| match c {
                    ' ' => Some('-'),
                    c if c.is_alphanumeric() || c == '-' || c == '_' => {
                        Some(c.to_ascii_lowercase())
                    }
                    _ => None,
                })
                .collect(),
        );
    }
    anchors
}

fn normalized(expr: &str) -> String {
    expr.split_whitespace().collect::<Vec<_>>().join(" ")
}

// --- the dashboards ------------------------------------------------------------------

fn check_dashboard_config_map(objects: &[Value], problems: &mut Vec<String>) {
    let Some(config_map) = of_kind(objects, "ConfigMap")
        .into_iter()
        .find(|config_map| name_of(config_map) == DASHBOARD_CONFIG_MAP)
    else {
        problems.push(format!(
            "no ConfigMap {DASHBOARD_CONFIG_MAP} (a name without a content hash: disableNameSuffixHash)"
        ));
        return;
    };
    if config_map["metadata"]["labels"]["grafana_dashboard"] != "1" {
        problems.push(format!(
            "ConfigMap {DASHBOARD_CONFIG_MAP}: no label grafana_dashboard: \"1\" (the Grafana sidecar's)"
        ));
    }
    for file in files_of(&monitoring_component().join("dashboards"), "json") {
        let name = file
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let expected: Value = serde_json::from_str(&read(&file))
            .unwrap_or_else(|error| panic!("{}: {error}", file.display()));
        let data = config_map["data"][name.as_str()]
            .as_str()
            .unwrap_or_default();
        if serde_json::from_str::<Value>(data).ok().as_ref() != Some(&expected) {
            problems.push(format!(
                "ConfigMap {DASHBOARD_CONFIG_MAP}: its {name} is not dashboards/{name}"
            ));
        }
    }
}

fn check_dashboard(dashboard: &Value, problems: &mut Vec<String>) {
    if dashboard["schemaVersion"]
        .as_u64()
        .is_none_or(|version| version < 36)
    {
        problems.push(format!(
            "schemaVersion {}: Grafana 9 and later write 36 or more",
            dashboard["schemaVersion"]
        ));
    }
    let uid = dashboard["uid"].as_str().unwrap_or_default();
    if uid.is_empty() || uid.len() > 40 {
        problems.push(format!("uid {uid:?}: 1 to 40 characters"));
    }
    if dashboard["title"].as_str().unwrap_or_default().is_empty() {
        problems.push("no title".into());
    }
    let variables: BTreeMap<&str, &Value> = dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|variable| Some((variable["name"].as_str()?, variable)))
        .collect();
    let datasource = variables.get("datasource").is_some_and(|variable| {
        variable["type"] == "datasource" && variable["query"] == "prometheus"
    });
    if !datasource {
        problems.push("no variable `datasource` of type datasource, query prometheus".into());
    }
    for name in ["namespace", "service"] {
        let filter = variables.get(name).is_some_and(|variable| {
            variable["type"] == "query"
                && variable["datasource"]["uid"] == DATASOURCE
                && variable["includeAll"] == true
                && variable["allValue"] == ".*"
        });
        if !filter {
            problems.push(format!(
                "no query variable `{name}` over {DATASOURCE} with All (.*), which also matches series without the label"
            ));
        }
    }
    let mut ids = BTreeSet::new();
    let mut placed: Vec<(String, [u64; 4])> = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        check_panel(panel, &mut ids, problems);
        for nested in panel["panels"].as_array().into_iter().flatten() {
            check_panel(nested, &mut ids, problems);
        }
        let title = panel["title"].as_str().unwrap_or("?").to_owned();
        if let Some(area) = grid(panel) {
            for (other, other_area) in &placed {
                if overlap(area, *other_area) {
                    problems.push(format!("panels {title:?} and {other:?} overlap"));
                }
            }
            placed.push((title, area));
        }
    }
    if ids.is_empty() {
        problems.push("no panels".into());
    }
}

fn check_panel(panel: &Value, ids: &mut BTreeSet<u64>, problems: &mut Vec<String>) {
    let title = panel["title"].as_str().unwrap_or_default();
    if title.is_empty() {
        problems.push(format!("panel {}: no title", panel["id"]));
    }
    match panel["id"].as_u64() {
        Some(id) if ids.insert(id) => {}
        _ => problems.push(format!(
            "panel {title:?}: id {} missing or not unique",
            panel["id"]
        )),
    }
    if grid(panel).is_none() {
        problems.push(format!(
            "panel {title:?}: gridPos {} needs h and w of at least 1, x and y, within the 24 columns",
            panel["gridPos"]
        ));
    }
    if panel["type"] == "row" {
        return;
    }
    if panel["datasource"]["uid"] != DATASOURCE {
        problems.push(format!(
            "panel {title:?}: its datasource is not {DATASOURCE}"
        ));
    }
    let targets = panel["targets"].as_array().cloned().unwrap_or_default();
    if targets.is_empty() {
        problems.push(format!("panel {title:?}: no query"));
    }
    let mut ref_ids = BTreeSet::new();
    for target in &targets {
        let ref_id = target["refId"].as_str().unwrap_or_default();
        if ref_id.is_empty() || !ref_ids.insert(ref_id.to_owned()) {
            problems.push(format!(
                "panel {title:?}: refId {ref_id:?} missing or not unique"
            ));
        }
        let over_datasource =
            target["datasource"].is_null() || target["datasource"]["uid"] == DATASOURCE;
        if !over_datasource {
            problems.push(format!(
                "panel {title:?} {ref_id}: its datasource is not {DATASOURCE}"
            ));
        }
        let expr = target["expr"].as_str().unwrap_or_default();
        let filtered = expr.contains("$namespace") && expr.contains("$service");
        if !filtered {
            problems.push(format!(
                "panel {title:?} {ref_id}: not filtered by $namespace and $service: `{expr}`"
            ));
        }
    }
}

/// A panel's `gridPos` as `[x, y, w, h]`, if whole and within the grid's 24
/// columns.
fn grid(panel: &Value) -> Option<[u64; 4]> {
    let position = &panel["gridPos"];
    let [x, y, w, h] = ["x", "y", "w", "h"].map(|key| position[key].as_u64());
    let (x, y, w, h) = (x?, y?, w?, h?);
    (w >= 1 && h >= 1 && x + w <= 24).then_some([x, y, w, h])
}

fn overlap([x1, y1, w1, h1]: [u64; 4], [x2, y2, w2, h2]: [u64; 4]) -> bool {
    x1 < x2 + w2 && x2 < x1 + w1 && y1 < y2 + h2 && y2 < y1 + h1
}

// --- rendered objects and tools --------------------------------------------------------

/// The `.venv` tools: python (with PyYAML) and kubectl.
struct Tools {
    python: PathBuf,
    kubectl: PathBuf,
}

/// The tools, or `None` when they are missing and not required (see
/// `deploy_tests::venv_tools`).
fn tools(test: &str) -> Option<Tools> {
    let [python, kubectl]: [PathBuf; 2] = venv_tools(test, &["kubectl"])?.try_into().ok()?;
    Some(Tools { python, kubectl })
}

/// The rendered objects of every overlay that includes the monitoring
/// component (that renders a PrometheusRule), by overlay name. Panics unless
/// `prod` is one of them.
fn monitored_overlays(tools: &Tools, test: &str) -> Vec<(String, Vec<Value>)> {
    let root = workspace().join("k8s/overlays");
    let mut overlays: Vec<PathBuf> = fs::read_dir(&root)
        .unwrap_or_else(|error| panic!("{}: {error}", root.display()))
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|path| path.join("kustomization.yaml").is_file())
        .collect();
    overlays.sort();
    let mut monitored = Vec::new();
    for overlay in overlays {
        let name = overlay
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let output = run(Command::new(&tools.kubectl).arg("kustomize").arg(&overlay));
        assert!(
            output.success,
            "kubectl kustomize {} failed:\n{}",
            overlay.display(),
            output.text
        );
        let rendered =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("monitoring-{name}-{test}.yaml"));
        fs::write(&rendered, &output.stdout)
            .unwrap_or_else(|error| panic!("{}: {error}", rendered.display()));
        let objects = yaml_documents(tools, &rendered);
        if objects
            .iter()
            .any(|object| object["kind"] == "PrometheusRule")
        {
            monitored.push((name, objects));
        }
    }
    assert!(
        monitored.iter().any(|(name, _)| name == "prod"),
        "k8s/overlays/prod renders no PrometheusRule: it must include k8s/components/monitoring"
    );
    monitored
}

/// The documents of a YAML file, read with the PyYAML of the `.venv`, as
/// JSON.
fn yaml_documents(tools: &Tools, path: &Path) -> Vec<Value> {
    let script = "import json, sys, yaml\nwith open(sys.argv[1]) as f:\n    json.dump([d for d in yaml.safe_load_all(f) if d], sys.stdout)\n";
    let output = run(Command::new(&tools.python).args(["-c", script]).arg(path));
    assert!(
        output.success,
        "reading {}: {}",
        path.display(),
        output.text
    );
    match serde_json::from_str(&output.stdout) {
        Ok(Value::Array(documents)) => documents,
        other => panic!("reading {}: {other:?}", path.display()),
    }
}

/// The files of `dir` whose name ends in `.{extension}`, sorted.
fn files_of(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|path| path.extension().is_some_and(|found| found == extension))
        .collect();
    files.sort();
    files
}

fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects
        .iter()
        .filter(|object| object["kind"] == kind)
        .collect()
}

/// The one object of `kind`, or `None` (a problem noted) when there are
/// none or several.
fn one<'a>(objects: &'a [Value], kind: &str, problems: &mut Vec<String>) -> Option<&'a Value> {
    match of_kind(objects, kind).as_slice() {
        [object] => Some(*object),
        found => {
            problems.push(format!("{} {kind} rendered, expected one", found.len()));
            None
        }
    }
}

fn keys(value: &Value) -> Vec<&str> {
    value
        .as_object()
        .map(|map| map.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

fn name_of(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or("?")
}
