//! The admin HTTP API: every session of the service, for administrators.
//!
//! Callers authenticate like MCP clients (a JWT carrying one of
//! `JWT_ADMIN_ROLES`, or an API key listed in `ADMIN_API_KEYS`); anyone else
//! gets `401` (no or bad credentials) or `403` (not an admin). Answers are
//! JSON; errors are `{"error": ..., "error_description": ...}`.
//!
//! | method | path | does |
//! |---|---|---|
//! | `GET` | `/admin/sessions?user=<hash>&limit=<n>&cursor=<c>` | lists sessions, `limit` (1..=1000, default 100) per page; `next_cursor` continues; `user` filters by owner |
//! | `GET` | `/admin/sessions/{id}` | one session with its TTL (`?user=<hash>` makes it one lookup instead of a scan) |
//! | `DELETE` | `/admin/sessions/{id}` | ends the session on every replica at once |
//! | `GET` | `/admin/users/{hash}/sessions` | a user's sessions |
//! | `DELETE` | `/admin/users/{hash}/sessions` | ends all of a user's sessions |
//! | `GET` | `/admin/analytics` | counts by transport, protocol version, replica, users, ages |
//!
//! Listing pages through the store with Redis `SCAN` (never `KEYS`); a page
//! may hold a few more or fewer sessions than `limit`. Reads do not renew a
//! session's TTL. A deletion removes the record and announces
//! `SessionClosed` on the fleet bus (as `DELETE /mcp` does): every replica
//! drops the session's worker and closes its streams at once.

use std::{sync::Arc, time::Duration};

use axum::{
    Extension, Json, Router,
    extract::{FromRequestParts, Path, Query, State},
    http::{StatusCode, request::Parts},
    response::{IntoResponse, Response},
    routing::get,
};
use serde::Deserialize;
use serde_json::json;

use crate::{
    fleet::Fleet,
    identity::{Caller, UserHash},
    store::{StoreError, StoredSession},
    tools::{analytics::analyze, views::SessionSummary},
};

/// Default and largest page size of the session list.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

fn error(status: StatusCode, code: &str, description: impl Into<String>) -> Response {
    (
        status,
        Json(json!({ "error": code, "error_description": description.into() })),
    )
        .into_response()
}

fn store_error(failure: &StoreError) -> Response {
    tracing::error!(error = %failure, "admin API: session store failure");
    match failure {
        StoreError::Corrupt(message) if message.contains("cursor") => {
            error(StatusCode::BAD_REQUEST, "invalid_cursor", message.clone())
        }
        _ => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "session store unavailable, retry shortly",
        ),
    }
}

fn forbidden() -> Response {
    error(
        StatusCode::FORBIDDEN,
        "forbidden",
        "admin rights required (JWT_ADMIN_ROLES or ADMIN_API_KEYS)",
    )
}

/// A user hash from a path or query, or the `400` that refuses it (boxed:
/// a response is large and the success path is the common one).
fn parse_user(text: &str) -> Result<UserHash, Box<Response>> {
    UserHash::parse(text).ok_or_else(|| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            "invalid_user",
            "user must be a 64-digit hex user hash",
        ))
    })
}

/// The user a `/admin/users/{user}/…` route names, extracted for an admin:
/// `403` for any other caller, `400` for a malformed user hash.
struct TargetUser(UserHash);

impl<S: Send + Sync> FromRequestParts<S> for TargetUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let admin = parts
            .extensions
            .get::<Caller>()
            .is_some_and(|caller| caller.is_admin);
        if !admin {
            return Err(forbidden());
        }
        let Path(user) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        parse_user(&user).map(Self).map_err(|response| *response)
    }
}

