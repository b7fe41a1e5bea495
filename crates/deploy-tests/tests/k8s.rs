//! The Kubernetes manifests: every overlay under `k8s/overlays/` renders with
//! `kubectl kustomize`, every rendered object validates against the
//! Kubernetes schemas (`kubernetes-validate --strict`), and the objects keep
//! the rules the services depend on behind an ALB:
//!
//! - every Deployment's containers have liveness and readiness probes, run as
//!   non-root on a read-only root filesystem, without privilege escalation
//!   and with every capability dropped; an MCP service probes `/healthz` and
//!   `/readyz`, and its `terminationGracePeriodSeconds` covers the `preStop`
//!   sleep plus `SHUTDOWN_DRAIN_SECONDS` plus `SHUTDOWN_GRACE_SECONDS`;
//! - every Ingress is an ALB Ingress (`target-type: ip`, health check on
//!   `/readyz`, idle timeout above `SSE_KEEPALIVE_SECONDS`) without
//!   stickiness, and its hosts are in the backend's `ALLOWED_HOSTS`; no
//!   Service has `sessionAffinity`;
//! - every variable of `.env.example` reaches the MCP services, from a
//!   ConfigMap or the Downward API, and credentials only from Secrets.
//!
//! The custom resources of the monitoring component (ServiceMonitor and
//! PrometheusRule, `k8s/components/monitoring`) have no schema in
//! kubernetes-validate, which bundles the built-in kinds only:
//! `tests/monitoring.rs` checks them instead.
//!
//! The tools are installed into `.venv` by `scripts/install-test-deps.sh`
//! (pinned in `k8s/requirements.txt`) and found through `MCP_TEST_PYTHON`,
//! the `.venv` python: `kubectl` and `kubernetes-validate` sit beside it.
//! Without them the tests say so on stderr and pass, unless
//! `MCP_INTEROP_REQUIRED=1` (set by `scripts/test.sh`), which fails them.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use deploy_tests::{base_services, run, venv_tools, workspace};
use serde_json::Value;

/// Kubernetes versions the manifests are validated against: the oldest the
/// manifests support (the `preStop` sleep action is on by default from 1.30)
/// and the newest the pinned kubernetes-validate knows.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.31.0", "1.37.0"];

/// Kinds of custom resources (API version, kind) that kubernetes-validate
/// has no schema for, and that `tests/monitoring.rs` checks instead: the
/// Prometheus Operator's, from `k8s/components/monitoring`.
const CUSTOM_KINDS: [(&str, &str); 2] = [
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
];

/// Label of the MCP service Deployments and Ingresses.
const PART_OF: &str = "mcp-microservices";

/// Variables that hold credentials: never in a ConfigMap.
fn is_credential(name: &str) -> bool {
    matches!(name, "REDIS_URL" | "DATABASE_URL" | "API_KEYS")
        || name.starts_with("MCP_REQUEST_STATE_") && name.contains("KEY")
        || name.contains("SECRET")
        || name.contains("PASSWORD")
        || name.ends_with("_API_KEY")
        || name.ends_with("_TOKEN")
}

#[test]
fn overlays_validate_against_the_kubernetes_schemas() {
    let Some(tools) = tools("overlays_validate_against_the_kubernetes_schemas") else {
        return;
    };
    for overlay in overlays() {
        let rendered = render(&tools, &overlay, "schemas");
        let mut command = Command::new(&tools.validate);
        command.args(["--strict", "--quiet"]);
        for version in KUBERNETES_VERSIONS {
            command.args(["-k", version]);
        }
        let output = run(command.arg(&rendered));
        // Kinds without a schema are only warned about (exit code 0): apart
        // from the custom resources of CUSTOM_KINDS, every kind used here is
        // built in, so a warning is a mistake too.
        let complaints: Vec<&str> = output
            .text
            .lines()
            .filter(|line| !line.starts_with("INFO") && !is_custom_kind_warning(line))
            .collect();
        assert!(
            output.success && complaints.is_empty(),
            "{}: kubernetes-validate --strict failed:\n{}",
            overlay.display(),
            output.text
        );
    }
}

