//! A [`SessionStore`] wrapper that counts what the metrics report of any
//! backend: sessions created (`mcp_sessions_created_total`) and failed
//! operations (`mcp_store_errors_total`). A refused creation over the
//! per-user limit is an answer, not a store error.

use std::sync::Arc;

use tracing::Instrument;

use crate::store::{SessionPage, SessionRecord, SessionStore, StoreError, StoredSession};
use crate::{
    identity::UserHash,
    metrics::{Metrics, StoreOp},
    traced_span,
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

    /// Runs `work`, the store operation `op`, in a span of its own when
    /// tracing is on (`session_store <op>`, with the backend as
    /// `db.system.name`), and counts its failure.
    async fn run<T>(
        &self,
        op: StoreOp,
        work: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let span = traced_span!(
            "session_store",
            otel.name = format!("session_store {}", op.as_str()),
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            db.system.name = self.inner.backend(),
            db.operation.name = op.as_str(),
        );
        let result = work.instrument(span.clone()).await;
        if let Err(StoreError::Unavailable(_) | StoreError::Corrupt(_)) = &result {
            span.record("otel.status_code", "ERROR");
            self.metrics.store_error(op);
        }
        result
    }
}

#[async_trait::async_trait]
impl SessionStore for MeteredStore {
    async fn create(&self, record: &SessionRecord) -> Result<(), StoreError> {
        let result = self.run(StoreOp::Create, self.inner.create(record)).await;
        if result.is_ok() {
            self.metrics.session_created(record.transport);
        }
        result
    }

    async fn access(&self, user: &UserHash, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        self.run(StoreOp::Access, self.inner.access(user, id)).await
    }

    async fn update(&self, record: &SessionRecord) -> Result<bool, StoreError> {
        self.run(StoreOp::Update, self.inner.update(record)).await
    }

    async fn delete(&self, user: &UserHash, id: &str) -> Result<bool, StoreError> {
        self.run(StoreOp::Delete, self.inner.delete(user, id)).await
    }

    async fn list(&self, user: &UserHash) -> Result<Vec<StoredSession>, StoreError> {
        self.run(StoreOp::List, self.inner.list(user)).await
    }

    async fn peek(&self, user: &UserHash, id: &str) -> Result<Option<StoredSession>, StoreError> {
        self.run(StoreOp::Peek, self.inner.peek(user, id)).await
    }

    async fn find(&self, id: &str) -> Result<Option<StoredSession>, StoreError> {
        self.run(StoreOp::Find, self.inner.find(id)).await
    }

    async fn scan(&self, cursor: Option<&str>, limit: usize) -> Result<SessionPage, StoreError> {
        self.run(StoreOp::Scan, self.inner.scan(cursor, limit))
            .await
    }

    async fn delete_user(&self, user: &UserHash) -> Result<Vec<String>, StoreError> {
        self.run(StoreOp::DeleteUser, self.inner.delete_user(user))
            .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.run(StoreOp::Ping, self.inner.ping()).await
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
