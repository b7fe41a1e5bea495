//! The client-session API's handlers: each reads the caller (authenticated
//! by `mcp-session`) and its body or query, loads the caller's client
//! session from the store (renewing its TTL) and sends the request through
//! the hub's upstream sessions (both in the `requests` module), and
//! answers. Nothing is kept in this process between requests: any hub
//! replica serves any request.

use std::{collections::BTreeMap, sync::Arc};

use axum::{
    Extension, Json,
    body::Bytes,
    extract::{Path, Query, State, rejection::BytesRejection, rejection::QueryRejection},
    http::StatusCode,
};
use mcp_session::{Caller, store::now_ms};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::{
    ClientSessions,
    connections::name_is_valid,
    error::{ApiError, ErrorBody},
    model::{
        CallToolRequest, ClientSession, ClientSessionList, ConnectRequest, Connection,
        ConnectionKind, DisconnectRequest, GetPromptRequest, ListQuery, PromptList,
        ReadResourceRequest, ResourceList, Server, ServerList, ToolList,
    },
    requests::Asker,
    store::{ClientSessionRecord, StoredConnection},
};
use crate::{
    catalog::ListKind,
    metrics::ClientSessionEvent,
    upstream::{CallError, http::NoRelay},
};

/// Longest tool, prompt or resource URI accepted.
const MAX_NAME: usize = 4096;

fn rfc3339(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A JSON body as `T`, or the error that says what is wrong with it.
fn parse<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::payload_too_large()
        } else {
            ApiError::invalid(rejection.body_text())
        }
    })?;
    serde_json::from_slice(&body).map_err(|error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the body is not the JSON expected: {error}"),
        )
    })
}

fn view(record: &ClientSessionRecord) -> ClientSession {
    ClientSession {
        id: record.id.clone(),
        created_at: rfc3339(record.created_at_ms),
        expires_at: rfc3339(record.expires_at_ms),
        connections: record.connections.values().map(connection_view).collect(),
    }
}

fn connection_view(stored: &StoredConnection) -> Connection {
    Connection {
        server: stored.server.clone(),
        kind: if stored.url.is_some() {
            ConnectionKind::Url
        } else {
            ConnectionKind::Configured
        },
        url: stored.url.clone(),
        transport: stored
            .url
            .as_ref()
            .map(|_| stored.transport.unwrap_or_default()),
        connected_at: rfc3339(stored.connected_at_ms),
        credential_headers: stored.header_names.clone(),
    }
}

fn check_length(what: &str, text: &str, max: usize) -> Result<(), ApiError> {
    if text.is_empty() || text.len() > max {
        return Err(ApiError::invalid(format!(
            "`{what}` must be 1 to {max} bytes"
        )));
    }
    Ok(())
}

/// The configured servers a client session may connect by name.
#[utoipa::path(get, path = "/api/servers", tag = "servers",
    responses((status = 200, body = ServerList)))]
pub async fn list_servers(State(state): State<Arc<ClientSessions>>) -> Json<ServerList> {
    Json(ServerList {
        servers: state
            .hub
            .config
            .servers
            .values()
            .map(|upstream| Server {
                name: upstream.name.clone(),
                description: upstream.description.clone(),
                transport: upstream.transport.as_str().to_owned(),
            })
            .collect(),
    })
}

/// Creates a client session for the caller.
#[utoipa::path(post, path = "/api/client-sessions", tag = "client sessions",
    responses((status = 201, body = ClientSession),
              (status = 409, description = "the caller has `max_per_user` client sessions already", body = ErrorBody),
              (status = 503, body = ErrorBody)))]
