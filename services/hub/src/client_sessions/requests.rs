//! What every request of the client-session API does before its own part:
//! load the caller's client session (renewing its TTL; `404` for any id
//! that is not the caller's), find a connection in it, and send a request
//! through the hub's upstream session of that connection (a list, or a
//! call checked against the list). The handlers ([`super::api`]) only parse
//! and answer.

use std::sync::Arc;

use axum::{
    Json,
    extract::{FromRequestParts, Query, rejection::QueryRejection},
    http::{HeaderMap, StatusCode, request::Parts},
};
use futures::future::join_all;
use mcp_session::{Caller, store::now_ms};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::{
    ClientSessions,
    error::ApiError,
    model::{ListQuery, Unavailable},
    store::{ClientSessionRecord, StoredConnection},
};
use crate::{
    catalog::ListKind,
    upstream::{CallError, http::NoRelay},
};

/// Whether `id` looks like an id the hub issues (anything else names no
/// session, without asking the store).
pub(super) fn id_is_wellformed(id: &str) -> bool {
    id.strip_prefix("cs_")
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Who asks: the caller `mcp-session` authenticated, and the request's
/// headers (a configured server's `forward_headers` are taken from them).
pub struct Asker {
    /// The authenticated caller.
    pub caller: Caller,
    /// The request's headers.
    pub headers: HeaderMap,
}

impl<S: Send + Sync> FromRequestParts<S> for Asker {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let caller = parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the request was not authenticated (the API is served without mcp-session's authentication)",
            )
        })?;
        Ok(Self {
            caller,
            headers: parts.headers.clone(),
        })
    }
}

impl ClientSessions {
    /// The caller's client session `id`, renewed; `404` for any other.
    pub(super) async fn load(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<ClientSessionRecord, ApiError> {
        if !id_is_wellformed(id) {
            return Err(ApiError::no_client_session());
        }
        self.store
            .load(
                &caller.user_hash.to_string(),
                id,
                now_ms(),
                self.settings().ttl,
            )
            .await
            .map_err(|e| ApiError::store(&e))?
            .ok_or_else(ApiError::no_client_session)
    }

    /// The connection named `server` in `record`, or `404 not_connected`.
    pub(super) fn connection<'r>(
        record: &'r ClientSessionRecord,
        server: &str,
    ) -> Result<&'r StoredConnection, ApiError> {
        record.connections.get(server).ok_or_else(|| {
            ApiError::not_found(
                "not_connected",
                format!(
                    "`{}` is not connected in this client session: POST …/connect first",
                    server.chars().take(64).collect::<String>()
                ),
            )
        })
    }

    /// The items of `kind` of one connected server or of all, each with
    /// its `server`; servers that do not answer are listed apart when
    /// listing all, and fail the request when asked for alone.
    pub(super) async fn list(
        &self,
        asker: &Asker,
        id: &str,
        query: Result<Query<ListQuery>, QueryRejection>,
        kind: ListKind,
    ) -> Result<(Vec<Value>, Vec<Unavailable>), ApiError> {
        let Query(query) = query.map_err(|rejection| ApiError::invalid(rejection.body_text()))?;
        let record = self.load(&asker.caller, id).await?;
        let chosen: Vec<&StoredConnection> = match &query.server {
            Some(server) => vec![Self::connection(&record, server)?],
            None => record.connections.values().collect(),
        };
        let lists = join_all(chosen.iter().map(|connection| async {
            let resolved = self.resolve(asker, &record.id, connection)?;
            let route = resolved.route(&self.hub, &asker.caller, &record.id);
            self.items(&route, kind).await
        }))
        .await;
        let mut items = Vec::new();
        let mut unavailable = Vec::new();
        for (connection, list) in chosen.iter().zip(lists) {
            match list {
                Ok(list) => items.extend(list.iter().map(|item| {
                    let mut item = item.clone();
                    if let Some(object) = item.as_object_mut() {
                        object.insert("server".to_owned(), json!(connection.server));
                    }
                    item
                })),
                Err(error) if query.server.is_some() => return Err(error),
                Err(error) => unavailable.push(Unavailable {
                    server: connection.server.clone(),
                    error: error.code().to_owned(),
                    error_description: error.description().to_owned(),
                }),
            }
        }
        Ok((items, unavailable))
    }

    /// The items of `kind` of the route's server (none when it does not
    /// offer that kind: `-32601` to the list method, MCP 2025-11-25, Server
    /// Features: a server declares the features it has).
    pub(super) async fn items(
        &self,
        route: &crate::upstream::Route<'_>,
        kind: ListKind,
    ) -> Result<Arc<Vec<Value>>, ApiError> {
        match self
            .hub
            .catalog
            .items(&self.hub.upstreams, route, kind)
            .await
        {
            Ok(items) => Ok(items),
            Err(CallError::Rpc { error, .. })
                if error.get("code").and_then(Value::as_i64) == Some(-32601) =>
            {
                Ok(Arc::default())
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Sends `method` to the connected `server` after checking that its
    /// list of `kind` has an item whose `field` is `name`.
    pub(super) async fn forward(
        &self,
        asker: &Asker,
        id: &str,
        server: &str,
        checked: Option<(ListKind, &str)>,
        method: &str,
        params: Value,
    ) -> Result<Json<Value>, ApiError> {
        let record = self.load(&asker.caller, id).await?;
        let connection = Self::connection(&record, server)?;
        let resolved = self.resolve(asker, &record.id, connection)?;
        let route = resolved.route(&self.hub, &asker.caller, &record.id);
        if let Some((kind, name)) = checked {
            let items = self.items(&route, kind).await?;
            if !items
                .iter()
                .any(|item| item.get("name").and_then(Value::as_str) == Some(name))
            {
                let what = if kind == ListKind::Tools {
                    "tool"
                } else {
                    "prompt"
                };
                return Err(ApiError::not_found(
                    &format!("unknown_{what}"),
                    format!(
                        "`{server}` has no {what} named `{}`",
                        name.chars().take(128).collect::<String>()
                    ),
                ));
            }
        }
        let result = self
            .hub
            .forward(
                &route,
                method,
                params,
                Arc::new(NoRelay),
                &CancellationToken::new(),
            )
            .await?;
        Ok(Json(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_issued_ids_reach_the_store() {
        assert!(id_is_wellformed("cs_0123456789abcdef0123456789abcdef"));
        for bad in [
            "",
            "cs_",
            "cs_0123456789abcdef0123456789abcdeg",
            "cs_0123456789abcdef0123456789abcdef0",
            "session-1733500000000-abc",
            "cs_*",
        ] {
            assert!(!id_is_wellformed(bad), "{bad}");
        }
    }
}
