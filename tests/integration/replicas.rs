//! Several replicas, one control plane: what they share through Redis
//! (`redis:` in the catalog), several of them behind HAProxy in round
//! robin. A rate limit holds across replicas, and a Redis that stops
//! answering leaves each replica limiting on its own until it answers
//! again; a fresh replica lists cached definitions; an MCP session goes
//! on whichever replica a request lands on, and hears list changes any
//! replica heard; a replica killed mid-run costs only its calls in flight.
//! Each test keeps its keys under a prefix of its own in database 9, and
//! deletes them.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::haproxy::{Balancer, haproxy};
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
    catalog_of(upstream, redis, prefix, limit, &["echo"])
}

/// A catalog of the test server's `tools` (all the tester's), sharing
/// through `redis`.
fn catalog_of(upstream: &str, redis: &str, prefix: &Prefix, limit: &str, tools: &[&str]) -> String {
    let servers = format!("  svc:\n    http: {{url: \"{upstream}\"}}\n");
    let listed: String = tools
        .iter()
        .map(|t| format!("  {t}: {{server: svc}}\n"))
        .collect();
    format!(
        "{}limits:\n  agent: {limit}\nredis: {{url: \"redis://{redis}/{DATABASE}\", key_prefix: \"{}\", timeout: 200ms}}\n",
        catalog(&servers, &listed, tools),
        prefix.0
    )
}

async fn call(cp: &ControlPlane) -> StatusCode {
    let body = json!({"action": "echo", "payload": {}});
    cp.invoke(Some(TESTER_TOKEN), body).await.status()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agents_rate_limit_holds_across_replicas() {
    let cluster = cluster(2, &["echo"], "1/h burst 4").await;
    // Round robin: alone, each replica would allow 4 of its 5.
    let http = reqwest::Client::new();
    let mut allowed = 0;
    for i in 0..10 {
        let answer = (http.post(cluster.balancer.url("/invoke")))
            .bearer_auth(TESTER_TOKEN)
            .json(&json!({"action": "echo", "payload": {}}))
            .send()
            .await
            .unwrap();
        match answer.status() {
            StatusCode::OK => allowed += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("call {i}: {other}"),
        }
    }
    assert_eq!(allowed, 4, "the burst is the agent's, across replicas");
    assert_eq!(cluster.upstream.calls(), 4);
    for (i, cp) in cluster.replicas.iter().enumerate() {
        let refused = (cp.audit_records().iter())
            .filter(|r| r["outcome"] == "rate_limited")
            .count();
        assert!(
            refused >= 1,
            "replica {i} refused none: the balancer skipped it"
        );
        assert_eq!(cp.readyz().await["redis"]["state"], "up");
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
    assert_eq!(cp.readyz().await["redis"]["state"], "down");
    assert!(cp.metrics().await.contains("mcp_cp_redis_up 0"));
    cp.wait_log("redis does not answer").await;

    // Back: the shared bucket, with its one token left.
    redis.restore();
    let mut statuses = Vec::new();
    wait_for("redis to answer again", async || {
        statuses.push(call(&cp).await);
        cp.readyz().await["redis"]["state"] == "up"
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
    let ready = second.readyz().await;
    assert_eq!(ready["servers"][0]["state"], "connecting", "{ready}");
    // Calls wait for the replica's own session.
    assert_eq!(call(&second).await, StatusCode::BAD_GATEWAY);
}

/// Replicas sharing through Redis, behind HAProxy.
struct Cluster {
    upstream: crate::common::upstream::HttpUpstream,
    replicas: Vec<ControlPlane>,
    balancer: Balancer,
    _prefix: Prefix,
}

async fn cluster(replicas: usize, tools: &[&str], limit: &str) -> Cluster {
    cluster_of(replicas, tools, limit, |text| text).await
}

/// A cluster whose catalog is `edit`ed first.
async fn cluster_of(
    replicas: usize,
    tools: &[&str],
    limit: &str,
    edit: impl Fn(String) -> String,
) -> Cluster {
    let upstream = test_upstream(0).await;
    let prefix = Prefix::new();
    let text = edit(catalog_of(&upstream.url, REDIS, &prefix, limit, tools));
    let replicas: Vec<_> = (0..replicas).map(|_| ControlPlane::start(&text)).collect();
    for cp in &replicas {
        cp.wait_all_ready().await;
    }
    let balancer = haproxy(&replicas.iter().collect::<Vec<_>>()).await;
    Cluster {
        upstream,
        replicas,
        balancer,
        _prefix: prefix,
    }
}

/// One MCP message over raw HTTP to `url`, in `session`: the status, the
/// session id it names, and the JSON-RPC answer (from a JSON or an SSE body).
async fn post(
    url: &str,
    session: Option<&str>,
    message: Value,
) -> (StatusCode, Option<String>, Value) {
    let mut request = reqwest::Client::new()
        .post(url)
        .bearer_auth(TESTER_TOKEN)
        .header("accept", "application/json, text/event-stream")
        .json(&message);
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let named = (response.headers().get("mcp-session-id")).map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    let json = (text.lines())
        .filter_map(|line| line.strip_prefix("data:"))
        .chain([text.as_str()])
        .find_map(|data| {
            serde_json::from_str::<Value>(data.trim())
                .ok()
                .filter(|v| v.get("id").is_some())
        })
        .unwrap_or(Value::Null);
    (status, named, json)
}

/// Read the session stream `stream` until `expected` comes.
async fn hear(mut stream: reqwest::Response, expected: &str) -> String {
    let mut heard = String::new();
    let listened = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while !heard.contains(expected) {
            let chunk = stream
                .chunk()
                .await
                .unwrap()
                .expect("the stream stays open");
            heard.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;
    assert!(listened.is_ok(), "no {expected} on the stream: {heard:?}");
    heard
}

/// The session's stream (`GET /mcp`) from `cp`.
async fn open_stream(cp: &ControlPlane, session: &str) -> reqwest::Response {
    let stream = reqwest::Client::new()
        .get(cp.url("/mcp"))
        .bearer_auth(TESTER_TOKEN)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", session)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    stream
}

/// Open a session through `url`, handshake done.
async fn open_session(url: &str) -> String {
    let initialize = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}});
    let (status, session, _) = post(url, None, initialize).await;
    assert_eq!(status, StatusCode::OK);
    let session = session.expect("a session id");
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let (status, _, _) = post(url, Some(&session), initialized).await;
    assert!(status.is_success(), "{status}");
    session
}

fn echo_call(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "echo", "arguments": {"n": id}}})
}

