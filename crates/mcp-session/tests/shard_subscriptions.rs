//! The sharded channels a replica reads for what it holds
//! (`mcp_session_fleet::shard_subscriptions`), against a real Redis and a
//! real Redis Cluster: a channel is subscribed while a guard of it lives,
//! confirmed before `ready` returns, unsubscribed with its last guard, and
//! ends subscribed when it is dropped and wanted again at once.

use std::time::Duration;

use mcp_session::RedisConnection;
use mcp_session_fleet::shard_subscriptions::ShardSubscriptions;
use mcp_testkit::{RedisCluster, RedisServer};

/// `PUBSUB SHARDNUMSUB channel`, as `ask` (a `redis-cli` on the node
/// holding the channel's slot) answers it.
fn subscribers(ask: &dyn Fn(&[&str]) -> String, channel: &str) -> i64 {
    let answer = ask(&["pubsub", "shardnumsub", channel]);
    answer
        .lines()
        .nth(1)
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or(-1)
}

/// Waits (a few seconds at most) until `channel` has `expected`
/// subscribers.
async fn settles(ask: &dyn Fn(&[&str]) -> String, channel: &str, expected: i64) {
    for _ in 0..50 {
        if subscribers(ask, channel) == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{channel}: {} subscribers, {expected} expected",
        subscribers(ask, channel)
    );
}

async fn channels_follow_their_guards(url: &str, ask: &dyn Fn(&[&str]) -> String) {
    let redis = RedisConnection::connect(url, 2, Duration::from_secs(2)).expect("a Redis URL");
    let subscriptions = ShardSubscriptions::start(redis);
    // Channels that fall in different slots of a cluster.
    let channels: Vec<String> = (0..6)
        .map(|index| format!("mcp_change:test:all:resource:{index}"))
        .collect();

    let guards: Vec<_> = channels
        .iter()
        .map(|channel| subscriptions.want(channel.clone()))
        .collect();
    for guard in &guards {
        assert!(guard.ready().await, "{} confirmed", guard.channel());
    }
    for channel in &channels {
        assert_eq!(subscribers(ask, channel), 1, "{channel} read once");
    }

    // A second guard of a channel: dropping one keeps it.
    let second = subscriptions.want(channels[0].clone());
    assert!(second.ready().await);
    drop(second);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(subscribers(ask, &channels[0]), 1, "one guard left");

    // Dropped and wanted again at once: subscribed in the end.
    let mut guards = guards;
    let first = guards.remove(0);
    drop(first);
    let again = subscriptions.want(channels[0].clone());
    assert!(again.ready().await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        subscribers(ask, &channels[0]),
        1,
        "wanted again: subscribed"
    );

    // The last guards gone: nothing read any more.
    drop(again);
    drop(guards);
    for channel in &channels {
        settles(ask, channel, 0).await;
    }
    assert!(subscriptions.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_redis() {
    let redis = RedisServer::start();
    channels_follow_their_guards(&redis.url(), &|args| redis.cli(args)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_redis_cluster() {
    let cluster = RedisCluster::start();
    // A node counts the subscribers of the channels of its own slots: the
    // sum over the nodes is the channel's count.
    let ask = |args: &[&str]| {
        let total: i64 = (0..cluster.ports().len())
            .map(|node| {
                let answer = cluster.cli(node, args);
                answer
                    .lines()
                    .nth(1)
                    .and_then(|count| count.trim().parse::<i64>().ok())
                    .unwrap_or(0)
            })
            .sum();
        format!("{}\n{total}", args[2])
    };
    channels_follow_their_guards(&cluster.url(), &ask).await;
}