/// Whether `line` is kubernetes-validate's warning that it has no schema
/// for one of the [`CUSTOM_KINDS`] (`WARN <file> Couldn't find schema for
/// kind ServiceMonitor with api version monitoring.coreos.com/v1 for
/// kubernetes version 1.31`).
fn is_custom_kind_warning(line: &str) -> bool {
    line.starts_with("WARN ")
        && CUSTOM_KINDS.iter().any(|(api_version, kind)| {
            line.contains(&format!(
                "Couldn't find schema for kind {kind} with api version {api_version} for kubernetes version"
            ))
        })
}

#[test]
fn overlays_keep_the_deployment_rules() {
    let Some(tools) = tools("overlays_keep_the_deployment_rules") else {
        return;
    };
    let variables = env_example_variables();
    assert!(
        variables.len() >= 10,
        ".env.example lists too few variables: {variables:?}"
    );
    let mut problems = Vec::new();
    for overlay in overlays() {
        let rendered = render(&tools, &overlay, "rules");
        let objects = Objects::parse(&tools, &rendered);
        let mut found = Vec::new();
        check_deployments(&objects, &mut found);
        check_ingresses(&objects, &mut found);
        check_variables(&objects, &variables, &mut found);
        check_services(&objects, &mut found);
        if overlay.ends_with("prod") {
            // Production credentials (the rediss:// URL with its ElastiCache
            // auth token, JWT keys, database URLs) are created as Secrets
            // by hand or by an operator, never rendered from the repository.
            for secret in objects.of_kind("Secret") {
                found.push(format!(
                    "Secret {} is rendered: production Secrets are created out of band (docs/deploy-eks.md)",
                    name_of(secret)
                ));
            }
        }
        let overlay = overlay
            .strip_prefix(workspace())
            .unwrap_or(&overlay)
            .display()
            .to_string();
        problems.extend(
            found
                .into_iter()
                .map(|problem| format!("{overlay}: {problem}")),
        );
    }
    assert!(problems.is_empty(), "\n- {}", problems.join("\n- "));
}

// --- the rules ---------------------------------------------------------------

fn check_deployments(objects: &Objects, problems: &mut Vec<String>) {
    let deployments = objects.of_kind("Deployment");
    if deployments.is_empty() {
        problems.push("no Deployment rendered".into());
    }
    for deployment in deployments {
        let name = name_of(deployment);
        let pod = &deployment["spec"]["template"]["spec"];
        let pod_non_root = pod["securityContext"]["runAsNonRoot"] == true;
        let containers = pod["containers"].as_array().cloned().unwrap_or_default();
        for container in &containers {
            let at = format!("Deployment {name}, container {}", container["name"]);
            let security = &container["securityContext"];
            for probe in ["livenessProbe", "readinessProbe"] {
                if container[probe].is_null() {
                    problems.push(format!("{at}: no {probe}"));
                }
            }
            if !(pod_non_root || security["runAsNonRoot"] == true) {
                problems.push(format!("{at}: runAsNonRoot is not true"));
            }
            if security["readOnlyRootFilesystem"] != true {
                problems.push(format!("{at}: readOnlyRootFilesystem is not true"));
            }
            if security["allowPrivilegeEscalation"] != false {
                problems.push(format!("{at}: allowPrivilegeEscalation is not false"));
            }
            let drops_all = security["capabilities"]["drop"]
                .as_array()
                .is_some_and(|drop| drop.iter().any(|capability| capability == "ALL"));
            if !drops_all {
                problems.push(format!("{at}: capabilities.drop lacks ALL"));
            }
        }
        if !is_mcp_service(deployment) {
            continue;
        }
        // An MCP service: its probes and its shutdown timing.
        let Some(server) = containers.first() else {
            problems.push(format!("Deployment {name}: no container"));
            continue;
        };
        for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
            if server[probe]["httpGet"]["path"] != path {
                problems.push(format!("Deployment {name}: {probe} is not GET {path}"));
            }
        }
        let environment = objects.environment(deployment);
        let grace = number(environment.get("SHUTDOWN_GRACE_SECONDS"), 25);
        let drain = number(environment.get("SHUTDOWN_DRAIN_SECONDS"), 0);
        let pre_stop = server["lifecycle"]["preStop"]["sleep"]["seconds"]
            .as_u64()
            .unwrap_or(0);
        let termination = pod["terminationGracePeriodSeconds"].as_u64().unwrap_or(30);
        if pre_stop == 0 {
            problems.push(format!("Deployment {name}: no preStop sleep"));
        }
        if termination <= pre_stop + drain + grace {
            problems.push(format!(
                "Deployment {name}: terminationGracePeriodSeconds {termination} must exceed preStop sleep {pre_stop} + SHUTDOWN_DRAIN_SECONDS {drain} + SHUTDOWN_GRACE_SECONDS {grace}"
            ));
        }
    }
}

