//! Several replicas, one control plane: what they share through Redis
//! (`redis:` in the catalog). So far the rate limits: a limit holds across
//! replicas, and a Redis that stops answering leaves each replica limiting
//! on its own until it answers again. Each test keeps its keys under a
//! prefix of its own in database 9, and deletes them.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::relay::relay;
use crate::common::upstream::test_upstream;
use crate::common::{ControlPlane, TESTER_TOKEN, catalog};
use crate::live::wait_for;

const REDIS: &str = "127.0.0.1:6379";
const DATABASE: u8 = 9;

/// A key prefix of this test's own, whose keys are deleted on drop.
struct Prefix(String);

impl Prefix {
    fn new() -> Self {
        Self(format!("mcpcp-test-{:016x}:", rand::random::<u64>()))
    }
}

impl Drop for Prefix {
    fn drop(&mut self) {
        let url = format!("redis://{REDIS}/{DATABASE}");
        let mut redis = redis::Client::open(url).unwrap().get_connection().unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.0))
            .query(&mut redis)
            .unwrap();
        if !keys.is_empty() {
            let _: () = redis::cmd("DEL").arg(keys).query(&mut redis).unwrap();
        }
    }
}

fn shared_catalog(upstream: &str, redis: &str, prefix: &Prefix, limit: &str) -> String {
    let servers = format!("  svc:\n    http: {{url: \"{upstream}\"}}\n");
    format!(
        "{}limits:\n  agent: {limit}\nredis: {{url: \"redis://{redis}/{DATABASE}\", key_prefix: \"{}\", timeout: 200ms}}\n",
        catalog(&servers, "  echo: {server: svc}\n", &["echo"]),
        prefix.0
    )
}

async fn call(cp: &ControlPlane) -> StatusCode {
    let body = json!({"action": "echo", "payload": {}});
    cp.invoke(Some(TESTER_TOKEN), body).await.status()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agents_rate_limit_holds_across_replicas() {
    let upstream = test_upstream(0).await;
    let prefix = Prefix::new();
    let text = shared_catalog(&upstream.url, REDIS, &prefix, "1/h burst 4");
    let replicas = [ControlPlane::start(&text), ControlPlane::start(&text)];
    for cp in &replicas {
        cp.wait_all_ready().await;
    }
    // Round robin: alone, each replica would allow 4 of its 5.
    let mut allowed = 0;
    for i in 0..10 {
        match call(&replicas[i % 2]).await {
            StatusCode::OK => allowed += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("call {i}: {other}"),
        }
    }
    assert_eq!(allowed, 4, "the burst is the agent's, across replicas");
    assert_eq!(upstream.calls(), 4);
    for cp in &replicas {
        assert_eq!(cp.get_json("/readyz").await["redis"]["state"], "up");
        assert!(cp.metrics().await.contains("mcp_cp_redis_up 1"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_redis_a_replica_limits_on_its_own_and_shares_again_when_it_returns() {
    let upstream = test_upstream(0).await;
    let prefix = Prefix::new();
    let redis = relay(REDIS.parse().unwrap()).await;
    let cp = ControlPlane::start(&shared_catalog(
        &upstream.url,
        &redis.addr.to_string(),
        &prefix,
        "1/h burst 3",
    ));
    cp.wait_all_ready().await;

    // Two of the shared burst of 3.
    for _ in 0..2 {
        assert_eq!(call(&cp).await, StatusCode::OK);
    }
    // Redis gone: the replica's own buckets (never touched, so full) take
    // over; still limited, never unlimited.
    redis.cut();
    let mut allowed = 0;
    for _ in 0..5 {
        match call(&cp).await {
            StatusCode::OK => allowed += 1,
            status => assert_eq!(status, StatusCode::TOO_MANY_REQUESTS),
        }
    }
    assert_eq!(allowed, 3, "the replica's own burst");
    assert_eq!(cp.get_json("/readyz").await["redis"]["state"], "down");
    assert!(cp.metrics().await.contains("mcp_cp_redis_up 0"));
    cp.wait_log("redis does not answer").await;

    // Back: the shared bucket, with its one token left.
    redis.restore();
    let mut statuses = Vec::new();
    wait_for("redis to answer again", async || {
        statuses.push(call(&cp).await);
        cp.get_json("/readyz").await["redis"]["state"] == "up"
    })
    .await;
    // The call that found Redis again took the shared bucket's last token
    // (the ones before, while it reconnected, the replica's own, empty).
    assert_eq!(statuses.last(), Some(&StatusCode::OK), "{statuses:?}");
    assert_eq!(call(&cp).await, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fresh_replica_lists_cached_tools_while_its_upstream_is_still_connecting() {
    let upstream = test_upstream(0).await;
    let prefix = Prefix::new();
    let first = ControlPlane::start(&shared_catalog(&upstream.url, REDIS, &prefix, "10/s"));
    first.wait_all_ready().await;
    let key = format!("{}definitions:svc", prefix.0);
    let mut redis = redis::Client::open(format!("redis://{REDIS}/{DATABASE}")).unwrap();
    wait_for("the definitions cached", async || {
        let cached: Option<String> = redis::cmd("GET").arg(&key).query(&mut redis).unwrap();
        cached.is_some_and(|text| text.contains("echo"))
    })
    .await;

    // A second replica whose way to the server hangs: its handshake cannot
    // finish, yet it lists what the first replica's listing cached.
    let port: u16 = (upstream.url.rsplit(':').next().unwrap())
        .trim_end_matches("/mcp")
        .parse()
        .unwrap();
    let hanging = relay(([127, 0, 0, 1], port).into()).await;
    hanging.go_silent();
    let url = format!("http://{}/mcp", hanging.addr);
    let second = ControlPlane::start(
        &shared_catalog(&url, REDIS, &prefix, "10/s")
            .replace("http: {url:", "timeout: 60s\n    http: {url:"),
    );
    wait_for("the cached listing", async || {
        let tools = second.get_tools(TESTER_TOKEN, "?detail=true").await;
        let body: serde_json::Value = tools.json().await.unwrap();
        body["definitions"][0]["description"] == "The echo test tool"
    })
    .await;
    let ready = second.get_json("/readyz").await;
    assert_eq!(ready["servers"][0]["state"], "connecting", "{ready}");
    // Calls wait for the replica's own session.
    assert_eq!(call(&second).await, StatusCode::BAD_GATEWAY);
}
