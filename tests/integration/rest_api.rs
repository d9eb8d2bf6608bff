//! The REST front door on the shipped example: discovery per role, calls,
//! every error rule, impersonation, and the absence of topology.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{ANALYST_TOKEN, ControlPlane, TRADER_TOKEN};

/// Strings that would reveal topology: server names, transports, commands.
const TOPOLOGY: &[&str] = &[
    "marketdata",
    "execution",
    "research",
    "http://",
    "https://",
    "$SELF",
    "example-server",
    "stdio",
    "mcp-control-plane",
    "catalog.yaml",
];

fn assert_no_topology(what: &str, text: &str) {
    // Input schemas may name their JSON Schema dialect, and a 401 names the
    // control plane's own resource metadata: those URLs are no topology.
    let mut text = text.replace("https://json-schema.org/", "");
    let metadata = "/.well-known/oauth-protected-resource/mcp";
    while let Some(start) = text.find("resource_metadata=")
        && let Some(end) = text[start..].find(metadata)
    {
        text.replace_range(start..start + end + metadata.len(), "");
    }
    for needle in TOPOLOGY {
        assert!(!text.contains(needle), "{what} reveals `{needle}`: {text}");
    }
}

/// The whole response (status, headers, body) as text, checked for topology.
async fn read(response: reqwest::Response) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let header_text = format!("{headers:?}");
    assert_no_topology("headers", &header_text);
    assert_no_topology("body", &text);
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, headers, body)
}

fn assert_error(status: StatusCode, body: &Value, expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    assert_eq!(body["trace_id"].as_str().map(str::len), Some(32), "{body}");
}

#[tokio::test]
async fn each_role_sees_only_its_tools() {
    let cp = ControlPlane::start_example();
    cp.wait_all_ready().await;
    let (status, _, body) = read(cp.get_tools(ANALYST_TOKEN, "").await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({ "tools": ["read_positions", "run_report"] }));

    let response = cp
        .http
        .post(cp.url("/tools"))
        .bearer_auth(TRADER_TOKEN)
        .send()
        .await
        .unwrap();
    let (status, _, body) = read(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({ "tools": ["execute_trade", "read_positions"] })
    );
}

#[tokio::test]
async fn detail_lists_upstream_schemas_under_public_names() {
    let cp = ControlPlane::start_example();
    cp.wait_all_ready().await;
    let (status, _, body) = read(cp.get_tools(ANALYST_TOKEN, "?detail=true").await).await;
    assert_eq!(status, StatusCode::OK);
    let definitions = body["definitions"].as_array().unwrap();
    let names: Vec<_> = definitions
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["read_positions", "run_report"]);
    let positions = &definitions[0];
    assert_eq!(positions["input_schema"]["required"], json!(["account"]));
    assert!(
        positions["description"]
            .as_str()
            .unwrap()
            .contains("positions")
    );
    // The catalog overrides run_report's description.
    assert_eq!(
        definitions[1]["description"],
        "Run a desk report (pnl, exposure or risk)."
    );
    assert_eq!(
        definitions[1]["input_schema"]["properties"]["desk"]["type"],
        "string"
    );
}

