//! Kubernetes probes.
//!
//! - `GET /healthz` (liveness): `200` while the process serves HTTP at all,
//!   with the service, version, replica and number of open SSE streams.
//! - `GET /readyz` (readiness): `200` when the session store answers, the
//!   replica has joined its fleet's Redis channels (with Redis) and is not
//!   shutting down, and every readiness check the service added
//!   ([`McpServer::with_readiness_check`](crate::McpServer::with_readiness_check))
//!   passes, else `503`; the body says which check failed.

use std::{future::Future, pin::Pin, sync::Arc};

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::{Map, Value, json};

use crate::{fleet::Fleet, service_info::ServiceInfo, shutdown::Lifecycle};

type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// A named check of something the service needs to serve (its database, an
/// upstream API key), run by `GET /readyz`. `Err` carries a message for the
/// operator, shown in the probe's body: no secrets.
#[derive(Clone)]
pub struct ReadinessCheck {
    name: String,
    check: Arc<dyn Fn() -> CheckFuture + Send + Sync>,
}

impl ReadinessCheck {
    /// A check called `name` that runs `check`.
    pub fn new<F, Fut>(name: impl Into<String>, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        Self {
            name: name.into(),
            check: Arc::new(move || Box::pin(check())),
        }
    }

    /// The check's name, the key of its result in `/readyz`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs the check once.
    ///
    /// # Errors
    /// The check's message when it fails.
    pub async fn run(&self) -> Result<(), String> {
        (self.check)().await
    }
}

/// What the probes look at.
pub(crate) struct HealthState {
    pub(crate) service: Arc<ServiceInfo>,
    pub(crate) fleet: Fleet,
    pub(crate) lifecycle: Arc<Lifecycle>,
    /// The service's own readiness checks (its database, its upstream API).
    pub(crate) readiness: Vec<ReadinessCheck>,
}

/// `GET /healthz` and `GET /readyz`.
pub(crate) fn routes(state: HealthState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(Arc::new(state))
}

/// `GET /healthz`: `200 {"status":"ok"}`.
async fn healthz(State(health): State<Arc<HealthState>>) -> Response {
    Json(json!({
        "status": "ok",
        "service": health.service.name,
        "version": health.service.version,
        "replica": health.service.replica_id,
        "open_sse_streams": health.fleet.sse_streams().len(),
    }))
    .into_response()
}

/// `GET /readyz`: `200` when ready, `503` with the failing check otherwise.
async fn readyz(State(health): State<Arc<HealthState>>) -> Response {
    if health.lifecycle.is_draining() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "shutting_down" })),
        )
            .into_response();
    }
    let store = health.fleet.store();
    let backend = store.backend();
    let joined = health.fleet.is_joined();
    let (store, checks) = tokio::join!(
        store.ping(),
        futures::future::join_all(
            health
                .readiness
                .iter()
                .map(|check| async move { (check.name().to_owned(), check.run().await) })
        )
    );
    let mut ready = joined && store.is_ok();
    let store = match store {
        Ok(()) => json!({ "backend": backend, "status": "ok" }),
        Err(error) => {
            json!({ "backend": backend, "status": "unavailable", "error": error.to_string() })
        }
    };
    let mut body = Map::new();
    body.insert("store".into(), store);
    if !joined {
        body.insert(
            "fleet".into(),
            json!({ "status": "not subscribed to the fleet channels (subscribing)" }),
        );
    }
    if !checks.is_empty() {
        let mut results = Map::new();
        for (name, result) in checks {
            let value = match result {
                Ok(()) => json!({ "status": "ok" }),
                Err(error) => {
                    ready = false;
                    json!({ "status": "failing", "error": error })
                }
            };
            results.insert(name, value);
        }
        body.insert("checks".into(), Value::Object(results));
    }
    let status = if ready { "ready" } else { "not_ready" };
    body.insert("status".into(), status.into());
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(Value::Object(body))).into_response()
}
