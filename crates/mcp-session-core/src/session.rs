//! Per-session state that every replica sees: what a tool handler reads and
//! writes instead of keeping it in its own memory.
//!
//! rmcp makes one handler per session *per replica*: a field set by the
//! handler on one replica (the log level of `logging/setLevel`, the resource
//! subscriptions of `resources/subscribe`) is unknown to the others. Keep such
//! state in the session's record instead, through the [`SessionContext`] that
//! every request of a session carries:
//!
//! ```rust,ignore
//! async fn set_level(&self, request: SetLevelRequestParams, context: RequestContext<RoleServer>)
//!     -> Result<(), ErrorData>
//! {
//!     let session = mcp_session::session::current(&context).ok_or_else(no_session)?;
//!     session.set_log_level(level_name(request.level)).await.map_err(store_error)?;
//!     Ok(())
//! }
//! ```
//!
//! Reads come from the record loaded for this request (no extra round trip);
//! writes update the shared record at once (one round trip). A task that
//! outlives its request (a watcher sending resource updates) calls
//! [`SessionContext::reload`] to see what other replicas changed since.
//!
//! Besides the state MCP defines, a service keeps its own per-session values
//! under keys of its choice ([`SessionContext::state`],
//! [`SessionContext::set_state`]); prefix them with the service's name.
//!
//! Writes replace the whole record: two replicas changing the same session's
//! state at the same instant can lose one of the two changes.

use std::sync::Arc;

use rmcp::{RoleServer, model::ClientJsonRpcMessage, service::RequestContext};
use serde::{Serialize, de::DeserializeOwned};

use crate::{
    identity::Caller,
    store::{SessionRecord, SessionStore, StoreError},
    trace_context::TraceContext,
};

/// The session a request belongs to: its record as loaded for this request,
/// and the store to change it in.
///
/// Found in the request's `http::request::Parts` extensions (see
/// [`current`]); absent on `initialize` and on stateless (2026-07-28)
/// requests, which have no session.
#[derive(Clone)]
pub struct SessionContext {
    record: SessionRecord,
    store: Arc<dyn SessionStore>,
}

impl std::fmt::Debug for SessionContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionContext")
            .field("id", &self.record.id)
            .finish_non_exhaustive()
    }
}

/// The `Mcp-Session-Id` header, lower-case as HTTP/2 sends it (MCP
/// 2025-03-26, Transports §Session Management).
pub const HEADER_SESSION_ID: http::HeaderName = http::HeaderName::from_static("mcp-session-id");

/// What the HTTP request that `context` arrived with carries in its
/// extensions as a `T` (rmcp hands tools the request's `http::request::Parts`).
pub fn request_extension<T: Clone + Send + Sync + 'static>(
    context: &RequestContext<RoleServer>,
) -> Option<T> {
    context
        .extensions
        .get::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<T>())
        .cloned()
}

/// Attaches to `message`, which crossed replicas over the fleet bus, the
/// HTTP request parts a tool reads as it would have had them on the replica
/// it reached: the server's own `extensions` (what every request of the
/// server carries), the [`Caller`], the session's [`SessionContext`], and
/// the [`TraceContext`] of the current span (the replica's receiving span),
/// which the tool's span names as its parent.
pub fn attach(
    mut message: ClientJsonRpcMessage,
    extensions: &http::Extensions,
    caller: Caller,
    session: Option<SessionContext>,
) -> ClientJsonRpcMessage {
    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.method = http::Method::POST;
    parts.extensions = extensions.clone();
    parts.extensions.insert(caller);
    if let Some(session) = session {
        parts.extensions.insert(session);
    }
    let trace = TraceContext::current();
    if !trace.is_empty() {
        parts.extensions.insert(trace);
    }
    message.insert_extension(parts);
    message
}

/// The [`SessionContext`] of the request `context` belongs to, if any.
pub fn current(context: &RequestContext<RoleServer>) -> Option<SessionContext> {
    request_extension(context)
}

/// The [`Caller`] of the request `context` belongs to (anonymous when the
/// request carries none).
pub fn caller(context: &RequestContext<RoleServer>) -> Caller {
    request_extension(context).unwrap_or_else(Caller::anonymous)
}

impl SessionContext {
    /// The context of `record`, changed through `store`.
    pub fn new(record: SessionRecord, store: Arc<dyn SessionStore>) -> Self {
        Self { record, store }
    }

    /// The session id.
    pub fn id(&self) -> &str {
        &self.record.id
    }

    /// The session's record as loaded for this request.
    pub fn record(&self) -> &SessionRecord {
        &self.record
    }

    /// The minimum log level the client asked for with `logging/setLevel`
    /// (`debug`, `info`, ... `emergency`; MCP 2025-06-18, Utilities §Logging),
    /// if it did.
    pub fn log_level(&self) -> Option<&str> {
        self.record.log_level.as_deref()
    }

    /// Whether the client subscribed to updates of resource `uri`
    /// (MCP 2025-06-18, Server Features §Resources, Subscriptions).
    pub fn is_subscribed(&self, uri: &str) -> bool {
        self.record.subscriptions.contains(uri)
    }

    /// Stores the session's minimum log level, for every replica.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be reached; `Ok(false)` when the
    /// session no longer exists.
    pub async fn set_log_level(&mut self, level: impl Into<String>) -> Result<bool, StoreError> {
        self.record.log_level = Some(level.into());
        self.store.update(&self.record).await
    }

    /// Subscribes the session to updates of resource `uri`, for every replica.
    ///
    /// # Errors
    /// As [`set_log_level`](Self::set_log_level).
    pub async fn subscribe(&mut self, uri: impl Into<String>) -> Result<bool, StoreError> {
        self.record.subscriptions.insert(uri.into());
        self.store.update(&self.record).await
    }

    /// The service's value under `key` for this session, if one was set and
    /// reads as a `T`.
    pub fn state<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.record
            .state
            .get(key)
            .and_then(|value| T::deserialize(value).ok())
    }

    /// Stores the service's `value` under `key` for this session, for every
    /// replica.
    ///
    /// # Errors
    /// As [`set_log_level`](Self::set_log_level); a `value` that does not
    /// serialize to JSON is [`StoreError::Corrupt`].
    pub async fn set_state<T: Serialize>(
        &mut self,
        key: impl Into<String>,
        value: &T,
    ) -> Result<bool, StoreError> {
        let value =
            serde_json::to_value(value).map_err(|error| StoreError::Corrupt(error.to_string()))?;
        self.record.state.insert(key.into(), value);
        self.store.update(&self.record).await
    }

    /// Re-reads the session's record from the store, without renewing its
    /// time to live, to see what other replicas changed since this context
    /// was made. `Ok(false)`: the session no longer exists (ended, expired).
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be reached.
    pub async fn reload(&mut self) -> Result<bool, StoreError> {
        match self
            .store
            .peek(&self.record.user_hash, &self.record.id)
            .await?
        {
            Some(stored) => {
                self.record = stored.record;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Ends the session's subscription to resource `uri`, for every replica.
    ///
    /// # Errors
    /// As [`set_log_level`](Self::set_log_level).
    pub async fn unsubscribe(&mut self, uri: &str) -> Result<bool, StoreError> {
        self.record.subscriptions.remove(uri);
        self.store.update(&self.record).await
    }
}
