//! Rate limits: token buckets per agent and per tool, refused with 429,
//! `Retry-After` and a record, before the upstream is contacted.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::upstream::test_upstream;
use crate::common::{ControlPlane, TESTER_TOKEN, catalog};

/// A catalog routing the test upstream's `echo` as `echo` and as `shout`.
fn limited_catalog(url: &str, limits: &str) -> String {
    let servers = format!("  testsrv:\n    http: {{url: \"{url}\"}}\n");
    let tools = "  echo: {server: testsrv}\n  shout: {server: testsrv, upstream_name: echo}\n";
    format!(
        "{}limits:\n{limits}",
        catalog(&servers, tools, &["echo", "shout"])
    )
}

async fn invoke(cp: &ControlPlane, tool: &str) -> (StatusCode, Option<u64>, Value) {
    let response = cp
        .invoke(
            Some(TESTER_TOKEN),
            json!({"action": tool, "payload": {"message": "hi"}}),
        )
        .await;
    let status = response.status();
    let retry_after = (response.headers().get("retry-after"))
        .map(|v| v.to_str().unwrap().parse().expect("whole seconds"));
    (status, retry_after, response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tool_limit_per_agent_refuses_with_retry_after_before_the_upstream() {
    let upstream = test_upstream(0).await;
    let cp = ControlPlane::start(&limited_catalog(
        &upstream.url,
        "  tool echo: 2/h per agent\n",
    ));
    cp.wait_all_ready().await;
    for _ in 0..2 {
        let (status, retry_after, body) = invoke(&cp, "echo").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(retry_after, None);
    }
    let calls = upstream.calls();
    let (status, retry_after, body) = invoke(&cp, "echo").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited");
    // 2 per hour: a token comes back every 30 minutes.
    let retry_after = retry_after.expect("a Retry-After header");
    assert!((1700..=1800).contains(&retry_after), "{retry_after}");
    assert!(
        (body["error"]["message"].as_str().unwrap()).contains("tool echo"),
        "{body}"
    );
    assert_eq!(
        upstream.calls(),
        calls,
        "a refused call reaches no upstream"
    );
    // Another tool is not limited, though it is the same upstream tool.
    let (status, _, body) = invoke(&cp, "shout").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let trace_id = body_trace(&invoke(&cp, "echo").await.2);
    let record = cp.audit_record(&trace_id).await;
    assert_eq!(record["outcome"], "rate_limited", "{record}");
    assert_eq!(record["reasons"], "rate limit `tool echo`");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_limit_counts_every_tool_and_a_reload_keeps_its_bucket() {
    let upstream = test_upstream(0).await;
    let cp = ControlPlane::start(&limited_catalog(&upstream.url, "  agent: 3/h burst 3\n"));
    cp.wait_all_ready().await;
    for tool in ["echo", "shout", "echo"] {
        let (status, _, body) = invoke(&cp, tool).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, retry_after, body) = invoke(&cp, "shout").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(retry_after.is_some_and(|s| s > 1000), "{retry_after:?}");

    // An edit elsewhere in the catalog leaves the limit, and its bucket, as
    // they were.
    let edited = limited_catalog(&upstream.url, "  agent: 3/h burst 3\n  tool: 1000/s\n");
    let before = cp.readyz().await["catalog"]["version"].clone();
    crate::live::replace_file(&cp.config, &edited);
    crate::live::wait_for("the edited catalog", async || {
        cp.readyz().await["catalog"]["version"] != before
    })
    .await;
    let (status, _, body) = invoke(&cp, "echo").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
}

fn body_trace(body: &Value) -> String {
    body["trace_id"].as_str().expect("a trace id").to_string()
}
