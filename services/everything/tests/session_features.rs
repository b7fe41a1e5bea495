//! What the conformance suite does not check: that a session's state works
//! over Streamable HTTP through `mcp-session` — resource subscriptions bring
//! `notifications/resources/updated` (and stop with `resources/unsubscribe`),
//! and `logging/setLevel` filters the log messages of tools, both kept in the
//! session's shared record — and that
//! stateless 2026-07-28 clients get the same updates from
//! `subscriptions/listen`.
//!
//! Each test starts an in-process everything server on a free loopback port
//! and talks to it with rmcp's client.

// `resources/subscribe` and `logging/setLevel` are deprecated in rmcp for
// protocol 2026-07-28; these sessions negotiate 2025-11-25, which has them.
#![allow(deprecated)]

use std::{sync::Arc, time::Duration};

use everything::{
    Everything,
    resources::{WATCH_INTERVAL, WATCHED_URI},
};
use mcp_session::{
    Config, McpServer,
    store::{SessionRecord, SessionStore},
};
use rmcp::{
    ClientHandler, ClientLifecycleMode, ClientServiceExt, RoleClient, ServiceExt,
    model::{
        CallToolRequestParams, ClientConfig, ErrorCode, LoggingLevel,
        LoggingMessageNotificationParam, ProtocolVersion, ResourceUpdatedNotificationParam,
        ServerNotification, SetLevelRequestParams, SubscribeRequestParams, SubscriptionFilter,
        UnsubscribeRequestParams,
    },
    service::{NotificationContext, RunningService, ServiceError},
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use tokio::sync::{mpsc, oneshot};

/// A notification the client received.
#[derive(Debug, PartialEq)]
enum Received {
    Log(String),
    Updated(String),
}

/// A client that forwards the notifications it receives to a channel.
struct Recorder(mpsc::UnboundedSender<Received>);

impl ClientHandler for Recorder {
    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let text = params.data.as_str().unwrap_or_default().to_owned();
        let _ = self.0.send(Received::Log(text));
    }

    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let _ = self.0.send(Received::Updated(params.uri));
    }

    fn get_info(&self) -> ClientConfig {
        ClientConfig::default().with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE)
    }
}

/// An in-process everything server and one client session with it.
struct Session {
    client: RunningService<RoleClient, Recorder>,
    received: mpsc::UnboundedReceiver<Received>,
    store: Arc<dyn SessionStore>,
    stop: oneshot::Sender<()>,
}

/// Starts an in-process everything server on a free loopback port; it
/// serves until the returned sender is used or dropped.
async fn start_server() -> (String, Arc<dyn SessionStore>, oneshot::Sender<()>) {
    let mut config = Config::new(0);
    config.host = "127.0.0.1".into();
    config.shutdown_grace = Duration::from_secs(2);
    let bound = McpServer::new(config, Everything::new)
        .bind()
        .await
        .expect("bind a free port");
    let url = format!("http://{}/mcp", bound.local_addr().unwrap());
    let store = bound.store();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(bound.run(async move {
        let _ = stopped.await;
    }));
    (url, store, stop)
}

/// Every tool's schemas are JSON Schema 2020-12, and the official
/// TypeScript SDK lists them without a warning.
/// The `/metrics` scrape after those requests passes `promtool check metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_schemas_and_the_metrics_scrape_are_clean() {
    let (url, _store, stop) = start_server().await;
    let checked = mcp_testkit::tool_schemas::assert_tool_schemas(&url).await;
    assert!(checked > 3, "{checked} tools");
    // The scrape after those requests passes Prometheus' own check.
    let base = url.trim_end_matches("/mcp");
    mcp_testkit::promtool_check_metrics(&mcp_testkit::Scrape::fetch_text(base).await);
    let _ = stop.send(());
}

fn transport(url: String) -> StreamableHttpClientTransport<reqwest::Client> {
    StreamableHttpClientTransport::from_config(StreamableHttpClientTransportConfig::with_uri(url))
}

impl Session {
    async fn start() -> Self {
        let (url, store, stop) = start_server().await;
        let (sender, received) = mpsc::unbounded_channel();
        let transport = transport(url);
        let client = Recorder(sender).serve(transport).await.expect("initialize");
        Self {
            client,
            received,
            store,
            stop,
        }
    }

    /// The session's record in the store, as every replica would read it.
    async fn record(&self) -> SessionRecord {
        // Every user's sessions: the open service names its anonymous
        // caller by address and User-Agent.
        let sessions = self
            .store
            .scan(None, 100)
            .await
            .expect("scan the sessions")
            .sessions;
        assert_eq!(sessions.len(), 1, "one session");
        sessions.into_iter().next().unwrap().record
    }

