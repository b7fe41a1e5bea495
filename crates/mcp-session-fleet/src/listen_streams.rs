//! Change notifications for the `subscriptions/listen` streams of the
//! fleet (MCP 2026-07-28, Server Features §Subscriptions): a change that
//! happens on one replica (a resource updated, a list changed) must reach
//! every listen stream that asked for it, whichever replica holds the
//! stream, once.
//!
//! A replica publishes a [`ChangeNotice`] with
//! [`Fleet::publish_change`](crate::Fleet::publish_change):
//! alone, straight to its own listen streams; in a fleet, as one `SPUBLISH`
//! on the notice's sharded channel, `mcp_change:<service>:<audience>:<topic>`
//! (audience `all` or `user:<user_hash>`; topic `resource:<uri>` for a
//! resource's updates, `lists` for list changes). A replica reads such a
//! channel only while one of its listen streams or resource watchers wants
//! that topic ([`Fleet::listen_changes`](crate::Fleet::listen_changes) with
//! a [`ChangeInterest`]), so a replica receives the changes its own
//! streams want, however many replicas the fleet has. The notices that
//! arrive are handed to the streams held here, and each stream then applies
//! its own filter. A notice may be meant for one user only (`user`), so that
//! a change to one user's data never reaches another user's stream.

use std::sync::Arc;

use rmcp::model::ServerNotification;
use tokio::sync::broadcast;

use crate::{identity::UserHash, shard_subscriptions::ChannelGuard};

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

impl ChangeNotice {
    /// The sharded channel of this notice, after `prefix`
    /// (`mcp_change:<service>:`).
    pub(crate) fn channel(&self, prefix: &str) -> String {
        let audience = match &self.user {
            Some(user) => format!("user:{}", user.as_str()),
            None => "all".to_owned(),
        };
        let topic = match &self.notification {
            ServerNotification::ResourceUpdatedNotification(update) => {
                format!("resource:{}", update.params.uri)
            }
            _ => "lists".to_owned(),
        };
        format!("{prefix}{audience}:{topic}")
    }
}

/// What one listen stream (or one session's resource watcher) wants to hear
/// of: the notices published for everyone or for `user`, about the
/// `resources` it names and, with `lists`, list changes.
#[derive(Debug, Clone)]
pub struct ChangeInterest {
    /// The stream's caller.
    pub user: UserHash,
    /// The resource URIs whose updates it wants.
    pub resources: Vec<String>,
    /// Whether it wants `notifications/*/list_changed`.
    pub lists: bool,
}

impl ChangeInterest {
    /// The sharded channels that carry what this interest wants, after
    /// `prefix` (`mcp_change:<service>:`): each topic for everyone and for
    /// the user.
    pub(crate) fn channels(&self, prefix: &str) -> Vec<String> {
        let topics = self
            .resources
            .iter()
            .map(|uri| format!("resource:{uri}"))
            .chain(self.lists.then(|| "lists".to_owned()));
        let user = format!("user:{}", self.user.as_str());
        let mut channels: Vec<String> = topics
            .flat_map(|topic| {
                [
                    format!("{prefix}all:{topic}"),
                    format!("{prefix}{user}:{topic}"),
                ]
            })
            .collect();
        channels.sort();
        channels.dedup();
        channels
    }
}

/// The notices that reach this replica for one listen stream or watcher,
/// with the subscriptions that bring them here (dropped with it).
#[derive(Debug)]
pub struct ChangeFollower {
    notices: broadcast::Receiver<Arc<ChangeNotice>>,
    _channels: Vec<ChannelGuard>,
}

impl ChangeFollower {
    pub(crate) fn new(
        notices: broadcast::Receiver<Arc<ChangeNotice>>,
        channels: Vec<ChannelGuard>,
    ) -> Self {
        Self {
            notices,
            _channels: channels,
        }
    }

    /// The next notice that reached this replica (for any of its streams:
    /// the caller applies its own filter), as a
    /// [`broadcast::Receiver::recv`].
    ///
    /// # Errors
    /// `Lagged` when the follower fell more than 1024 notices behind,
    /// `Closed` once the replica stops.
    pub async fn recv(&mut self) -> Result<Arc<ChangeNotice>, broadcast::error::RecvError> {
        self.notices.recv().await
    }
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
