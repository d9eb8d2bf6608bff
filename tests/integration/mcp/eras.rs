//! One control plane in front of both eras of MCP server, and both eras of
//! client in front of it: each upstream is spoken to in the one revision
//! it accepts, and no request ever mixes the two.

use serde_json::json;

use super::{call, connect, connect_stateless};
use crate::common::upstream::{modern_only_upstream, test_upstream};
use crate::common::{ControlPlane, TESTER_TOKEN, catalog};

#[tokio::test]
async fn each_upstream_is_reached_in_the_era_it_speaks_from_clients_of_either_era() {
    // Speaks both eras: `auto` takes 2026-07-28; pinned, 2025-11-25.
    let both = test_upstream(0).await;
    let older = test_upstream(0).await;
    // Refuses `initialize`, as a server of the 2026-07-28 revision only.
    let modern = modern_only_upstream().await;
    let servers = format!(
        "  both:\n    http: {{url: \"{}\"}}\n  modern:\n    http: {{url: \"{}\"}}\n\
         \x20 pinned:\n    http: {{url: \"{}\"}}\n    protocol: \"2025-06-18\"\n\
         \x20 older:\n    http: {{url: \"{}\"}}\n    protocol: \"2025-11-25\"\n",
        both.url, modern.url, modern.url, older.url
    );
    let tools = "  echo: {server: both}\n  modern_echo: {server: modern, upstream_name: echo}\n\
                 \x20 pinned_echo: {server: pinned, upstream_name: echo}\n\
                 \x20 older_echo: {server: older, upstream_name: echo}\n";
    let cp = ControlPlane::start(&catalog(
        &servers,
        tools,
        &["echo", "modern_echo", "pinned_echo", "older_echo"],
    ));
    let readyz = cp
        .wait_readyz("every server tried", |body| body["status"] == "ready")
        .await;
    let state = |name: &str| {
        let servers = readyz["servers"].as_array().unwrap();
        let server = servers.iter().find(|s| s["name"] == name).unwrap();
        (server["state"].clone(), server["last_error"].clone())
    };
    assert_eq!(state("both").0, "ready");
    assert_eq!(state("modern").0, "ready");
    // Pinned to an initialize-era revision, the modern-only server cannot be reached.
    assert_eq!(state("pinned"), (json!("down"), json!("handshake_failed")));

    // Clients of both eras call tools of both eras.
    let session = connect(&cp, TESTER_TOKEN).await.0;
    let stateless = connect_stateless(&cp, TESTER_TOKEN).await;
    for client in [&session, &stateless] {
        for tool in ["echo", "modern_echo", "older_echo"] {
            let result = client
                .call_tool(call(tool, json!({"message": "hi"})))
                .await
                .unwrap();
            assert_ne!(result.is_error, Some(true), "{tool}: {result:?}");
        }
    }
    let calls_at = |upstream: &crate::common::upstream::HttpUpstream| {
        let seen = upstream.seen();
        let calls: Vec<_> = seen
            .iter()
            .filter(|s| s.method == "tools/call")
            .cloned()
            .collect();
        calls
    };
    // Every request carries the revision of its server's era, and only that.
    let (both_calls, modern_calls) = (calls_at(&both), calls_at(&modern));
    let older_calls = calls_at(&older);
    let counts = (both_calls.len(), modern_calls.len(), older_calls.len());
    assert_eq!(counts, (2, 2, 2));
    for seen in both_calls.iter().chain(&modern_calls) {
        assert_eq!(seen.protocol_header.as_deref(), Some("2026-07-28"));
    }
    for seen in &older_calls {
        assert_eq!(seen.protocol_header.as_deref(), Some("2025-11-25"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_2026_07_28_servers_list_changes_are_heard_on_the_listen_stream_the_control_plane_keeps()
{
    let fixture = crate::common::upstream::conformance_upstream().await;
    let servers =
        format!("  modern:\n    http: {{url: \"{fixture}\"}}\n    protocol: \"2026-07-28\"\n");
    let tools = "  change: {server: modern, upstream_name: test_trigger_tool_change}\n";
    let cp = ControlPlane::start(&catalog(&servers, tools, &["change"]));
    cp.wait_all_ready().await;
    let (watcher, mut changes) = super::watching(&cp, TESTER_TOKEN).await;
    // The control plane's listen stream to the server opens on its own
    // time: a change made before it is open goes unheard, so change again
    // until one is heard.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let change = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no tools/list_changed"
        );
        watcher.call_tool(call("change", json!({}))).await.unwrap();
        let heard = tokio::time::timeout(std::time::Duration::from_secs(2), changes.recv());
        if let Ok(change) = heard.await {
            break change.unwrap();
        }
    };
    assert_eq!(change, "tools");
}
