//! The router's guards per server. Circuit breakers: a server that keeps
//! failing is not called for a cool-down, then one probe decides; a tool's
//! own error is no failure. Concurrency limits: a server's calls at once
//! and waiting are bounded, and a busy server holds up no other.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::upstream::test_upstream;
use crate::common::{ControlPlane, TESTER_TOKEN, catalog};

async fn invoke(cp: &ControlPlane, tool: &str) -> (StatusCode, Value) {
    let response = cp
        .invoke(Some(TESTER_TOKEN), json!({"action": tool, "payload": {}}))
        .await;
    (response.status(), response.json().await.unwrap())
}

async fn circuit_state(cp: &ControlPlane) -> Value {
    let ready = cp.readyz().await;
    let servers = ready["servers"].as_array().unwrap();
    servers.iter().find(|s| s["name"] == "svc").unwrap()["circuit"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_server_is_not_called_until_a_probe_succeeds() {
    let upstream = test_upstream(0).await;
    let servers = format!(
        "  svc:\n    http: {{url: \"{}\"}}\n    timeout: 300ms\n    \
         circuit: {{consecutive_failures: 2, cooldown: 5s}}\n",
        upstream.url
    );
    let tools = "  echo: {server: svc}\n  hang: {server: svc}\n  fail: {server: svc}\n";
    let cp = ControlPlane::start(&catalog(&servers, tools, &["echo", "hang", "fail"]));
    cp.wait_all_ready().await;
    assert_eq!(circuit_state(&cp).await, "closed");

    // A tool's own error result is an answer, not a failing server.
    for _ in 0..3 {
        let (status, body) = invoke(&cp, "fail").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["result"]["isError"], true);
    }
    assert_eq!(circuit_state(&cp).await, "closed");

    // Two time-outs in a row open it.
    for _ in 0..2 {
        let (status, body) = invoke(&cp, "hang").await;
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    }
    assert_eq!(circuit_state(&cp).await, "open");
    let metrics = cp.metrics().await;
    assert!(
        metrics.contains("mcp_cp_circuit_state{server=\"svc\"} 1"),
        "{metrics}"
    );

    // Open: refused at once, for every tool of the server, which is not
    // contacted; the answer names no server.
    let calls = upstream.calls();
    let (status, body) = invoke(&cp, "echo").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "upstream_circuit_open");
    assert!(!body.to_string().contains("svc"), "{body}");
    assert!(!body.to_string().contains("127.0.0.1"), "{body}");
    assert_eq!(upstream.calls(), calls, "an open circuit calls nobody");
    let trace_id = body["trace_id"].as_str().unwrap();
    let record = cp.audit_record(trace_id).await;
    assert_eq!(record["outcome"], "circuit_open", "{record}");

    // After the cool-down (5 s: the checks above fit in it on a loaded
    // machine) one probe goes through; its success closes it.
    crate::live::wait_for("the cool-down's end", async || {
        circuit_state(&cp).await == "half_open"
    })
    .await;
    assert_eq!(upstream.calls(), calls, "no call during the cool-down");
    let (status, body) = invoke(&cp, "echo").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(upstream.calls(), calls + 1);
    assert_eq!(circuit_state(&cp).await, "closed");
    let (status, _) = invoke(&cp, "echo").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_busy_server_refuses_beyond_its_queue_and_holds_up_no_other() {
    let (slow, other) = (test_upstream(0).await, test_upstream(0).await);
    let servers = format!(
        "  svc:\n    http: {{url: \"{}\"}}\n    timeout: 60s\n    \
         concurrency: {{max: 1, queue: 1}}\n  other:\n    http: {{url: \"{}\"}}\n",
        slow.url, other.url
    );
    let tools = "  echo: {server: svc}\n  other_echo: {server: other, upstream_name: echo}\n";
    let cp = ControlPlane::start(&catalog(&servers, tools, &["echo", "other_echo"]));
    cp.wait_all_ready().await;
    let gauge = |name: &str| format!("mcp_cp_upstream_{name}{{server=\"svc\"}} 1");

    // The server holds its calls: one at the server, then one waiting for
    // its slot, for as long as the test says.
    slow.hold();
    let held = invoke(&cp, "echo");
    let queued = async {
        crate::live::wait_for("a call at the server", async || {
            (cp.metrics().await).contains(&gauge("in_flight"))
        })
        .await;
        invoke(&cp, "echo").await
    };
    let refused = async {
        crate::live::wait_for("a call at the server and one queued", async || {
            let metrics = cp.metrics().await;
            metrics.contains(&gauge("in_flight")) && metrics.contains(&gauge("queued"))
        })
        .await;
        let (status, body) = invoke(&cp, "echo").await;
        // Another server answers meanwhile.
        let (echoed, _) = invoke(&cp, "other_echo").await;
        slow.release();
        (status, body, echoed)
    };
    let ((first, _), (second, _), (status, body, echoed)) = tokio::join!(held, queued, refused);
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "upstream_busy");
    assert_eq!(echoed, StatusCode::OK);
    // The held call was answered; the queued one got the slot after it.
    assert_eq!((first, second), (StatusCode::OK, StatusCode::OK));
    assert_eq!(slow.calls(), 2, "the refused call reached no server");
    let record = cp.audit_record(body["trace_id"].as_str().unwrap()).await;
    assert_eq!(record["outcome"], "upstream_busy", "{record}");
}

/// A tool's own `timeout` replaces its server's: here a far shorter one.
#[tokio::test(flavor = "multi_thread")]
async fn a_tools_own_timeout_replaces_its_servers() {
    let upstream = test_upstream(0).await;
    let servers = format!(
        "  svc:\n    http: {{url: \"{}\"}}\n    timeout: 60s\n",
        upstream.url
    );
    let tools = "  hang: {server: svc, timeout: 300ms}\n  echo: {server: svc}\n";
    let cp = ControlPlane::start(&catalog(&servers, tools, &["hang", "echo"]));
    cp.wait_all_ready().await;
    // Bounded here only so that a failure cannot hang the suite: the
    // server's 60 s would outlast it.
    let answer = tokio::time::timeout(Duration::from_secs(30), invoke(&cp, "hang")).await;
    let (status, body) = answer.expect("the tool's timeout, not the server's");
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert_eq!(body["error"]["code"], "upstream_timeout");
    assert_eq!(invoke(&cp, "echo").await.0, StatusCode::OK);
}

/// A server that hangs (its connections open, nothing coming back) is
/// noticed by the health ping, with no call to find out.
#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_stops_answering_is_noticed_by_its_ping() {
    let upstream = test_upstream(0).await;
    let port: u16 = (upstream.url.rsplit(':').next().unwrap())
        .trim_end_matches("/mcp")
        .parse()
        .unwrap();
    let relay = crate::common::relay::relay(([127, 0, 0, 1], port).into()).await;
    let servers = format!(
        "  svc:\n    http: {{url: \"http://{}/mcp\"}}\n    timeout: 500ms\n    ping_interval: 200ms\n",
        relay.addr
    );
    let cp = ControlPlane::start(&catalog(&servers, "  echo: {server: svc}\n", &["echo"]));
    cp.wait_all_ready().await;
    let state = async || {
        let ready = cp.readyz().await;
        ready["servers"][0]["state"].as_str().unwrap().to_string()
    };
    assert_eq!(state().await, "ready");
    relay.go_silent();
    crate::live::wait_for("the ping to notice", async || state().await != "ready").await;
    assert!(
        cp.stderr_text().contains("did not answer its health ping"),
        "{}",
        cp.stderr_text()
    );
}
