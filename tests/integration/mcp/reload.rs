//! A catalog reload tells exactly the sessions whose view it changed.

use std::time::Duration;

use tokio::sync::mpsc;

use super::{call, mcp_error, tool_names, watching};
use crate::common::upstream::test_upstream;
use crate::common::{ANALYST_TOKEN, ControlPlane, TESTER_TOKEN, catalog};
use crate::live::{replace_file, wait_for};

/// Wait for the next notification, if one comes within a few seconds.
async fn next(rx: &mut mpsc::UnboundedReceiver<String>, within: Duration) -> Option<String> {
    tokio::time::timeout(within, rx.recv()).await.ok().flatten()
}

#[tokio::test]
async fn a_removed_tool_is_refused_at_once_and_only_sessions_that_saw_it_are_told() {
    let upstream = test_upstream(0).await;
    let servers = format!("  svc:\n    http: {{url: \"{}\"}}\n", upstream.url);
    let tools = "  echo: {server: svc}\n  hang: {server: svc}\n";
    let text = catalog(&servers, tools, &["echo", "hang"]);
    let cp = ControlPlane::start(&text);
    cp.wait_all_ready().await;
    // The tester sees both tools; agent-42's role sees nothing.
    let (tester, mut tester_heard) = watching(&cp, TESTER_TOKEN).await;
    let (analyst, mut analyst_heard) = watching(&cp, ANALYST_TOKEN).await;
    assert_eq!(tool_names(&tester).await, ["echo", "hang"]);
    assert!(tool_names(&analyst).await.is_empty());

    let before = cp.readyz().await["catalog"]["version"].clone();
    replace_file(
        &cp.config,
        &catalog(&servers, "  echo: {server: svc}\n", &["echo"]),
    );
    wait_for("the new version", async || {
        cp.readyz().await["catalog"]["version"] != before
    })
    .await;
    // Refused at once, whatever the session listed before.
    let refused = mcp_error(tester.call_tool(call("hang", serde_json::json!({}))).await);
    assert_eq!(refused.code.0, -32602, "{refused:?}");
    assert_eq!(
        next(&mut tester_heard, Duration::from_secs(10))
            .await
            .as_deref(),
        Some("tools")
    );
    assert_eq!(tool_names(&tester).await, ["echo"]);

    // The analyst's view did not change: nothing for it. Then it does.
    let granted = catalog(&servers, "  echo: {server: svc}\n", &["echo"])
        .replace("nobody: []", "nobody: [echo]");
    replace_file(&cp.config, &granted);
    assert_eq!(
        next(&mut analyst_heard, Duration::from_secs(10))
            .await
            .as_deref(),
        Some("tools"),
        "the first notification the analyst gets is for its own change"
    );
    assert_eq!(tool_names(&analyst).await, ["echo"]);
    // And the tester, whose view stayed the same, heard nothing more.
    assert_eq!(
        next(&mut tester_heard, Duration::from_millis(500)).await,
        None
    );
}
