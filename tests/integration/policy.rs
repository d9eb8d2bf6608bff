//! The Rego policy: every outcome of a decision, argument rules with
//! reasons, the deployment's environment, discovery hiding, reloading, and
//! the `policy` and `check` commands.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::upstream::test_upstream;
use crate::common::{ANALYST_TOKEN, ControlPlane, TESTER_TOKEN, TRADER_TOKEN, binary, catalog};

const EXAMPLE_POLICIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/trading/policies");

/// A policy whose answer the call's `mode` argument picks.
const MODES: &str = r#"package mcp.authz

import rego.v1

allow if input.arguments.mode == "allow"

allow := false if input.arguments.mode == "deny"

allow := "yes" if input.arguments.mode == "string"

# Two values for one complete rule: an evaluation error.
allow := 1 if input.arguments.mode == "error"

allow := 2 if input.arguments.mode == "error"

allow if {
	input.arguments.mode == "slow"
	count([1 | some i in numbers.range(1, 5000); some j in numbers.range(1, 5000)]) > 0
}

reasons contains "mode says no" if input.arguments.mode == "deny"

reasons contains sprintf("environment is %v", [input.environment]) if input.arguments.mode == "deny"
"#;

/// A catalog routing the test upstream's `echo`, under a Rego policy in
/// `dir` (whose `authz.rego` the test writes), each evaluation given
/// `timeout`.
fn timed_policy_catalog(upstream_url: &str, dir: &Path, timeout: &str) -> String {
    let base = catalog(
        &format!("  testsrv:\n    http: {{url: \"{upstream_url}\"}}\n"),
        "  echo: {server: testsrv, tags: [demo]}\n",
        &["echo"],
    );
    base.replace(
        "policy: allow-all\n",
        &format!(
            "policy:\n  files: [\"{}\"]\n  timeout: {timeout}\n",
            dir.join("authz.rego").display()
        ),
    )
}

/// [`timed_policy_catalog`] with time enough for any evaluation but the
/// `slow` mode's, however loaded the machine.
fn policy_catalog(upstream_url: &str, dir: &Path) -> String {
    timed_policy_catalog(upstream_url, dir, "5s")
}

async fn echo(cp: &ControlPlane, mode: &str) -> (u16, Value) {
    let response = cp
        .invoke(
            Some(TESTER_TOKEN),
            json!({"action": "echo", "payload": {"mode": mode}}),
        )
        .await;
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn only_a_boolean_true_allows_and_a_denied_call_never_reaches_the_server() {
    let upstream = test_upstream(0).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("authz.rego"), MODES).unwrap();
    let cp = ControlPlane::start(&policy_catalog(&upstream.url, dir.path()));
    cp.wait_all_ready().await;

    for (mode, cause) in [
        ("deny", "false"),
        ("other", "undefined"),
        ("string", "not_boolean"),
        ("error", "evaluation_error"),
    ] {
        let (status, body) = echo(&cp, mode).await;
        assert_eq!(status, 403, "{mode}: {body}");
        assert_eq!(body["error"]["code"], "policy_denied", "{mode}");
        let record = cp.audit_record(body["trace_id"].as_str().unwrap()).await;
        assert_eq!(record["outcome"], "denied_policy", "{mode}");
        assert_eq!(record["policy"], cause, "{mode}");
    }
    assert_eq!(upstream.calls(), 0, "a denied call reached the server");

    // Reasons reach the caller and the record; the environment in the
    // input is the deployment's.
    let (_, body) = echo(&cp, "deny").await;
    assert_eq!(
        body["error"]["reasons"],
        json!(["environment is test", "mode says no"])
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("mode says no")
    );
    let record = cp.audit_record(body["trace_id"].as_str().unwrap()).await;
    assert_eq!(record["reasons"], "environment is test; mode says no");

    let (status, body) = echo(&cp, "allow").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(upstream.calls(), 1);
    let record = cp.audit_record(body["trace_id"].as_str().unwrap()).await;
    assert_eq!(record["policy"], "allow");
}

