//! The hub's admin API: its upstream sessions and its upstreams' health,
//! for administrators (`JWT_ADMIN_ROLES` or `ADMIN_API_KEYS`, as the
//! library's `/admin`); anyone else gets `401` or `403`. Errors are JSON
//! `{"error", "error_description"}`, as the library's.
//!
//! | method | path | does |
//! |---|---|---|
//! | `GET` | `/api/admin/upstream-sessions?server=<name>&limit=<n>&cursor=<c>` | `[{serverName, contextKey, sessionId, ttl}]`, `limit` (1..=1000, default 100) per page, paged with `SCAN`: the `x-next-cursor` header continues |
//! | `DELETE` | `/api/admin/upstream-sessions/{serverName}/{contextKey}` | deletes the stored session and ends it upstream: the next request re-establishes it; `204`, or `404` when there is none |
//! | `GET` | `/api/admin/upstreams` | each upstream's name, URL, transport, sharing, and whether it answers now (`reachable`, `status`, `latencyMs`) |

use std::sync::Arc;

use axum::{
    Extension, Json, Router,
    extract::{Path, Query, State},
    http::{HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::{delete, get},
};
use futures::future::join_all;
use mcp_session::Caller;
use serde::Deserialize;
use serde_json::json;

use crate::{context_key::ContextKey, hub::Hub};

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

fn error(status: StatusCode, code: &str, description: impl Into<String>) -> Response {
    (
        status,
        Json(json!({ "error": code, "error_description": description.into() })),
    )
        .into_response()
}

/// `None` for an admin, else the `403` that refuses the caller.
fn refuse_non_admin(caller: &Caller) -> Option<Response> {
    if caller.is_admin {
        None
    } else {
        Some(error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "admin rights required (JWT_ADMIN_ROLES or ADMIN_API_KEYS)",
        ))
    }
}

fn unavailable(error_text: &str) -> Response {
    tracing::error!(
        error = error_text,
        "hub admin API: upstream session store failure"
    );
    if error_text.contains("cursor") {
        return error(StatusCode::BAD_REQUEST, "invalid_cursor", error_text);
    }
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        "upstream session store unavailable, retry shortly",
    )
}

/// The admin routes of `hub`, to be served behind authentication.
pub fn routes(hub: Arc<Hub>) -> Router {
    Router::new()
        .route("/api/admin/upstream-sessions", get(list_sessions))
        .route(
            "/api/admin/upstream-sessions/{server}/{context}",
            delete(delete_session),
        )
        .route("/api/admin/upstreams", get(upstreams))
        .with_state(hub)
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    server: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

async fn list_sessions(
    State(hub): State<Arc<Hub>>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<ListQuery>,
) -> Response {
    if let Some(refused) = refuse_non_admin(&caller) {
        return refused;
    }
    if let Some(server) = &query.server
        && !hub.config.servers.contains_key(server)
    {
        return error(
            StatusCode::NOT_FOUND,
            "unknown_server",
            format!("no upstream named `{server}`"),
        );
    }
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_limit",
            format!("limit must be 1..={MAX_LIMIT}"),
        );
    }
    match hub
        .upstreams
        .store()
        .list(query.server.as_deref(), query.cursor.as_deref(), limit)
        .await
    {
        Ok(page) => {
            let mut response = Json(page.sessions).into_response();
            if let Some(next) = page
                .next_cursor
                .and_then(|c| HeaderValue::from_str(&c).ok())
            {
                response.headers_mut().insert("x-next-cursor", next);
            }
            response
        }
        Err(failure) => unavailable(&failure.to_string()),
    }
}

async fn delete_session(
    State(hub): State<Arc<Hub>>,
    Extension(caller): Extension<Caller>,
    Path((server, context)): Path<(String, String)>,
) -> Response {
    if let Some(refused) = refuse_non_admin(&caller) {
        return refused;
    }
    let Some(upstream) = hub.config.servers.get(&server) else {
        return error(
            StatusCode::NOT_FOUND,
            "unknown_server",
            format!("no upstream named `{server}`"),
        );
    };
    let Some(context) = ContextKey::parse(&context) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_context_key",
            "a context key is `shared`, `u-<32 hex>` or `s-<32 hex>`",
        );
    };
    match hub.upstreams.end_session(upstream, &context).await {
        Ok(Some(_)) => {
            tracing::info!(upstream = %server, context_key = %context, admin = caller.user_hash.short(), "upstream session deleted by an admin");
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no stored upstream session for this server and context key",
        ),
        Err(failure) => unavailable(&failure.to_string()),
    }
}

async fn upstreams(State(hub): State<Arc<Hub>>, Extension(caller): Extension<Caller>) -> Response {
    if let Some(refused) = refuse_non_admin(&caller) {
        return refused;
    }
    let probes = join_all(hub.config.servers.values().map(|upstream| {
        let hub = hub.clone();
        async move {
            let health = hub.upstreams.probe(upstream).await;
            let mut url = upstream.url.clone();
            // Never show credentials written into the URL.
            let _ = url.set_password(None);
            let _ = url.set_username("");
            json!({
                "name": upstream.name,
                "url": url.as_str(),
                "transport": upstream.transport.as_str(),
                "sharing": upstream.sharing.as_str(),
                "reachable": health.reachable,
                "status": health.status,
                "latencyMs": health.latency.as_millis() as u64,
                "error": health.error,
            })
        }
    }))
    .await;
    Json(probes).into_response()
}
