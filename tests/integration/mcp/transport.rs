//! The HTTP layer of `/mcp` (authentication, Host/Origin, limits, parse
//! errors, sessions) and the stdio bridge.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn http_level_rules_apply_before_any_message_is_read() {
    let cp = ControlPlane::start(&format!(
        "{}http:\n  max_body_bytes: 4096\n",
        catalog("", "", &[])
    ));
    for token in [None, Some("wrong-token")] {
        let response = raw_post(&cp, token, INITIALIZE).send().await.unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers()["www-authenticate"],
            cp.challenge(token.is_some()).as_str()
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthenticated");
        let record = cp.audit_record(body["trace_id"].as_str().unwrap()).await;
        assert_eq!(record["action"], "connect");
        assert_eq!(record["front_door"], "mcp");
    }
    // DNS rebinding: a browser origin that is not allowed.
    let response = raw_post(&cp, Some(TESTER_TOKEN), INITIALIZE)
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::FORBIDDEN);
    let response = raw_post(&cp, Some(TESTER_TOKEN), INITIALIZE)
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::FORBIDDEN);
    // Over the configured body limit.
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"pad":"{}"}}}}"#,
        "x".repeat(8192)
    );
    let response = reqwest::Client::new()
        .post(cp.url("/mcp"))
        .bearer_auth(TESTER_TOKEN)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large");
    // Malformed JSON gets the spec's parse error; JSON that is no JSON-RPC
    // message gets invalid request.
    for (body, code) in [
        ("{not json", -32700),
        (r#"{"hello":"world"}"#, -32600),
        ("[1]", -32600),
    ] {
        let response = raw_post(&cp, Some(TESTER_TOKEN), body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            reqwest::StatusCode::BAD_REQUEST,
            "{body}"
        );
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["jsonrpc"], "2.0");
        assert_eq!(error["id"], Value::Null);
        assert_eq!(error["error"]["code"], code, "{body}: {error}");
        let record = cp
            .audit_record(error["error"]["data"]["trace_id"].as_str().unwrap())
            .await;
        assert_eq!(record["outcome"], "bad_request");
        assert_eq!(record["agent_id"], "tester-1");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn stateless_mode_serves_initialize_clients_without_sessions() {
    let upstream = test_upstream(0).await;
    let servers = format!("  svc:\n    http: {{url: {}}}\n", upstream.url);
    let cp = ControlPlane::start(&format!(
        "{}http:\n  mcp_sessions: false\n",
        catalog(&servers, "  echo: {server: svc}\n", &["echo"])
    ));
    cp.wait_all_ready().await;
    let response = raw_post(&cp, Some(TESTER_TOKEN), INITIALIZE)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    assert!(response.headers().get("mcp-session-id").is_none());
    let (session, _) = connect(&cp, TESTER_TOKEN).await;
    assert_eq!(tool_names(&session).await, ["echo"]);
    let result = session
        .call_tool(call("echo", json!({ "message": "hi" })))
        .await
        .unwrap();
    assert_eq!(result.structured_content.unwrap()["echo"]["message"], "hi");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_session_is_gone() {
    let cp = ControlPlane::start_example();
    let session = open_session(&cp, ANALYST_TOKEN).await;
    let deleted = delete_session(&cp, ANALYST_TOKEN, &session).await;
    assert!(deleted.status().is_success(), "{}", deleted.status());
    let ping = r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#;
    let response = raw_post(&cp, Some(ANALYST_TOKEN), ping)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stdio_bridge_relays_a_local_client_to_the_control_plane() {
    let cp = ControlPlane::start_example();
    cp.wait_all_ready().await;
    let mut command = tokio::process::Command::new(crate::common::binary());
    command
        .args([
            "--log-level",
            "warn",
            "connect",
            "--url",
            &cp.url("/mcp"),
            "--token-env",
            "AGENT_TOKEN",
        ])
        .env("AGENT_TOKEN", ANALYST_TOKEN);
    let (progress, _rx) = mpsc::unbounded_channel();
    let session = Client {
        progress,
        changed: None,
        answers: None,
    }
    .serve(TokioChildProcess::new(command).unwrap())
    .await
    .expect("initialize through the bridge");
    assert_eq!(tool_names(&session).await, ["read_positions", "run_report"]);
    let result = session
        .call_tool(call(
            "run_report",
            json!({ "desk": "equities", "report": "risk" }),
        ))
        .await
        .unwrap();
    assert_eq!(result.structured_content.unwrap()["desk"], "equities");
    let forbidden = mcp_error(session.call_tool(call("execute_trade", json!({}))).await);
    assert_eq!(forbidden.code, ErrorCode::INVALID_PARAMS);
    let record = cp
        .audit_matching(1, |r| r["tool"] == "run_report")
        .await
        .pop()
        .expect("the bridged call is audited");
    assert_eq!(record["agent_id"], "agent-42");
    assert_eq!(record["front_door"], "mcp");
}

#[test]
fn the_stdio_bridge_refuses_to_start_without_a_token() {
    let output = std::process::Command::new(crate::common::binary())
        .args([
            "connect",
            "--url",
            "http://127.0.0.1:9/mcp",
            "--token-env",
            "MCP_CP_TEST_UNSET_TOKEN",
        ])
        .env_remove("MCP_CP_TEST_UNSET_TOKEN")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("MCP_CP_TEST_UNSET_TOKEN is not set"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_answers_only_to_the_agent_that_opened_it() {
    let cp = ControlPlane::start_example();
    let session = open_session(&cp, ANALYST_TOKEN).await;
    let ping = r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#;
    let ping_as = |token: &'static str| {
        raw_post(&cp, Some(token), ping)
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", "2025-06-18")
            .send()
    };
    // Another agent holding the id gets what an unknown id gets.
    let stolen = ping_as(TRADER_TOKEN).await.unwrap();
    assert_eq!(stolen.status(), reqwest::StatusCode::NOT_FOUND);
    let own = ping_as(ANALYST_TOKEN).await.unwrap();
    assert_eq!(own.status(), reqwest::StatusCode::OK);
    let stream = cp
        .http
        .get(cp.url("/mcp"))
        .bearer_auth(TRADER_TOKEN)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), reqwest::StatusCode::NOT_FOUND);
}

/// Initialize over raw HTTP; the new session's id.
async fn open_session(cp: &ControlPlane, token: &str) -> String {
    let response = raw_post(cp, Some(token), INITIALIZE).send().await.unwrap();
    response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string()
}
