//! HTTP+SSE clients that reconnect without `Last-Event-ID`.
//!
//! An `EventSource` sends the id of the last event it received when it
//! reconnects, and the replica it reaches takes its session over
//! (`fleet::sse_sessions`). The official TypeScript SDK (1.x) does not: its
//! `SSEClientTransport` gives its `EventSource` a `fetch` that replaces the
//! request's headers with its own, `Last-Event-ID` included. After its
//! stream's replica stopped, such a client gets a new, uninitialized session
//! and goes on posting requests, to the old session's endpoint until the new
//! `endpoint` event arrives, then to the new one, and never initializes
//! again.
//!
//! Both are protocol errors a client that means to start afresh never makes,
//! so they are taken for what they are, a reconnection, and the two sessions
//! of the same user are paired ([`pair`]): the new one (uninitialized, its
//! stream connected) takes the old one's `initialize` parameters, log level,
//! subscriptions and state, its handler is given the old `initialize` (its
//! answer is not sent), and the old session ends. The old session must be
//! one whose stream no replica holds: its client left (the record says when)
//! or its replica is gone. Messages the client missed cannot be replayed
//! (it named none).
//!
//! The client learns the new session's endpoint from its `endpoint` event,
//! which may come after it sent (or while it sends) more messages to the
//! old one: the new session's record names the one it continues
//! ([`continuation`]), and those messages go to it instead of getting
//! `404`.

use crate::{
    fleet::Fleet,
    identity::UserHash,
    store::{SessionRecord, StoreError, TransportKind},
};

/// Whether `record`'s stream is held by no live replica: its client left
/// (and has not reconnected), or the replica named in it is gone.
async fn is_orphaned(fleet: &Fleet, record: &SessionRecord) -> bool {
    if record.stream_detached_at_ms.is_some() {
        return true;
    }
    if record.replica_id == fleet.replica_id() {
        return fleet
            .sse_streams()
            .get(&record.id, &record.user_hash)
            .is_none();
    }
    fleet.is_replica_alive(&record.replica_id).await == Some(false)
}

/// The user's other HTTP+SSE sessions (not `session`), with whether each
/// one's stream is orphaned.
async fn other_sse_sessions(
    fleet: &Fleet,
    session: &SessionRecord,
) -> Result<Vec<(SessionRecord, bool)>, StoreError> {
    let mut others = Vec::new();
    for stored in fleet.store().list(&session.user_hash).await? {
        let record = stored.record;
        if record.transport == TransportKind::Sse && record.id != session.id {
            let orphaned = is_orphaned(fleet, &record).await;
            others.push((record, orphaned));
        }
    }
    Ok(others)
}

/// For `fresh` (an uninitialized HTTP+SSE session that just received a
/// request other than `initialize`): the same user's initialized session
/// opened before it whose stream was lost, the most recently used, if any.
///
/// # Errors
/// The store's, when it cannot list the user's sessions.
pub(super) async fn lost_session(
    fleet: &Fleet,
    fresh: &SessionRecord,
) -> Result<Option<SessionRecord>, StoreError> {
    Ok(other_sse_sessions(fleet, fresh)
        .await?
        .into_iter()
        .filter(|(record, orphaned)| {
            *orphaned
                && record.initialize_params.is_some()
                && record.created_at_ms <= fresh.created_at_ms
        })
        .map(|(record, _)| record)
        .max_by_key(|record| record.last_access_ms))
}

/// For `lost` (an initialized HTTP+SSE session that received a message while
/// no replica holds its stream): the same user's newest uninitialized
/// session opened since, whose stream is connected, if any.
///
/// # Errors
/// The store's, when it cannot list the user's sessions.
pub(super) async fn fresh_session(
    fleet: &Fleet,
    lost: &SessionRecord,
) -> Result<Option<SessionRecord>, StoreError> {
    Ok(other_sse_sessions(fleet, lost)
        .await?
        .into_iter()
        .filter(|(record, orphaned)| {
            !*orphaned
                && record.initialize_params.is_none()
                && record.created_at_ms >= lost.created_at_ms
        })
        .map(|(record, _)| record)
        .max_by_key(|record| record.created_at_ms))
}

/// The HTTP+SSE session of `owner` that continues `lost_id`, a session
/// [`pair`] ended, if any: where messages the client still posts to the
/// lost session's endpoint go.
///
/// # Errors
/// The store's, when it cannot list the user's sessions.
pub(super) async fn continuation(
    fleet: &Fleet,
    owner: &UserHash,
    lost_id: &str,
) -> Result<Option<SessionRecord>, StoreError> {
    Ok(fleet
        .store()
        .list(owner)
        .await?
        .into_iter()
        .map(|stored| stored.record)
        .find(|record| {
            record.transport == TransportKind::Sse && record.continues.as_deref() == Some(lost_id)
        }))
}

/// Makes `fresh` the continuation of `lost`: `fresh` takes `lost`'s
/// `initialize` parameters, log level, subscriptions and state (written to
/// the store), and `lost` ends. Returns `false` when `fresh` was initialized
/// meanwhile (another request paired it first) and nothing was changed.
///
/// # Errors
/// The store's.
pub(super) async fn pair(
    fleet: &Fleet,
    fresh: &mut SessionRecord,
    lost: &SessionRecord,
) -> Result<bool, StoreError> {
    let store = fleet.store();
    match store.peek(&fresh.user_hash, &fresh.id).await? {
        Some(current) if current.record.initialize_params.is_none() => {}
        _ => return Ok(false),
    }
    fresh.initialize_params = lost.initialize_params.clone();
    fresh.log_level = lost.log_level.clone();
    fresh.subscriptions = lost.subscriptions.clone();
    fresh.state = lost.state.clone();
    fresh.stream_detached_at_ms = None;
    fresh.continues = Some(lost.id.clone());
    fresh.last_access_ms = mcp_session_core::store::now_ms();
    store.update(fresh).await?;
    store.delete(&lost.user_hash, &lost.id).await?;
    tracing::info!(
        session_id = %fresh.id,
        lost = %lost.id,
        "sse client reconnected without Last-Event-ID: its new session continues the lost one"
    );
    Ok(true)
}