fn check_ingresses(objects: &Objects, problems: &mut Vec<String>) {
    for service in objects.of_kind("Service") {
        let affinity = &service["spec"]["sessionAffinity"];
        if !(affinity.is_null() || affinity == "None") {
            problems.push(format!(
                "Service {}: sessionAffinity {affinity}: no stickiness, any replica serves any session",
                name_of(service)
            ));
        }
    }
    for ingress in objects.of_kind("Ingress") {
        let name = name_of(ingress);
        let annotations: BTreeMap<&str, &str> = ingress["metadata"]["annotations"]
            .as_object()
            .map(|map| {
                map.iter()
                    .filter_map(|(key, value)| Some((key.as_str(), value.as_str()?)))
                    .collect()
            })
            .unwrap_or_default();
        let alb = |key: &str| {
            annotations
                .get(format!("alb.ingress.kubernetes.io/{key}").as_str())
                .copied()
        };
        for (key, value) in &annotations {
            if key.contains("stickiness")
                || value.contains("stickiness.enabled=true")
                || value.contains("stickiness.app_cookie")
                || value.contains("stickiness.lb_cookie")
            {
                problems.push(format!(
                    "Ingress {name}: {key}: {value}: no stickiness, any replica serves any session"
                ));
            }
        }
        if ingress["spec"]["ingressClassName"] != "alb" {
            problems.push(format!("Ingress {name}: ingressClassName is not alb"));
        }
        if alb("target-type") != Some("ip") {
            problems.push(format!("Ingress {name}: target-type is not ip"));
        }
        if alb("healthcheck-path") != Some("/readyz") {
            problems.push(format!("Ingress {name}: healthcheck-path is not /readyz"));
        }
        let idle_timeout = alb("load-balancer-attributes")
            .unwrap_or_default()
            .split(',')
            .find_map(|attribute| {
                attribute
                    .trim()
                    .strip_prefix("idle_timeout.timeout_seconds=")
            })
            .and_then(|seconds| seconds.parse::<u64>().ok())
            .unwrap_or(60);
        for rule in ingress["spec"]["rules"].as_array().into_iter().flatten() {
            let host = rule["host"].as_str().unwrap_or_default();
            let backends = rule["http"]["paths"].as_array().into_iter().flatten();
            for backend in
                backends.map(|path| path["backend"]["service"]["name"].as_str().unwrap_or("?"))
            {
                let Some(deployment) = objects
                    .of_kind("Deployment")
                    .into_iter()
                    .find(|deployment| name_of(deployment) == backend)
                else {
                    problems.push(format!(
                        "Ingress {name}: backend {backend} has no Deployment of that name"
                    ));
                    continue;
                };
                let environment = objects.environment(deployment);
                let allowed = environment
                    .get("ALLOWED_HOSTS")
                    .cloned()
                    .unwrap_or_default();
                if !allowed.split(',').any(|entry| entry.trim() == host) {
                    problems.push(format!(
                        "Ingress {name}: host {host} is not in {backend}'s ALLOWED_HOSTS `{allowed}` (requests would get 403)"
                    ));
                }
                let keep_alive = number(environment.get("SSE_KEEPALIVE_SECONDS"), 15);
                if idle_timeout <= keep_alive {
                    problems.push(format!(
                        "Ingress {name}: ALB idle timeout {idle_timeout} s must exceed {backend}'s SSE_KEEPALIVE_SECONDS {keep_alive}"
                    ));
                }
            }
        }
    }
}

