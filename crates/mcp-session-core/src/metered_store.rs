//! A [`SessionStore`] wrapper that counts what the metrics report of any
//! backend: sessions created (`mcp_sessions_created_total`) and failed
//! operations (`mcp_store_errors_total`). A refused creation over the
//! per-user limit is an answer, not a store error.

use std::sync::Arc;

use crate::store::{SessionPage, SessionRecord, SessionStore, StoreError, StoredSession};
use crate::{
    identity::UserHash,
    metrics::{Metrics, StoreOp},
};

/// `inner`, counted in `metrics`.
pub struct MeteredStore {
    inner: Arc<dyn SessionStore>,
    metrics: Arc<Metrics>,
}

impl MeteredStore {
    /// Wraps `inner`; its counts go to `metrics`.
    pub fn new(inner: Arc<dyn SessionStore>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }

    fn count<T>(&self, op: StoreOp, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(StoreError::Unavailable(_) | StoreError::Corrupt(_)) = &result {
            self.metrics.store_error(op);
        }
        result
    }
}

#[async_trait::async_trait]
impl SessionStore for MeteredStore {
    async fn create(&self, record: &SessionRecord) -> Result<(), StoreError> {
        let result = self.inner.create(record).await;
        if result.is_ok() {
            self.metrics.session_created(record.transport);
        }
        self.count(StoreOp::Create, result)
    }

    async fn access(&self, user: &UserHash, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        let result = self.inner.access(user, id).await;
        self.count(StoreOp::Access, result)
    }

    async fn update(&self, record: &SessionRecord) -> Result<bool, StoreError> {
        let result = self.inner.update(record).await;
        self.count(StoreOp::Update, result)
    }

    async fn delete(&self, user: &UserHash, id: &str) -> Result<bool, StoreError> {
        let result = self.inner.delete(user, id).await;
        self.count(StoreOp::Delete, result)
    }

    async fn list(&self, user: &UserHash) -> Result<Vec<StoredSession>, StoreError> {
        let result = self.inner.list(user).await;
        self.count(StoreOp::List, result)
    }

    async fn peek(&self, user: &UserHash, id: &str) -> Result<Option<StoredSession>, StoreError> {
        let result = self.inner.peek(user, id).await;
        self.count(StoreOp::Peek, result)
    }

    async fn find(&self, id: &str) -> Result<Option<StoredSession>, StoreError> {
        let result = self.inner.find(id).await;
        self.count(StoreOp::Find, result)
    }

    async fn scan(&self, cursor: Option<&str>, limit: usize) -> Result<SessionPage, StoreError> {
        let result = self.inner.scan(cursor, limit).await;
        self.count(StoreOp::Scan, result)
    }

    async fn delete_user(&self, user: &UserHash) -> Result<Vec<String>, StoreError> {
        let result = self.inner.delete_user(user).await;
        self.count(StoreOp::DeleteUser, result)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let result = self.inner.ping().await;
        self.count(StoreOp::Ping, result)
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

    use super::*;
    use crate::store::{MemoryStore, TransportKind};

    #[tokio::test]
    async fn creations_are_counted_and_limits_are_no_errors() {
        let metrics = Arc::new(Metrics::new("test", "0", "r1"));
        let memory = MemoryStore::new(Duration::from_secs(60)).with_max_sessions_per_user(1);
        let store = MeteredStore::new(Arc::new(memory), metrics.clone());
        let user = UserHash::parse(&"ab".repeat(32)).expect("a user hash");
        let record = SessionRecord::new("s1", user.clone(), TransportKind::Sse, "r1");
        store.create(&record).await.unwrap();
        let second = SessionRecord::new("s2", user, TransportKind::Sse, "r1");
        assert!(matches!(
            store.create(&second).await,
            Err(StoreError::TooManySessions { .. })
        ));
        let text = metrics.render();
        assert!(
            text.contains("mcp_sessions_created_total{transport=\"sse\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("mcp_store_errors_total{op=\"create\"} 0"),
            "{text}"
        );
    }
}
