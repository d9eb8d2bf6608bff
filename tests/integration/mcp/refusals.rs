//! `/mcp` under hostile use: session caps, the session oracle, malformed
//! params and transport-level refusals, each answered precisely and
//! recorded.

use super::*;

/// How many requests to `/mcp` were refused (and recorded) before a
/// message in them was read, so far.
fn connect_records(cp: &ControlPlane) -> usize {
    (cp.audit_records().iter())
        .filter(|r| r["action"] == "connect")
        .count()
}

/// The answer's status, with its body as JSON (minus the per-request
/// trace id), or as text.
async fn answer(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = match serde_json::from_str::<Value>(&text) {
        Ok(mut json) => {
            json["error"]["data"]["trace_id"].take();
            json.to_string()
        }
        Err(_) => text,
    };
    (status, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_are_capped_per_agent_and_in_total_and_counted() {
    let upstream = test_upstream(0).await;
    let servers = format!("  svc:\n    http: {{url: {}}}\n", upstream.url);
    let text = format!(
        "{}http:\n  mcp_max_sessions: 3\n  mcp_max_sessions_per_agent: 2\n",
        catalog(&servers, "  echo: {server: svc}\n", &["echo"])
    );
    let cp = ControlPlane::start(&text);
    cp.wait_all_ready().await;
    let plane = &cp;
    let initialize = |token: &'static str| async move {
        answer(
            raw_post(plane, Some(token), INITIALIZE)
                .send()
                .await
                .unwrap(),
        )
        .await
    };
    let first = raw_post(&cp, Some(TESTER_TOKEN), INITIALIZE)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    let first = first.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(initialize(TESTER_TOKEN).await.0, 200);
    let (status, body) = initialize(TESTER_TOKEN).await;
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("the agent's limit"), "{body}");
    assert!(body.contains("-32015"), "{body}");
    // Another agent may still open one, up to the total.
    assert_eq!(initialize(ANALYST_TOKEN).await.0, 200);
    let (status, body) = initialize(ANALYST_TOKEN).await;
    assert_eq!(status, 429);
    assert!(body.contains("the control plane's limit"), "{body}");
    assert!(cp.metrics().await.contains("mcp_cp_mcp_sessions 3"));
    let refusals = cp
        .audit_matching(2, |r| r["outcome"] == "session_limit")
        .await;
    assert_eq!(refusals.len(), 2);
    // Closing one makes room.
    let deleted = delete_session(&cp, TESTER_TOKEN, &first).await;
    assert!(deleted.status().is_success());
    assert_eq!(initialize(TESTER_TOKEN).await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_session_and_another_agents_get_the_same_answer_and_a_record() {
    let cp = ControlPlane::start_example();
    cp.wait_all_ready().await;
    let owned = {
        let response = raw_post(&cp, Some(ANALYST_TOKEN), INITIALIZE)
            .send()
            .await
            .unwrap();
        response.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_string()
    };
    let ping = r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#;
    let ping_with = |session: &str| {
        raw_post(&cp, Some(TRADER_TOKEN), ping)
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-06-18")
            .send()
    };
    let stolen = answer(ping_with(&owned).await.unwrap()).await;
    let unknown = answer(ping_with("no-such-session").await.unwrap()).await;
    assert_eq!(stolen, unknown);
    assert_eq!(stolen.0, 404);
    let records = cp
        .audit_matching(2, |r| {
            r["action"] == "connect" && r["agent_id"] == "agent-7"
        })
        .await;
    assert_eq!(records.len(), 2, "both recorded");
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_params_get_invalid_params_and_a_record() {
    let (upstream, cp) = test_catalog().await;
    let cases = [
        (
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":[1,2]}}"#,
            "call",
            "echo",
        ),
        (
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"arguments":{}}}"#,
            "call",
            "",
        ),
        (
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":42}}"#,
            "call",
            "",
        ),
        (
            r#"{"jsonrpc":"2.0","id":7,"method":"prompts/get","params":{"name":"p","arguments":"x"}}"#,
            "get_prompt",
            "p",
        ),
        (
            r#"{"jsonrpc":"2.0","id":7,"method":"resources/read","params":{}}"#,
            "read_resource",
            "",
        ),
    ];
    for (message, action, tool) in cases {
        let response = raw_post(&cp, Some(TESTER_TOKEN), message)
            .header("mcp-protocol-version", "2026-07-28")
            .send()
            .await
            .unwrap();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["id"], 7, "{message}: {body}");
        assert_eq!(body["error"]["code"], -32602, "{message}: {body}");
        let trace = body["error"]["data"]["trace_id"]
            .as_str()
            .unwrap()
            .to_string();
        let record = cp.audit_record(&trace).await;
        assert_eq!(record["action"], action, "{message}");
        assert_eq!(record["tool"], tool, "{message}");
        assert_eq!(record["outcome"], "bad_request");
    }
    assert_eq!(upstream.calls(), 0);
    // A batch gets a clear refusal, recorded too.
    let batch = format!("[{}]", r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#);
    let response = raw_post(&cp, Some(TESTER_TOKEN), batch)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("batches are not supported")
    );
    let trace = body["error"]["data"]["trace_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(cp.audit_record(&trace).await["outcome"], "bad_request");
}

#[tokio::test(flavor = "multi_thread")]
async fn transport_refusals_are_recorded() {
    let (_upstream, cp) = test_catalog().await;
    let ping = r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#;
    let before = connect_records(&cp);
    // A protocol version nobody speaks, a foreign Origin, a missing session id.
    let refused = [
        (
            raw_post(&cp, Some(TESTER_TOKEN), ping).header("mcp-protocol-version", "1999-01-01"),
            400,
        ),
        (
            raw_post(&cp, Some(TESTER_TOKEN), ping).header("origin", "https://evil.example"),
            403,
        ),
        (
            raw_post(&cp, Some(TESTER_TOKEN), ping).header("mcp-protocol-version", "2025-06-18"),
            400,
        ),
    ];
    for (request, expected) in refused {
        let status = request.send().await.unwrap().status();
        assert_eq!(status, expected);
    }
    let records = cp
        .audit_matching(before + 3, |r| {
            r["action"] == "connect" && r["outcome"] == "bad_request"
        })
        .await;
    assert_eq!(records.len(), before + 3);
    assert!(records.iter().all(|r| r["agent_id"] == "tester-1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn standard_headers_that_disagree_with_the_body_are_refused_and_recorded() {
    let (upstream, cp) = test_catalog().await;
    let body = json!({
        "jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {
            "name": "echo", "arguments": {"message": "hi"},
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
                "io.modelcontextprotocol/clientCapabilities": {}
            }
        }
    })
    .to_string();
    let stateless = |method: &str, name: Option<&str>| {
        let mut request = raw_post(&cp, Some(TESTER_TOKEN), body.clone())
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", method);
        if let Some(name) = name {
            request = request.header("mcp-name", name);
        }
        request
    };
    // Headers and body agree: the call goes through.
    let (status, text) = answer(stateless("tools/call", Some("echo")).send().await.unwrap()).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(upstream.calls(), 1);
    let before = connect_records(&cp);
    // Another name, another method, no name at all: 400 with -32020
    // (header mismatch), and the upstream never hears of them.
    let refused = [
        stateless("tools/call", Some("hang")),
        stateless("tools/list", Some("echo")),
        stateless("tools/call", None),
    ];
    for request in refused {
        let (status, text) = answer(request.send().await.unwrap()).await;
        assert_eq!(status, 400, "{text}");
        let error: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(error["error"]["code"], -32020, "{text}");
    }
    assert_eq!(upstream.calls(), 1);
    let records = cp
        .audit_matching(before + 3, |r| {
            r["action"] == "connect" && r["outcome"] == "bad_request"
        })
        .await;
    assert_eq!(records.len(), before + 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn subscribe_and_unsubscribe_are_not_found_in_2026_07_28_and_recorded() {
    let (upstream, cp) = test_catalog().await;
    let before = connect_records(&cp);
    // Removed in 2026-07-28, whatever the params: with a URI and without.
    let params = [json!({"uri": "test://doc"}), json!({})];
    for method in ["resources/subscribe", "resources/unsubscribe"] {
        for mut params in params.clone() {
            params["_meta"] = json!({
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
                "io.modelcontextprotocol/clientCapabilities": {}
            });
            let body = json!({"jsonrpc": "2.0", "id": 3, "method": method, "params": params});
            let mut request = raw_post(&cp, Some(TESTER_TOKEN), body.to_string())
                .header("mcp-protocol-version", "2026-07-28")
                .header("mcp-method", method);
            if let Some(uri) = params["uri"].as_str() {
                request = request.header("mcp-name", uri);
            }
            let (status, text) = answer(request.send().await.unwrap()).await;
            assert_eq!(status, 404, "{method} {params}: {text}");
            let error: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(error["error"]["code"], -32601, "{method} {params}: {text}");
        }
    }
    let records = cp
        .audit_matching(before + 4, |r| {
            r["action"] == "connect" && r["outcome"] == "bad_request"
        })
        .await;
    assert_eq!(records.len(), before + 4);
    assert!(records.iter().all(|r| r["agent_id"] == "tester-1"));
    assert_eq!(upstream.subscriptions(), 0);
}

/// A rate-limited `tools/call` gets JSON-RPC `-32016` with the wait in its
/// data, over either revision's session.
#[tokio::test]
async fn a_rate_limited_call_gets_rate_limited_with_the_wait() {
    let upstream = test_upstream(0).await;
    let servers = format!("  svc:\n    http: {{url: {}}}\n", upstream.url);
    let text = format!(
        "{}limits:\n  tool echo: 1/min\n",
        catalog(&servers, "  echo: {server: svc}\n", &["echo"])
    );
    let cp = ControlPlane::start(&text);
    cp.wait_all_ready().await;
    let session = connect_stateless(&cp, TESTER_TOKEN).await;
    let arguments = json!({"message": "hi"});
    session
        .call_tool(call("echo", arguments.clone()))
        .await
        .unwrap();
    let calls = upstream.calls();
    let error = mcp_error(session.call_tool(call("echo", arguments)).await);
    assert_eq!(error.code.0, -32016, "{error:?}");
    let data = error.data.expect("data");
    assert_eq!(data["code"], "rate_limited");
    let wait = data["retry_after_seconds"].as_u64().expect("the wait");
    assert!((50..=60).contains(&wait), "{wait}");
    assert_eq!(upstream.calls(), calls);
}
