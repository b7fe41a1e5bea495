//! `docker-compose.yml`: Docker Compose itself (`docker compose config`, no
//! engine needed) accepts and resolves the file, and the resolved topology is
//! the production one in small:
//!
//! - Redis, and PostgreSQL seeded from `services/postgres/sql` on first start;
//! - every MCP service of `k8s/base` built from the Dockerfile by name, with
//!   its `k8s/base` port, at least 2 replicas, sessions in that Redis, a
//!   read-only root filesystem and no port of its own;
//! - one nginx in front that publishes each service on its port minus 1000
//!   and balances over its replicas round robin, with no stickiness
//!   (`deploy/nginx/compose/<service>.conf`).
//!
//! The `docker-compose` binary is installed into `.venv/bin` by
//! `scripts/install-test-deps.sh`; without it the test says so and passes,
//! unless `MCP_INTEROP_REQUIRED=1` (set by `scripts/test.sh`).

use std::{fs, process::Command};

use deploy_tests::{base_services, read, run, venv_tools, workspace};
use serde_json::Value;

#[test]
fn compose_runs_every_service_twice_behind_round_robin_nginx() {
    let Some(tools) = venv_tools(
        "compose_runs_every_service_twice_behind_round_robin_nginx",
        &["docker-compose"],
    ) else {
        return;
    };
    let root = workspace();
    let output = run(Command::new(&tools[1]).current_dir(&root).args([
        "-f",
        "docker-compose.yml",
        "config",
        "--format",
        "json",
    ]));
    assert!(
        output.success,
        "docker compose config rejected docker-compose.yml:\n{}",
        output.text
    );
    let compose: Value = serde_json::from_str(&output.stdout).expect("compose config JSON");
    let services = compose["services"].as_object().expect("services");
    let mut problems = Vec::new();

    // The session store and the seeded database.
    if services.get("redis").is_none() {
        problems.push("no redis service".to_owned());
    }
    let seeded = services.get("postgres").is_some_and(|postgres| {
        mounts(
            postgres,
            "services/postgres/sql",
            "/docker-entrypoint-initdb.d",
        )
    });
    if !seeded {
        problems.push(
            "postgres: services/postgres/sql is not mounted as /docker-entrypoint-initdb.d".into(),
        );
    }
    for seed in ["schema.sql", "seed.sql", "readonly_role.sql"] {
        if !root.join("services/postgres/sql").join(seed).is_file() {
            problems.push(format!("services/postgres/sql/{seed} is missing"));
        }
    }

    // The proxy's configuration: every upstream and server of
    // deploy/nginx/compose/*.conf.
    let nginx_dir = root.join("deploy/nginx/compose");
    let mut nginx_conf = String::new();
    for entry in fs::read_dir(&nginx_dir).expect("deploy/nginx/compose") {
        let path = entry.expect("entry").path();
        if path
            .extension()
            .is_some_and(|extension| extension == "conf")
        {
            nginx_conf.push_str(&read(&path));
        }
    }
    for sticky in ["ip_hash", "hash ", "sticky"] {
        if nginx_conf.contains(sticky) {
            problems.push(format!(
                "deploy/nginx/compose: `{sticky}` makes the proxy sticky; any replica serves any session"
            ));
        }
    }
    let nginx = &compose["services"]["nginx"];
    let mounts_conf = mounts(nginx, "deploy/nginx/compose", "/etc/nginx/conf.d");
    if !mounts_conf {
        problems.push("nginx: deploy/nginx/compose is not mounted as /etc/nginx/conf.d".into());
    }

    // Every MCP service.
    for (service, port) in base_services() {
        let Some((compose_name, definition)) = services
            .iter()
            .find(|(_, definition)| definition["build"]["args"]["SERVICE"] == service.as_str())
        else {
            problems.push(format!(
                "{service} (k8s/base) has no compose service built with SERVICE={service}"
            ));
            continue;
        };
        let at = format!("compose service {compose_name}");
        if text_number(&definition["build"]["args"]["PORT"]) != Some(port) {
            problems.push(format!(
                "{at}: build arg PORT {} is not {service}'s MCP_SERVER_PORT {port}",
                definition["build"]["args"]["PORT"]
            ));
        }
        let replicas = definition["deploy"]["replicas"].as_u64().unwrap_or(1);
        if replicas < 2 {
            problems.push(format!("{at}: {replicas} replica(s); run at least 2"));
        }
        if definition["environment"]["REDIS_URL"] != "redis://redis:6379" {
            problems.push(format!(
                "{at}: REDIS_URL is {}, not the shared redis://redis:6379",
                definition["environment"]["REDIS_URL"]
            ));
        }
        if definition["depends_on"]["redis"].is_null() {
            problems.push(format!("{at}: does not depend on redis"));
        }
        if definition["read_only"] != true {
            problems.push(format!("{at}: read_only is not true"));
        }
        if definition["ports"]
            .as_array()
            .is_some_and(|ports| !ports.is_empty())
        {
            problems.push(format!("{at}: publishes a port; clients go through nginx"));
        }
        // nginx: an upstream over this service's replicas, published on
        // port - 1000.
        let public = port - 1000;
        if !nginx_conf.contains(&format!("server {compose_name}:{port};")) {
            problems.push(format!(
                "deploy/nginx/compose: no upstream `server {compose_name}:{port};`"
            ));
        }
        if !nginx_conf.contains(&format!("listen {public};")) {
            problems.push(format!(
                "deploy/nginx/compose: no `listen {public};` for {service}"
            ));
        }
        let published = nginx["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|mapping| {
                mapping["target"] == public && text_number(&mapping["published"]) == Some(public)
            });
        if !published {
            problems.push(format!("nginx: does not publish {public} ({service})"));
        }
        if nginx["depends_on"][compose_name].is_null() {
            problems.push(format!("nginx: does not depend on {compose_name}"));
        }
    }
    assert!(problems.is_empty(), "\n- {}", problems.join("\n- "));
}

/// A port Compose writes as a string (`"9100"`), as a number.
fn text_number(value: &Value) -> Option<u16> {
    value.as_str()?.parse().ok()
}

/// Whether a compose service mounts the repository path ending in `source`
/// at `target`.
fn mounts(service: &Value, source: &str, target: &str) -> bool {
    service["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|volume| {
            volume["target"] == target
                && volume["source"]
                    .as_str()
                    .is_some_and(|path| path.ends_with(source))
        })
}
