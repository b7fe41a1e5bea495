//! Kubernetes probes.
//!
//! - `GET /healthz` (liveness): `200` while the process serves HTTP at all,
//!   with the service, version, replica and number of open SSE streams.
//! - `GET /readyz` (readiness): `200` when the session store answers, the
//!   replica has joined its fleet's Redis channels (with Redis) and is not
//!   shutting down, and every readiness check the service added
//!   ([`McpServer::with_readiness_check`](crate::server::McpServer::with_readiness_check))
//!   passes, else `503`; the body says which check failed.

use std::{future::Future, pin::Pin, sync::Arc};

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value, json};

use crate::server::Shared;

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

/// `GET /healthz`: `200 {"status":"ok"}`.
pub(crate) async fn healthz(State(shared): State<Arc<Shared>>) -> Response {
    Json(json!({
        "status": "ok",
        "service": shared.service_name,
        "version": shared.service_version,
        "replica": shared.config.replica_id,
        "open_sse_streams": shared.locals.sse.len(),
    }))
    .into_response()
}

/// `GET /readyz`: `200` when ready, `503` with the failing check otherwise.
pub(crate) async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    if shared.lifecycle.is_draining() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "shutting_down" })),
        )
            .into_response();
    }
    let backend = shared.store.backend();
    if let Some(bus) = &shared.bus
        && !bus.is_joined()
    {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "not_ready",
                "fleet": { "status": "not subscribed to the fleet channels yet" },
            })),
        )
            .into_response();
    }
    let (store, checks) = tokio::join!(
        shared.store.ping(),
        futures::future::join_all(
            shared
                .readiness
                .iter()
                .map(|check| async move { (check.name().to_owned(), check.run().await) })
        )
    );
    let mut ready = store.is_ok();
    let store = match store {
        Ok(()) => json!({ "backend": backend, "status": "ok" }),
        Err(error) => {
            json!({ "backend": backend, "status": "unavailable", "error": error.to_string() })
        }
    };
    let mut body = Map::new();
    body.insert("store".into(), store);
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