#[tokio::test]
async fn invoke_returns_the_upstream_result_and_records_it() {
    let cp = ControlPlane::start_example();
    cp.wait_all_ready().await;
    let response = cp
        .invoke(
            Some(ANALYST_TOKEN),
            json!({ "action": "read_positions", "payload": { "account": "ACC-001", "symbol": "MSFT" } }),
        )
        .await;
    let (status, headers, body) = read(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let trace_id = body["trace_id"].as_str().unwrap();
    assert_eq!(
        body["result"]["structuredContent"],
        json!({
            "account": "ACC-001",
            "positions": [{ "symbol": "MSFT", "quantity": 800, "average_price": 411.1, "market_value": 328880.0 }]
        })
    );
    assert_eq!(body["result"]["isError"], false);
    let traceparent = headers["traceparent"].to_str().unwrap();
    assert!(traceparent.contains(trace_id), "{traceparent}");

    let record = cp.audit_record(trace_id).await;
    assert_eq!(record["action"], "call");
    assert_eq!(record["front_door"], "rest");
    assert_eq!(record["agent_id"], "agent-42");
    assert_eq!(record["role"], "analyst");
    assert_eq!(record["tool"], "read_positions");
    assert_eq!(record["upstream_tool"], "read_positions");
    assert_eq!(record["server"], "marketdata");
    assert_eq!(record["environment"], "staging");
    assert_eq!(record["outcome"], "ok");
    assert!(record["latency_ms"].as_f64().is_some_and(|l| l >= 0.0));
}

#[tokio::test]
async fn a_callers_traceparent_is_continued() {
    let cp = ControlPlane::start_example();
    cp.wait_all_ready().await;
    let response = cp
        .http
        .post(cp.url("/invoke"))
        .bearer_auth(TRADER_TOKEN)
        .header("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        .json(&json!({ "action": "execute_trade", "payload": { "account": "ACC-001", "symbol": "AAPL", "side": "buy", "quantity": 10 } }))
        .send()
        .await
        .unwrap();
    let (status, _, body) = read(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(body["result"]["structuredContent"]["status"], "accepted");
    let record = cp.audit_record("4bf92f3577b34da6a3ce929d0e0e4736").await;
    assert_eq!(record["agent_id"], "agent-7");
}

#[tokio::test]
async fn a_tool_error_is_a_result_not_a_failure() {
    let cp = ControlPlane::start_example();
    cp.wait_all_ready().await;
    let response = cp
        .invoke(
            Some(TRADER_TOKEN),
            json!({ "action": "read_positions", "payload": { "account": "ACC-404" } }),
        )
        .await;
    let (status, _, body) = read(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["isError"], true);
    let record = cp.audit_record(body["trace_id"].as_str().unwrap()).await;
    assert_eq!(record["outcome"], "tool_error");
}

#[tokio::test]
async fn unauthenticated_requests_get_401() {
    let cp = ControlPlane::start_example();
    for token in [None, Some("not-a-token"), Some(" ")] {
        let response = cp
            .invoke(token, json!({ "action": "read_positions", "payload": {} }))
            .await;
        let (status, headers, body) = read(response).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthenticated");
        assert_eq!(
            headers["www-authenticate"],
            cp.challenge(token.is_some()).as_str()
        );
        let record = cp.audit_record(body["trace_id"].as_str().unwrap()).await;
        assert_eq!(record["outcome"], "unauthenticated");
        assert_eq!(record["agent_id"], "");
    }
    let response = cp.http.get(cp.url("/tools")).send().await.unwrap();
    let (status, _, body) = read(response).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthenticated");
    // A malformed body does not tell an unauthenticated caller anything more.
    let response = cp
        .http
        .post(cp.url("/invoke"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (status, _, body) = read(response).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthenticated");
}

#[tokio::test]
async fn an_unknown_tool_is_indistinguishable_from_a_forbidden_one() {
    let cp = ControlPlane::start_example();
    cp.wait_all_ready().await;
    let forbidden = cp
        .invoke(
            Some(ANALYST_TOKEN),
            json!({ "action": "execute_trade", "payload": {} }),
        )
        .await;
    let (forbidden_status, forbidden_headers, mut forbidden) = read(forbidden).await;
    let unknown = cp
        .invoke(
            Some(ANALYST_TOKEN),
            json!({ "action": "launch_missiles", "payload": {} }),
        )
        .await;
    let (unknown_status, unknown_headers, mut unknown) = read(unknown).await;
    assert_error(
        forbidden_status,
        &forbidden,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_eq!(unknown_status, forbidden_status);
    let forbidden_record = cp
        .audit_record(forbidden["trace_id"].as_str().unwrap())
        .await;
    assert_eq!(forbidden_record["outcome"], "denied_role");
    forbidden["trace_id"].take();
    unknown["trace_id"].take();
    assert_eq!(unknown, forbidden);
    let header_names = |h: &reqwest::header::HeaderMap| {
        let mut names: Vec<_> = h.keys().map(|k| k.as_str().to_string()).collect();
        names.sort();
        names
    };
    assert_eq!(
        header_names(&unknown_headers),
        header_names(&forbidden_headers)
    );
}

#[tokio::test]
async fn body_fields_naming_another_identity_are_refused_as_impersonation() {
    let cp = ControlPlane::start_example();
    cp.wait_all_ready().await;
    let call = |extra: Value| {
        let mut body = json!({ "action": "read_positions", "payload": { "account": "ACC-001" } });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        cp.invoke(Some(ANALYST_TOKEN), body)
    };
    for extra in [
        json!({ "agent_id": "agent-7" }),
        json!({ "agent_role": "trader" }),
        json!({ "environment": "development" }),
        json!({ "agent_id": "agent-42", "agent_role": "admin" }),
    ] {
        let (status, _, body) = read(call(extra.clone()).await).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "impersonation");
        let record = cp.audit_record(body["trace_id"].as_str().unwrap()).await;
        assert_eq!(record["outcome"], "impersonation", "{extra}");
        assert_eq!(record["agent_id"], "agent-42");
    }
    // The seed's fields are fine when they tell the truth.
    let truthful =
        json!({ "agent_id": "agent-42", "agent_role": "analyst", "environment": "staging" });
    let (status, _, body) = read(call(truthful).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Discovery applies the same rule.
    let response = cp
        .http
        .post(cp.url("/tools"))
        .bearer_auth(ANALYST_TOKEN)
        .json(&json!({ "agent_role": "trader" }))
        .send()
        .await
        .unwrap();
    let (status, _, body) = read(response).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "impersonation");
}

/// Bodies that are well-typed JSON requests in no way: (route, body).
const MALFORMED: &[(&str, &str)] = &[
    ("/invoke", "{not json"),
    ("/invoke", "[]"),
    ("/invoke", "{}"),
    ("/invoke", ""),
    ("/invoke", r#"{"action":"read_positions","payload":[1]}"#),
    ("/invoke", r#"{"action":"read_positions","tool":"x"}"#),
    ("/tools", r#"{"action":"read_positions"}"#),
];

#[tokio::test]
async fn malformed_requests_get_precise_errors() {
    let cp = ControlPlane::start_example();
    let post = |path: &str, content_type: Option<&'static str>, body: &'static str| {
        let mut request = cp
            .http
            .post(cp.url(path))
            .bearer_auth(ANALYST_TOKEN)
            .body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request.send()
    };
    let cases = MALFORMED
        .iter()
        .map(|&(path, body)| {
            (
                path,
                Some("application/json"),
                body,
                StatusCode::BAD_REQUEST,
                "invalid_request",
            )
        })
        .chain([None, Some("text/plain")].map(|content_type| {
            let body = r#"{"action":"read_positions"}"#;
            (
                "/invoke",
                content_type,
                body,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
            )
        }));
    for (path, content_type, body, expected, code) in cases {
        let (status, _, response) = read(post(path, content_type, body).await.unwrap()).await;
        assert_eq!(status, expected, "{path} {body}: {response}");
        assert_error(status, &response, expected, code);
        let record = cp
            .audit_record(response["trace_id"].as_str().unwrap())
            .await;
        assert_eq!(record["outcome"], "bad_request", "{body}");
        assert_eq!(record["agent_id"], "agent-42");
        // Messages speak of the request, never of our Rust types.
        let message = response["error"]["message"].as_str().unwrap();
        assert!(!message.contains("struct"), "{message}");
        assert!(!message.contains("RestBody"), "{message}");
    }
    // Two Authorization headers: which counts would be a guess; refused.
    let response = cp
        .http
        .post(cp.url("/invoke"))
        .header("authorization", format!("Bearer {ANALYST_TOKEN}"))
        .header("authorization", "Bearer trader-demo-token")
        .json(&serde_json::json!({"action": "read_positions", "payload": {"account": "ACC-001"}}))
        .send()
        .await
        .unwrap();
    let (status, _, body) = read(response).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthenticated");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("more than one Authorization header")
    );
    let record = cp.audit_record(body["trace_id"].as_str().unwrap()).await;
    assert_eq!(record["outcome"], "unauthenticated");
    let response = cp
        .http
        .get(cp.url("/tools?detail=maybe"))
        .bearer_auth(ANALYST_TOKEN)
        .send()
        .await
        .unwrap();
    let (status, _, body) = read(response).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
}

#[tokio::test]
async fn an_oversized_body_gets_413() {
    let cp = ControlPlane::start_example();
    // The example limits bodies to 1 MiB.
    let mut payload = String::from(r#"{"action":"read_positions","payload":{"pad":""#);
    payload.push_str(&"x".repeat(2 * 1024 * 1024));
    payload.push_str(r#""}}"#);
    let response = reqwest::Client::new()
        .post(cp.url("/invoke"))
        .bearer_auth(ANALYST_TOKEN)
        .header("content-type", "application/json")
        .body(payload)
        .send()
        .await
        .unwrap();
    let (status, _, body) = read(response).await;
    assert_error(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    let record = cp.audit_record(body["trace_id"].as_str().unwrap()).await;
    assert_eq!(record["outcome"], "bad_request");
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let cp = ControlPlane::start_example();
    let response = cp.http.get(cp.url("/nope")).send().await.unwrap();
    let (status, _, body) = read(response).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let response = cp.http.get(cp.url("/invoke")).send().await.unwrap();
    let (status, _, body) = read(response).await;
    assert_error(
        status,
        &body,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
    let response = cp.http.delete(cp.url("/tools")).send().await.unwrap();
    let (status, _, body) = read(response).await;
    assert_error(
        status,
        &body,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
}

#[tokio::test]
async fn health_and_readiness() {
    let cp = ControlPlane::start_example();
    let response = cp.http.get(cp.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = cp.wait_all_ready().await;
    let names: Vec<_> = body["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["execution", "marketdata", "marketdata_v2", "research"]
    );
    let text = body.to_string();
    assert!(
        !text.contains("example-server") && !text.contains("$SELF"),
        "{text}"
    );
}

#[tokio::test]
async fn revoked_and_expired_tokens_get_401_with_the_reason() {
    let agents = format!(
        "  old: {{role: tester, token_sha256: {}, revoked: true}}\n  late: {{role: tester, token_sha256: {}, expires: \"2020-01-01T00:00:00Z\"}}\n",
        crate::common::sha256_hex("old-token"),
        crate::common::sha256_hex("late-token"),
    );
    let cp = ControlPlane::start(&format!("{}{agents}", crate::common::catalog("", "", &[])));
    for (token, reason) in [("old-token", "revoked"), ("late-token", "expired")] {
        let (status, headers, body) = read(cp.get_tools(token, "").await).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthenticated");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(reason),
            "{body}"
        );
        assert_eq!(headers["www-authenticate"], cp.challenge(true).as_str());
        let record = cp.audit_record(body["trace_id"].as_str().unwrap()).await;
        assert_eq!(record["outcome"], "unauthenticated");
    }
    let (status, _, _) = read(cp.get_tools(crate::common::TESTER_TOKEN, "").await).await;
    assert_eq!(status, StatusCode::OK);
}
