//! Change notifications for the `subscriptions/listen` streams of the
//! fleet (MCP 2026-07-28, Server Features §Subscriptions): a change that
//! happens on one replica (a resource updated, a list changed) must reach
//! every listen stream that asked for it, whichever replica holds the
//! stream, once.
//!
//! A replica publishes a [`ChangeNotice`] with
//! [`Fleet::publish_change`](crate::Fleet::publish_change):
//! alone, straight to its own listen streams; in a fleet, as one `PUBLISH`
//! on the fleet channel, which every replica (the publisher included)
//! receives once and hands to the listen streams it holds
//! ([`Fleet::listen_changes`](crate::Fleet::listen_changes)). Each stream
//! then applies its own filter. A
//! notice may be meant for one user only (`user`), so that a change to one
//! user's data never reaches another user's stream.

use std::sync::Arc;

use rmcp::model::ServerNotification;
use tokio::sync::broadcast;

use crate::identity::UserHash;

/// Notices a listen stream may fall behind by before it misses some.
const BACKLOG: usize = 1024;

/// A change every listen stream of the fleet may want to hear of.
#[derive(Debug, Clone)]
pub struct ChangeNotice {
    /// Only the streams of this user hear of it; `None`: every stream.
    pub user: Option<UserHash>,
    /// The notification: `notifications/resources/updated`,
    /// `notifications/{tools,prompts,resources}/list_changed`.
    pub notification: ServerNotification,
}

/// The listen streams of this replica: a broadcast of the notices that
/// reach it.
#[derive(Debug, Clone)]
pub(crate) struct ListenStreams {
    notices: broadcast::Sender<Arc<ChangeNotice>>,
}

impl Default for ListenStreams {
    fn default() -> Self {
        Self {
            notices: broadcast::channel(BACKLOG).0,
        }
    }
}

impl ListenStreams {
    /// Hands `notice` to every listen stream held here (none: dropped).
    pub(crate) fn deliver(&self, notice: ChangeNotice) {
        let _ = self.notices.send(Arc::new(notice));
    }

    /// The notices that reach this replica from now on, for one stream.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<ChangeNotice>> {
        self.notices.subscribe()
    }
}
