//! [`Fleet`]: a service as it runs in production, in miniature: one
//! `redis-server`, several replicas of the service's binary on it, and a
//! round-robin nginx in front that knows nothing about sessions.

use std::path::PathBuf;

use crate::{Nginx, RedisServer, ReplicaSet};

/// A Redis, replicas of one binary on it and a round-robin nginx in front of
/// them; dropped in that order (nginx first).
pub struct Fleet {
    /// The load balancer: round robin, no stickiness.
    pub nginx: Nginx,
    /// The service's replicas.
    pub replicas: ReplicaSet,
    /// The Redis they share.
    pub redis: RedisServer,
}

impl Fleet {
    /// `count` replicas of `binary` with `env` (plus `REDIS_URL`, and
    /// `RUST_LOG=debug` unless `env` sets it: log checks read debug output).
    pub async fn start(binary: impl Into<PathBuf>, count: usize, env: &[(String, String)]) -> Self {
        let redis = RedisServer::start();
        let replicas = Self::replicas(binary, &redis, count, env).await;
        let nginx = Nginx::start(&replicas.ports());
        Self {
            nginx,
            replicas,
            redis,
        }
    }

    /// `count` replicas of `binary` on `redis` with `env` (as in
    /// [`start`](Self::start)).
    pub async fn replicas(
        binary: impl Into<PathBuf>,
        redis: &RedisServer,
        count: usize,
        env: &[(String, String)],
    ) -> ReplicaSet {
        let mut env = env.to_vec();
        env.push(("REDIS_URL".into(), redis.url()));
        if !env.iter().any(|(key, _)| key == "RUST_LOG") {
            env.push(("RUST_LOG".into(), "debug".into()));
        }
        let pairs: Vec<(&str, &str)> = env
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect();
        ReplicaSet::start(binary, count, &pairs).await
    }

    /// nginx's URL: `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.nginx.url()
    }

    /// Every replica's log.
    pub fn logs(&self) -> String {
        self.replicas.logs()
    }
}
