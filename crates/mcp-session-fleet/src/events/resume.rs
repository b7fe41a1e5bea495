//! The streams a `Last-Event-ID` resumption sends: what the client missed,
//! then what comes next (MCP 2025-06-18, Transports §Resumability and
//! Redelivery), read from this replica's [`EventBuffer`](super::buffer) or
//! from Redis, and for a standalone stream followed live on its sharded
//! channel.

use std::{collections::HashSet, sync::Arc, time::Duration};

use futures::{Stream, StreamExt, stream};
use rmcp::{
    model::ServerJsonRpcMessage, transport::streamable_http_server::session::ServerSseMessage,
};
use tokio::{sync::mpsc, time::Instant};
use tokio_stream::wrappers::ReceiverStream;

use super::{FleetEventStore, buffer::Read, decode};
use crate::{HeldSessions, held::StandaloneConnection, shard_subscriptions::ShardSubscriptions};

/// The events of a resumption.
pub(crate) type BoxedEvents = std::pin::Pin<Box<dyn Stream<Item = ServerSseMessage> + Send + Sync>>;

/// How long a resumed request stream waits for its response.
pub const REQUEST_STREAM_RESUME_LIMIT: Duration = Duration::from_secs(300);

/// How often a request stream resumed from Redis looks for new events.
const RESUME_POLL: Duration = Duration::from_millis(100);

fn is_final(event: &ServerSseMessage) -> bool {
    matches!(
        event.message.as_deref(),
        Some(ServerJsonRpcMessage::Response(_) | ServerJsonRpcMessage::Error(_))
    )
}

/// A request stream held in this replica's memory, after `after`; with
/// `follow`, then its new events until its response (if its events move to
/// Redis meanwhile, from there), for at most [`REQUEST_STREAM_RESUME_LIMIT`].
pub(crate) fn from_buffer(
    store: Arc<FleetEventStore>,
    stream_id: String,
    mut after: String,
    follow: bool,
) -> BoxedEvents {
    let (sender, receiver) = mpsc::channel(64);
    tokio::spawn(async move {
        let deadline = Instant::now() + REQUEST_STREAM_RESUME_LIMIT;
        loop {
            match store.buffer().read_after(&stream_id, Some(&after)) {
                Read::Events {
                    events,
                    finished,
                    mut changes,
                } => {
                    for event in events {
                        after.clone_from(&event.event_id);
                        let Some(event) = decode(event.event_id, &event.payload.json()) else {
                            continue;
                        };
                        if sender.send(event).await.is_err() {
                            return;
                        }
                    }
                    if finished || !follow {
                        return;
                    }
                    tokio::select! {
                        _ = changes.changed() => {}
                        () = tokio::time::sleep_until(deadline) => return,
                        () = sender.closed() => return,
                    }
                }
                Read::InRedis => {
                    poll_redis(&store, &stream_id, after, follow, &sender, deadline).await;
                    return;
                }
                Read::Gone => return,
            }
        }
    });
    Box::pin(ReceiverStream::new(receiver))
}

/// A request stream in Redis, after `after`; with `follow`, polled until
/// its response has been stored (the request may still be running on
/// another replica), for at most [`REQUEST_STREAM_RESUME_LIMIT`].
pub(crate) fn from_redis(
    store: Arc<FleetEventStore>,
    stream_id: String,
    after: String,
    follow: bool,
) -> BoxedEvents {
    let (sender, receiver) = mpsc::channel(64);
    tokio::spawn(async move {
        let deadline = Instant::now() + REQUEST_STREAM_RESUME_LIMIT;
        poll_redis(&store, &stream_id, after, follow, &sender, deadline).await;
    });
    Box::pin(ReceiverStream::new(receiver))
}

async fn poll_redis(
    store: &FleetEventStore,
    stream_id: &str,
    mut after: String,
    follow: bool,
    sender: &mpsc::Sender<ServerSseMessage>,
    deadline: Instant,
) {
    while Instant::now() < deadline {
        let batch = store
            .events_after(stream_id, Some(&after))
            .await
            .unwrap_or_default();
        let done = batch.iter().any(is_final);
        for event in batch {
            if let Some(id) = &event.event_id {
                after.clone_from(id);
            }
            if sender.send(event).await.is_err() {
                return;
            }
        }
        if done || !follow {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(RESUME_POLL) => {}
            () = sender.closed() => return,
        }
    }
}

/// Follows a standalone stream live from now: its events arrive on its
/// sharded channel, subscribed (and confirmed by Redis) before this returns,
/// for as long as the returned connection lives.
pub(crate) async fn follow_standalone(
    held: &HeldSessions,
    subscriptions: &Arc<ShardSubscriptions>,
    events: &FleetEventStore,
    stream_id: &str,
) -> StandaloneConnection {
    let channel = subscriptions.want(events.standalone_channel(stream_id));
    let ready = channel.ready().await;
    if !ready {
        tracing::warn!(
            stream_id,
            "the standalone stream's channel is not subscribed yet (Redis away?): live events may be late"
        );
    }
    held.standalone.open(stream_id, Some(channel))
}

/// Replays a standalone stream from Redis after `last_event_id` (from its
/// start when `None`: the session's first `GET`), then follows it live
/// (see [`follow_standalone`]).
pub(crate) async fn standalone(
    held: &HeldSessions,
    subscriptions: &Arc<ShardSubscriptions>,
    events: &FleetEventStore,
    stream_id: &str,
    last_event_id: Option<&str>,
) -> Result<BoxedEvents, String> {
    // Follow first, then read: nothing falls between the two.
    let live = follow_standalone(held, subscriptions, events, stream_id).await;
    if let Some(last_event_id) = last_event_id {
        wait_until_stored(events, stream_id, last_event_id).await;
    }
    let missed = events
        .events_after(stream_id, last_event_id)
        .await
        .map_err(|error| error.to_string())?;
    let replayed: HashSet<String> = missed
        .iter()
        .filter_map(|event| event.event_id.clone())
        .collect();
    let live = live.filter(move |event| {
        let fresh = event
            .event_id
            .as_ref()
            .is_none_or(|id| !replayed.contains(id));
        futures::future::ready(fresh)
    });
    Ok(Box::pin(stream::iter(missed).chain(live)))
}

/// An id handed out a moment ago may still be on its way to Redis: wait a
/// little for it before replaying from it.
async fn wait_until_stored(events: &FleetEventStore, stream_id: &str, event_id: &str) {
    for _ in 0..10 {
        if events.contains(stream_id, event_id).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