pub async fn create(
    State(state): State<Arc<ClientSessions>>,
    Extension(caller): Extension<Caller>,
) -> Result<(StatusCode, Json<ClientSession>), ApiError> {
    let id = format!("cs_{}", uuid::Uuid::new_v4().simple());
    let now = now_ms();
    let settings = state.settings();
    let created = state
        .store
        .create(
            &caller.user_hash.to_string(),
            &id,
            now,
            settings.ttl,
            settings.max_per_user,
        )
        .await
        .map_err(|e| ApiError::store(&e))?;
    if !created {
        state
            .metrics
            .client_session(ClientSessionEvent::LimitRefused);
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "too_many_client_sessions",
            format!(
                "you have {} client sessions already: delete one (DELETE /api/client-sessions/{{id}}) or let one expire",
                settings.max_per_user
            ),
        ));
    }
    let record = ClientSessionRecord {
        id,
        created_at_ms: now,
        expires_at_ms: now + settings.ttl.as_millis() as u64,
        connections: BTreeMap::new(),
    };
    state.metrics.client_session(ClientSessionEvent::Created);
    Ok((StatusCode::CREATED, Json(view(&record))))
}

/// The caller's client sessions.
#[utoipa::path(get, path = "/api/client-sessions", tag = "client sessions",
    responses((status = 200, body = ClientSessionList),
              (status = 503, body = ErrorBody)))]
