//! MRTR for 2026-07-28 clients of upstreams with sessions: an upstream of
//! 2025-11-25 asks for input with a request during the call (sampling,
//! elicitation, roots), but a 2026-07-28 client takes no requests; it gets
//! an `input_required` result and retries the call with its answers
//! (SEP-2322), possibly through another hub replica.
//!
//! So for such a call the hub runs the upstream call in a task of its own
//! (a *pending call*, named by a random id) and ends the client's request
//! at the first thing that comes of it:
//!
//! - the upstream's request becomes an `input_required` result whose
//!   `inputRequests` holds it and whose `requestState` is the pending call's
//!   id;
//! - the client's retry, on any replica, pushes each answer of its
//!   `inputResponses` where the task waits for it, and waits for what comes
//!   next (another request, or the call's result).
//!
//! The two meet in queues of the upstream session store (Redis lists for a
//! fleet, named after the caller's user hash and the id, so that no other
//! user can answer or read a pending call):
//!
//! | key | holds |
//! |---|---|
//! | `mcp:hub:pending:<user_hash>:<id>` | what the call produced, in order: `{"input": {"key", "method", "params"}}`, then `{"result": …}` or `{"error": …}` |
//! | `mcp:hub:pending:<user_hash>:<id>:answer:<key>` | the client's answer to input request `key` |
//! | `mcp:hub:pending:<user_hash>:<id>:open` | a marker: the call exists (a retry naming another is refused at once) |
//!
//! The task is the replica's that took the first request; if that replica
//! dies, the call is lost as any call in flight is (the retry then gets an
//! error saying the call is unknown or expired).

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use futures::future::BoxFuture;
use serde_json::{Value, json};

use crate::upstream::{
    CallError,
    http::Relay,
    store::{StoreError, UpstreamSessionStore},
};

/// How often a waiting side looks at its queue.
const POLL: Duration = Duration::from_millis(25);
/// How long the queues of a pending call live beyond the upstream's timeout.
const MARGIN: Duration = Duration::from_secs(30);

/// The queue of what pending call `id` of `user` produced.
fn events_key(user: &str, id: &str) -> String {
    format!("mcp:hub:pending:{user}:{id}")
}

/// The marker of a pending call that exists.
fn open_key(user: &str, id: &str) -> String {
    format!("mcp:hub:pending:{user}:{id}:open")
}

/// The queue of the client's answer to input request `key`.
fn answer_key(user: &str, id: &str, key: &str) -> String {
    format!("mcp:hub:pending:{user}:{id}:answer:{key}")
}

