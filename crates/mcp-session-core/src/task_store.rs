//! Where tasks live (the Tasks extension, SEP-2663, MCP 2026-07-28): a
//! versioned record per task that any replica can read and change.
//!
//! A task outlives the request that created it, and its `tasks/get`,
//! `tasks/update` and `tasks/cancel` reach any replica, so its state cannot
//! stay in the memory of the replica that runs it. A [`StoredTask`] is a
//! JSON document with a version; every change is *read, change, write if the
//! version is still the one read* ([`TaskStore::write`]), so two replicas
//! changing one task at once (a cancel here, a completion there) never lose
//! each other's change: the loser reads again and decides again.
//!
//! Keys name the owner, as sessions do: `mcp_task:<user_hash>:<task_id>`,
//! so another user's task id is indistinguishable from one that never
//! existed. A task expires by itself at its time to live.
//!
//! Backends: [`MemoryTaskStore`] here (one process); `RedisTaskStore` in
//! `mcp-session-fleet` (a hash with the fields `v` and `r`, changed by a
//! compare-and-set script).

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use parking_lot::Mutex;

use crate::{identity::UserHash, store::StoreError};

/// The key of a task: its owner and its id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TaskKey {
    /// The user the task belongs to.
    pub user: UserHash,
    /// The task id the server issued.
    pub task_id: String,
}

impl TaskKey {
    /// The Redis key: `mcp_task:<user_hash>:<task_id>`.
    pub fn redis_key(&self) -> String {
        format!("mcp_task:{}:{}", self.user.as_str(), self.task_id)
    }
}

/// A task's document and the version it was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTask {
    /// Incremented by every write; the first write is version 1.
    pub version: u64,
    /// The task's JSON document (the library's record of it).
    pub document: String,
}

/// Storage of tasks shared by every replica of a service.
#[async_trait::async_trait]
pub trait TaskStore: Send + Sync + 'static {
    /// The task `key`, if it exists and has not expired.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the backend cannot be reached.
    async fn read(&self, key: &TaskKey) -> Result<Option<StoredTask>, StoreError>;

    /// Writes `document` as version `read + 1` if the task is still at
    /// version `read` (`None`: if it does not exist yet), and sets its time
    /// to live to `ttl`. Returns whether it was written.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the backend cannot be reached.
    async fn write(
        &self,
        key: &TaskKey,
        read: Option<u64>,
        document: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError>;

    /// The backend's name, for logs: `memory` or `redis`.
    fn backend(&self) -> &'static str;
}

/// Tasks in this process's memory: for a service with one replica.
#[derive(Debug, Default)]
pub struct MemoryTaskStore {
    tasks: Mutex<HashMap<TaskKey, (StoredTask, Instant)>>,
}

impl MemoryTaskStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait::async_trait]
impl TaskStore for MemoryTaskStore {
    async fn read(&self, key: &TaskKey) -> Result<Option<StoredTask>, StoreError> {
        let mut tasks = self.tasks.lock();
        let now = Instant::now();
        tasks.retain(|_, (_, expires)| *expires > now);
        Ok(tasks.get(key).map(|(task, _)| task.clone()))
    }

    async fn write(
        &self,
        key: &TaskKey,
        read: Option<u64>,
        document: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let mut tasks = self.tasks.lock();
        let now = Instant::now();
        let current = tasks
            .get(key)
            .filter(|(_, expires)| *expires > now)
            .map(|(task, _)| task.version);
        if current != read {
            return Ok(false);
        }
        let task = StoredTask {
            version: read.unwrap_or(0) + 1,
            document: document.to_owned(),
        };
        tasks.insert(key.clone(), (task, now + ttl));
        Ok(true)
    }

    fn backend(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::PrincipalKind;

    fn key(user: &str, id: &str) -> TaskKey {
        TaskKey {
            user: UserHash::of(PrincipalKind::Jwt, "iss", user),
            task_id: id.to_owned(),
        }
    }

    #[tokio::test]
    async fn writes_only_over_the_version_read() {
        let store = MemoryTaskStore::new();
        let ttl = Duration::from_secs(60);
        let alice = key("alice", "t1");
        assert!(store.write(&alice, None, "a", ttl).await.unwrap());
        assert!(!store.write(&alice, None, "again", ttl).await.unwrap());
        let read = store.read(&alice).await.unwrap().unwrap();
        assert_eq!((read.version, read.document.as_str()), (1, "a"));
        assert!(store.write(&alice, Some(1), "b", ttl).await.unwrap());
        assert!(!store.write(&alice, Some(1), "stale", ttl).await.unwrap());
        assert_eq!(store.read(&alice).await.unwrap().unwrap().document, "b");
        // Another user's task of the same id is another task.
        assert_eq!(store.read(&key("bob", "t1")).await.unwrap(), None);
    }

    #[tokio::test]
    async fn tasks_expire() {
        let store = MemoryTaskStore::new();
        let task = key("alice", "t2");
        assert!(
            store
                .write(&task, None, "a", Duration::from_millis(1))
                .await
                .unwrap()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(store.read(&task).await.unwrap(), None);
        assert!(
            store
                .write(&task, None, "new", Duration::from_secs(1))
                .await
                .unwrap()
        );
    }
}
