//! Change notifications for `subscriptions/listen` across replicas (MCP
//! 2026-07-28, Server Features §Subscriptions).
//!
//! A 2026-07-28 client has no session and no `GET` stream: it holds one
//! `subscriptions/listen` request open, naming what it wants to hear of
//! (resource URIs, list changes). Behind a round-robin load balancer that
//! request is held by one replica while the change happens on another (the
//! tool call that updated a resource reached a different one). So a change
//! is [`publish`]ed to the whole fleet (one Redis `PUBLISH`), and every
//! listen stream, on every replica, gets it once through [`forward`], which
//! a handler's `listen` runs:
//!
//! ```rust,ignore
//! async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
//!     mcp_session::listen::forward(&context).await
//! }
//! // in a tool, on any replica:
//! mcp_session::listen::publish(&context, Audience::Everyone, notification).await?;
//! ```
//!
//! rmcp's subscription sink applies each stream's filter (and tags each
//! notification with its `subscriptionId`); a notice for one user
//! ([`Audience::Caller`]) never reaches another user's stream.

use mcp_session_fleet::{ChangeNotice, Fleet};
use rmcp::{
    ErrorData, RoleServer,
    model::ServerNotification,
    service::{RequestContext, SubscriptionContext, SubscriptionSendError},
};
use tokio::sync::broadcast::error::RecvError;

use crate::session;

/// Put in every request's extensions by the server.
#[derive(Clone)]
pub(crate) struct ListenFleet(pub(crate) Fleet);

/// Who hears of a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Every listen stream whose filter accepts it (shared data).
    Everyone,
    /// Only the streams of the request's caller (the caller's own data).
    Caller,
}

fn fleet(context: &RequestContext<RoleServer>) -> Result<Fleet, ErrorData> {
    mcp_session_core::session::request_extension::<ListenFleet>(context)
        .map(|ListenFleet(fleet)| fleet)
        .ok_or_else(|| {
            ErrorData::internal_error(
                "change notifications are only available to requests served over HTTP",
                None,
            )
        })
}

/// Tells the listen streams of `audience`, on every replica, about
/// `notification` (`notifications/resources/updated` or a
/// `notifications/*/list_changed`).
///
/// # Errors
/// `-32603` when Redis cannot be reached (the change is not announced).
pub async fn publish(
    context: &RequestContext<RoleServer>,
    audience: Audience,
    notification: ServerNotification,
) -> Result<(), ErrorData> {
    let user = match audience {
        Audience::Everyone => None,
        Audience::Caller => Some(session::caller(context).user_hash),
    };
    fleet(context)?
        .publish_change(ChangeNotice { user, notification })
        .await
        .map_err(|error| {
            ErrorData::internal_error(format!("the change could not be announced: {error}"), None)
        })
}

/// The changes published anywhere in the fleet from now on that the caller
/// of one request may hear of (for everyone, or for that caller): what a
/// session's own watcher (a `resources/subscribe` of protocol 2025-xx)
/// follows, as [`forward`] does for a listen stream.
pub struct Changes {
    notices: tokio::sync::broadcast::Receiver<std::sync::Arc<ChangeNotice>>,
    caller: mcp_session_core::identity::UserHash,
}

impl Changes {
    /// The next change; `None` once the replica stops.
    pub async fn next(&mut self) -> Option<ServerNotification> {
        loop {
            match self.notices.recv().await {
                Ok(notice) if notice.user.as_ref().is_none_or(|user| *user == self.caller) => {
                    return Some(notice.notification.clone());
                }
                Ok(_) => {}
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(
                        missed,
                        "a change follower fell behind; changes were dropped for it"
                    );
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

/// The changes the caller of the request `context` may hear of, from now on.
///
/// # Errors
/// `-32603` when the request was not served over HTTP.
pub fn changes(context: &RequestContext<RoleServer>) -> Result<Changes, ErrorData> {
    Ok(Changes {
        notices: fleet(context)?.listen_changes(),
        caller: session::caller(context).user_hash,
    })
}

/// Sends the listen stream `context` every change published anywhere in
/// the fleet from now on that its filter accepts and its caller may hear,
/// until the client ends the request or goes away.
///
/// # Errors
/// `-32603` when the request was not served over HTTP.
pub async fn forward(context: &SubscriptionContext) -> Result<(), ErrorData> {
    let mut changes = changes(context.request_context())?;
    loop {
        let notification = tokio::select! {
            () = context.cancelled() => return Ok(()),
            notification = changes.next() => notification,
        };
        let Some(notification) = notification else {
            return Ok(());
        };
        match context.sink().send(notification).await {
            Ok(()) | Err(SubscriptionSendError::NotificationNotAccepted(_)) => {}
            Err(error) => {
                tracing::debug!(%error, "a listen stream ended");
                return Ok(());
            }
        }
    }
}
