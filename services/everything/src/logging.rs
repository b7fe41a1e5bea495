//! Log notifications to the client (`notifications/message`) and the
//! session's log level (`logging/setLevel`), MCP 2025-06-18, Server Features
//! §Utilities, Logging.
//!
//! A client with a session chooses the lowest severity it wants with
//! `logging/setLevel`; until it does, every message is sent. The level is
//! session state that every replica must see, so it is kept in the
//! session's record through [`mcp_session::session::SessionContext`].
//!
//! A 2026-07-28 request has no session: it names its level in
//! `_meta["io.modelcontextprotocol/logLevel"]`, and without one the server
//! sends no `notifications/message` for it at all (MCP 2026-07-28, Schema
//! `RequestMetaObject.logLevel`; SEP-2575). A request of an older revision
//! without a session falls back to the handler's own [`LogFilter`].
//!
//! rmcp marks its logging types deprecated because SEP-2577 drops logging
//! from protocol 2026-07-28; the revisions this service negotiates with
//! sessions (2025-03-26 .. 2025-11-25) still define it, hence the `allow`.
#![allow(deprecated)]

use mcp_session::session;
use parking_lot::Mutex;
use rmcp::{
    ErrorData, RoleServer,
    model::{LoggingLevel, LoggingMessageNotificationParam},
    service::{RequestContext, ServiceError},
};

/// The `logger` name of the service's log notifications.
pub const LOGGER: &str = "everything";

/// The rank of `level` in RFC 5424 order: `debug` 0 .. `emergency` 7.
pub fn severity(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

/// The protocol's name of `level`: `debug`, `info`, ... `emergency`.
pub fn level_name(level: LoggingLevel) -> &'static str {
    match level {
        LoggingLevel::Debug => "debug",
        LoggingLevel::Info => "info",
        LoggingLevel::Notice => "notice",
        LoggingLevel::Warning => "warning",
        LoggingLevel::Error => "error",
        LoggingLevel::Critical => "critical",
        LoggingLevel::Alert => "alert",
        LoggingLevel::Emergency => "emergency",
    }
}

/// The level named `name` (see [`level_name`]).
pub fn parse_level(name: &str) -> Option<LoggingLevel> {
    serde_json::from_value(serde_json::Value::from(name)).ok()
}

/// Whether a message at `level` passes a `minimum` level (none: all pass).
pub fn passes(level: LoggingLevel, minimum: Option<LoggingLevel>) -> bool {
    minimum.is_none_or(|minimum| severity(level) >= severity(minimum))
}

/// The handler's own minimum level, for requests without a session.
#[derive(Debug, Default)]
pub struct LogFilter {
    minimum: Mutex<Option<LoggingLevel>>,
}

impl LogFilter {
    /// Whether a message at `level` may go to the client of the request
    /// `context`: at or above its session's level (shared by every replica;
    /// none set: every level), or, for a 2026-07-28 request, at or above the
    /// request's `_meta` `logLevel` (none given: no message at all), else at
    /// or above this filter's level.
    pub fn allows(&self, context: &RequestContext<RoleServer>, level: LoggingLevel) -> bool {
        if let Some(session) = session::current(context) {
            return passes(level, session.log_level().and_then(parse_level));
        }
        if crate::request::is_stateless(context) {
            return context
                .meta
                .log_level()
                .is_some_and(|minimum| passes(level, Some(minimum)));
        }
        passes(level, *self.lock())
    }

    /// Sets the lowest level to send to the client of the request `context`,
    /// in its session's record (or in this filter, without a session).
    ///
    /// # Errors
    /// Internal error (`-32603`) when the session store cannot be reached.
    pub async fn set(
        &self,
        context: &RequestContext<RoleServer>,
        level: LoggingLevel,
    ) -> Result<(), ErrorData> {
        let Some(mut session) = session::current(context) else {
            *self.lock() = Some(level);
            return Ok(());
        };
        // `Ok(false)`: the session ended meanwhile; its next request gets 404.
        session
            .set_log_level(level_name(level))
            .await
            .map(drop)
            .map_err(|error| {
                ErrorData::internal_error(format!("cannot store the log level: {error}"), None)
            })
    }

    /// Sends `message` at `level` to the client of the request `context`, if
    /// the level passes the client's minimum.
    ///
    /// # Errors
    /// The transport's error when the notification cannot be sent (client gone).
    pub async fn send(
        &self,
        context: &RequestContext<RoleServer>,
        level: LoggingLevel,
        message: impl Into<String>,
    ) -> Result<(), ServiceError> {
        if !self.allows(context, level) {
            return Ok(());
        }
        let notification =
            LoggingMessageNotificationParam::new(level, message.into().into()).with_logger(LOGGER);
        context.peer.notify_logging_message(notification).await
    }

    /// [`send`](Self::send) at `info` level.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub async fn info(
        &self,
        context: &RequestContext<RoleServer>,
        message: impl Into<String>,
    ) -> Result<(), ServiceError> {
        self.send(context, LoggingLevel::Info, message).await
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, Option<LoggingLevel>> {
        self.minimum.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEVELS: [LoggingLevel; 8] = [
        LoggingLevel::Debug,
        LoggingLevel::Info,
        LoggingLevel::Notice,
        LoggingLevel::Warning,
        LoggingLevel::Error,
        LoggingLevel::Critical,
        LoggingLevel::Alert,
        LoggingLevel::Emergency,
    ];

    #[test]
    fn everything_passes_until_a_level_is_set() {
        assert!(passes(LoggingLevel::Debug, None));
        let warning = Some(LoggingLevel::Warning);
        assert!(!passes(LoggingLevel::Debug, warning));
        assert!(!passes(LoggingLevel::Info, warning));
        assert!(passes(LoggingLevel::Warning, warning));
        assert!(passes(LoggingLevel::Emergency, warning));
    }

    #[test]
    fn level_names_are_the_protocol_names() {
        for (rank, level) in LEVELS.into_iter().enumerate() {
            assert_eq!(usize::from(severity(level)), rank);
            let name = level_name(level);
            assert_eq!(serde_json::to_value(level).unwrap(), name);
            assert_eq!(parse_level(name), Some(level));
        }
        assert_eq!(parse_level("loud"), None);
    }
}
