//! Telling a service that sessions ended, so that it can let go of what it
//! holds for them elsewhere (the hub: the upstream sessions it opened for
//! one downstream session).
//!
//! A session ends when it is deleted: the client's `DELETE` (MCP
//! 2025-11-25, Transports §Session Management), an HTTP+SSE stream closed
//! for good, an admin's `DELETE /admin/…`. The replica that deleted it
//! tells its [`SessionEndObserver`], once (the other replicas learn of the
//! end through the fleet bus, but do not call the observer). A session that
//! expires is not told of: nothing deletes it, its TTL runs out in the
//! store; what the service holds for it should expire the same way.
//!
//! [`ObservedStore`] wraps the server's store to do the telling.

use std::sync::Arc;

use crate::{
    identity::UserHash,
    store::{SessionPage, SessionRecord, SessionStore, StoreError, StoredSession},
};

/// Told of the sessions deleted on this replica.
pub trait SessionEndObserver: Send + Sync + 'static {
    /// Session `session_id` of `user` was deleted. Called after the store
    /// deleted it, on the request's task: return quickly (spawn what takes
    /// time).
    fn session_ended(&self, user: &UserHash, session_id: &str);
}

/// The observer a server was given, if any: what the fleet wraps its store
/// with ([`wrap`](Self::wrap)).
#[derive(Clone, Default)]
pub struct SessionEndHook(Option<Arc<dyn SessionEndObserver>>);

impl std::fmt::Debug for SessionEndHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "SessionEndHook(set)"
        } else {
            "SessionEndHook(none)"
        })
    }
}

impl SessionEndHook {
    /// A hook telling `observer`.
    pub fn new(observer: Arc<dyn SessionEndObserver>) -> Self {
        Self(Some(observer))
    }

    /// `store`, telling the observer of its deletions (`store` itself
    /// without an observer: no cost for services that need none).
    pub fn wrap(&self, store: Arc<dyn SessionStore>) -> Arc<dyn SessionStore> {
        match &self.0 {
            Some(observer) => Arc::new(ObservedStore::new(store, observer.clone())),
            None => store,
        }
    }
}

/// `inner`, telling `observer` of every session it deletes.
pub struct ObservedStore {
    inner: Arc<dyn SessionStore>,
    observer: Arc<dyn SessionEndObserver>,
}

impl ObservedStore {
    /// Wraps `inner`; deletions are told to `observer`.
    pub fn new(inner: Arc<dyn SessionStore>, observer: Arc<dyn SessionEndObserver>) -> Self {
        Self { inner, observer }
    }
}

#[async_trait::async_trait]
impl SessionStore for ObservedStore {
    async fn create(&self, record: &SessionRecord) -> Result<(), StoreError> {
        self.inner.create(record).await
    }

    async fn access(&self, user: &UserHash, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        self.inner.access(user, id).await
    }

    async fn update(&self, record: &SessionRecord) -> Result<bool, StoreError> {
        self.inner.update(record).await
    }

    async fn delete(&self, user: &UserHash, id: &str) -> Result<bool, StoreError> {
        let deleted = self.inner.delete(user, id).await?;
        if deleted {
            self.observer.session_ended(user, id);
        }
        Ok(deleted)
    }

    async fn list(&self, user: &UserHash) -> Result<Vec<StoredSession>, StoreError> {
        self.inner.list(user).await
    }

    async fn peek(&self, user: &UserHash, id: &str) -> Result<Option<StoredSession>, StoreError> {
        self.inner.peek(user, id).await
    }

    async fn find(&self, id: &str) -> Result<Option<StoredSession>, StoreError> {
        self.inner.find(id).await
    }

    async fn scan(&self, cursor: Option<&str>, limit: usize) -> Result<SessionPage, StoreError> {
        self.inner.scan(cursor, limit).await
    }

    async fn delete_user(&self, user: &UserHash) -> Result<Vec<String>, StoreError> {
        let deleted = self.inner.delete_user(user).await?;
        for id in &deleted {
            self.observer.session_ended(user, id);
        }
        Ok(deleted)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }

    async fn purge_expired(&self) -> usize {
        self.inner.purge_expired().await
    }

    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use parking_lot::Mutex;

    use super::*;
    use crate::store::{MemoryStore, TransportKind};

    #[derive(Default)]
    struct Ended(Mutex<Vec<String>>);

    impl SessionEndObserver for Ended {
        fn session_ended(&self, _user: &UserHash, session_id: &str) {
            self.0.lock().push(session_id.to_owned());
        }
    }

    #[tokio::test]
    async fn deletions_are_told_once_and_only_deletions() {
        let ended = Arc::new(Ended::default());
        let store = ObservedStore::new(
            Arc::new(MemoryStore::new(Duration::from_secs(60))),
            ended.clone(),
        );
        let user = UserHash::parse(&"ab".repeat(32)).expect("a user hash");
        for id in ["s1", "s2", "s3"] {
            let record = SessionRecord::new(id, user.clone(), TransportKind::Sse, "r1");
            store.create(&record).await.unwrap();
        }
        assert!(store.delete(&user, "s1").await.unwrap());
        assert!(!store.delete(&user, "s1").await.unwrap(), "already gone");
        assert!(store.access(&user, "s2").await.unwrap().is_some());
        let mut rest = store.delete_user(&user).await.unwrap();
        rest.sort();
        assert_eq!(rest, ["s2", "s3"]);
        let mut told = ended.0.lock().clone();
        told.sort();
        assert_eq!(told, ["s1", "s2", "s3"]);
    }
}
