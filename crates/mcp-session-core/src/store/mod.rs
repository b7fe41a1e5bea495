//! The session store: where sessions live so that any replica can serve them.
//!
//! A session is a [`SessionRecord`] owned by one [`UserHash`]. Backends keep it
//! under the key `mcp_user_session:<user_hash>:<session_id>` and list a user's
//! sessions in `mcp_user_index:<user_hash>` (the names of the Python servers
//! this project replaces). Every lookup names the owner, so a session id that
//! belongs to somebody else is indistinguishable from one that never existed.
//!
//! Expiry is sliding: [`SessionStore::access`] renews a session's time to live
//! (`SESSION_TTL_SECONDS`), so an idle session
//! disappears by itself and an active one never does.
//!
//! Administration ([`SessionStore::scan`], [`SessionStore::find`],
//! [`SessionStore::peek`], [`SessionStore::delete_user`]) reads sessions
//! without renewing them; `scan` pages through every session with an opaque
//! cursor (Redis `SCAN`, never `KEYS`).
//!
//! Backends:
//! - [`MemoryStore`]: one process, no dependencies; the default.
//! - `RedisStore` (in `mcp-session-fleet`): shared by all replicas; selected
//!   by `REDIS_URL`.

mod memory;
mod record;

pub use memory::MemoryStore;
pub use record::{SessionPage, SessionRecord, StoredSession, TransportKind, now_ms};

use crate::identity::UserHash;

/// Why a store operation failed.
///
/// Exhaustive on purpose: every layer above maps each kind to its own answer
/// (`503`, `429`, a JSON-RPC error), and a new kind must be mapped there too.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend could not be reached or did not answer in time.
    /// Requests that need the store fail with HTTP 503 until it is back.
    #[error("session store unavailable: {0}")]
    Unavailable(String),
    /// A stored value could not be decoded (written by an incompatible version).
    #[error("session store holds an unreadable value: {0}")]
    Corrupt(String),
    /// The user already has the maximum number of live sessions.
    #[error(
        "too many sessions: the limit is {limit} live sessions per user; end one (DELETE /mcp, or close its SSE stream) or let one expire"
    )]
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

    /// Reads `user`'s session `id` with its remaining time to live, without
    /// renewing it (the admin API's view). `Ok(None)` as for
    /// [`access`](Self::access).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`], [`StoreError::Corrupt`].
    async fn peek(&self, user: &UserHash, id: &str) -> Result<Option<StoredSession>, StoreError> {
        Ok(self
            .list(user)
            .await?
            .into_iter()
            .find(|session| session.record.id == id))
    }

    /// Finds session `id` whoever owns it, without renewing it (admins only:
    /// it may read every session, O(sessions) on Redis).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`], [`StoreError::Corrupt`].
    async fn find(&self, id: &str) -> Result<Option<StoredSession>, StoreError> {
        let mut cursor: Option<String> = None;
        loop {
            let page = self.scan(cursor.as_deref(), 1000).await?;
            if let Some(found) = page
                .sessions
                .into_iter()
                .find(|session| session.record.id == id)
            {
                return Ok(Some(found));
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(None),
            }
        }
    }

    /// One page of every user's live sessions, in no particular order, about
    /// `limit` long (Redis may return a few more or fewer), starting at
    /// `cursor` (`None`: the beginning). A session is listed at most once
    /// over a full iteration unless it was deleted and re-created meanwhile;
    /// sessions created during the iteration may or may not be listed
    /// (the guarantees of Redis `SCAN`).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`], [`StoreError::Corrupt`] (also for a
    /// cursor this store did not hand out).
    async fn scan(&self, cursor: Option<&str>, limit: usize) -> Result<SessionPage, StoreError>;

    /// Deletes every session of `user`; returns the ids deleted.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    async fn delete_user(&self, user: &UserHash) -> Result<Vec<String>, StoreError> {
        let mut deleted = Vec::new();
        for session in self.list(user).await? {
            if self.delete(user, &session.record.id).await? {
                deleted.push(session.record.id);
            }
        }
        Ok(deleted)
    }

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
