//! Resource subscriptions and the `notifications/resources/updated` they
//! bring (MCP 2025-06-18, Server Features §Resources, Subscriptions).
//!
//! A client subscribes to any resource [`resources::exists`] knows. Only
//! [`WATCHED_URI`] ever changes, every [`WATCH_INTERVAL`](resources::WATCH_INTERVAL);
//! a subscriber is notified of each change. Two protocol generations:
//!
//! - **sessions** (2025-03-26 .. 2025-11-25): `resources/subscribe` and
//!   `resources/unsubscribe` edit the session's subscribed URIs, both in the
//!   session's record (through [`mcp_session::session::SessionContext`], for
//!   every replica) and in the handler's [`Subscriptions`]. While the watched
//!   resource is among them, a watcher task on the replica that took the
//!   subscription sends the updates over the session's stream (which reaches
//!   the client's `GET` stream on whichever replica holds it): the watched
//!   resource's own changes, and the updates any replica announces through
//!   [`mcp_session::listen`] (`test_notify_resource_updated`). The record
//!   names the watcher ([`WATCHER_KEY`]); before each update the watcher
//!   re-reads the record and ends when the session subscribed again
//!   through any replica (a newer watcher took over), when the session is
//!   gone, when the handler is dropped, or when the client is gone, and
//!   sends only updates of URIs the record lists. So a session gets each
//!   update once, as from a single process.
//! - **stateless** (2026-07-28): one `subscriptions/listen` request names the
//!   resources ([`accepted_filter`]); [`listen`] sends the updates on that
//!   request's response stream until the client cancels it: the watched
//!   resource's, and every change announced by any replica through
//!   [`mcp_session::listen`] (`test_notify_resource_updated`), so a listen stream
//!   held by one replica hears of an update made through another, once.

use std::{collections::BTreeSet, fmt::Display, future::Future, sync::Arc, time::SystemTime};

use mcp_session::session::{self, SessionContext};
use parking_lot::{Mutex, MutexGuard};
use rmcp::{
    ErrorData, Peer, RoleServer,
    model::{ResourceUpdatedNotificationParam, ServerNotification, SubscriptionFilter},
    service::{RequestContext, SubscriptionContext},
};
use serde_json::json;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::resources::{self, WATCHED_URI};

/// One session's subscribed resource URIs and the watcher that notifies them.
#[derive(Debug, Default)]
pub struct Subscriptions {
    uris: Arc<Mutex<BTreeSet<String>>>,
    /// Cancels the watcher task when dropped.
    watcher: Mutex<Option<DropGuard>>,
}

impl Subscriptions {
    /// Subscribes the session of the request `context` to `uri`; updates are
    /// sent through the request's peer. Subscribing twice is the same as once.
    ///
    /// # Errors
    /// Resource-not-found (`-32002`) when no resource has that URI; internal
    /// error (`-32603`) when the session store cannot be reached.
    pub async fn subscribe(
        &self,
        context: &RequestContext<RoleServer>,
        uri: &str,
    ) -> Result<(), ErrorData> {
        if !resources::exists(uri) {
            return Err(ErrorData::resource_not_found(
                format!("cannot subscribe to `{uri}`: no such resource"),
                Some(json!({ "uri": uri })),
            ));
        }
        let mut session = session::current(context);
        if let Some(session) = &mut session {
            stored(session.subscribe(uri).await)?;
        }
        lock(&self.uris).insert(uri.to_owned());
        // This replica's watcher takes over from any other's: one watcher
        // per session in the fleet, so each update is sent once.
        let owner = match &mut session {
            Some(session) => {
                let id = uuid::Uuid::new_v4().to_string();
                stored(session.set_state(WATCHER_KEY, &id).await)?;
                Some(Owner {
                    session: session.clone(),
                    id,
                })
            }
            None => None,
        };
        // The updates announced by any replica for the URIs the session (or
        // this handler) is subscribed to, followed before the client hears
        // that its subscription holds.
        let uris: Vec<String> = match &owner {
            Some(owner) => owner
                .session
                .record()
                .subscriptions
                .iter()
                .cloned()
                .collect(),
            None => lock(&self.uris).iter().cloned().collect(),
        };
        let filter = SubscriptionFilter::builder()
            .resource_subscriptions(uris)
            .build();
        let changes = mcp_session::listen::changes(context, &filter).await.ok();
        let stop = CancellationToken::new();
        tokio::spawn(watch(
            context.peer.clone(),
            self.uris.clone(),
            owner,
            changes,
            stop.clone(),
        ));
        // Replacing the guard stops this handler's earlier watcher.
        *lock(&self.watcher) = Some(stop.drop_guard());
        Ok(())
    }

    /// Unsubscribes the session of the request `context` from `uri`;
    /// unsubscribing from a URI not subscribed to is not an error.
    ///
    /// # Errors
    /// Internal error (`-32603`) when the session store cannot be reached.
    pub async fn unsubscribe(
        &self,
        context: &RequestContext<RoleServer>,
        uri: &str,
    ) -> Result<(), ErrorData> {
        if let Some(mut session) = session::current(context) {
            stored(session.unsubscribe(uri).await)?;
        }
        let mut uris = lock(&self.uris);
        uris.remove(uri);
        if uris.is_empty() {
            // Dropping the guard stops the watcher.
            lock(&self.watcher).take();
        }
        Ok(())
    }