    /// The next notification within `within`, if any.
    async fn next(&mut self, within: Duration) -> Option<Received> {
        tokio::time::timeout(within, self.received.recv())
            .await
            .ok()
            .flatten()
    }

    async fn call(&self, tool: &'static str) {
        self.client
            .call_tool(CallToolRequestParams::new(tool))
            .await
            .unwrap_or_else(|error| panic!("{tool}: {error}"));
    }

    async fn stop(self) {
        let _ = self.client.cancel().await;
        let _ = self.stop.send(());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_are_told_when_the_watched_resource_changes() {
    let mut session = Session::start().await;
    session
        .client
        .subscribe(SubscribeRequestParams::new(WATCHED_URI))
        .await
        .expect("subscribe");
    assert!(session.record().await.subscriptions.contains(WATCHED_URI));

    let first = session.next(WATCH_INTERVAL * 2).await;
    assert_eq!(first, Some(Received::Updated(WATCHED_URI.to_owned())));
    let before = session
        .client
        .read_resource(rmcp::model::ReadResourceRequestParams::new(WATCHED_URI))
        .await
        .expect("read the watched resource");
    let second = session.next(WATCH_INTERVAL * 2).await;
    assert_eq!(second, Some(Received::Updated(WATCHED_URI.to_owned())));
    let after = session
        .client
        .read_resource(rmcp::model::ReadResourceRequestParams::new(WATCHED_URI))
        .await
        .expect("read the watched resource");
    assert_ne!(before, after, "an update changes the resource's contents");

    session
        .client
        .unsubscribe(UnsubscribeRequestParams::new(WATCHED_URI))
        .await
        .expect("unsubscribe");
    assert!(session.record().await.subscriptions.is_empty());
    // An update already on its way may still arrive; none after that.
    while let Some(late) = session.next(Duration::from_millis(300)).await {
        assert_eq!(late, Received::Updated(WATCHED_URI.to_owned()));
    }
    assert_eq!(
        session
            .next(WATCH_INTERVAL + Duration::from_millis(500))
            .await,
        None
    );
    session.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribing_to_an_unknown_resource_fails() {
    let session = Session::start().await;
    let error = session
        .client
        .subscribe(SubscribeRequestParams::new("test://no-such-resource"))
        .await
        .expect_err("no such resource");
    let ServiceError::McpError(error) = error else {
        panic!("expected a JSON-RPC error, got {error}");
    };
    assert_eq!(error.code, ErrorCode::RESOURCE_NOT_FOUND);
    session.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_level_filters_tool_logs() {
    let mut session = Session::start().await;

    session
        .client
        .set_level(SetLevelRequestParams::new(LoggingLevel::Warning))
        .await
        .expect("set the level to warning");
    assert_eq!(session.record().await.log_level.as_deref(), Some("warning"));
    session.call("test_tool_with_logging").await;
    assert_eq!(session.next(Duration::from_millis(500)).await, None);

    session
        .client
        .set_level(SetLevelRequestParams::new(LoggingLevel::Debug))
        .await
        .expect("set the level to debug");
    session.call("test_tool_with_logging").await;
    let mut logs = Vec::new();
    while logs.len() < 3 {
        match session.next(Duration::from_secs(5)).await {
            Some(Received::Log(text)) => logs.push(text),
            other => panic!("expected a log message, got {other:?} after {logs:?}"),
        }
    }
    assert_eq!(
        logs,
        everything::tools::notifications::LOG_MESSAGES.map(str::to_owned)
    );
    session.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateless_clients_listen_for_resource_updates() {
    let (url, _store, stop) = start_server().await;
    let client = ClientConfig::default()
        .serve_with_lifecycle(
            transport(url),
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .expect("discover");
    let filter = SubscriptionFilter::builder()
        .resource_subscription(WATCHED_URI)
        .resource_subscription("test://no-such-resource")
        .tools_list_changed()
        .build();
    let mut subscription = client.listen(filter).await.expect("listen");
    assert_eq!(
        subscription.acknowledged(),
        &SubscriptionFilter::builder()
            .resource_subscription(WATCHED_URI)
            .build(),
        "only existing resources are accepted"
    );
    for _ in 0..2 {
        let notification = tokio::time::timeout(WATCH_INTERVAL * 2, subscription.next())
            .await
            .expect("an update within two intervals")
            .expect("the subscription stays open")
            .expect("a notification");
        let ServerNotification::ResourceUpdatedNotification(update) = notification else {
            panic!("expected notifications/resources/updated, got {notification:?}");
        };
        assert_eq!(update.params.uri, WATCHED_URI);
    }
    drop(subscription);
    client.cancel().await.expect("close the client");
    let _ = stop.send(());
}
