//! The postgres service behind the hub: three replicas of it on one Redis
//! and one PostgreSQL cluster (the sample HR database), behind their own
//! nginx, and three hub replicas in front. Two users each query through
//! their own upstream session (`"sharing": "user"`), with the data the
//! service returns directly.

#[path = "../../postgres/tests/common/mod.rs"]
mod common;
mod support;

use common::PgCluster;
use mcp_testkit::{
    Nginx, RedisServer, ReplicaSet,
    auth::{self, Auth},
    workspace_binary,
};
use serde_json::json;
use support::HubFleet;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_postgres_service_through_the_hub() {
    let cluster = PgCluster::shared();
    let redis = RedisServer::start();
    let (redis_url, database_url) = (redis.url(), cluster.superuser_url());
    let replicas = ReplicaSet::start(
        workspace_binary("postgres"),
        3,
        &[
            ("REDIS_URL", &redis_url),
            ("DATABASE_URL", &database_url),
            ("PG_READONLY_PASSWORD", common::READONLY_PASSWORD),
            ("PG_POOL_SIZE", "4"),
        ],
    )
    .await;
    let nginx = Nginx::start(&replicas.ports());
    let config = json!({"servers": {
        "postgres": {"url": format!("{}/mcp", nginx.url()), "sharing": "user"},
    }});
    let hub = HubFleet::start(&config, 3).await;

    // The expected answer, from the database itself.
    let engineers = cluster.psql(
        common::DATABASE,
        "SELECT count(*) FROM employees e JOIN departments d ON d.id = e.department_id WHERE d.name = 'Engineering'",
    );
    let engineers: i64 = engineers.trim().parse().expect("a count");

    for user in ["alice", "bob"] {
        let auth = Auth::Bearer(auth::token_for(user));
        let mut session = hub.session(&auth, "/mcp", &[], json!({})).await;
        for _ in 0..5 {
            let page = session
                .call_tool(
                    "postgres__query_employees",
                    json!({"department": "Engineering", "limit": 5}),
                )
                .await
                .unwrap_or_else(|error| panic!("{error:?}\n{}", hub.replicas.logs()));
            assert_eq!(page["isError"], json!(false), "{page}");
            assert_eq!(
                page["structuredContent"]["total"],
                json!(engineers),
                "{page}"
            );
        }
        let schema = session
            .call_tool("postgres__get_employee_schema", json!({}))
            .await
            .unwrap();
        assert!(schema.to_string().contains("employees"), "{schema}");
    }
    // One upstream session per user.
    assert_eq!(hub.keys("mcp:upstream:session:postgres:u-*").len(), 2);
}
