//! The router's routes: a fan-out to several servers merged into one
//! answer, weighted targets (canaries) with and without stickiness, a
//! public name moved to another server while calls are in flight, one
//! deadline for every attempt and leg, and retries for idempotent tools
//! only.

use std::time::Duration;

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::upstream::{HttpUpstream, test_upstream};
use crate::common::{ControlPlane, TESTER_TOKEN, catalog, sha256_hex};
use crate::credentials::{bearer, verify};
use crate::live::{replace_file, wait_for};

fn servers(upstreams: &[(&str, &HttpUpstream)]) -> String {
    upstreams
        .iter()
        .map(|(name, up)| format!("  {name}:\n    http: {{url: \"{}\"}}\n", up.url))
        .collect()
}

/// Two test servers, `ay` and `bee`, and a control plane in front of them
/// with these `tools`, granted to the tester.
async fn two_servers(tools: &str, grants: &[&str]) -> (HttpUpstream, HttpUpstream, ControlPlane) {
    let (a, b) = (test_upstream(0).await, test_upstream(0).await);
    let servers = servers(&[("ay", &a), ("bee", &b)]);
    let cp = ControlPlane::start(&catalog(&servers, tools, grants));
    cp.wait_all_ready().await;
    (a, b, cp)
}

/// Call `tool` over REST, with these extra headers; the status and body.
async fn call(
    cp: &ControlPlane,
    token: &str,
    tool: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    let body = json!({"action": tool, "payload": {"message": "hi"}});
    let mut request = cp
        .http
        .post(cp.url("/invoke"))
        .bearer_auth(token)
        .json(&body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    // Far beyond any deadline here: a call that waited out a lengthened
    // deadline would fail the test instead of hanging it.
    let response = request
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

/// The audit record's legs (the log event carries them as JSON text).
async fn legs(cp: &ControlPlane, body: &Value) -> Vec<Value> {
    let record = cp.audit_record(body["trace_id"].as_str().unwrap()).await;
    let legs: Value = serde_json::from_str(record["legs"].as_str().unwrap()).unwrap();
    legs.as_array().unwrap().clone()
}

fn field(values: &[Value], name: &str) -> Vec<String> {
    values
        .iter()
        .map(|v| v[name].as_str().unwrap_or("").to_string())
        .collect()
}

fn texts(result: &Value) -> Vec<String> {
    field(result["content"].as_array().unwrap(), "text")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fan_out_merges_every_server_in_catalog_order_each_with_its_own_credential() {
    let tools = "  both: {servers: [bee, ay], upstream_name: echo}\n";
    let (a, b, cp) = two_servers(tools, &["both"]).await;

    let (status, body) = call(&cp, TESTER_TOKEN, "both", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let result = &body["result"];
    let echoed = json!({"message": "hi"}).to_string();
    // The catalog's order, not the servers' names' order; each part
    // introduced by its server's logical name.
    assert_eq!(texts(result), ["[bee]", &echoed, "[ay]", &echoed]);
    assert_eq!(
        result["structuredContent"],
        json!({"ay": {"echo": {"message": "hi"}}, "bee": {"echo": {"message": "hi"}}})
    );
    assert_eq!(result["isError"], false);
    assert_eq!(
        result["_meta"]["mcp-control-plane/legs"],
        json!([{"server": "bee", "outcome": "ok"}, {"server": "ay", "outcome": "ok"}])
    );
    for up in [&a, &b] {
        assert!(!body.to_string().contains(&up.url), "{body}");
    }

    // One call each, with a credential minted for that server alone.
    assert_eq!((a.calls(), b.calls()), (1, 1));
    for (up, server) in [(&a, "ay"), (&b, "bee")] {
        let seen = up.seen();
        let call = seen.iter().find(|s| s.method == "tools/call").unwrap();
        let claims = verify(&cp, &bearer(&call.authorization), server).await;
        assert_eq!(claims["sub"], "tester-1");
        assert_eq!(claims["scope"], "echo");
    }

    // One audit record for the call, listing both legs.
    let legs = legs(&cp, &body).await;
    assert_eq!(field(&legs, "server"), ["bee", "ay"]);
    assert_eq!(field(&legs, "outcome"), ["ok", "ok"]);

    // /readyz shows where the tool's calls go.
    let route = &cp.readyz().await["routes"]["both"];
    assert_eq!(
        field(route["servers"].as_array().unwrap(), "server"),
        ["bee", "ay"]
    );
    assert_eq!(route["mode"], "all");
    assert!(
        legs.iter()
            .all(|leg| leg["latency_ms"].as_f64().unwrap() > 0.0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_leg_fails_the_call_in_mode_all_and_is_marked_in_mode_partial() {
    let legs_of = "[ay, {server: bee, upstream_name: hang}], upstream_name: echo, timeout: 300ms";
    let tools =
        format!("  every: {{servers: {legs_of}}}\n  some: {{servers: {legs_of}, mode: partial}}\n");
    let (_a, _b, cp) = two_servers(&tools, &["every", "some"]).await;

    let (status, body) = call(&cp, TESTER_TOKEN, "every", &[]).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert_eq!(body["error"]["code"], "upstream_timeout");
    let entries = legs(&cp, &body).await;
    assert_eq!(field(&entries, "server"), ["ay", "bee"]);
    assert_eq!(field(&entries, "outcome"), ["ok", "timeout"]);

    let (status, body) = call(&cp, TESTER_TOKEN, "some", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let result = &body["result"];
    let echoed = json!({"message": "hi"}).to_string();
    assert_eq!(
        texts(result),
        ["[ay]", &echoed, "[bee] no answer: upstream_timeout"]
    );
    assert_eq!(
        result["structuredContent"],
        json!({"ay": {"echo": {"message": "hi"}}})
    );
    assert_eq!(
        result["_meta"]["mcp-control-plane/legs"][1],
        json!({"server": "bee", "outcome": "upstream_timeout"})
    );
    assert_eq!(result["isError"], false);
    let record = cp.audit_record(body["trace_id"].as_str().unwrap()).await;
    assert_eq!(record["outcome"], "ok", "{record}");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_deadline_for_every_leg_that_a_caller_may_shorten_but_never_lengthen() {
    let tools = "  stuck: {servers: [ay, bee], upstream_name: hang, timeout: 60s}\n  \
                 quick: {server: ay, upstream_name: hang, timeout: 300ms}\n";
    let (a, b, cp) = two_servers(tools, &["stuck", "quick"]).await;

    // Both legs share the caller's shorter deadline (the tool allows 60 s,
    // which would outlast the test's own 20 s limit).
    let (status, body) = call(
        &cp,
        TESTER_TOKEN,
        "stuck",
        &[("X-Request-Timeout", "400ms")],
    )
    .await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    let entries = legs(&cp, &body).await;
    assert_eq!(field(&entries, "outcome"), ["timeout", "timeout"]);
    wait_for("both legs cancelled upstream", async || {
        a.cancellations() == 1 && b.cancellations() == 1
    })
    .await;

    // A longer one changes nothing: the tool's 300 ms stands.
    let (status, body) = call(&cp, TESTER_TOKEN, "quick", &[("X-Request-Timeout", "60")]).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");

    // And one that is no duration is refused, and recorded.
    let (status, body) = call(&cp, TESTER_TOKEN, "quick", &[("X-Request-Timeout", "soon")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("X-Request-Timeout"),
        "{body}"
    );
    let record = cp.audit_record(body["trace_id"].as_str().unwrap()).await;
    assert_eq!(record["outcome"], "bad_request", "{record}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_weighted_split_divides_calls_by_weight_and_the_record_names_the_target() {
    let tools = "  read: {targets: [{server: ay, weight: 90}, {server: bee, weight: 10}], upstream_name: echo}\n";
    let (a, b, cp) = two_servers(tools, &["read"]).await;

    let calls = 2_000;
    let workers = (0..8).map(|_| async {
        for _ in 0..calls / 8 {
            let (status, body) = call(&cp, TESTER_TOKEN, "read", &[]).await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    });
    join_all(workers).await;
    assert_eq!(a.calls() + b.calls(), calls);
    // 10% of 2,000 is 200, with a standard deviation of ~13.4: 5 of them
    // either side.
    assert!(
        (133..=267).contains(&b.calls()),
        "{} of {calls} to bee",
        b.calls()
    );

    let route = &cp.readyz().await["routes"]["read"];
    let weights: Vec<u64> = (route["targets"].as_array().unwrap().iter())
        .map(|t| t["weight"].as_u64().unwrap())
        .collect();
    assert_eq!((weights, &route["sticky"]), (vec![90, 10], &json!(false)));

    // Each record names the target that served: as many for each as it got.
    let records = cp
        .audit_matching(calls, |r| r["tool"] == "read" && r["outcome"] == "ok")
        .await;
    let to_bee = records.iter().filter(|r| r["server"] == "bee").count();
    assert_eq!(to_bee, b.calls());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sticky_split_keeps_each_agent_on_its_target() {
    let (a, b) = (test_upstream(0).await, test_upstream(0).await);
    let tools = "  read: {targets: [{server: ay, weight: 50}, {server: bee, weight: 50}], sticky: true, upstream_name: echo}\n";
    let mut text = catalog(&servers(&[("ay", &a), ("bee", &b)]), tools, &["read"]);
    let agents: Vec<String> = (0..16).map(|i| format!("sticky-{i}")).collect();
    for agent in &agents {
        let hash = sha256_hex(&format!("token-{agent}"));
        text.push_str(&format!(
            "  {agent}: {{role: tester, token_sha256: {hash}}}\n"
        ));
    }
    let cp = ControlPlane::start(&text);
    cp.wait_all_ready().await;

    for agent in &agents {
        for _ in 0..5 {
            let (status, body) = call(&cp, &format!("token-{agent}"), "read", &[]).await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    }
    let records = cp
        .audit_matching(agents.len() * 5, |r| r["tool"] == "read")
        .await;
    let mut targets = Vec::new();
    for agent in &agents {
        let mine: Vec<&Value> = records
            .iter()
            .filter(|r| r["agent_id"] == agent.as_str())
            .collect();
        assert_eq!(mine.len(), 5);
        assert!(
            mine.iter().all(|r| r["server"] == mine[0]["server"]),
            "{agent} moved: {mine:?}"
        );
        targets.push(mine[0]["server"].as_str().unwrap().to_string());
    }
    // The agents still spread over both targets.
    assert!(
        targets.contains(&"ay".into()) && targets.contains(&"bee".into()),
        "{targets:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_catalog_edit_moves_a_public_name_to_another_server_while_calls_are_in_flight() {
    let (a, b) = (test_upstream(0).await, test_upstream(0).await);
    let servers = servers(&[("ay", &a), ("bee", &b)]);
    let text = |server: &str| {
        let tools = format!("  read: {{server: {server}, upstream_name: echo}}\n");
        catalog(&servers, &tools, &["read"])
    };
    let cp = ControlPlane::start(&text("ay"));
    cp.wait_all_ready().await;

    let stop = std::sync::atomic::AtomicBool::new(false);
    let workers = (0..4).map(|_| async {
        let mut failures = Vec::new();
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            let (status, body) = call(&cp, TESTER_TOKEN, "read", &[]).await;
            if status != StatusCode::OK {
                failures.push(body);
            }
        }
        failures
    });
    let edit = async {
        wait_for("calls to ay", async || a.calls() >= 20).await;
        replace_file(&cp.config, &text("bee"));
        wait_for("calls to bee", async || b.calls() >= 20).await;
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
    };
    let (failures, ()) = tokio::join!(join_all(workers), edit);
    let failures: Vec<Value> = failures.into_iter().flatten().collect();
    assert!(
        failures.is_empty(),
        "calls failed across the edit: {failures:?}"
    );
    // Once moved, the old server gets no more calls.
    let before = a.calls();
    for _ in 0..10 {
        let (status, _) = call(&cp, TESTER_TOKEN, "read", &[]).await;
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(a.calls(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn only_an_idempotent_tool_is_tried_again_and_never_past_its_deadline() {
    let ups = [
        test_upstream(0).await,
        test_upstream(0).await,
        test_upstream(0).await,
        test_upstream(0).await,
    ];
    let named: Vec<(&str, &HttpUpstream)> =
        ["u0", "u1", "u2", "u3"].into_iter().zip(&ups).collect();
    let tools = "  again: {server: u0, upstream_name: flaky, timeout: 1s, idempotent: true}\n  \
                 once: {server: u1, upstream_name: flaky, timeout: 1s}\n  \
                 hinted: {server: u2, upstream_name: flaky, timeout: 1s, idempotent: hint}\n  \
                 stuck: {server: u3, upstream_name: hang, timeout: 1s, idempotent: true, retry: {attempts: 5, backoff: 20ms}}\n";
    let cp = ControlPlane::start(&catalog(
        &servers(&named),
        tools,
        &["again", "once", "hinted", "stuck"],
    ));
    cp.wait_all_ready().await;

    // Marked idempotent: the time-out is tried again, and the second
    // attempt answers. Both attempts are in the record.
    let (status, body) = call(&cp, TESTER_TOKEN, "again", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(ups[0].calls(), 2);
    let entries = legs(&cp, &body).await;
    assert_eq!(field(&entries, "outcome"), ["timeout", "ok"]);
    let attempts: Vec<u64> = entries
        .iter()
        .map(|e| e["attempt"].as_u64().unwrap())
        .collect();
    assert_eq!(attempts, [1, 2]);
    let metrics = cp.metrics().await;
    for line in [
        r#"mcp_cp_upstream_requests_total{server="u0",outcome="timeout",retry="false"} 1"#,
        r#"mcp_cp_upstream_requests_total{server="u0",outcome="ok",retry="true"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }

    // Not marked, or marked to follow a hint the server does not give:
    // sent once, whatever happened.
    for (tool, up) in [("once", &ups[1]), ("hinted", &ups[2])] {
        let (status, body) = call(&cp, TESTER_TOKEN, tool, &[]).await;
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{tool}: {body}");
        assert_eq!(up.calls(), 1, "{tool}");
        assert_eq!(legs(&cp, &body).await.len(), 1, "{tool}");
    }

    // Five attempts of 1 s allowed, but the caller's 2.5 s leave room for
    // three at most (however slow the machine: never five).
    let (status, body) = call(
        &cp,
        TESTER_TOKEN,
        "stuck",
        &[("X-Request-Timeout", "2500ms")],
    )
    .await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    let tried = legs(&cp, &body).await.len();
    assert!((1..=3).contains(&tried), "{tried} attempts");
    assert_eq!(ups[3].calls(), tried);
}