/// A new pending call id: 128 random bits, in hex.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Whether `text` has the shape of a pending call id (what a client's
/// `requestState` must be).
pub fn is_id(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What the client of a pending call gets next.
#[derive(Debug)]
pub enum Next {
    /// The upstream asks for input: `{key: {method, params}}`.
    Input(Value),
    /// The call's result.
    Done(Result<Value, CallError>),
}

/// One pending call, seen from either side.
#[derive(Clone)]
pub struct PendingCall {
    store: Arc<dyn UpstreamSessionStore>,
    user: String,
    id: String,
    /// How long either side waits for the other.
    wait: Duration,
}

impl PendingCall {
    /// Pending call `id` of `user`, whose sides wait at most `wait` (the
    /// upstream's timeout).
    pub fn new(store: Arc<dyn UpstreamSessionStore>, user: &str, id: &str, wait: Duration) -> Self {
        Self {
            store,
            user: user.to_owned(),
            id: id.to_owned(),
            wait,
        }
    }

    /// The id, for the client's `requestState`.
    pub fn id(&self) -> &str {
        &self.id
    }

    async fn push(&self, key: &str, value: &Value) -> Result<(), StoreError> {
        self.store
            .push(key, &value.to_string(), self.wait + MARGIN)
            .await
    }

    /// Waits for the first value of queue `key`.
    async fn pop_within(&self, key: &str) -> Result<Option<Value>, StoreError> {
        let deadline = tokio::time::Instant::now() + self.wait;
        loop {
            if let Some(text) = self.store.pop(key).await? {
                return Ok(serde_json::from_str(&text).ok());
            }
            if tokio::time::Instant::now() > deadline {
                return Ok(None);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The call's side, before it starts: marks the call as existing.
    ///
    /// # Errors
    /// The store's.
    pub async fn open(&self) -> Result<(), StoreError> {
        self.store
            .mark(&open_key(&self.user, &self.id), self.wait + MARGIN)
            .await
    }

    /// The client's side of a retry: whether the call exists (for this
    /// user).
    ///
    /// # Errors
    /// The store's.
    pub async fn exists(&self) -> Result<bool, StoreError> {
        self.store.marked(&open_key(&self.user, &self.id)).await
    }

    /// The call's side: records its outcome.
    pub async fn finish(&self, outcome: &Result<Value, CallError>) {
        let event = match outcome {
            Ok(result) => json!({"result": result}),
            Err(CallError::Rpc { error, .. }) => json!({"error": error}),
            Err(other) => json!({"error": {"code": -32603, "message": other.to_string()}}),
        };
        if let Err(error) = self.push(&events_key(&self.user, &self.id), &event).await {
            tracing::warn!(%error, "the outcome of a pending call could not be stored");
        }
    }

    /// The client's side: hands the client's `answers` (by input key) to
    /// the call.
    ///
    /// # Errors
    /// The store's.
    pub async fn answer(&self, answers: &serde_json::Map<String, Value>) -> Result<(), StoreError> {
        for (key, answer) in answers {
            self.push(&answer_key(&self.user, &self.id, key), answer)
                .await?;
        }
        Ok(())
    }

    /// The client's side: what the call produced next, within the wait.
    pub async fn next(&self) -> Next {
        match self.pop_within(&events_key(&self.user, &self.id)).await {
            Ok(Some(event)) => {
                if let Some(input) = event.get("input") {
                    let key = input["key"].as_str().unwrap_or_default().to_owned();
                    let request = json!({"method": input["method"], "params": input["params"]});
                    Next::Input(json!({ key: request }))
                } else if let Some(result) = event.get("result") {
                    Next::Done(Ok(result.clone()))
                } else {
                    Next::Done(Err(CallError::Rpc {
                        server: String::new(),
                        error: event.get("error").cloned().unwrap_or(Value::Null),
                    }))
                }
            }
            Ok(None) => Next::Done(Err(CallError::Rpc {
                server: String::new(),
                error: json!({"code": -32602, "message":
                    "the call of this requestState is unknown, expired, or did not go on in time: make the call again"}),
            })),
            Err(error) => Next::Done(Err(CallError::Rpc {
                server: String::new(),
                error: json!({"code": -32603, "message": error.to_string()}),
            })),
        }
    }
}

/// The [`Relay`] of a pending call's task: the upstream's requests go to
/// the client as input requests, and their answers come back from the
/// client's retry; notifications have nowhere to go (the client's request
/// has ended) and are dropped.
pub struct QueueRelay {
    call: PendingCall,
    next_key: AtomicU64,
}

impl QueueRelay {
    /// The relay of `call`.
    pub fn new(call: PendingCall) -> Self {
        Self {
            call,
            next_key: AtomicU64::new(1),
        }
    }
}

impl Relay for QueueRelay {
    fn notify(&self, _notification: Value) -> BoxFuture<'_, bool> {
        Box::pin(async { true })
    }

    fn request(&self, request: Value) -> BoxFuture<'_, Value> {
        Box::pin(async move {
            let id = request.get("id").cloned().unwrap_or(Value::Null);
            let key = format!("input-{}", self.next_key.fetch_add(1, Ordering::Relaxed));
            let event = json!({"input": {"key": key, "method": request.get("method"),
                "params": request.get("params").cloned().unwrap_or(json!({}))}});
            let call = &self.call;
            let answered = async {
                call.push(&events_key(&call.user, &call.id), &event).await?;
                call.pop_within(&answer_key(&call.user, &call.id, &key))
                    .await
            };
            match answered.await {
                Ok(Some(result)) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
                Ok(None) => json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32603,
                    "message": "the client did not answer in time"}}),
                Err(error) => json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32603,
                    "message": error.to_string()}}),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::store::MemoryUpstreamStore;

    #[tokio::test]
    async fn a_request_of_the_call_reaches_the_client_and_its_answer_the_call() {
        let store: Arc<dyn UpstreamSessionStore> = MemoryUpstreamStore::new();
        let id = new_id();
        assert!(is_id(&id));
        let call = PendingCall::new(store.clone(), "alice", &id, Duration::from_secs(5));
        call.open().await.unwrap();
        assert!(call.exists().await.unwrap());
        let relay = QueueRelay::new(call.clone());
        let upstream_side = tokio::spawn(async move {
            let answer = relay
                .request(
                    json!({"jsonrpc": "2.0", "id": 7, "method": "sampling/createMessage",
                                "params": {"maxTokens": 5}}),
                )
                .await;
            assert_eq!(answer["id"], 7);
            assert_eq!(answer["result"]["text"], "hi");
        });
        let Next::Input(requests) = call.next().await else {
            panic!("an input request first")
        };
        assert_eq!(requests["input-1"]["method"], "sampling/createMessage");
        // Another user cannot answer it.
        let mallory = PendingCall::new(store.clone(), "mallory", &id, Duration::from_millis(100));
        assert!(!mallory.exists().await.unwrap());
        assert!(matches!(mallory.next().await, Next::Done(Err(_))));
        let mut answers = serde_json::Map::new();
        answers.insert("input-1".into(), json!({"text": "hi"}));
        call.answer(&answers).await.unwrap();
        upstream_side.await.unwrap();
        call.finish(&Ok(json!({"content": []}))).await;
        assert!(
            matches!(call.next().await, Next::Done(Ok(result)) if result["content"] == json!([]))
        );
    }
}
