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

use std::{sync::Arc, time::Duration};

use futures::future::BoxFuture;
use rmcp::{
    RoleServer, ServiceError,
    model::{JsonRpcMessage, ServerJsonRpcMessage, ServerRequest},
    service::{Peer, PeerRequestOptions, SubscriptionSendError, SubscriptionSink},
};
use serde_json::{Value, json};

use crate::{catalog::Catalog, upstream::http::Relay};

/// A [`Relay`] to one downstream client, for a request to `server`.
pub struct DownstreamRelay {
    /// The downstream client.
    pub peer: Peer<RoleServer>,
    /// The upstream the request went to.
    pub server: String,
    /// How long the client has to answer a request (the upstream's
    /// `timeout_ms`): past it the upstream is told the client did not
    /// answer.
    pub answer_within: Duration,
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
            if let Some(capability) = undeclared_capability(&self.peer, &request) {
                return error_response(
                    id,
                    -32601,
                    format!("the hub's client does not support {capability}"),
                );
            }
            let mut options = PeerRequestOptions::no_options();
            options.timeout = Some(self.answer_within);
            let asked = match self.peer.send_request_with_option(request, options).await {
                Ok(handle) => handle.await_response().await,
                Err(error) => Err(error),
            };
            match asked {
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

/// The capability a request of the upstream needs that the downstream
/// client did not declare in its `initialize`, if any: such a request is
/// refused here instead of sent to a client that cannot answer it (MCP
/// 2025-11-25, Lifecycle §Capability Negotiation). Nothing is refused when
/// the client's declaration is unknown.
fn undeclared_capability(peer: &Peer<RoleServer>, request: &ServerRequest) -> Option<&'static str> {
    let declared = peer.peer_info()?;
    let capabilities = &declared.capabilities;
    match request {
        ServerRequest::CreateMessageRequest(_) if capabilities.sampling.is_none() => {
            Some("sampling")
        }
        ServerRequest::ElicitRequest(_) if capabilities.elicitation.is_none() => {
            Some("elicitation")
        }
        ServerRequest::ListRootsRequest(_) if capabilities.roots.is_none() => Some("roots"),
        _ => None,
    }
}

/// A [`Relay`] to a 2026-07-28 client's `subscriptions/listen` stream: the
/// change notifications an upstream session's own stream carries
/// (`resources/updated`, `*/list_changed`) go on it, within the client's
/// filter; anything else is dropped, and requests are refused.
pub struct SubscriptionRelay {
    /// The client's subscription.
    pub sink: SubscriptionSink,
    /// The upstream listened to.
    pub server: String,
    /// Lists to drop when the upstream says they changed.
    pub catalog: Arc<Catalog>,
}

impl Relay for SubscriptionRelay {
    fn notify(&self, notification: Value) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            if let Some(method) = notification.get("method").and_then(Value::as_str) {
                self.catalog.changed(&self.server, method);
            }
            let Ok(JsonRpcMessage::Notification(notification)) =
                serde_json::from_value::<ServerJsonRpcMessage>(notification)
            else {
                return true;
            };
            match self.sink.send(notification.notification).await {
                Ok(()) => true,
                // Outside the client's filter, or not a change notification.
                Err(
                    SubscriptionSendError::NotificationNotAccepted(_)
                    | SubscriptionSendError::UnsupportedNotification(_),
                ) => true,
                Err(_) => false,
            }
        })
    }

    fn request(&self, request: Value) -> BoxFuture<'_, Value> {
        crate::upstream::http::NoRelay.request(request)
    }
}
