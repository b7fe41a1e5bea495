//! Upstreams of protocol 2026-07-28, without sessions: every request stands
//! alone, so there is nothing to keep in Redis and any hub replica sends
//! any request.
//!
//! Each request carries the protocol version and the hub's client
//! capabilities in its `_meta` (`io.modelcontextprotocol/protocolVersion`,
//! `io.modelcontextprotocol/clientCapabilities`), and the `Mcp-Method` and
//! `Mcp-Name` headers (SEP-2243). Where the upstream needs something of the
//! client (sampling, elicitation, roots), it answers `input_required` with
//! `inputRequests` and a `requestState` (MRTR, SEP-2322). A client of
//! 2026-07-28 gets that result as it is and retries itself (through any hub
//! replica: the state is the upstream's, in the request). For a client of
//! 2025-11-25 the hub asks each of those as a request during the call (what
//! that client understands), and sends the request again with the
//! `inputResponses` and the `requestState`, for at most [`MAX_ROUNDS`]
//! rounds.

use std::sync::Arc;

use http::{HeaderName, HeaderValue};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::{
    CallError, Route, Upstreams,
    http::{Relay, Target, UpstreamError},
};

/// The protocol version of stateless upstreams.
pub const PROTOCOL_VERSION_2026: &str = "2026-07-28";
/// Most MRTR rounds of one request (as the SDKs' clients).
pub const MAX_ROUNDS: usize = 10;

/// The `_meta` of every request: the version and what the hub relays.
fn stamp(params: &mut Value) {
    if !params.is_object() {
        *params = Value::Object(Map::new());
    }
    let object = params.as_object_mut().expect("an object");
    let meta = object
        .entry("_meta")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(meta) = meta.as_object_mut() {
        meta.insert(
            "io.modelcontextprotocol/protocolVersion".to_owned(),
            json!(PROTOCOL_VERSION_2026),
        );
        meta.insert(
            "io.modelcontextprotocol/clientCapabilities".to_owned(),
            json!({"sampling": {}, "elicitation": {}, "roots": {}}),
        );
        meta.insert(
            "io.modelcontextprotocol/clientInfo".to_owned(),
            json!({"name": "mcp-hub", "version": env!("CARGO_PKG_VERSION")}),
        );
    }
}

/// The `Mcp-Method` and `Mcp-Name` headers of a request (SEP-2243).
fn method_headers(method: &str, params: &Value) -> Vec<(HeaderName, HeaderValue)> {
    let mut headers = Vec::new();
    if let Ok(value) = HeaderValue::from_str(method) {
        headers.push((HeaderName::from_static("mcp-method"), value));
    }
    let name = match method {
        "tools/call" | "prompts/get" => params.get("name"),
        "resources/read" => params.get("uri"),
        _ => None,
    };
    if let Some(value) = name
        .and_then(Value::as_str)
        .and_then(|name| HeaderValue::from_str(name).ok())
    {
        headers.push((HeaderName::from_static("mcp-name"), value));
    }
    headers
}

impl Upstreams {
    /// Opens a `subscriptions/listen` stream (MCP 2026-07-28) on the route's
    /// stateless upstream with `notifications` (the subscription filter):
    /// the messages the upstream sends on it, until it ends or is dropped.
    ///
    /// # Errors
    /// [`CallError::Upstream`] when the upstream cannot be reached or
    /// refuses the subscription.
    pub async fn listen(
        &self,
        route: &Route<'_>,
        notifications: Value,
    ) -> Result<futures::stream::BoxStream<'static, Value>, CallError> {
        let mut params = json!({"notifications": notifications});
        stamp(&mut params);
        let mut headers = route.forwarded.clone();
        headers.extend(method_headers("subscriptions/listen", &params));
        let target = Target {
            upstream: route.upstream,
            session_id: None,
            protocol_version: Some(PROTOCOL_VERSION_2026),
            forwarded: &headers,
        };
        let message = json!({"jsonrpc": "2.0", "id": self.request_id(),
                             "method": "subscriptions/listen", "params": params});
        self.http
            .open_stream(target, &message)
            .await
            .map_err(|source| CallError::upstream(&route.upstream.name, source))
    }

    /// [`request`](Upstreams::request) to a stateless upstream (see the
    /// module).
    pub(super) async fn stateless_request(
        &self,
        route: &Route<'_>,
        method: &str,
        mut params: Value,
        relay: Arc<dyn Relay>,
        cancel: &CancellationToken,
    ) -> Result<Value, CallError> {
        let server = &route.upstream.name;
        let upstream_error = |source| CallError::upstream(server, source);
        stamp(&mut params);
        for _ in 0..MAX_ROUNDS {
            let mut headers = route.forwarded.clone();
            headers.extend(method_headers(method, &params));
            let target = Target {
                upstream: route.upstream,
                session_id: None,
                protocol_version: Some(PROTOCOL_VERSION_2026),
                forwarded: &headers,
            };
            let message = json!({"jsonrpc": "2.0", "id": self.request_id(), "method": method, "params": params});
            let reply = tokio::select! {
                reply = self.http.request(target, &message, relay.as_ref()) => reply.map_err(upstream_error)?,
                () = cancel.cancelled() => return Err(CallError::Cancelled),
            };
            let result = CallError::result_of(server, reply.message)?;
            if result.get("resultType").and_then(Value::as_str) != Some("input_required")
                || route.client_mrtr
            {
                return Ok(result);
            }
            // Ask the client, then send the request again with its answers.
            let mut responses = Map::new();
            if let Some(requests) = result.get("inputRequests").and_then(Value::as_object) {
                for (key, request) in requests {
                    let asked = json!({"jsonrpc": "2.0", "id": key, "method": request.get("method"),
                        "params": request.get("params").cloned().unwrap_or(json!({}))});
                    let answered = relay.request(asked).await;
                    responses.insert(key.clone(), CallError::result_of(server, answered)?);
                }
            }
            let object = params
                .as_object_mut()
                .expect("stamped params are an object");
            object.insert("inputResponses".to_owned(), Value::Object(responses));
            match result.get("requestState") {
                Some(state) => object.insert("requestState".to_owned(), state.clone()),
                None => object.remove("requestState"),
            };
        }
        Err(upstream_error(UpstreamError::Protocol(format!(
            "the upstream still asked for input after {MAX_ROUNDS} rounds"
        ))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_stamped_and_named() {
        let mut params = json!({"name": "add", "_meta": {"progressToken": 7}});
        stamp(&mut params);
        assert_eq!(params["_meta"]["progressToken"], 7);
        assert_eq!(
            params["_meta"]["io.modelcontextprotocol/protocolVersion"],
            "2026-07-28"
        );
        let mut empty = Value::Null;
        stamp(&mut empty);
        assert!(empty["_meta"].is_object());
        let headers = method_headers("tools/call", &params);
        assert_eq!(headers[0].1, "tools/call");
        assert_eq!(
            headers[1],
            (
                HeaderName::from_static("mcp-name"),
                HeaderValue::from_static("add")
            )
        );
        assert_eq!(method_headers("tools/list", &params).len(), 1);
        let read = method_headers("resources/read", &json!({"uri": "test://x"}));
        assert_eq!(read[1].1, "test://x");
    }
}
