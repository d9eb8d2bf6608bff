//! Small holes a probe found: duplicate JSON keys, methods and log levels
//! MCP does not have, ambiguous authorities, an oversized body from
//! nobody, and refusals that named the wrong kind of thing. Each is
//! refused precisely, and recorded.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// Open an initialize-era session over raw HTTP: its id.
async fn open_raw_session(cp: &ControlPlane) -> String {
    let opened = raw_post(cp, Some(TESTER_TOKEN), INITIALIZE)
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), 200);
    let session = opened.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    let sent = raw_post(cp, Some(TESTER_TOKEN), initialized)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await
        .unwrap();
    assert!(sent.status().is_success());
    session
}

/// Send `message` in the session: the JSON-RPC answer (JSON or the first
/// SSE event).
async fn in_session(cp: &ControlPlane, session: &str, message: &str) -> (u16, Value) {
    let response = raw_post(cp, Some(TESTER_TOKEN), message.to_owned())
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let event = (text.lines())
        .filter_map(|line| line.strip_prefix("data:"))
        .find_map(|data| serde_json::from_str(data.trim()).ok());
    (
        status,
        event.unwrap_or_else(|| serde_json::from_str(&text).unwrap_or(Value::Null)),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicate_keys_unknown_methods_and_levels_are_refused_and_recorded() {
    let (upstream, cp) = test_catalog().await;
    let session = open_raw_session(&cp).await;
    let twice = [
        r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","name":"execute_trade","arguments":{}}}"#,
        r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"a":1},"arguments":{"a":2}}}"#,
    ];
    for message in twice {
        let (status, body) = in_session(&cp, &session, message).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["code"], -32600, "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("names a key twice"), "{message}");
        let trace = body["error"]["data"]["trace_id"].as_str().unwrap();
        assert_eq!(cp.audit_record(trace).await["outcome"], "bad_request");
    }
    // REST too.
    let body = r#"{"action":"echo","payload":{"x":1,"x":2}}"#;
    let response = (cp.http.post(cp.url("/invoke")))
        .bearer_auth(TESTER_TOKEN)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_request");
    assert!(body["error"]["message"].as_str().unwrap().contains("twice"));
    assert_eq!(upstream.calls(), 0);

    // A log level MCP does not have.
    let loud = r#"{"jsonrpc":"2.0","id":8,"method":"logging/setLevel","params":{"level":"loud"}}"#;
    let (_, body) = in_session(&cp, &session, loud).await;
    assert_eq!(body["error"]["code"], -32602, "{body}");
    let trace = body["error"]["data"]["trace_id"].as_str().unwrap();
    assert_eq!(cp.audit_record(trace).await["outcome"], "bad_request");
    let quiet =
        r#"{"jsonrpc":"2.0","id":8,"method":"logging/setLevel","params":{"level":"error"}}"#;
    let (_, body) = in_session(&cp, &session, quiet).await;
    assert!(body["error"].is_null(), "{body}");

    // A method MCP does not have.
    let unknown = r#"{"jsonrpc":"2.0","id":9,"method":"tools/destroy","params":{}}"#;
    let (_, body) = in_session(&cp, &session, unknown).await;
    assert_eq!(body["error"]["code"], -32601, "{body}");
    let records = cp.audit_matching(1, |r| r["tool"] == "tools/destroy").await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["outcome"], "bad_request");
    assert_eq!(records[0]["agent_id"], "tester-1");

    // A prompt refused is called a prompt.
    let prompt = r#"{"jsonrpc":"2.0","id":10,"method":"prompts/get","params":{"name":"nope"}}"#;
    let (_, body) = in_session(&cp, &session, prompt).await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("the prompt does not exist"), "{message}");
}

/// Send `head` (and nothing else) over a new connection: the status line.
async fn raw_head(cp: &ControlPlane, head: String) -> String {
    let mut stream = tokio::net::TcpStream::connect(cp.addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("an answer")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]).into_owned();
    answer.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ambiguous_host_and_an_oversized_body_are_refused_before_anyone_is_asked_who() {
    let (upstream, cp) = test_catalog().await;
    let host = cp.addr.to_string();
    let auth = format!("Authorization: Bearer {TESTER_TOKEN}\r\n");
    // An `initialize`: answered 200 where nothing is ambiguous.
    let body = INITIALIZE;
    let post = |target: &str, hosts: &[&str]| {
        let hosts: String = hosts.iter().map(|h| format!("Host: {h}\r\n")).collect();
        format!(
            "POST {target} HTTP/1.1\r\n{hosts}{auth}Content-Type: application/json\r\n\
             Accept: application/json, text/event-stream\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let two_hosts = raw_head(&cp, post("/mcp", &[&host, "evil.example"])).await;
    assert!(two_hosts.contains(" 400 "), "{two_hosts}");
    let absolute = raw_head(&cp, post("http://evil.example/mcp", &[&host])).await;
    assert!(absolute.contains(" 400 "), "{absolute}");
    let consistent = raw_head(&cp, post(&format!("http://{host}/mcp"), &[&host])).await;
    assert!(consistent.contains(" 200 "), "{consistent}");
    let records = cp
        .audit_matching(2, |r| {
            r["action"] == "connect" && r["outcome"] == "bad_request"
        })
        .await;
    assert_eq!(records.len(), 2);

    // 10 GB announced by nobody: too large, before any 401.
    let huge = format!(
        "POST /invoke HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: 10737418240\r\n\r\n"
    );
    let status = raw_head(&cp, huge).await;
    assert!(status.contains(" 413 "), "{status}");
    assert_eq!(upstream.calls(), 0);
}