    /// Whether the session of the request `context` is subscribed to `uri`
    /// (as its record says, for any replica; as this handler knows, without
    /// a session).
    pub fn contains(&self, context: &RequestContext<RoleServer>, uri: &str) -> bool {
        match session::current(context) {
            Some(session) => session.is_subscribed(uri),
            None => lock(&self.uris).contains(uri),
        }
    }
}

/// The outcome of a change to the session's record, as the request's.
/// `Ok(false)`, the session ended meanwhile, is not this request's error: the
/// session's next request gets `404`.
fn stored<E: Display>(outcome: Result<bool, E>) -> Result<(), ErrorData> {
    outcome.map(drop).map_err(|error| {
        ErrorData::internal_error(format!("cannot store the subscription: {error}"), None)
    })
}

/// The key, in the session's record, of the id of the watcher that sends
/// its updates of [`WATCHED_URI`].
pub const WATCHER_KEY: &str = "everything.watcher";

/// A watcher's claim on a session: the session, and the id the record must
/// still name under [`WATCHER_KEY`].
struct Owner {
    session: SessionContext,
    id: String,
}

impl Owner {
    /// Whether this watcher is still the session's: the session exists and
    /// names this watcher (a later subscription, through any replica, made
    /// a newer one). A store that cannot be reached keeps the watcher going
    /// (the next event asks again).
    async fn still_watching(&mut self) -> bool {
        match self.session.reload().await {
            Ok(true) => self.session.state::<String>(WATCHER_KEY).as_deref() == Some(&self.id),
            Ok(false) => false,
            Err(error) => {
                tracing::debug!(%error, "resource watcher cannot read the session; keeps watching");
                true
            }
        }
    }
}

/// The URI of the next resource update among `changes` (none: never).
async fn next_update(changes: &mut Option<mcp_session::listen::Changes>) -> Option<String> {
    let Some(changes) = changes else {
        return std::future::pending().await;
    };
    loop {
        match changes.next().await? {
            ServerNotification::ResourceUpdatedNotification(update) => {
                return Some(update.params.uri);
            }
            _ => continue,
        }
    }
}

/// Notifies `peer` of each update of a resource the session is subscribed
/// to: [`WATCHED_URI`]'s own changes, and the updates announced by any
/// replica (`changes`); with a session, while its record names this watcher
/// and lists the URI; until `stop` is cancelled or the notification cannot
/// be delivered.
async fn watch(
    peer: Peer<RoleServer>,
    uris: Arc<Mutex<BTreeSet<String>>>,
    mut owner: Option<Owner>,
    mut changes: Option<mcp_session::listen::Changes>,
    stop: CancellationToken,
) {
    loop {
        let wait = resources::until_next_revision(SystemTime::now());
        let uri = tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(wait) => WATCHED_URI.to_owned(),
            update = next_update(&mut changes) => match update {
                Some(uri) => uri,
                None => {
                    changes = None;
                    continue;
                }
            },
        };
        let subscribed = match owner.as_mut() {
            Some(owner) => {
                if !owner.still_watching().await {
                    tracing::debug!(
                        "resource watcher stops: the session ended or another watcher took over"
                    );
                    return;
                }
                owner.session.is_subscribed(&uri)
            }
            None => lock(&uris).contains(&uri),
        };
        if !subscribed {
            continue;
        }
        if peer
            .notify_resource_updated(ResourceUpdatedNotificationParam::new(uri))
            .await
            .is_err()
        {
            tracing::debug!("resource watcher stops: the client is gone");
            return;
        }
    }
}

/// The part of a `subscriptions/listen` filter this service serves: updates
/// of resources that exist. Its lists of tools, prompts and resources never
/// change, so it accepts no `*_list_changed`.
pub fn accepted_filter(requested: &SubscriptionFilter) -> SubscriptionFilter {
    let known = requested
        .resource_subscriptions
        .iter()
        .flatten()
        .filter(|uri| resources::exists(uri));
    SubscriptionFilter::builder()
        .resource_subscriptions(known)
        .build()
}

/// Serves one `subscriptions/listen` request (protocol 2026-07-28): sends
/// `notifications/resources/updated` for [`WATCHED_URI`] on each change if
/// the accepted filter names it, and every change announced by any replica
/// that the filter accepts, until the client cancels the request.
///
/// # Errors
/// None: a client that is gone ends the subscription quietly.
pub async fn listen(context: SubscriptionContext) -> Result<(), ErrorData> {
    let watched = context
        .accepted()
        .resource_subscriptions
        .iter()
        .flatten()
        .any(|uri| uri == WATCHED_URI);
    let watching = async {
        if watched {
            on_each_change(context.cancelled(), || {
                context.sink().notify_resource_updated(WATCHED_URI)
            })
            .await;
        } else {
            context.cancelled().await;
        }
    };
    // Changes announced by any replica (`test_notify_resource_updated`), beside the
    // watched resource's own.
    tokio::select! {
        forwarded = mcp_session::listen::forward(&context) => forwarded,
        () = watching => Ok(()),
    }
}

/// Calls `notify` each time [`WATCHED_URI`] changes, until `stop` completes
/// or `notify` fails (the client is gone).
async fn on_each_change<N, F, E>(stop: impl Future<Output = ()>, mut notify: N)
where
    N: FnMut() -> F,
    F: Future<Output = Result<(), E>>,
    E: Display,
{
    let mut stop = std::pin::pin!(stop);
    loop {
        let wait = resources::until_next_revision(SystemTime::now());
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(wait) => {}
        }
        if let Err(error) = notify().await {
            tracing::debug!(%error, "resource watcher stops");
            return;
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock()
}
