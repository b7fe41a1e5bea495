//! Relaying what an upstream sends during a request to the downstream
//! client that made it: notifications (progress, log messages,
//! `list_changed`) and requests (sampling, elicitation, roots).
//!
//! The downstream side is `mcp-session`'s: a request the hub sends its
//! client reaches the client on whichever stream it has open, and the
//! client's answer, POSTed to whichever hub replica, comes back to the one
//! waiting here (the fleet bus). Progress notifications keep the client's
//! own progress token, which the hub passed upstream in the request's
//! `_meta` (MCP 2025-11-25, Utilities §Progress).

use std::sync::Arc;

use futures::future::BoxFuture;
use rmcp::{
    RoleServer, ServiceError,
    model::{JsonRpcMessage, ServerJsonRpcMessage},
    service::Peer,
};
use serde_json::{Value, json};

use crate::{catalog::Catalog, upstream::http::Relay};

/// A [`Relay`] to one downstream client, for a request to `server`.
pub struct DownstreamRelay {
    /// The downstream client.
    pub peer: Peer<RoleServer>,
    /// The upstream the request went to.
    pub server: String,
    /// Lists to drop when the upstream says they changed.
    pub catalog: Arc<Catalog>,
}

fn error_response(id: Value, code: i64, message: String) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

impl Relay for DownstreamRelay {
    fn notify(&self, notification: Value) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            if let Some(method) = notification.get("method").and_then(Value::as_str) {
                self.catalog.changed(&self.server, method);
            }
            match serde_json::from_value::<ServerJsonRpcMessage>(notification) {
                Ok(JsonRpcMessage::Notification(notification)) => {
                    match self.peer.send_notification(notification.notification).await {
                        Ok(()) => true,
                        Err(error) => {
                            tracing::debug!(upstream = %self.server, %error, "could not relay a notification");
                            false
                        }
                    }
                }
                _ => {
                    tracing::debug!(upstream = %self.server, "dropped an upstream notification that is not MCP");
                    true
                }
            }
        })
    }

    fn request(&self, request: Value) -> BoxFuture<'_, Value> {
        Box::pin(async move {
            let id = request.get("id").cloned().unwrap_or(Value::Null);
            let request = match serde_json::from_value::<ServerJsonRpcMessage>(request) {
                Ok(JsonRpcMessage::Request(request)) => request.request,
                _ => {
                    return error_response(
                        id,
                        -32601,
                        "the hub cannot relay this request to its client".to_owned(),
                    );
                }
            };
            match self.peer.send_request(request).await {
                Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
                Err(ServiceError::McpError(error)) => json!({
                    "jsonrpc": "2.0", "id": id, "error": error,
                }),
                Err(error) => error_response(
                    id,
                    -32603,
                    format!("the hub's client did not answer: {error}"),
                ),
            }
        })
    }
}
