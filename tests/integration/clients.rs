//! The official SDK clients against the control plane: the Python SDK (`mcp`
//! 2.x: its default auto mode, its legacy mode and the low-level
//! `ClientSession`) and the TypeScript SDK, each as each demo role: list,
//! call an allowed tool, be refused a forbidden one.
//!
//! `tests/clients/setup.sh` installs the SDKs once into a cache outside the clone.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::common::{ANALYST_TOKEN, ControlPlane, TRADER_TOKEN};

fn clients_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/setup.sh");
        let output = Command::new("bash")
            .arg(script)
            .output()
            .expect("run setup.sh");
        assert!(
            output.status.success(),
            "installing the SDK clients failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
    })
}

struct Role {
    token: &'static str,
    tools: [&'static str; 2],
    allowed: &'static str,
    arguments: Value,
    forbidden: &'static str,
}

fn roles() -> [Role; 2] {
    [
        Role {
            token: ANALYST_TOKEN,
            tools: ["read_positions", "run_report"],
            allowed: "run_report",
            arguments: json!({ "desk": "fx", "report": "pnl" }),
            forbidden: "execute_trade",
        },
        Role {
            token: TRADER_TOKEN,
            tools: ["execute_trade", "read_positions"],
            allowed: "execute_trade",
            arguments: json!({ "account": "ACC-002", "symbol": "JPM", "side": "sell", "quantity": 3 }),
            forbidden: "run_report",
        },
    ]
}

/// Run a client command; its last stdout line is its JSON summary.
fn summary(command: &mut Command) -> Value {
    let output = command.output().expect("run the client");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "client failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|_| panic!("not a summary: {stdout}"))
}

fn check(summary: &Value, role: &Role) {
    assert_eq!(summary["tools"], json!(role.tools), "{summary}");
    assert!(summary["structured"].is_object(), "{summary}");
    assert_eq!(summary["refusal"]["code"], -32602, "{summary}");
    let text = summary.to_string();
    for needle in ["marketdata", "research", "execution", "$SELF"] {
        assert!(!text.contains(needle), "{needle} leaked: {text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_python_sdk_works_in_every_mode_as_every_role() {
    let dir = clients_dir();
    let cp = ControlPlane::start_example();
    cp.wait_all_ready().await;
    let url = cp.url("/mcp");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/python_client.py"
    );
    for (mode, protocol) in [
        ("auto", "2026-07-28"),
        ("legacy", "2025-11-25"),
        ("session", "2025-11-25"),
    ] {
        for role in roles() {
            let summary = summary(
                Command::new(dir.join("venv/bin/python"))
                    .arg(script)
                    .args([mode, &url, role.token, role.allowed])
                    .arg(role.arguments.to_string())
                    .arg(role.forbidden),
            );
            check(&summary, &role);
            assert_eq!(summary["protocol"], protocol, "{mode}: {summary}");
        }
    }
    let calls = cp
        .audit_records()
        .into_iter()
        .filter(|r| r["front_door"] == "mcp" && r["action"] == "call")
        .count();
    assert_eq!(calls, 12, "an allowed and a refused call per mode and role");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_typescript_sdk_works_as_every_role() {
    let dir = clients_dir();
    let cp = ControlPlane::start_example();
    cp.wait_all_ready().await;
    let url = cp.url("/mcp");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/ts_client.mjs");
    for role in roles() {
        let summary = summary(
            Command::new("node")
                .arg(script)
                .args([&url, role.token, role.allowed])
                .arg(role.arguments.to_string())
                .arg(role.forbidden)
                .env("NODE_PATH", dir.join("node_modules")),
        );
        check(&summary, &role);
    }
}
