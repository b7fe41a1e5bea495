//! The Redis connection shared by the session store and the fleet bus.
//!
//! One [`RedisConnection`] per replica holds a [`fred`] pool for commands and
//! a subscriber client for pub/sub. `REDIS_URL` selects the topology by its
//! scheme: `redis://` and `rediss://` (TLS, e.g. ElastiCache with in-transit
//! encryption) for one server, `redis-cluster://` and `rediss-cluster://` for
//! Redis Cluster (list more seed nodes with `?node=host:port`).
//!
//! Connections reconnect by themselves with exponential back-off (100 ms to
//! 5 s). While Redis is away, commands fail after `REDIS_COMMAND_TIMEOUT_MS`
//! instead of hanging, so requests get a clear `503`, and the service recovers
//! by itself when Redis comes back. A replica can start while Redis is down:
//! `/readyz` reports it until the first connection succeeds.

use std::{sync::Arc, time::Duration};

use fred::{
    clients::{Pool, SubscriberClient},
    prelude::*,
    types::config::{Config as FredConfig, ReconnectPolicy},
};

use mcp_session_core::config::redact_url;

use crate::{
    metrics::{Metrics, RedisOp},
    store::StoreError,
};

/// Converts a Redis error into a store error; the message never carries the
/// URL (which may hold a password).
pub(crate) fn unavailable(error: fred::error::Error) -> StoreError {
    StoreError::Unavailable(format!("redis: {}", error.details()))
}

/// A pool of Redis connections plus a pub/sub subscriber.
#[derive(Clone)]
pub struct RedisConnection {
    pool: Pool,
    subscriber: SubscriberClient,
    clustered: bool,
    /// Where round trips are counted (`mcp_redis_round_trips_total`).
    metrics: Option<Arc<Metrics>>,
}

impl RedisConnection {
    /// Connects to `url` with `pool_size` command connections; each command
    /// times out after `command_timeout`.
    ///
    /// Returns once the configuration is valid, without waiting for Redis to
    /// answer: connections are made (and remade) in the background.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the URL cannot be parsed (message
    /// redacted) or a client cannot be built.
    pub fn connect(
        url: &str,
        pool_size: usize,
        command_timeout: Duration,
    ) -> Result<Self, StoreError> {
        let mut config = FredConfig::from_url(url).map_err(|error| {
            StoreError::Unavailable(format!(
                "REDIS_URL `{}`: {}",
                redact_url(url),
                error.details()
            ))
        })?;
        // Start even when Redis is down; reconnect in the background.
        config.fail_fast = false;
        let clustered = config.server.is_clustered();
        let mut builder = Builder::from_config(config);
        builder
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 5_000, 2))
            .with_performance_config(|performance| {
                performance.default_command_timeout = command_timeout;
            })
            .with_connection_config(|connection| {
                connection.connection_timeout = command_timeout.max(Duration::from_secs(2));
                connection.internal_command_timeout = command_timeout.max(Duration::from_secs(2));
                connection.max_command_attempts = 2;
            });
        let pool = builder.build_pool(pool_size).map_err(unavailable)?;
        let subscriber = builder.build_subscriber_client().map_err(unavailable)?;
        let connection = Self {
            pool,
            subscriber,
            clustered,
            metrics: None,
        };
        let background = connection.clone();
        tokio::spawn(async move {
            if let Err(error) = background.pool.init().await {
                tracing::error!(error = %error.details(), "redis pool did not connect");
            }
            if let Err(error) = background.subscriber.init().await {
                tracing::error!(error = %error.details(), "redis subscriber did not connect");
            }
            // Subscriptions are renewed after reconnections by their user
            // (`bus::FleetBus::keep_subscribed`), not by fred's
            // `manage_subscriptions`, which loses sharded ones.
        });
        Ok(connection)
    }

    /// Counts this connection's round trips in `metrics` (in every clone
    /// made from now on).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// A client span for one Redis `command` sent for `op` when tracing is
    /// on (`redis <COMMAND>`, with `db.system.name` and `db.operation.name`
    /// as OpenTelemetry's database conventions name them), else a disabled
    /// span: instrument the command's future with it.
    pub fn span(&self, op: RedisOp, command: &'static str) -> tracing::Span {
        mcp_session_core::traced_span!(
            "redis",
            otel.name = format!("redis {command}"),
            otel.kind = "client",
            db.system.name = "redis",
            db.operation.name = command,
            mcp.redis.op = op.as_str(),
        )
    }

    /// Counts one round trip for `op`: callers call it once per command or
    /// pipeline they send.
    pub fn round_trip(&self, op: RedisOp) {
        if let Some(metrics) = &self.metrics {
            metrics.redis_round_trip(op);
        }
    }

    /// The command pool.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The pub/sub client.
    pub fn subscriber(&self) -> &SubscriberClient {
        &self.subscriber
    }

    /// Whether `REDIS_URL` named a Redis Cluster.
    pub fn is_clustered(&self) -> bool {
        self.clustered
    }

    /// `PING`: whether Redis answers now.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] with the cause.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.round_trip(RedisOp::Store(crate::metrics::StoreOp::Ping));
        self.pool.next().ping::<()>(None).await.map_err(unavailable)
    }

    /// How many clients subscribe to classic channel `channel` on the whole
    /// of a Redis Cluster: `PUBSUB NUMSUB channel` on each primary, summed
    /// (one round trip per primary, counted as `op`, all at once). A
    /// cluster forwards a `PUBLISH` to every node, but its reply counts
    /// only the subscribers of the node that took it (Redis Cluster
    /// specification, §Pub/Sub), and fred subscribes each client on the
    /// node of its own id's slot. `None` on a single Redis, whose `PUBLISH`
    /// reply is the whole count, or when a primary cannot be asked.
    pub(crate) async fn cluster_subscribers(&self, op: RedisOp, channel: &str) -> Option<i64> {
        if !self.clustered {
            return None;
        }
        let client = self.pool.next();
        let primaries = client.cached_cluster_state()?.unique_primary_nodes();
        let counts = futures::future::join_all(primaries.into_iter().map(|primary| {
            self.round_trip(op);
            let node = client.with_cluster_node(primary);
            async move { node.pubsub_numsub::<Vec<Value>, _>(channel).await }
        }))
        .await;
        counts.into_iter().try_fold(0, |total, count| {
            let count = count.ok()?;
            Some(total + count.get(1).and_then(Value::as_i64).unwrap_or(0))
        })
    }

    /// `PUBSUB SHARDNUMSUB channel`: how many clients subscribe to sharded
    /// channel `channel` (a replica's own channels have one subscriber, the
    /// replica, while it lives); `None` when Redis cannot be asked.
    pub(crate) async fn shard_subscribers(&self, channel: &str) -> Option<i64> {
        let counts: Vec<Value> = self.pool.next().pubsub_shardnumsub(channel).await.ok()?;
        Some(counts.get(1).and_then(Value::as_i64).unwrap_or(0))
    }
}
