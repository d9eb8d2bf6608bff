//! Circuit breakers: a server that keeps failing is not called for a
//! cool-down, then one probe decides; a tool's own error is no failure.

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
    let ready = cp.get_json("/readyz").await;
    let servers = ready["servers"].as_array().unwrap();
    servers.iter().find(|s| s["name"] == "svc").unwrap()["circuit"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_server_is_not_called_until_a_probe_succeeds() {
    let upstream = test_upstream(0).await;
    let servers = format!(
        "  svc:\n    http: {{url: \"{}\"}}\n    timeout: 300ms\n    \
         circuit: {{consecutive_failures: 2, cooldown: 1s}}\n",
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

    // After the cool-down one probe goes through; its success closes it.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(circuit_state(&cp).await, "half_open");
    let (status, body) = invoke(&cp, "echo").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(upstream.calls(), calls + 1);
    assert_eq!(circuit_state(&cp).await, "closed");
    let (status, _) = invoke(&cp, "echo").await;
    assert_eq!(status, StatusCode::OK);
}
