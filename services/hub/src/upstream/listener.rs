//! The upstream sessions' own streams: what an upstream sends outside any
//! call (log messages, `list_changed`, `resources/updated`) goes on the
//! session's `GET` stream (MCP 2025-11-25, Transports §Listening for
//! Messages from the Server), not on a call's response.
//!
//! For an upstream shared per downstream session (`"sharing": "session"`),
//! the hub opens that stream when the session is first used on a replica,
//! and relays what comes on it to the downstream client (through
//! `mcp-session`, which reaches the client's stream on whichever replica it
//! is). An upstream lets one client hold a session's stream: when another
//! hub replica holds it (`409`), this one leaves it be and tries again
//! after [`RETRY_ELSEWHERE`], in case that replica went away. The stream
//! ends with the upstream session, when the client is gone, or when the
//! upstream closes it; the next request opens it again.
//!
//! For `shared` and `user` upstreams no stream is opened: what comes
//! outside a call could not be told apart per downstream client.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use parking_lot::Mutex;

use super::{
    Route,
    http::{ListenEnd, Relay, Target, UpstreamHttp},
    store::StoredSession,
};
use crate::config::Upstream;

/// How long a replica leaves a stream another one holds before trying
/// again.
pub const RETRY_ELSEWHERE: Duration = Duration::from_secs(30);
/// How long a replica leaves an upstream that offers no stream.
const RETRY_UNSUPPORTED: Duration = Duration::from_secs(600);
/// Longest wait for the upstream to answer a new stream before the request
/// that opened it goes on (so that what the call logs is not missed).
const READY_WAIT: Duration = Duration::from_secs(2);

enum State {
    Open,
    /// Not to be tried again before then.
    Leave(Instant),
}

/// The streams this replica holds, by upstream and upstream session id.
#[derive(Default)]
pub struct Listeners {
    streams: Arc<Mutex<HashMap<(String, String), State>>>,
}

impl Listeners {
    /// Opens the stream of `session` on the route's upstream unless it is
    /// open here, held elsewhere, or not offered, relaying to `relay`; waits
    /// at most 2 s for a new stream to be answered.
    pub async fn ensure(
        &self,
        http: &UpstreamHttp,
        route: &Route<'_>,
        session: &StoredSession,
        relay: Arc<dyn Relay>,
    ) {
        if session.session_id.is_empty() {
            return; // no session, no session stream
        }
        let key = (route.upstream.name.clone(), session.session_id.clone());
        {
            let mut streams = self.streams.lock();
            match streams.get(&key) {
                Some(State::Open) => return,
                Some(State::Leave(until)) if Instant::now() < *until => return,
                _ => {}
            }
            streams.insert(key.clone(), State::Open);
        }
        let (ready, answered) = tokio::sync::oneshot::channel();
        let owned = OwnedTarget {
            upstream: route.upstream.clone(),
            session_id: session.session_id.clone(),
            protocol_version: session.protocol_version.clone(),
            forwarded: route.forwarded.clone(),
        };
        let (http, streams) = (http.clone(), self.streams.clone());
        tokio::spawn(async move {
            let end = http.listen(owned.target(), relay.as_ref(), ready).await;
            let leave = match &end {
                ListenEnd::HeldElsewhere => Some(RETRY_ELSEWHERE),
                ListenEnd::Unsupported => Some(RETRY_UNSUPPORTED),
                ListenEnd::Failed(reason) => {
                    tracing::debug!(upstream = %owned.upstream.name, reason, "upstream session stream not opened");
                    None
                }
                ListenEnd::Closed | ListenEnd::ClientGone => None,
            };
            let mut streams = streams.lock();
            match leave {
                Some(wait) => {
                    streams.insert(key, State::Leave(Instant::now() + wait));
                }
                None => {
                    streams.remove(&key);
                }
            }
        });
        let _ = tokio::time::timeout(READY_WAIT, answered).await;
    }
}

/// A [`Target`] that a task can own.
struct OwnedTarget {
    upstream: Upstream,
    session_id: String,
    protocol_version: String,
    forwarded: Vec<(http::HeaderName, http::HeaderValue)>,
}

impl OwnedTarget {
    fn target(&self) -> Target<'_> {
        Target {
            upstream: &self.upstream,
            session_id: Some(&self.session_id),
            protocol_version: Some(if self.protocol_version.is_empty() {
                super::PROTOCOL_VERSION
            } else {
                &self.protocol_version
            }),
            forwarded: &self.forwarded,
        }
    }
}
