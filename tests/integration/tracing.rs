//! One W3C trace id from the agent, through the control plane, to the MCP
//! server and back.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::upstream::test_upstream;
use crate::common::{ANALYST_TOKEN, ControlPlane, TESTER_TOKEN, catalog};

const CALLER_SPAN: &str = "00f067aa0ba902b7";

fn traceparent(trace: &str) -> String {
    format!("00-{trace}-{CALLER_SPAN}-01")
}

#[tokio::test]
async fn an_http_upstream_gets_the_callers_trace_with_the_control_planes_span_as_parent() {
    let upstream = test_upstream(0).await;
    let servers = format!("  testsrv:\n    http: {{url: \"{}\"}}\n", upstream.url);
    let cp = ControlPlane::start(&catalog(&servers, "  echo: {server: testsrv}\n", &["echo"]));
    cp.wait_all_ready().await;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let response = cp
        .http
        .post(cp.url("/invoke"))
        .bearer_auth(TESTER_TOKEN)
        .header("traceparent", traceparent(trace))
        .json(&json!({"action": "echo", "payload": {}}))
        .send()
        .await
        .unwrap();
    let returned = response.headers()["traceparent"]
        .to_str()
        .unwrap()
        .to_string();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["trace_id"], trace);
    assert!(returned.starts_with(&format!("00-{trace}-")), "{returned}");

    let record = cp.audit_record(trace).await;
    let span = record["span_id"].as_str().unwrap().to_string();
    assert_ne!(span, CALLER_SPAN, "the control plane has its own span");
    let call = upstream
        .seen()
        .into_iter()
        .find(|s| s.method == "tools/call")
        .unwrap();
    let expected = format!("00-{trace}-{span}-01");
    assert_eq!(call.traceparent_header.as_deref(), Some(expected.as_str()));
    assert_eq!(call.traceparent_meta.as_deref(), Some(expected.as_str()));
    assert_eq!(returned, expected);
}

#[tokio::test]
async fn a_stdio_example_server_logs_the_trace_id_it_received() {
    let cp = ControlPlane::start_example();
    cp.wait_all_ready().await;
    let trace = "0af7651916cd43dd8448eb211c80319c";
    let response = cp
        .http
        .post(cp.url("/invoke"))
        .bearer_auth(ANALYST_TOKEN)
        .header("traceparent", traceparent(trace))
        .json(&json!({"action": "read_positions", "payload": {"account": "ACC-001"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // The server's own log line, relayed from its stderr.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let logged = cp.stderr_text().lines().any(|line| {
            serde_json::from_str::<Value>(line).is_ok_and(|v| {
                let text = |m: &Value| m.as_str().is_some_and(|m| m.contains(trace));
                v["target"] == "upstream_stderr"
                    && (text(&v["fields"]["message"]) || text(&v["message"]))
            })
        });
        if logged {
            break;
        }
        assert!(Instant::now() < deadline, "{}", cp.stderr_text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
