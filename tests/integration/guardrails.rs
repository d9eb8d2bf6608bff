//! Guardrails on what goes to a tool and what comes back: arguments
//! checked against the tool's input schema before anything is sent, and
//! results over `max_result_bytes` refused.

use reqwest::StatusCode;
use rmcp::ServiceExt;
use serde_json::{Value, json};

use crate::common::upstream::test_upstream;
use crate::common::{ControlPlane, TESTER_TOKEN, catalog};

async fn invoke(cp: &ControlPlane, tool: &str, payload: Value) -> (StatusCode, Value) {
    cp.call(TESTER_TOKEN, tool, payload).await
}

#[tokio::test(flavor = "multi_thread")]
async fn arguments_that_do_not_fit_the_schema_never_reach_the_upstream() {
    let checked = test_upstream(0).await;
    let unchecked = test_upstream(0).await;
    let servers = format!(
        "  svc:\n    http: {{url: \"{}\"}}\n  loose:\n    http: {{url: \"{}\"}}\n    validate_arguments: false\n",
        checked.url, unchecked.url
    );
    let tools = "  echo: {server: svc}\n  loose_echo: {server: loose, upstream_name: echo}\n";
    let cp = ControlPlane::start(&catalog(&servers, tools, &["echo", "loose_echo"]));
    cp.wait_all_ready().await;

    // The test server's echo takes `{"message": string}`.
    let (status, body) = invoke(&cp, "echo", json!({"message": 42})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "invalid_arguments", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("`/message`") && message.contains("string"),
        "{message}"
    );
    assert!(
        !message.contains("42"),
        "the value is never echoed: {message}"
    );
    let record = cp.audit_record(body["trace_id"].as_str().unwrap()).await;
    assert_eq!(record["outcome"], "invalid_arguments", "{record}");
    assert_eq!(checked.calls(), 0, "the upstream was never contacted");

    // Over MCP: a tool execution error the model can read and correct
    // (not a protocol error that ends an agent's run), naming the path.
    let config =
        rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
            cp.url("/mcp"),
        )
        .auth_header(TESTER_TOKEN);
    let client = ()
        .serve(rmcp::transport::StreamableHttpClientTransport::from_config(
            config,
        ))
        .await
        .unwrap();
    let arguments = json!({"message": ["value-7f3c"]})
        .as_object()
        .cloned()
        .unwrap();
    let call = rmcp::model::CallToolRequestParams::new("echo").with_arguments(arguments);
    let result = client.call_tool(call).await.unwrap();
    assert_eq!(result.is_error, Some(true));
    let text = &result.content[0].as_text().unwrap().text;
    assert!(text.contains("input schema at `/message`"), "{text}");
    assert!(!text.contains("value-7f3c"), "never the value: {text}");
    let meta = result.meta.unwrap();
    assert_eq!(
        meta["mcp-control-plane/error"],
        json!({"code": "invalid_arguments", "path": "/message"})
    );
    let trace = meta["traceparent"]
        .as_str()
        .unwrap()
        .split('-')
        .nth(1)
        .unwrap();
    assert_eq!(cp.audit_record(trace).await["outcome"], "invalid_arguments");
    assert_eq!(checked.calls(), 0);

    // Arguments that fit go through; a server whose schemas are not
    // checked gets what it is sent.
    assert_eq!(
        invoke(&cp, "echo", json!({"message": "hi"})).await.0,
        StatusCode::OK
    );
    assert_eq!(checked.calls(), 1);
    assert_eq!(
        invoke(&cp, "loose_echo", json!({"message": 42})).await.0,
        StatusCode::OK
    );
    assert_eq!(unchecked.calls(), 1);
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_result_over_the_limit_fails_cleanly() {
    let upstream = test_upstream(0).await;
    let servers = format!(
        "  svc:\n    http: {{url: \"{}\"}}\n    max_result_bytes: 100000\n",
        upstream.url
    );
    let tools = "  echo: {server: svc, max_result_bytes: 200}\n  big_echo: {server: svc, upstream_name: echo}\n";
    let cp = ControlPlane::start(&catalog(&servers, tools, &["echo", "big_echo"]));
    cp.wait_all_ready().await;

    assert_eq!(
        invoke(&cp, "echo", json!({"message": "short"})).await.0,
        StatusCode::OK
    );
    let long = "x".repeat(500);
    let (status, body) = invoke(&cp, "echo", json!({"message": long})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"]["code"], "result_too_large", "{body}");
    assert!(
        !body.to_string().contains(&long),
        "none of the result leaks"
    );
    let record = cp.audit_record(body["trace_id"].as_str().unwrap()).await;
    assert_eq!(record["outcome"], "result_too_large", "{record}");
    // The tool's own limit is the tool's; another tool of the server has
    // the server's.
    assert_eq!(
        invoke(&cp, "big_echo", json!({"message": long})).await.0,
        StatusCode::OK
    );
    let huge = "x".repeat(100_000);
    let (status, body) = invoke(&cp, "big_echo", json!({"message": huge})).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::BAD_GATEWAY, &json!("result_too_large"))
    );
}