/// Every service of `k8s/base` renders whole: its Deployment (container
/// port = its `MCP_SERVER_PORT`), Service, HorizontalPodAutoscaler (at least
/// 2 replicas outside dev), PodDisruptionBudget and Ingress.
fn check_services(objects: &Objects, problems: &mut Vec<String>) {
    for (service, port) in base_services() {
        for kind in [
            "Deployment",
            "Service",
            "HorizontalPodAutoscaler",
            "PodDisruptionBudget",
            "Ingress",
        ] {
            if !objects
                .of_kind(kind)
                .iter()
                .any(|object| name_of(object) == service)
            {
                problems.push(format!("service {service}: no {kind} {service}"));
            }
        }
        for deployment in objects.of_kind("Deployment") {
            let container = &deployment["spec"]["template"]["spec"]["containers"][0];
            if name_of(deployment) == service && container["ports"][0]["containerPort"] != port {
                problems.push(format!(
                    "Deployment {service}: containerPort {} is not its MCP_SERVER_PORT {port}",
                    container["ports"][0]["containerPort"]
                ));
            }
        }
    }
}

fn check_variables(objects: &Objects, variables: &[String], problems: &mut Vec<String>) {
    let mut reached = BTreeSet::new();
    for deployment in objects.of_kind("Deployment") {
        if !is_mcp_service(deployment) {
            continue;
        }
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        for entry in container["env"].as_array().into_iter().flatten() {
            let variable = entry["name"].as_str().unwrap_or_default();
            let from = &entry["valueFrom"];
            if is_credential(variable) && from["secretKeyRef"].is_null() {
                problems.push(format!(
                    "Deployment {}: {variable} holds a credential: take it from a Secret (secretKeyRef)",
                    name_of(deployment)
                ));
            }
            if !from["secretKeyRef"].is_null() || !from["fieldRef"].is_null() {
                reached.insert(variable.to_owned());
            }
        }
        for (variable, _) in objects.config_map_environment(deployment) {
            if is_credential(&variable) {
                problems.push(format!(
                    "Deployment {}: {variable} holds a credential but comes from a ConfigMap: use a Secret (secretKeyRef)",
                    name_of(deployment)
                ));
            }
            reached.insert(variable);
        }
    }
    for variable in variables {
        if !reached.contains(variable) {
            problems.push(format!(
                "{variable} (.env.example) reaches no MCP service: add it to a ConfigMap (k8s/base/common/common.env or the service's config.env) or, for a credential, as a secretKeyRef"
            ));
        }
    }
}

// --- rendered objects ----------------------------------------------------------

/// The objects of one rendered overlay.
struct Objects(Vec<Value>);

impl Objects {
    /// Reads the rendered YAML with the PyYAML of the `.venv` (a dependency
    /// of kubernetes-validate), as JSON.
    fn parse(tools: &Tools, rendered: &Path) -> Self {
        let script = "import json, sys, yaml\n\
            with open(sys.argv[1]) as f:\n    \
            json.dump([d for d in yaml.safe_load_all(f) if d], sys.stdout)";
        let output = run(Command::new(&tools.python)
            .args(["-c", script])
            .arg(rendered));
        assert!(
            output.success,
            "reading {}: {}",
            rendered.display(),
            output.text
        );
        match serde_json::from_str(&output.stdout) {
            Ok(Value::Array(objects)) => Self(objects),
            other => panic!("reading {}: {other:?}", rendered.display()),
        }
    }