#[tokio::test]
async fn an_evaluation_past_the_policys_time_limit_denies() {
    let upstream = test_upstream(0).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("authz.rego"), MODES).unwrap();
    let text = timed_policy_catalog(&upstream.url, dir.path(), "20ms");
    let cp = ControlPlane::start(&text);
    cp.wait_all_ready().await;
    let (status, body) = echo(&cp, "slow").await;
    assert_eq!(status, 403, "{body}");
    let record = cp.audit_record(body["trace_id"].as_str().unwrap()).await;
    assert_eq!(record["policy"], "evaluation_error");
    assert_eq!(upstream.calls(), 0);
}

/// The example catalog, as deployed in `environment`.
fn example_in(environment: &str) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/trading/catalog.yaml");
    std::fs::read_to_string(path)
        .unwrap()
        .replace(
            "environment: staging",
            &format!("environment: {environment}"),
        )
        .replace(
            "files: [policies/]",
            &format!("files: [\"{EXAMPLE_POLICIES}\"]"),
        )
        .replace(
            "data: [policies/data.yaml]",
            &format!("data: [\"{EXAMPLE_POLICIES}/data.yaml\"]"),
        )
}

#[tokio::test]
async fn the_example_policy_judges_arguments_and_tells_why() {
    let cp = ControlPlane::start_example();
    cp.wait_all_ready().await;
    let trade = |quantity: u64, limit: Option<u64>| {
        let mut payload =
            json!({"account": "ACC-001", "symbol": "NVDA", "side": "buy", "quantity": quantity});
        if let Some(limit) = limit {
            payload["limit_price"] = json!(limit);
        }
        json!({"action": "execute_trade", "payload": payload})
    };
    let response = cp.invoke(Some(TRADER_TOKEN), trade(10, None)).await;
    assert_eq!(response.status(), 200);
    let response = cp
        .invoke(Some(TRADER_TOKEN), trade(20_000, Some(100)))
        .await;
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["error"]["reasons"],
        json!(["order notional 2000000 exceeds the desk limit of 1000000"])
    );
    let report =
        |desk: &str| json!({"action": "run_report", "payload": {"desk": desk, "report": "pnl"}});
    assert_eq!(
        cp.invoke(Some(ANALYST_TOKEN), report("fx")).await.status(),
        200
    );
    let response = cp.invoke(Some(ANALYST_TOKEN), report("rates")).await;
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["error"]["reasons"],
        json!(["agent-42 may only run reports for its own desks"])
    );
}

#[tokio::test]
async fn in_production_trading_is_hidden_and_refused_whatever_the_caller_claims() {
    let cp = ControlPlane::start(&example_in("production"));
    cp.wait_all_ready().await;
    // Discovery hides it...
    let tools: Value = cp.get_tools(TRADER_TOKEN, "").await.json().await.unwrap();
    assert_eq!(tools["tools"], json!(["read_positions"]));
    // ...and a call is refused exactly like a tool that does not exist.
    let payload = json!({"account": "ACC-001", "symbol": "AAPL", "side": "buy", "quantity": 1});
    let response = cp
        .invoke(
            Some(TRADER_TOKEN),
            json!({"action": "execute_trade", "payload": payload}),
        )
        .await;
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");
    let record = cp.audit_record(body["trace_id"].as_str().unwrap()).await;
    assert_eq!(record["outcome"], "denied_policy");
    assert_eq!(record["policy"], "hidden");
    // Claiming another environment changes nothing but the record.
    let response = cp
        .invoke(
            Some(TRADER_TOKEN),
            json!({"action": "execute_trade", "payload": payload, "environment": "staging"}),
        )
        .await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "impersonation");
    // Reading positions is still fine.
    let response = cp
        .invoke(
            Some(TRADER_TOKEN),
            json!({"action": "read_positions", "payload": {"account": "ACC-001"}}),
        )
        .await;
    assert_eq!(response.status(), 200);
}

