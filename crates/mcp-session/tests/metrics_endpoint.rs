//! `GET /metrics` of one in-process server: served in the Prometheus text
//! format beside the probes, counting requests by route template, and gone
//! with `METRICS_ENABLED=false`; a scrape that passes `promtool check metrics`
//! and holds every metric the shipped dashboards and alerting rules read
//! (`k8s/components/monitoring`).

use mcp_session::{Config, McpServer};
use mcp_testkit::Scrape;
use rmcp::{
    ServerHandler,
    model::{Implementation, ServerCapabilities, ServerConfig},
};
use tokio::sync::oneshot;

#[derive(Clone)]
struct Empty;

impl ServerHandler for Empty {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().build())
            .with_server_info(Implementation::new("empty", "1.2.3"))
    }
}

/// Serves `Empty` with `metrics_enabled`; returns its base URL and the
/// sender that stops it.
async fn serve(metrics_enabled: bool) -> (String, oneshot::Sender<()>) {
    let mut config = Config::new(0);
    config.host = "127.0.0.1".into();
    config.metrics_enabled = metrics_enabled;
    let bound = McpServer::new(config, || Empty).bind().await.expect("bind");
    let base = format!("http://{}", bound.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(bound.run(async move {
        let _ = stopped.await;
    }));
    (base, stop)
}

#[tokio::test]
async fn metrics_count_requests_by_route_template() {
    let (base, _stop) = serve(true).await;
    for path in ["/healthz", "/no/such/path/0123", "/no/such/path/4567"] {
        reqwest::get(format!("{base}{path}")).await.unwrap();
    }
    let scrape = Scrape::fetch(&base).await;
    let requests = "mcp_http_requests_total";
    assert_eq!(
        scrape.value(requests, &[("route", "/healthz"), ("status", "200")]),
        1.0
    );
    // Unknown paths share one label value: no raw path becomes a series.
    assert_eq!(
        scrape.value(requests, &[("route", "other"), ("status", "404")]),
        2.0
    );
    assert!(scrape.samples.iter().all(|sample| {
        sample
            .labels
            .get("route")
            .is_none_or(|route| !route.contains("such"))
    }));
    assert_eq!(
        scrape.value(
            "mcp_replica_info",
            &[("service", "empty"), ("version", "1.2.3")]
        ),
        1.0
    );
    assert_eq!(scrape.value("mcp_http_requests_in_flight", &[]), 1.0);
}

#[tokio::test]
async fn metrics_can_be_turned_off() {
    let (base, _stop) = serve(false).await;
    let response = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let healthz = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(healthz.status().as_u16(), 200);
    assert!(healthz.headers().contains_key("x-request-id"));
}

/// Every metric that the dashboards and alerting rules of
/// `k8s/components/monitoring` read is in a live scrape (once the replica
/// answered a request), and the scrape passes Prometheus' own check.
#[tokio::test]
async fn dashboards_and_alerts_read_only_metrics_a_scrape_has() {
    let (base, _stop) = serve(true).await;
    reqwest::get(format!("{base}/healthz")).await.unwrap();
    let text = Scrape::fetch_text(&base).await;
    mcp_testkit::promtool_check_metrics(&text);
    let scraped = mcp_testkit::metric_families(&text);
    let monitored = deploy_tests::monitored_metrics();
    assert!(monitored.len() > 10, "{monitored:?}");
    let missing: Vec<&String> = monitored.difference(&scraped).collect();
    assert!(
        missing.is_empty(),
        "the dashboards or rules read metrics no scrape has: {missing:?}\n{text}"
    );
}
