//! The session store: where sessions live so that any replica can serve them.
//!
//! A session is a [`SessionRecord`] owned by one [`UserHash`]. Backends keep it
//! under the key `mcp_user_session:<user_hash>:<session_id>` and list a user's
//! sessions in `mcp_user_index:<user_hash>` (the names of the Python servers
//! this project replaces). Every lookup names the owner, so a session id that
//! belongs to somebody else is indistinguishable from one that never existed.
//!
//! Expiry is sliding: [`SessionStore::access`] renews a session's time to live
//! ([`Config::session_ttl`](crate::Config::session_ttl)), so an idle session
//! disappears by itself and an active one never does.
//!
//! Backends:
//! - [`MemoryStore`]: one process, no dependencies; the default.
//! - [`RedisStore`]: shared by all replicas; selected by `REDIS_URL`.

mod memory;
mod record;
pub mod redis;

pub use memory::MemoryStore;
pub use record::{SessionRecord, StoredSession, TransportKind, now_ms};
pub use redis::RedisStore;

use crate::identity::UserHash;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend could not be reached or did not answer in time.
    /// Requests that need the store fail with HTTP 503 until it is back.
    #[error("session store unavailable: {0}")]
    Unavailable(String),
    /// A stored value could not be decoded (written by an incompatible version).
    #[error("session store holds an unreadable value: {0}")]
    Corrupt(String),
    /// The user already has the maximum number of live sessions.
    #[error("too many sessions: the limit is {limit} live sessions per user")]
    TooManySessions {
        /// The configured limit.
        limit: usize,
    },
}

/// Storage of sessions shared by every replica of a service.
///
/// Implementations must be cheap to call concurrently: every MCP request of a
/// session goes through [`access`](Self::access).
#[async_trait::async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Stores a new session and adds it to its owner's index.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the backend cannot be reached.
    async fn create(&self, record: &SessionRecord) -> Result<(), StoreError>;

    /// Loads `user`'s session `id` and renews its time to live.
    ///
    /// Returns `Ok(None)` for an id that is unknown, expired, deleted, or owned
    /// by another user: callers answer all four alike (HTTP 404).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`], [`StoreError::Corrupt`].
    async fn access(&self, user: &UserHash, id: &str) -> Result<Option<SessionRecord>, StoreError>;

    /// Replaces a live session's record (same owner and id), renewing its TTL.
    /// Returns `Ok(false)` when the session no longer exists; it is not
    /// recreated.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    async fn update(&self, record: &SessionRecord) -> Result<bool, StoreError>;

    /// Deletes `user`'s session `id`. Returns whether it existed.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    async fn delete(&self, user: &UserHash, id: &str) -> Result<bool, StoreError>;

    /// Lists `user`'s live sessions with their remaining time to live, oldest
    /// first. Does not renew them.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`], [`StoreError::Corrupt`].
    async fn list(&self, user: &UserHash) -> Result<Vec<StoredSession>, StoreError>;

    /// Checks that the backend answers (used by `/readyz`).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    async fn ping(&self) -> Result<(), StoreError>;

    /// Removes expired sessions that the backend does not expire by itself;
    /// returns how many were removed. Called periodically by the server.
    async fn purge_expired(&self) -> usize {
        0
    }

    /// The backend's name for logs and health output (`memory`, `redis`).
    fn backend(&self) -> &'static str;
}
