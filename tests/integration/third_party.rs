//! MCP clients nobody here wrote, connected once directly to a server and
//! once through the control plane, must see the same: listing, a call, an
//! argument error (a tool result the model can correct, not a protocol
//! error that ends the run) and progress. `fastmcp` 4.x, LangChain's
//! `langchain-mcp-adapters` and the OpenAI Agents SDK, against the
//! reference everything server over Streamable HTTP.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;

use crate::clients::{clients_dir, summary};
use crate::common::{ControlPlane, TESTER_TOKEN, catalog, wait_listening};
use crate::fleet::everything;

/// The tools server-everything lists only to a client that declares the
/// capability they use (roots, elicitation, sampling). The control plane
/// declares every capability it relays to a server shared by all clients,
/// so it lists them to every client; calling one without the capability
/// gets -32601 at once (README, "Every client era against every upstream era").
const CAPABILITY_GATED: [&str; 3] = [
    "get-roots-list",
    "trigger-elicitation-request",
    "trigger-sampling-request",
];

/// Run `script` (under `tests/clients`, with `args` before the URL) in the
/// clients' `venv` against `url` (with `token`, if any): its summary.
async fn client(venv: &str, script: &str, args: &[&str], url: String, token: &str) -> Value {
    let python = clients_dir().join(venv).join("bin/python");
    let mut command = Command::new(python);
    command
        .arg(crate::fleet::script(script))
        .args(args)
        .args([&url, token]);
    tokio::task::spawn_blocking(move || summary(&mut command))
        .await
        .unwrap()
}

/// A client's run directly against server-everything and through the
/// control plane publishing it whole: the two summaries must agree (the
/// listing but for [`CAPABILITY_GATED`]). The summary through the control
/// plane.
async fn compared(venv: &str, script: &str, args: &[&str]) -> Value {
    let (_server, port) = everything("streamableHttp");
    wait_listening(port);
    let direct_url = format!("http://127.0.0.1:{port}/mcp");
    let servers = format!("  everything:\n    http: {{url: \"{direct_url}\"}}\n    expose: {{}}\n");
    let text = catalog(&servers, "", &[]).replace("tester: []", "tester: {servers: [everything]}");
    let cp = ControlPlane::start(&text);
    cp.wait_all_ready().await;
    let exposed = |names: &[String]| names.iter().any(|n| n == "echo");
    cp.wait_tools(TESTER_TOKEN, "the exposed tools", exposed)
        .await;
    let mut direct = client(venv, script, args, direct_url, "").await;
    let mut through = client(venv, script, args, cp.url("/mcp"), TESTER_TOKEN).await;
    let names = |summary: &mut Value| -> BTreeSet<String> {
        serde_json::from_value(summary["tools"].take()).unwrap()
    };
    let (seen_directly, seen_through) = (names(&mut direct), names(&mut through));
    let gated: BTreeSet<String> = CAPABILITY_GATED.iter().map(|n| n.to_string()).collect();
    assert!(seen_directly.len() > 5, "{seen_directly:?}");
    assert_eq!(
        seen_through,
        &seen_directly | &gated,
        "every tool listed directly, and those a capable client sees"
    );
    // The call, the argument error as a tool result, and every progress
    // notification: the same, field by field.
    assert_eq!(through, direct);
    through
}

#[tokio::test(flavor = "multi_thread")]
async fn the_fastmcp_client_sees_through_the_gateway_what_it_sees_directly() {
    let through = compared("venv", "fastmcp_client.py", &[]).await;
    assert_eq!(through["wrong_argument"]["is_error"], true, "{through}");
    assert_eq!(
        through["progress"].as_array().unwrap().len(),
        4,
        "{through}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn langchains_adapter_sees_through_the_gateway_what_it_sees_directly() {
    let through = compared("venv-langchain", "agent_frameworks.py", &["langchain"]).await;
    // A tool error the model reads, not an exception that ends the run.
    let wrong = &through["wrong_argument"];
    assert_eq!(wrong["returned"], true, "{through}");
    assert_eq!(wrong["names_the_argument"], true, "{through}");
    assert_eq!(
        through["progress"].as_array().unwrap().len(),
        4,
        "{through}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openai_agents_sdk_sees_through_the_gateway_what_it_sees_directly() {
    let through = compared("venv", "agent_frameworks.py", &["openai-agents"]).await;
    assert_eq!(through["wrong_argument"]["is_error"], true, "{through}");
    assert_eq!(through["echo"], "Echo: hi", "{through}");
}