async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_changed_policy_is_reloaded_and_a_broken_one_never_replaces_a_working_one() {
    let upstream = test_upstream(0).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("authz.rego");
    std::fs::write(&file, MODES).unwrap();
    let cp = ControlPlane::start(&policy_catalog(&upstream.url, dir.path()));
    cp.wait_all_ready().await;
    assert_eq!(echo(&cp, "allow").await.0, 200);
    let catalog = |body: &Value| body["catalog"].clone();
    let readyz = cp.readyz().await;
    let first = catalog(&readyz)["version"].clone();
    assert_eq!(first.as_str().map(str::len), Some(12));

    // A valid change: "allow" now denies, under a new catalog version.
    std::fs::write(
        &file,
        MODES.replace(r#"allow if input.arguments.mode == "allow""#, ""),
    )
    .unwrap();
    wait_for("the new policy", async || echo(&cp, "allow").await.0 == 403).await;
    let second = catalog(&cp.readyz().await)["version"].clone();
    assert_ne!(second, first);

    // A broken file: refused, reported, and the previous version decides.
    std::fs::write(&file, "package mcp.authz\n\nallow if {").unwrap();
    wait_for("the refusal", async || {
        !catalog(&cp.readyz().await)["reload_error"].is_null()
    })
    .await;
    let status = catalog(&cp.readyz().await);
    assert_eq!(status["version"], second);
    assert_eq!(echo(&cp, "allow").await.0, 403);
    assert!(cp.stderr_text().contains("catalog reload refused"));

    // A policy whose own tests fail is refused too.
    let failing = format!("{MODES}\ntest_allows_everything if allow with input as {{}}\n");
    std::fs::write(&file, failing).unwrap();
    wait_for("the failing tests", async || {
        catalog(&cp.readyz().await)["reload_error"]
            .as_str()
            .is_some_and(|e| e.contains("test_allows_everything"))
    })
    .await;
    assert_eq!(echo(&cp, "allow").await.0, 403);

    // Fixed again: in force, with its tests counted.
    let passing = format!("{MODES}\ntest_denies_by_default if not allow with input as {{}}\n");
    std::fs::write(&file, passing).unwrap();
    wait_for("the fixed policy", async || {
        echo(&cp, "allow").await.0 == 200
    })
    .await;
    let readyz = cp.readyz().await;
    assert_eq!(readyz["policy"]["tests_passed"], 1);
    assert!(catalog(&readyz)["reload_error"].is_null());
}

fn run(args: &[&str]) -> (bool, String) {
    let output = Command::new(binary()).args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn policy_test_reports_each_test_and_fails_on_a_failing_one() {
    let (ok, text) = run(&["policy", "test", EXAMPLE_POLICIES]);
    assert!(ok, "{text}");
    assert!(
        text.contains("data.mcp.authz_test.test_trades_are_blocked_in_production: PASS"),
        "{text}"
    );
    let tests = crate::common::example_policy_tests();
    assert!(text.contains(&format!("PASS: {tests}/{tests}")), "{text}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.rego"),
        "package p\n\nimport rego.v1\n\nx := 1\n\ntest_one if x == 1\n\ntest_two if x == 2\n",
    )
    .unwrap();
    let (ok, text) = run(&["policy", "test", dir.path().to_str().unwrap()]);
    assert!(!ok, "{text}");
    assert!(text.contains("data.p.test_one: PASS"), "{text}");
    assert!(text.contains("data.p.test_two: FAIL"), "{text}");
    assert!(text.contains("FAIL: 1/2"), "{text}");
}

#[test]
fn policy_eval_prints_the_decision_and_reasons_for_one_input() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("catalog.yaml");
    std::fs::write(&config, example_in("staging")).unwrap();
    let input = dir.path().join("input.json");
    let document = json!({
        "agent": {"id": "agent-7", "role": "trader", "claims": {}},
        "tool": {"kind": "tool", "name": "execute_trade", "upstream_name": "execute_trade", "server": "execution", "tags": []},
        "arguments": {"account": "ACC-001", "symbol": "MSFT", "side": "buy", "quantity": 5000, "limit_price": 300},
        "environment": "staging",
        "request": {"trace_id": "t", "time": "2026-11-25T12:00:00Z", "timestamp": 0, "front_door": "rest", "action": "call"},
    });
    std::fs::write(&input, document.to_string()).unwrap();
    let (ok, text) = run(&[
        "policy",
        "eval",
        "--config",
        path(&config),
        "--input",
        path(&input),
    ]);
    assert!(ok, "{text}");
    let decision: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(decision["decision"], "deny");
    assert_eq!(
        decision["reasons"],
        json!(["order notional 1500000 exceeds the desk limit of 1000000"])
    );
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn check_points_at_each_negation_opa_may_decide_differently() {
    let dir = tempfile::tempdir().unwrap();
    let policy = "package mcp.authz\n\nimport rego.v1\n\n\
                  lp := input.arguments.lp if is_number(input.arguments.lp)\n\n\
                  positive if lp > 0\n\n\
                  allow if not lp > 0\n\n\
                  allow if not positive\n";
    std::fs::write(dir.path().join("authz.rego"), policy).unwrap();
    let catalog = policy_catalog("http://127.0.0.1:9/mcp", dir.path());
    let (ok, text, _) = crate::common::run_check("catalog.yaml", &catalog);
    assert!(ok, "a warning, not an error: {text}");
    let warnings: Vec<_> = text.lines().filter(|l| l.contains("`not` over")).collect();
    assert_eq!(warnings.len(), 1, "{text}");
    assert!(warnings[0].contains("authz.rego:9:"), "{text}");
}

#[test]
fn check_compiles_the_policy_and_warns_about_allow_all_and_no_policy() {
    let (ok, text) = run(&[
        "check",
        "--config",
        concat!(env!("CARGO_MANIFEST_DIR"), "/examples/trading/catalog.yaml"),
    ]);
    assert!(ok, "{text}");
    let tests = crate::common::example_policy_tests();
    let compiled = format!("policy compiles, {tests} tests pass");
    assert!(text.contains(&compiled), "{text}");
    // The example negates only named rules: nothing OPA decides otherwise.
    assert!(!text.contains("`not` over"), "{text}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("authz.rego"),
        "package mcp.authz\n\nallow if {",
    )
    .unwrap();
    let broken = policy_catalog("http://127.0.0.1:9/mcp", dir.path());
    let (ok, text, _) = crate::common::run_check("broken.yaml", &broken);
    assert!(!ok, "{text}");
    assert!(text.contains("policy:"), "{text}");
    assert!(text.contains("authz.rego"), "{text}");

    let allow_all = catalog("", "", &[]);
    let (ok, text, _) = crate::common::run_check("dev.yaml", &allow_all);
    assert!(ok, "{text}");
    assert!(
        text.contains("warning") && text.contains("allow-all"),
        "{text}"
    );
    let (ok, text, _) =
        crate::common::run_check("none.yaml", &allow_all.replace("policy: allow-all\n", ""));
    assert!(ok, "{text}");
    assert!(text.contains("every call will be denied"), "{text}");
}

/// Issue 31: deny by default at serve time. A catalog without `policy:`
/// serves, lists what roles grant, and denies every call (cause
/// `no_policy`) without contacting the server.
#[tokio::test]
async fn without_a_policy_every_call_is_denied() {
    let upstream = crate::common::upstream::test_upstream(0).await;
    let catalog = crate::common::echo_catalog(&upstream.url).replace("policy: allow-all\n", "");
    assert!(!catalog.contains("policy:"), "{catalog}");
    let cp = ControlPlane::start(&catalog);
    cp.wait_all_ready().await;
    let (status, body) = cp.call(TESTER_TOKEN, "echo", json!({})).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "policy_denied", "{body}");
    let record = cp.audit_record(body["trace_id"].as_str().unwrap()).await;
    assert_eq!(record["outcome"], "denied_policy");
    assert_eq!(record["policy"], "no_policy");
    assert_eq!(upstream.calls(), 0);
}