/// A list field of an audit event (written as JSON text).
fn listed(record: &Value, field: &str) -> Vec<Value> {
    let text = record[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {record}"));
    serde_json::from_str(text).unwrap()
}

const KEY: &str = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAsecretkeymaterial\n-----END RSA PRIVATE KEY-----";

#[tokio::test(flavor = "multi_thread")]
async fn the_result_rule_redacts_and_withholds_and_no_secret_is_kept_anywhere() {
    let upstream = test_upstream(0).await;
    let dir = tempfile::tempdir().unwrap();
    // Every call is allowed; results are judged on the detectors' findings.
    let policy = "package mcp.authz\n\nimport rego.v1\n\nallow := true\n";
    let result = r#"package mcp.result

import rego.v1

redact contains f if {
	some f in input.findings
	f.part == "result"
	f.kind == "private_key"
}

redact contains {"path": "/structuredContent/echo/account"} if input.result.structuredContent.echo.account

deny contains sprintf("a result of %v may not carry a cloud key", [input.tool.name]) if {
	some f in input.findings
	f.part == "result"
	f.kind == "aws_access_key"
}
"#;
    std::fs::write(dir.path().join("authz.rego"), policy).unwrap();
    std::fs::write(dir.path().join("result.rego"), result).unwrap();
    let servers = format!("  svc:\n    http: {{url: \"{}\"}}\n", upstream.url);
    let text = catalog(&servers, "  echo: {server: svc}\n", &["echo"]).replace(
        "policy: allow-all\n",
        &format!("policy:\n  files: [\"{}\"]\n", dir.path().display()),
    );
    let cp = ControlPlane::start(&text);
    cp.wait_all_ready().await;

    // The test server's echo answers with its arguments, as text and as
    // structuredContent: the key comes back in both.
    let message = format!("deploy with {KEY} please");
    let (status, body) = invoke(
        &cp,
        "echo",
        json!({"message": message, "account": "ACC-001"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let answer = body["result"].to_string();
    assert!(!answer.contains("MIIE"), "{answer}");
    // A path names one value: the text copy of it is not the path's.
    let structured = body["result"]["structuredContent"].to_string();
    assert!(!structured.contains("ACC-001"), "{answer}");
    assert_eq!(
        body["result"]["structuredContent"]["echo"]["message"],
        "deploy with [redacted] please"
    );
    assert_eq!(
        body["result"]["structuredContent"]["echo"]["account"],
        "[redacted]"
    );
    assert!(answer.contains("[redacted]"));
    let record = cp.audit_record(body["trace_id"].as_str().unwrap()).await;
    assert_eq!(record["outcome"], "ok", "{record}");
    let redactions = listed(&record, "redactions");
    assert!(
        redactions.contains(&json!({"path": "/content/0/text", "kind": "private_key"})),
        "{record}"
    );
    assert!(
        redactions.contains(&json!({"path": "/structuredContent/echo/account"})),
        "{record}"
    );
    let findings = listed(&record, "findings");
    assert!(
        findings.contains(&json!({"kind": "private_key", "part": "arguments", "path": "/message"})),
        "{record}"
    );
    assert!(findings.contains(&json!({"kind": "private_key", "part": "result", "path": "/structuredContent/echo/message"})), "{record}");

    // A cloud key in the result: withheld, with the rule's reason.
    let (status, body) = invoke(&cp, "echo", json!({"message": "key AKIAIOSFODNN7EXAMPLE"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "result_denied", "{body}");
    assert_eq!(
        body["error"]["reasons"],
        json!(["a result of echo may not carry a cloud key"])
    );
    assert!(!body.to_string().contains("AKIA"), "{body}");
    let record = cp.audit_record(body["trace_id"].as_str().unwrap()).await;
    assert_eq!(record["outcome"], "result_denied", "{record}");
    assert_eq!(
        upstream.calls(),
        2,
        "the upstream answered; the agent never saw it"
    );

    // Nothing the detectors found is kept: not in records, not in the log.
    let log = cp.stderr_text();
    assert!(
        !log.contains("MIIE") && !log.contains("AKIAIOSFODNN7EXAMPLE"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_example_policy_refuses_arguments_that_carry_a_private_key() {
    let cp = ControlPlane::start_example();
    cp.wait_all_ready().await;
    let body =
        json!({"action": "read_positions", "payload": {"account": format!("ACC-001 {KEY}")}});
    let response = cp.invoke(Some(crate::common::ANALYST_TOKEN), body).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "policy_denied", "{body}");
    let reasons = body["error"]["reasons"].to_string();
    assert!(
        reasons.contains("private key or a cloud access key"),
        "{reasons}"
    );
    let record = cp.audit_record(body["trace_id"].as_str().unwrap()).await;
    assert_eq!(
        listed(&record, "findings"),
        [json!({"kind": "private_key", "part": "arguments", "path": "/account"})],
        "{record}"
    );
    assert!(!cp.stderr_text().contains("MIIE"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_example_policy_redacts_a_private_key_a_server_returns() {
    use crate::common::many::{LEAKED_KEY, many_tools_upstream};
    let upstream = many_tools_upstream(vec!["leak_key".into()]).await;
    let policies = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/trading/policies");
    let servers = format!("  svc:\n    http: {{url: \"{}\"}}\n", upstream.url);
    let text = catalog(&servers, "  leak_key: {server: svc}\n", &["leak_key"]).replace(
        "policy: allow-all\n",
        &format!("policy:\n  files: [\"{policies}\"]\n  data: [\"{policies}/data.yaml\"]\n"),
    );
    let cp = ControlPlane::start(&text);
    cp.wait_all_ready().await;
    let (status, body) = invoke(&cp, "leak_key", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["result"]["content"][0]["text"],
        "the deploy key:\n[redacted]\nkeep it safe"
    );
    let record = cp.audit_record(body["trace_id"].as_str().unwrap()).await;
    assert_eq!(
        listed(&record, "redactions"),
        [json!({"path": "/content/0/text", "kind": "private_key"})],
        "{record}"
    );
    let key_body = LEAKED_KEY.lines().nth(1).unwrap();
    assert!(
        !cp.stderr_text().contains(key_body),
        "the key is in no log or record"
    );
}
