//! The per-user session index (`mcp_user_index:<user_hash>`) stays true to
//! the sessions that exist (red-team finding 3): entries of sessions that
//! expired or were evicted are removed, an access never keeps a gone
//! session listed, an evicted index is rebuilt by the next touch of each
//! live session, and `MAX_SESSIONS_PER_USER` counts only sessions that
//! exist, on a real `redis-server`, first with deletions standing for
//! evictions, then under a real `maxmemory` with `allkeys-random`; and on a
//! real Redis Cluster, where a record and its user's index are in different
//! slots and are written apart (on a single Redis, by one script); and
//! after Redis lost its script cache (restart, failover).

use std::time::Duration;

use fred::interfaces::ClientLike;
use mcp_session::{
    Caller, PrincipalKind, RedisConnection,
    store::{SessionRecord, SessionStore, StoreError, TransportKind},
};
use mcp_session_fleet::RedisStore;
use mcp_testkit::{RedisCluster, RedisServer};

fn connect(redis: &RedisServer) -> RedisConnection {
    RedisConnection::connect(&redis.url(), 2, Duration::from_secs(2)).expect("a Redis URL")
}

fn user(name: &str) -> mcp_session::UserHash {
    Caller::new(PrincipalKind::Jwt, "https://issuer.test", name).user_hash
}

fn record(user: &mcp_session::UserHash, id: String) -> SessionRecord {
    SessionRecord::new(
        id,
        user.clone(),
        TransportKind::StreamableHttp,
        "index-test",
    )
}

