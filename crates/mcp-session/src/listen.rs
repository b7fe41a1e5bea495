//! Change notifications for `subscriptions/listen` across replicas (MCP
//! 2026-07-28, Server Features §Subscriptions).
//!
//! A 2026-07-28 client has no session and no `GET` stream: it holds one
//! `subscriptions/listen` request open, naming what it wants to hear of
//! (resource URIs, list changes). Behind a round-robin load balancer that
//! request is held by one replica while the change happens on another (the
//! tool call that updated a resource reached a different one). So a change
//! is [`publish`]ed on its own Redis channel (one `SPUBLISH` per change; a
//! resource's updates and list changes each have theirs), which a replica
//! reads only while one of its listen streams wants it, and every listen
//! stream that wants it, on any replica, gets it once through [`forward`],
//! which a handler's `listen` runs:
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
//!
//! rmcp acknowledges a listen request before the handler's `listen` runs,
//! and a client may make a change right after the acknowledgement. So the
//! HTTP layer subscribes to what the request names before rmcp sees it
//! (`prepare`), and `forward` takes over that subscription: a change
//! published after the acknowledgement is never missed.

use std::sync::Arc;

use bytes::Bytes;
use mcp_session_core::identity::UserHash;
use mcp_session_fleet::{ChangeFollower, ChangeInterest, ChangeNotice, Fleet};
use parking_lot::Mutex;
use rmcp::{
    ErrorData, RoleServer,
    model::{ServerNotification, SubscriptionFilter},
    service::{RequestContext, SubscriptionContext, SubscriptionSendError},
};
use tokio::sync::broadcast::error::RecvError;

use crate::{service_context::ServiceContext, session};

/// The `Mcp-Method` of a listen request (MCP 2026-07-28, Transports
/// §Standard Headers).
pub(crate) const LISTEN_METHOD: &str = "subscriptions/listen";

/// The change follower the HTTP layer made for a listen request before
/// rmcp acknowledged it (see [`prepare`]); [`forward`] takes it.
#[derive(Clone)]
pub(crate) struct PreparedChanges(Arc<Mutex<Option<ChangeFollower>>>);

/// What `filter` asks to hear of, for `user`.
fn interest(user: UserHash, filter: &SubscriptionFilter) -> ChangeInterest {
    ChangeInterest {
        user,
        resources: filter.resource_subscriptions.clone().unwrap_or_default(),
        lists: [
            filter.tools_list_changed,
            filter.prompts_list_changed,
            filter.resources_list_changed,
        ]
        .into_iter()
        .any(|wanted| wanted == Some(true)),
    }
}

/// For the body of a `subscriptions/listen` request of `user`: follows the
/// changes its filter names, subscribed before this returns, so that the
/// stream hears of every change made after rmcp acknowledges it. `None`
/// when the body is no listen request (rmcp answers it).
pub(crate) async fn prepare(
    fleet: &Fleet,
    user: UserHash,
    body: &Bytes,
) -> Option<PreparedChanges> {
    #[derive(serde::Deserialize)]
    struct Listen {
        method: String,
        params: Params,
    }
    #[derive(serde::Deserialize)]
    struct Params {
        notifications: SubscriptionFilter,
    }
    let listen: Listen = serde_json::from_slice(body).ok()?;
    if listen.method != LISTEN_METHOD {
        return None;
    }
    let follower = fleet
        .listen_changes(&interest(user, &listen.params.notifications))
        .await;
    Some(PreparedChanges(Arc::new(Mutex::new(Some(follower)))))
}

/// Who hears of a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Every listen stream whose filter accepts it (shared data).
    Everyone,
    /// Only the streams of the request's caller (the caller's own data).
    Caller,
}

fn fleet(context: &RequestContext<RoleServer>) -> Result<Fleet, ErrorData> {
    ServiceContext::lent::<Fleet>(context).ok_or_else(|| {
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
    notices: ChangeFollower,
    caller: UserHash,
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

/// The changes named by `filter` (resource URIs, list changes) that the
/// caller of the request `context` may hear of, from now on: in a fleet,
/// this replica reads their channels while the returned value lives, and
/// this returns once Redis confirmed them (a few seconds at most when Redis
/// is away). Other notices may come too (those other streams here
/// brought): filter what comes.
///
/// # Errors
/// `-32603` when the request was not served over HTTP.
pub async fn changes(
    context: &RequestContext<RoleServer>,
    filter: &SubscriptionFilter,
) -> Result<Changes, ErrorData> {
    let fleet = fleet(context)?;
    let caller = session::caller(context).user_hash;
    let notices = fleet
        .listen_changes(&interest(caller.clone(), filter))
        .await;
    Ok(Changes { notices, caller })
}

/// Sends the listen stream `context` every change published anywhere in
/// the fleet from now on that its filter accepts and its caller may hear,
/// until the client ends the request or goes away.
///
/// # Errors
/// `-32603` when the request was not served over HTTP.
pub async fn forward(context: &SubscriptionContext) -> Result<(), ErrorData> {
    let request = context.request_context();
    let prepared = mcp_session_core::session::request_extension::<PreparedChanges>(request)
        .and_then(|PreparedChanges(prepared)| prepared.lock().take());
    let mut changes = match prepared {
        Some(notices) => Changes {
            notices,
            caller: session::caller(request).user_hash,
        },
        None => changes(request, context.accepted()).await?,
    };
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