    fn of_kind(&self, kind: &str) -> Vec<&Value> {
        self.0
            .iter()
            .filter(|object| object["kind"] == kind)
            .collect()
    }

    /// The variables the ConfigMaps of a Deployment's first container's
    /// `envFrom` define, with their values.
    fn config_map_environment(&self, deployment: &Value) -> BTreeMap<String, String> {
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        let mut environment = BTreeMap::new();
        for source in container["envFrom"].as_array().into_iter().flatten() {
            let wanted = &source["configMapRef"]["name"];
            let config_map = self
                .of_kind("ConfigMap")
                .into_iter()
                .find(|config_map| &config_map["metadata"]["name"] == wanted);
            let data = config_map.and_then(|config_map| config_map["data"].as_object());
            for (key, value) in data.into_iter().flatten() {
                environment.insert(key.clone(), value.as_str().unwrap_or_default().to_owned());
            }
        }
        environment
    }

    /// The plain-valued environment of a Deployment's first container:
    /// ConfigMaps, then literal `env` values (which win).
    fn environment(&self, deployment: &Value) -> BTreeMap<String, String> {
        let mut environment = self.config_map_environment(deployment);
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        for entry in container["env"].as_array().into_iter().flatten() {
            if let (Some(variable), Some(value)) = (entry["name"].as_str(), entry["value"].as_str())
            {
                environment.insert(variable.to_owned(), value.to_owned());
            }
        }
        environment
    }
}

fn name_of(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or("?")
}

fn is_mcp_service(object: &Value) -> bool {
    object["metadata"]["labels"]["app.kubernetes.io/part-of"] == PART_OF
}

fn number(value: Option<&String>, default: u64) -> u64 {
    value.and_then(|text| text.parse().ok()).unwrap_or(default)
}

/// The variable names of `.env.example`, set or commented out (`#NAME=`).
fn env_example_variables() -> Vec<String> {
    let path = workspace().join(".env.example");
    let text = fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path:?}: {error}"));
    text.lines()
        .filter_map(|line| {
            let (name, _) = line.trim_start_matches('#').trim().split_once('=')?;
            let valid = name.starts_with(|c: char| c.is_ascii_uppercase())
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            valid.then(|| name.to_owned())
        })
        .collect()
}

// --- tools ---------------------------------------------------------------------

/// The `.venv` tools.
struct Tools {
    python: PathBuf,
    kubectl: PathBuf,
    validate: PathBuf,
}

/// The tools, or `None` when they are missing and not required (see
/// [`venv_tools`]).
fn tools(test: &str) -> Option<Tools> {
    let [python, kubectl, validate]: [PathBuf; 3] =
        venv_tools(test, &["kubectl", "kubernetes-validate"])?
            .try_into()
            .ok()?;
    Some(Tools {
        python,
        kubectl,
        validate,
    })
}

/// Every `k8s/overlays/<name>` with a kustomization.
fn overlays() -> Vec<PathBuf> {
    let root = workspace().join("k8s/overlays");
    let mut overlays: Vec<PathBuf> = fs::read_dir(&root)
        .unwrap_or_else(|error| panic!("{}: {error}", root.display()))
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|path| path.join("kustomization.yaml").is_file())
        .collect();
    overlays.sort();
    assert!(
        overlays.len() >= 2,
        "expected dev and prod in {}",
        root.display()
    );
    overlays
}

/// `kubectl kustomize <overlay>`, written to a file of the test's own.
fn render(tools: &Tools, overlay: &Path, test: &str) -> PathBuf {
    let output = run(Command::new(&tools.kubectl).arg("kustomize").arg(overlay));
    assert!(
        output.success,
        "kubectl kustomize {} failed:\n{}",
        overlay.display(),
        output.text
    );
    let overlay_name = overlay.file_name().unwrap_or_default().to_string_lossy();
    let path =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("k8s-{overlay_name}-{test}.yaml"));
    fs::write(&path, &output.stdout).unwrap_or_else(|error| panic!("{path:?}: {error}"));
    path
}