/// The ids in the user's index, sorted.
fn listed(redis: &RedisServer, user: &mcp_session::UserHash) -> Vec<String> {
    let mut ids: Vec<String> = redis
        .cli(&["zrange", &format!("mcp_user_index:{user}"), "0", "-1"])
        .lines()
        .map(str::to_owned)
        .filter(|line| !line.is_empty())
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_and_the_limit_count_only_sessions_that_exist() {
    let redis = RedisServer::start();
    let store = RedisStore::new(connect(&redis), Duration::from_secs(60))
        .with_max_sessions_per_user(Some(10));
    let alice = user("alice");

    // Ten sessions fill the limit; four of them are evicted.
    let ids: Vec<String> = (0..10).map(|index| format!("alice-{index:02}")).collect();
    for id in &ids {
        store.create(&record(&alice, id.clone())).await.unwrap();
    }
    assert!(matches!(
        store.create(&record(&alice, "alice-over".into())).await,
        Err(StoreError::TooManySessions { limit: 10 })
    ));
    assert!(
        store.peek(&alice, "alice-over").await.unwrap().is_none(),
        "the record of a refused session stays"
    );
    assert!(matches!(
        store.create(&record(&alice, ids[5].clone())).await,
        Err(StoreError::Corrupt(_))
    ));
    for id in &ids[..4] {
        redis.cli(&["del", &format!("mcp_user_session:{alice}:{id}")]);
    }
    // An access to an evicted session finds nothing and unlists it.
    assert!(store.access(&alice, &ids[0]).await.unwrap().is_none());
    assert!(!listed(&redis, &alice).contains(&ids[0]));
    // Six live: four more fit, and not five.
    for index in 0..4 {
        store
            .create(&record(&alice, format!("alice-new-{index}")))
            .await
            .unwrap_or_else(|error| panic!("creation {index} with 6 live sessions: {error}"));
    }
    assert!(matches!(
        store.create(&record(&alice, "alice-new-over".into())).await,
        Err(StoreError::TooManySessions { limit: 10 })
    ));
    assert_eq!(listed(&redis, &alice).len(), 10);
    assert_eq!(store.list(&alice).await.unwrap().len(), 10);

    // The index itself evicted: each live session's next touch lists it again.
    redis.cli(&["del", &format!("mcp_user_index:{alice}")]);
    let live: Vec<String> = ids[4..]
        .iter()
        .cloned()
        .chain((0..4).map(|index| format!("alice-new-{index}")))
        .collect();
    for id in &live {
        assert!(store.access(&alice, id).await.unwrap().is_some(), "{id}");
    }
    let mut expected = live.clone();
    expected.sort();
    assert_eq!(listed(&redis, &alice), expected);

    // Expired sessions leave the index at the user's next creation or access.
    let short = RedisStore::new(connect(&redis), Duration::from_secs(1));
    let bob = user("bob");
    for index in 0..20 {
        short
            .create(&record(&bob, format!("bob-short-{index}")))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(2100)).await;
    store
        .create(&record(&bob, "bob-long".into()))
        .await
        .unwrap();
    assert_eq!(listed(&redis, &bob), ["bob-long"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_created_after_redis_forgets_its_scripts() {
    // The store sends its scripts by their SHA-1 (`EVALSHA`); a restarted or
    // failed-over Redis has an empty script cache and answers `NOSCRIPT`.
    let redis = RedisServer::start();
    let store = RedisStore::new(connect(&redis), Duration::from_secs(60))
        .with_max_sessions_per_user(Some(1));
    let carol = user("carol");
    store
        .create(&record(&carol, "carol-1".into()))
        .await
        .unwrap();
    // Its record evicted while the index still lists it: the next creation
    // finds the index full and takes the place by the second script.
    redis.cli(&["del", &format!("mcp_user_session:{carol}:carol-1")]);
    redis.cli(&["script", "flush"]);
    store
        .create(&record(&carol, "carol-2".into()))
        .await
        .unwrap();
    assert_eq!(listed(&redis, &carol), ["carol-2"]);
    redis.cli(&["script", "flush"]);
    assert!(matches!(
        store.create(&record(&carol, "carol-3".into())).await,
        Err(StoreError::TooManySessions { limit: 1 })
    ));
    assert_eq!(listed(&redis, &carol), ["carol-2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_the_limit_counts_only_sessions_that_exist() {
    let cluster = RedisCluster::start();
    let connection = RedisConnection::connect(&cluster.url(), 2, Duration::from_secs(2))
        .expect("a Redis Cluster URL");
    // Each client of the pool learns the cluster's slots once connected.
    tokio::time::timeout(
        Duration::from_secs(10),
        connection.pool().wait_for_connect(),
    )
    .await
    .expect("connected within 10 s")
    .expect("connected");
    let store =
        RedisStore::new(connection, Duration::from_secs(60)).with_max_sessions_per_user(Some(3));
    let alice = user("alice");
    for index in 0..3 {
        store
            .create(&record(&alice, format!("c-{index}")))
            .await
            .unwrap();
    }
    assert!(matches!(
        store.create(&record(&alice, "c-over".into())).await,
        Err(StoreError::TooManySessions { limit: 3 })
    ));
    assert!(
        store.peek(&alice, "c-over").await.unwrap().is_none(),
        "the record of a refused session stays"
    );
    assert!(matches!(
        store.create(&record(&alice, "c-1".into())).await,
        Err(StoreError::Corrupt(_))
    ));
    // A record gone (evicted) frees its place at the next creation.
    cluster.cli(0, &["-c", "del", &format!("mcp_user_session:{alice}:c-0")]);
    store.create(&record(&alice, "c-new".into())).await.unwrap();
    let mut live: Vec<String> = store
        .list(&alice)
        .await
        .unwrap()
        .into_iter()
        .map(|session| session.record.id)
        .collect();
    live.sort();
    assert_eq!(live, ["c-1", "c-2", "c-new"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_maxmemory_eviction_the_limit_counts_live_sessions() {
    let redis = RedisServer::start();
    let store = RedisStore::new(connect(&redis), Duration::from_secs(600))
        .with_max_sessions_per_user(Some(40));
    let users: Vec<_> = (0..20)
        .map(|index| user(&format!("user-{index}")))
        .collect();
    for (number, user) in users.iter().enumerate() {
        for index in 0..40 {
            store
                .create(&record(user, format!("u{number}-s{index}")))
                .await
                .unwrap();
        }
    }
    // Memory runs short: Redis evicts keys (sessions and indexes alike) to
    // make room for other data. `allkeys-random` spreads the evictions over
    // every user (LRU would take the oldest users whole), the hardest case
    // for the index: some users lose their index and keep sessions, others
    // lose some sessions and keep the index.
    let used: u64 = redis
        .cli(&["info", "memory"])
        .lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .and_then(|value| value.trim().parse().ok())
        .expect("used_memory");
    redis.cli(&["config", "set", "maxmemory-policy", "allkeys-random"]);
    redis.cli(&[
        "config",
        "set",
        "maxmemory",
        &(used + 64 * 1024).to_string(),
    ]);
    let filler = "x".repeat(8 * 1024);
    for index in 0..200 {
        redis.cli(&["set", &format!("filler:{index}"), &filler]);
    }
    let evicted: u64 = redis
        .cli(&["info", "stats"])
        .lines()
        .find_map(|line| line.strip_prefix("evicted_keys:"))
        .and_then(|value| value.trim().parse().ok())
        .expect("evicted_keys");
    assert!(evicted > 100, "only {evicted} keys evicted");
    redis.cli(&["config", "set", "maxmemory", "0"]);

    let mut users_with_losses = 0;
    for (number, user) in users.iter().enumerate() {
        let ids: Vec<String> = (0..40).map(|index| format!("u{number}-s{index}")).collect();
        let mut live: Vec<String> = ids
            .iter()
            .filter(|id| {
                redis
                    .cli(&["exists", &format!("mcp_user_session:{user}:{id}")])
                    .trim()
                    == "1"
            })
            .cloned()
            .collect();
        if live.len() < ids.len() {
            users_with_losses += 1;
        }
        let index_kept = redis
            .cli(&["exists", &format!("mcp_user_index:{user}")])
            .trim()
            == "1";
        if number % 2 == 0 {
            // Every live session is listed after its touch, and only those.
            for id in &ids {
                let found = store.access(user, id).await.unwrap().is_some();
                assert_eq!(found, live.contains(id), "user {number}, {id}");
            }
            live.sort();
            assert_eq!(listed(&redis, user), live, "user {number}");
        }
        // Touched or not, the limit counts only the live sessions.
        // The limit counts them: exactly 40 - live more fit.
        for index in 0..40 - live.len() {
            store
                .create(&record(user, format!("u{number}-again-{index}")))
                .await
                .unwrap_or_else(|error| {
                    panic!(
                        "user {number}, {} live, creation {index}: {error}",
                        live.len()
                    )
                });
        }
        // One more is refused, unless the index was evicted and its live
        // sessions were not touched since: they are not counted until their
        // next request lists them again (docs/sessions.md, Eviction).
        if number % 2 == 0 || index_kept {
            assert!(
                matches!(
                    store.create(&record(user, format!("u{number}-over"))).await,
                    Err(StoreError::TooManySessions { limit: 40 })
                ),
                "user {number}: one session over the limit"
            );
        }
    }
    assert!(users_with_losses > 0, "no user lost a session to eviction");
}