/// The outcomes of `tool`'s calls in the audit store of `cp` (read from
/// its SQLite file, so also after it was killed).
fn outcomes_in_store(cp: &ControlPlane, tool: &str) -> Vec<String> {
    let store = cp
        .config
        .parent()
        .unwrap()
        .join(".mcp-control-plane/audit.db");
    let connection = rusqlite::Connection::open(store).unwrap();
    let mut statement = connection
        .prepare("SELECT outcome FROM audit_records WHERE tool = ?1")
        .unwrap();
    (statement.query_map([tool], |row| row.get(0)).unwrap())
        .map(Result::unwrap)
        .collect()
}

fn echo_calls_of(cp: &ControlPlane) -> usize {
    (cp.audit_records().iter())
        .filter(|r| r["action"] == "call" && r["tool"] == "echo" && r["outcome"] == "ok")
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_goes_on_whichever_replica_the_balancer_picks_and_hears_list_changes_any_replica_heard()
 {
    let cluster = cluster(3, &["echo", "grow", "grown"], "1000/s").await;
    let mcp = cluster.balancer.url("/mcp");
    let session = open_session(&mcp).await;

    // Round robin: the calls land on every replica, and each one goes on
    // in the session the first replica opened.
    for id in 1..=6 {
        let (status, _, answer) = post(&mcp, Some(&session), echo_call(id)).await;
        assert_eq!(status, StatusCode::OK, "call {id}: {answer}");
        let text = answer["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_default();
        assert!(text.contains(&format!("\"n\":{id}")), "call {id}: {answer}");
    }
    for (i, cp) in cluster.replicas.iter().enumerate() {
        assert!(
            echo_calls_of(cp) >= 1,
            "replica {i} served none of the session's calls"
        );
    }
    // Another agent cannot use the session on a replica that restores it.
    let other = reqwest::Client::new()
        .post(cluster.replicas[2].url("/mcp"))
        .bearer_auth(crate::common::ANALYST_TOKEN)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &session)
        .json(&echo_call(7))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);

    // The session's stream on replica 1; the server tells only replica 0's
    // session that its tools changed. Replica 1 hears it from replica 0.
    let stream = open_stream(&cluster.replicas[1], &session).await;
    let list = json!({"jsonrpc": "2.0", "id": 8, "method": "tools/list"});
    let (status, _, answer) = post(&cluster.replicas[1].url("/mcp"), Some(&session), list).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let body = json!({"action": "grow", "payload": {}});
    let grown = cluster.replicas[0].invoke(Some(TESTER_TOKEN), body).await;
    assert_eq!(grown.status(), StatusCode::OK);
    hear(stream, "notifications/tools/list_changed").await;
    let list = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"});
    let (_, _, answer) = post(&cluster.replicas[1].url("/mcp"), Some(&session), list).await;
    let names: Vec<_> = (answer["result"]["tools"].as_array().unwrap().iter())
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(names.contains(&"grown".to_owned()), "{answer}");

    // Ended through one replica, the session is gone on all of them.
    let ended = reqwest::Client::new()
        .delete(cluster.balancer.url("/mcp"))
        .bearer_auth(TESTER_TOKEN)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert!(ended.status().is_success(), "{}", ended.status());
    for (i, cp) in cluster.replicas.iter().enumerate() {
        let url = cp.url("/mcp");
        wait_for(&format!("the session ended on replica {i}"), async || {
            post(&url, Some(&session), echo_call(10)).await.0 == StatusCode::NOT_FOUND
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_killed_mid_run_costs_only_the_calls_it_had_in_flight() {
    use rmcp::ServiceExt;
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;

    let mut cluster = cluster(3, &["echo", "progress"], "1000/s").await;
    let config = StreamableHttpClientTransportConfig::with_uri(cluster.balancer.url("/mcp"))
        .auth_header(TESTER_TOKEN);
    let client = ().serve(StreamableHttpClientTransport::from_config(config)).await.unwrap();
    let call = |tool: &str| {
        let params = rmcp::model::CallToolRequestParams::new(tool.to_owned());
        let peer = client.peer().clone();
        async move {
            let called =
                tokio::time::timeout(std::time::Duration::from_secs(20), peer.call_tool(params));
            called
                .await
                .map_err(|_| "no answer in 20 s".to_owned())?
                .map_err(|e| e.to_string())
        }
    };
    for _ in 0..3 {
        call("echo").await.expect("a call before the kill");
    }

    // Six slow calls in flight on all three replicas; one replica dies.
    let before = cluster.upstream.calls();
    let in_flight: Vec<_> = (0..6).map(|_| tokio::spawn(call("progress"))).collect();
    wait_for("every call at the server", async || {
        cluster.upstream.calls() == before + 6
    })
    .await;
    cluster.replicas[0].kill();
    let mut failed = 0;
    for call in in_flight {
        failed += usize::from(call.await.unwrap().is_err());
    }
    // What the killed replica had in flight is in its audit store as
    // intents without an outcome (each is durable before the call leaves):
    // exactly those calls failed.
    let unfinished = outcomes_in_store(&cluster.replicas[0], "progress")
        .into_iter()
        .filter(|outcome| outcome == "unfinished")
        .count();
    assert!(
        unfinished >= 1,
        "round robin sent replica 0 none of the six"
    );
    assert_eq!(
        failed, unfinished,
        "the calls replica 0 had in flight, and no other, failed"
    );

    // The client goes on through the balancer, on the replicas left.
    let survivors = echo_calls_of(&cluster.replicas[1]) + echo_calls_of(&cluster.replicas[2]);
    for i in 0..6 {
        let result = call("echo").await;
        assert!(result.is_ok(), "call {i} after the kill: {result:?}");
    }
    let now = echo_calls_of(&cluster.replicas[1]) + echo_calls_of(&cluster.replicas[2]);
    assert_eq!(now, survivors + 6);
}

/// A client that answers a sampling request, as an agent's model would.
#[derive(Clone)]
struct Sampler;

impl rmcp::ClientHandler for Sampler {
    // Sampling is deprecated from the 2026-07-28 revision on; the
    // initialize era relays it.
    #[allow(deprecated)]
    fn get_info(&self) -> rmcp::model::ClientConfig {
        let capabilities = rmcp::model::ClientCapabilities::builder()
            .enable_sampling()
            .build();
        rmcp::model::ClientConfig::new(
            capabilities,
            rmcp::model::Implementation::new("sampler", "1"),
        )
        .with_protocol_version(rmcp::model::ProtocolVersion::V_2025_11_25)
    }

    #[allow(deprecated)]
    async fn create_message(
        &self,
        _: rmcp::model::CreateMessageRequestParams,
        _: rmcp::service::RequestContext<rmcp::RoleClient>,
    ) -> Result<rmcp::model::CreateMessageResult, rmcp::ErrorData> {
        Ok(rmcp::model::CreateMessageResult::new(
            rmcp::model::SamplingMessage::assistant_text("42"),
            "test-model".into(),
        ))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clients_answer_to_a_relayed_request_reaches_the_replica_waiting_for_it() {
    use rmcp::ServiceExt;
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;

    let cluster = cluster(2, &["ask"], "1000/s").await;
    let config = StreamableHttpClientTransportConfig::with_uri(cluster.balancer.url("/mcp"))
        .auth_header(TESTER_TOKEN);
    let client = Sampler
        .serve(StreamableHttpClientTransport::from_config(config))
        .await
        .unwrap();
    // The call and the client's answer to the server's question are two
    // requests; in round robin the answer goes to the other replica for
    // about every other call.
    for i in 0..6 {
        let params = rmcp::model::CallToolRequestParams::new("ask");
        let called =
            tokio::time::timeout(std::time::Duration::from_secs(20), client.call_tool(params));
        let answer = called
            .await
            .unwrap_or_else(|_| panic!("call {i}: no answer"));
        let answer = answer.unwrap_or_else(|e| panic!("call {i}: {e}"));
        let text = &answer.content[0].as_text().unwrap().text;
        assert!(
            text.contains("client answered") && text.contains("42"),
            "call {i}: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resource_update_reaches_the_session_on_the_replica_holding_its_stream() {
    use crate::common::upstream::DOC_URI;
    let with_docs = |text: String| {
        text.replace(
            "tools:\n",
            "resources:\n  docs: {server: svc, uri_prefix: \"test://\"}\ntools:\n",
        )
        .replace(
            "tester: [touch]",
            "tester: {tools: [touch], resources: [docs]}",
        )
    };
    let cluster = cluster_of(2, &["touch"], "1000/s", with_docs).await;
    let (first, second) = (&cluster.replicas[0], &cluster.replicas[1]);
    // Subscribed through the first replica (whose upstream session then
    // hears the server's updates), streaming from the second.
    let session = open_session(&first.url("/mcp")).await;
    let subscribe = json!({"jsonrpc": "2.0", "id": 1, "method": "resources/subscribe", "params": {"uri": DOC_URI}});
    let (status, _, answer) = post(&first.url("/mcp"), Some(&session), subscribe).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(answer.get("result").is_some(), "{answer}");
    let stream = open_stream(second, &session).await;
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let (status, _, answer) = post(&second.url("/mcp"), Some(&session), list).await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    let touched = first.invoke(
        Some(TESTER_TOKEN),
        json!({"action": "touch", "payload": {}}),
    );
    assert_eq!(touched.await.status(), StatusCode::OK);
    let heard = hear(stream, "notifications/resources/updated").await;
    assert!(heard.contains(DOC_URI), "{heard}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_that_stopped_hearing_the_others_catches_up_on_the_list_changes_it_missed() {
    let upstream = test_upstream(0).await;
    let prefix = Prefix::new();
    let tools = ["echo", "grow", "grown"];
    let first = ControlPlane::start(&catalog_of(&upstream.url, REDIS, &prefix, "1000/s", &tools));
    // The second reaches Redis through a relay that can be cut.
    let redis = relay(REDIS.parse().unwrap()).await;
    let through = redis.addr.to_string();
    let second = ControlPlane::start(&catalog_of(
        &upstream.url,
        &through,
        &prefix,
        "1000/s",
        &tools,
    ));
    first.wait_all_ready().await;
    second.wait_all_ready().await;
    let missing = |ready: &Value| ready["servers"][0]["missing_tools"].clone();
    assert_eq!(missing(&second.readyz().await), json!(["grown"]));

    // The second stops hearing the others; meanwhile the server tells only
    // the first's session that it offers `grown`, and the first tells a
    // channel the second is not on.
    redis.cut();
    second
        .wait_log("lost the subscription to the other replicas' events")
        .await;
    let grown = first
        .invoke(Some(TESTER_TOKEN), json!({"action": "grow", "payload": {}}))
        .await;
    assert_eq!(grown.status(), StatusCode::OK);
    wait_for("the first lists grown", async || {
        missing(&first.readyz().await) == json!([])
    })
    .await;
    assert_eq!(missing(&second.readyz().await), json!(["grown"]));

    // Hearing again, it lists the server again and has caught up.
    redis.restore();
    wait_for("the second caught up", async || {
        missing(&second.readyz().await) == json!([])
    })
    .await;
}