pub async fn list(
    State(state): State<Arc<ClientSessions>>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<ClientSessionList>, ApiError> {
    let mut records = state
        .store
        .list(&caller.user_hash.to_string(), now_ms())
        .await
        .map_err(|e| ApiError::store(&e))?;
    records.sort_by_key(|record| record.created_at_ms);
    Ok(Json(ClientSessionList {
        client_sessions: records.iter().map(view).collect(),
    }))
}

/// One of the caller's client sessions (its TTL renewed).
#[utoipa::path(get, path = "/api/client-sessions/{id}", tag = "client sessions",
    params(("id" = String, Path, description = "the client session's id")),
    responses((status = 200, body = ClientSession), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn get_one(
    State(state): State<Arc<ClientSessions>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<ClientSession>, ApiError> {
    Ok(Json(view(&state.load(&caller, &id).await?)))
}

/// Deletes one of the caller's client sessions (and the upstream sessions
/// that were its own: servers shared per session).
#[utoipa::path(delete, path = "/api/client-sessions/{id}", tag = "client sessions",
    params(("id" = String, Path, description = "the client session's id")),
    responses((status = 204, description = "deleted"), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn delete_one(
    State(state): State<Arc<ClientSessions>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let record = state.load(&caller, &id).await?;
    let deleted = state
        .store
        .delete(&caller.user_hash.to_string(), &id)
        .await
        .map_err(|e| ApiError::store(&e))?;
    if !deleted {
        return Err(ApiError::no_client_session());
    }
    for connection in record.connections.values() {
        state.end_own_session(&caller, &id, connection);
    }
    state.metrics.client_session(ClientSessionEvent::Deleted);
    Ok(StatusCode::NO_CONTENT)
}

/// Connects a server in a client session: a configured one by name, or a
/// URL the operator allows. The hub establishes (or reuses) the upstream
/// session now, so a server that cannot be reached is refused here.
#[utoipa::path(post, path = "/api/client-sessions/{id}/connect", tag = "connections",
    params(("id" = String, Path, description = "the client session's id")),
    request_body = ConnectRequest,
    responses((status = 200, body = Connection),
              (status = 400, description = "malformed body, bad name, URL or headers", body = ErrorBody),
              (status = 403, description = "a URL outside the allow-list, a non-public address, or a redirect", body = ErrorBody),
              (status = 404, description = "no such client session, or no configured server of that name", body = ErrorBody),
              (status = 409, description = "a configured server's name used for a URL, or too many connections", body = ErrorBody),
              (status = 413, body = ErrorBody),
              (status = 502, description = "the server could not be reached", body = ErrorBody),
              (status = 503, body = ErrorBody)))]
pub async fn connect(
    State(state): State<Arc<ClientSessions>>,
    asker: Asker,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Connection>, ApiError> {
    let request: ConnectRequest = parse(body)?;
    let caller = &asker.caller;
    if !name_is_valid(&request.server) {
        return Err(ApiError::invalid(
            "`server` is [A-Za-z0-9_-], 1 to 64 characters",
        ));
    }
    let record = state.load(caller, &id).await?;
    let settings = state.settings();
    if !record.connections.contains_key(&request.server)
        && record.connections.len() >= settings.max_connections
    {
        state
            .metrics
            .client_session(ClientSessionEvent::LimitRefused);
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "too_many_connections",
            format!(
                "this client session has {} servers connected already: disconnect one first",
                settings.max_connections
            ),
        ));
    }
    let stored = state
        .prepare(caller, &record.id, request)
        .await
        .inspect_err(|error| {
            if error.code() == "destination_forbidden" {
                state
                    .metrics
                    .client_session(ClientSessionEvent::DestinationRefused);
            }
        })?;
    // Establish (or reuse) the upstream session: a server that cannot be
    // reached is refused now rather than at the first call.
    let resolved = state.resolve(&asker, &record.id, &stored)?;
    let route = resolved.route(&state.hub, caller, &record.id);
    // `ping` has no place in 2026-07-28 (no session to keep alive): a
    // stateless server is asked what it is instead.
    let probe = if route.upstream.transport == crate::config::UpstreamTransport::Stateless {
        "server/discover"
    } else {
        "ping"
    };
    match state
        .hub
        .forward(
            &route,
            probe,
            json!({}),
            Arc::new(NoRelay),
            &CancellationToken::new(),
        )
        .await
    {
        // Answered, even with an error (a server without `ping`): the
        // session is established, the server reachable.
        Ok(_) | Err(CallError::Rpc { .. }) => {}
        Err(error) => {
            let error = ApiError::from(error);
            if error.code() == "destination_forbidden" {
                // A redirect, never followed.
                state
                    .metrics
                    .client_session(ClientSessionEvent::DestinationRefused);
            }
            return Err(error);
        }
    }
    let written = state
        .store
        .put_connection(
            &caller.user_hash.to_string(),
            &record.id,
            &stored,
            settings.ttl,
        )
        .await
        .map_err(|e| ApiError::store(&e))?;
    if !written {
        return Err(ApiError::no_client_session());
    }
    // The URL's origin only: its path or query could carry a secret.
    let origin = stored
        .url
        .as_deref()
        .and_then(|url| url::Url::parse(url).ok())
        .map(|url| url.origin().ascii_serialization())
        .unwrap_or_default();
    state.metrics.client_session(ClientSessionEvent::Connected);
    tracing::info!(client_session = %record.id, server = %stored.server, origin, credential_headers = stored.header_names.len(), "server connected in a client session");
    Ok(Json(connection_view(&stored)))
}

/// Disconnects a server from a client session.
#[utoipa::path(post, path = "/api/client-sessions/{id}/disconnect", tag = "connections",
    params(("id" = String, Path, description = "the client session's id")),
    request_body = DisconnectRequest,
    responses((status = 204, description = "disconnected"),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 413, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn disconnect(
    State(state): State<Arc<ClientSessions>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let request: DisconnectRequest = parse(body)?;
    let record = state.load(&caller, &id).await?;
    let connection = ClientSessions::connection(&record, &request.server)?;
    state
        .store
        .remove_connection(&caller.user_hash.to_string(), &id, &request.server)
        .await
        .map_err(|e| ApiError::store(&e))?;
    state.end_own_session(&caller, &id, connection);
    state
        .metrics
        .client_session(ClientSessionEvent::Disconnected);
    Ok(StatusCode::NO_CONTENT)
}

/// The tools of the connected servers (MCP `tools/list`, every page).
#[utoipa::path(get, path = "/api/client-sessions/{id}/tools", tag = "tools",
    params(("id" = String, Path, description = "the client session's id"), ListQuery),
    responses((status = 200, body = ToolList), (status = 404, body = ErrorBody),
              (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn tools(
    State(state): State<Arc<ClientSessions>>,
    asker: Asker,
    Path(id): Path<String>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<ToolList>, ApiError> {
    let (tools, unavailable) = state.list(&asker, &id, query, ListKind::Tools).await?;
    Ok(Json(ToolList { tools, unavailable }))
}

/// Calls a tool (MCP `tools/call`): its `CallToolResult`, `isError` and all.
#[utoipa::path(post, path = "/api/client-sessions/{id}/tools", tag = "tools",
    params(("id" = String, Path, description = "the client session's id")),
    request_body = CallToolRequest,
    responses((status = 200, description = "the MCP CallToolResult", body = Object),
              (status = 400, body = ErrorBody),
              (status = 404, description = "no such client session, server not connected, or unknown tool", body = ErrorBody),
              (status = 413, body = ErrorBody),
              (status = 422, description = "the server refused the arguments", body = ErrorBody),
              (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn call_tool(
    State(state): State<Arc<ClientSessions>>,
    asker: Asker,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let request: CallToolRequest = parse(body)?;
    check_length("name", &request.name, MAX_NAME)?;
    let params = json!({"name": request.name, "arguments": request.arguments.unwrap_or_default()});
    state
        .forward(
            &asker,
            &id,
            &request.server,
            Some((ListKind::Tools, &request.name)),
            "tools/call",
            params,
        )
        .await
}

/// The prompts of the connected servers (MCP `prompts/list`).
#[utoipa::path(get, path = "/api/client-sessions/{id}/prompts", tag = "prompts",
    params(("id" = String, Path, description = "the client session's id"), ListQuery),
    responses((status = 200, body = PromptList), (status = 404, body = ErrorBody),
              (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn prompts(
    State(state): State<Arc<ClientSessions>>,
    asker: Asker,
    Path(id): Path<String>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<PromptList>, ApiError> {
    let (prompts, unavailable) = state.list(&asker, &id, query, ListKind::Prompts).await?;
    Ok(Json(PromptList {
        prompts,
        unavailable,
    }))
}

/// Gets a prompt (MCP `prompts/get`): its `GetPromptResult`.
#[utoipa::path(post, path = "/api/client-sessions/{id}/prompts", tag = "prompts",
    params(("id" = String, Path, description = "the client session's id")),
    request_body = GetPromptRequest,
    responses((status = 200, description = "the MCP GetPromptResult", body = Object),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn get_prompt(
    State(state): State<Arc<ClientSessions>>,
    asker: Asker,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let request: GetPromptRequest = parse(body)?;
    check_length("name", &request.name, MAX_NAME)?;
    let params = json!({"name": request.name, "arguments": request.arguments.unwrap_or_default()});
    state
        .forward(
            &asker,
            &id,
            &request.server,
            Some((ListKind::Prompts, &request.name)),
            "prompts/get",
            params,
        )
        .await
}

/// The resources of the connected servers (MCP `resources/list`).
#[utoipa::path(get, path = "/api/client-sessions/{id}/resources", tag = "resources",
    params(("id" = String, Path, description = "the client session's id"), ListQuery),
    responses((status = 200, body = ResourceList), (status = 404, body = ErrorBody),
              (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn resources(
    State(state): State<Arc<ClientSessions>>,
    asker: Asker,
    Path(id): Path<String>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<ResourceList>, ApiError> {
    let (resources, unavailable) = state.list(&asker, &id, query, ListKind::Resources).await?;
    Ok(Json(ResourceList {
        resources,
        unavailable,
    }))
}

/// Reads a resource (MCP `resources/read`): its `ReadResourceResult`.
#[utoipa::path(post, path = "/api/client-sessions/{id}/resources", tag = "resources",
    params(("id" = String, Path, description = "the client session's id")),
    request_body = ReadResourceRequest,
    responses((status = 200, description = "the MCP ReadResourceResult", body = Object),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn read_resource(
    State(state): State<Arc<ClientSessions>>,
    asker: Asker,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let request: ReadResourceRequest = parse(body)?;
    check_length("uri", &request.uri, MAX_NAME)?;
    state
        .forward(
            &asker,
            &id,
            &request.server,
            None,
            "resources/read",
            json!({"uri": request.uri}),
        )
        .await
}