/// Query of the session list.
#[derive(Debug, Deserialize)]
struct ListQuery {
    user: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

/// Query naming a session's owner.
#[derive(Debug, Deserialize)]
struct OwnerQuery {
    user: Option<String>,
}

/// What the admin routes need: the fleet (its store, and what this replica
/// holds of a deleted session) and the sessions' time to live.
pub(crate) struct AdminState {
    pub(crate) fleet: Fleet,
    pub(crate) session_ttl: Duration,
}

/// The admin routes, to be served behind authentication.
pub(crate) fn routes(state: AdminState) -> Router {
    Router::new()
        .route("/admin/sessions", get(list_sessions))
        .route(
            "/admin/sessions/{id}",
            get(show_session).delete(delete_session),
        )
        .route(
            "/admin/users/{user}/sessions",
            get(list_user_sessions).delete(delete_user_sessions),
        )
        .route("/admin/analytics", get(analytics))
        .with_state(Arc::new(state))
}

fn summaries(admin: &AdminState, sessions: &[StoredSession]) -> Vec<SessionSummary> {
    sessions
        .iter()
        .map(|session| SessionSummary::of(session, admin.session_ttl))
        .collect()
}

async fn list_sessions(
    State(admin): State<Arc<AdminState>>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<ListQuery>,
) -> Response {
    if !caller.is_admin {
        return forbidden();
    }
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    if let Some(user) = &query.user {
        let user = match parse_user(user) {
            Ok(user) => user,
            Err(response) => return *response,
        };
        // One user's sessions come from their index, paged by offset.
        let offset = match query.cursor.as_deref().map(str::parse::<usize>) {
            None => 0,
            Some(Ok(offset)) => offset,
            Some(Err(_)) => {
                return error(StatusCode::BAD_REQUEST, "invalid_cursor", "not a cursor");
            }
        };
        return match admin.fleet.store().list(&user).await {
            Ok(sessions) => {
                let page: Vec<_> = sessions.iter().skip(offset).take(limit).cloned().collect();
                let next = (offset + page.len() < sessions.len())
                    .then(|| (offset + page.len()).to_string());
                Json(json!({ "sessions": summaries(&admin, &page), "next_cursor": next }))
                    .into_response()
            }
            Err(failure) => store_error(&failure),
        };
    }
    match admin
        .fleet
        .store()
        .scan(query.cursor.as_deref(), limit)
        .await
    {
        Ok(page) => Json(json!({
            "sessions": summaries(&admin, &page.sessions),
            "next_cursor": page.next_cursor,
        }))
        .into_response(),
        Err(failure) => store_error(&failure),
    }
}

/// The live session `id` an admin names: with `?user=`, read under that
/// user (without renewing it); without, found by its id alone. `403` for any
/// other caller, `400` for a malformed user hash, `503` when the store
/// fails.
async fn lookup(
    admin: &AdminState,
    caller: &Caller,
    id: &str,
    user: Option<&str>,
) -> Result<Option<StoredSession>, Box<Response>> {
    if !caller.is_admin {
        return Err(Box::new(forbidden()));
    }
    let found = match user {
        Some(user) => admin.fleet.store().peek(&parse_user(user)?, id).await,
        None => admin.fleet.store().find(id).await,
    };
    found.map_err(|failure| Box::new(store_error(&failure)))
}

async fn show_session(
    State(admin): State<Arc<AdminState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Query(query): Query<OwnerQuery>,
) -> Response {
    match lookup(&admin, &caller, &id, query.user.as_deref()).await {
        Ok(Some(session)) => {
            Json(json!({ "session": SessionSummary::of(&session, admin.session_ttl) }))
                .into_response()
        }
        Ok(None) => error(StatusCode::NOT_FOUND, "not_found", "no such live session"),
        Err(response) => *response,
    }
}

async fn delete_session(
    State(admin): State<Arc<AdminState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Query(query): Query<OwnerQuery>,
) -> Response {
    let owner = match lookup(&admin, &caller, &id, query.user.as_deref()).await {
        Ok(Some(session)) => session.record.user_hash,
        Ok(None) => return error(StatusCode::NOT_FOUND, "not_found", "no such live session"),
        Err(response) => return *response,
    };
    match admin.fleet.store().delete(&owner, &id).await {
        Ok(true) => {
            admin.fleet.session_deleted(&id).await;
            tracing::info!(session_id = %id, user = owner.short(), admin = caller.user_hash.short(), "session deleted by an admin");
            Json(json!({ "deleted": [id] })).into_response()
        }
        Ok(false) => error(StatusCode::NOT_FOUND, "not_found", "no such live session"),
        Err(failure) => store_error(&failure),
    }
}

async fn list_user_sessions(
    State(admin): State<Arc<AdminState>>,
    TargetUser(user): TargetUser,
) -> Response {
    match admin.fleet.store().list(&user).await {
        Ok(sessions) => {
            Json(json!({ "sessions": summaries(&admin, &sessions), "next_cursor": null }))
                .into_response()
        }
        Err(failure) => store_error(&failure),
    }
}

async fn delete_user_sessions(
    State(admin): State<Arc<AdminState>>,
    Extension(caller): Extension<Caller>,
    TargetUser(user): TargetUser,
) -> Response {
    match admin.fleet.store().delete_user(&user).await {
        Ok(deleted) => {
            for id in &deleted {
                admin.fleet.session_deleted(id).await;
            }
            tracing::info!(
                user = user.short(),
                sessions = deleted.len(),
                admin = caller.user_hash.short(),
                "user's sessions deleted by an admin"
            );
            Json(json!({ "deleted": deleted })).into_response()
        }
        Err(failure) => store_error(&failure),
    }
}

async fn analytics(
    State(admin): State<Arc<AdminState>>,
    Extension(caller): Extension<Caller>,
) -> Response {
    if !caller.is_admin {
        return forbidden();
    }
    match analyze(admin.fleet.store().as_ref()).await {
        Ok(analytics) => Json(analytics).into_response(),
        Err(failure) => store_error(&failure),
    }
}
