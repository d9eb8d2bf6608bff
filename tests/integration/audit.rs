//! The durable audit trail: one record per request, read back through the
//! admin API and the CLI, on SQLite and PostgreSQL; nothing lost to a
//! `kill -9` or a SIGTERM; metrics. Sinks under stress: `audit_sinks.rs`.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::common::upstream::test_upstream;
use crate::common::{ControlPlane, TESTER_TOKEN, binary, catalog, sha256_hex};

pub(crate) const ADMIN_TOKEN: &str = "admin-token-for-tests";

/// The test upstream's tools, `echo` opted into argument recording, an
/// admin, and `extra` catalog text (an `audit` section).
pub(crate) fn audit_catalog(upstream_url: &str, extra: &str) -> String {
    let servers = format!("  testsrv:\n    http: {{url: \"{upstream_url}\"}}\n    timeout: 1s\n");
    let tools = "  echo: {server: testsrv, audit: {arguments: true, redact: [secret]}}\n  \
                 fail: {server: testsrv}\n  hang: {server: testsrv}\n  touch: {server: testsrv}\n";
    format!(
        "{}admins:\n  ops: {{token_sha256: {}}}\n{extra}",
        catalog(&servers, tools, &["echo", "fail", "hang"]),
        sha256_hex(ADMIN_TOKEN)
    )
}

/// The trace id of a REST answer.
pub(crate) async fn trace_of(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let traceparent = response.headers()["traceparent"]
        .to_str()
        .unwrap()
        .to_string();
    (status, traceparent.split('-').nth(1).unwrap().to_string())
}

pub(crate) async fn admin_query(
    cp: &ControlPlane,
    token: Option<&str>,
    query: &str,
) -> (u16, Value) {
    let mut request = cp.http.get(cp.admin_url(&format!("/admin/audit?{query}")));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

pub(crate) async fn call(cp: &ControlPlane, token: Option<&str>, body: Value) -> (u16, String) {
    trace_of(cp.invoke(token, body).await).await
}

/// `n` successful `echo` calls; their trace ids.
pub(crate) async fn echo_calls(cp: &ControlPlane, n: usize) -> Vec<String> {
    let mut traces = Vec::new();
    for i in 0..n {
        let body = json!({"action": "echo", "payload": {"n": i}});
        let (status, trace) = call(cp, Some(TESTER_TOKEN), body).await;
        assert_eq!(status, 200);
        traces.push(trace);
    }
    traces
}

/// Each trace has exactly one record in the control plane's default SQLite
/// store (read after the process ended).
fn assert_recorded_once(cp: &ControlPlane, traces: &[String]) {
    let db = cp
        .config
        .parent()
        .unwrap()
        .join(".mcp-control-plane/audit.db");
    let connection = rusqlite::Connection::open(db).unwrap();
    for trace in traces {
        let count: i64 = connection
            .query_row(
                "SELECT count(*) FROM audit_records WHERE trace_id = ?1",
                [trace],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(count, 1, "{trace}");
    }
}

#[tokio::test]
async fn every_outcome_leaves_exactly_one_durable_record_that_the_admin_can_read() {
    every_outcome("", true).await;
}

#[tokio::test]
async fn every_outcome_leaves_exactly_one_record_in_postgres_too() {
    let secrets = tempfile::tempdir().unwrap();
    let url = secrets.path().join("pg-url");
    std::fs::write(
        &url,
        "postgres://postgres@127.0.0.1:5432/test?sslmode=disable",
    )
    .unwrap();
    let sinks = format!(
        "audit:\n  sinks:\n    - postgres: {{url: {{file: \"{}\"}}}}\n",
        url.display()
    );
    // The shared database holds other tests' records too: no totals.
    every_outcome(&sinks, false).await;
}

/// Every kind of outcome, read back per trace; with `exclusive` (a store of
/// this test's own) also the totals, pages and the CLI.
async fn every_outcome(sinks: &str, exclusive: bool) {
    let upstream = test_upstream(0).await;
    let cp = ControlPlane::start(&audit_catalog(&upstream.url, sinks));
    cp.wait_all_ready().await;
    let invoke = |tool: &str, payload: Value| json!({"action": tool, "payload": payload});
    let mut expected: Vec<(String, &str, &str)> = Vec::new();
    let (_, trace) = trace_of(cp.get_tools(TESTER_TOKEN, "").await).await;
    expected.push((trace, "discovery", "ok"));
    let arguments = json!({"message": "hi", "secret": "s3cr3t"});
    let (status, echo_trace) =
        call(&cp, Some(TESTER_TOKEN), invoke("echo", arguments.clone())).await;
    assert_eq!(status, 200);
    expected.push((echo_trace.clone(), "call", "ok"));
    for (tool, token, body_extra, outcome) in [
        ("fail", Some(TESTER_TOKEN), json!({}), "tool_error"),
        ("hang", Some(TESTER_TOKEN), json!({}), "timeout"),
        ("touch", Some(TESTER_TOKEN), json!({}), "denied_role"),
        ("echo", None, json!({}), "unauthenticated"),
        (
            "echo",
            Some(TESTER_TOKEN),
            json!({"agent_role": "admin"}),
            "impersonation",
        ),
    ] {
        let mut body = invoke(tool, json!({}));
        body.as_object_mut()
            .unwrap()
            .extend(body_extra.as_object().unwrap().clone());
        let (_, trace) = call(&cp, token, body).await;
        expected.push((trace, "call", outcome));
    }
    // Each request: exactly one record, with its outcome and the who/what/where.
    for (trace, action, outcome) in &expected {
        let (status, page) =
            admin_query(&cp, Some(ADMIN_TOKEN), &format!("trace_id={trace}")).await;
        assert_eq!(status, 200, "{page}");
        let records = page["records"].as_array().unwrap();
        assert_eq!(records.len(), 1, "{trace}: {page}");
        let record = &records[0];
        assert_eq!(record["action"], *action);
        assert_eq!(record["outcome"], *outcome, "{record}");
        assert_eq!(record["environment"], "test");
        assert_eq!(record["front_door"], "rest");
        assert_eq!(record["span_id"].as_str().unwrap().len(), 16);
        assert!(record["time"].as_str().unwrap().ends_with('Z'));
        if *outcome != "unauthenticated" {
            assert_eq!(record["agent_id"], "tester-1");
        }
    }
    let (_, page) = admin_query(&cp, Some(ADMIN_TOKEN), &format!("trace_id={echo_trace}")).await;
    let record = &page["records"][0];
    assert_eq!(record["server"], "testsrv");
    assert_eq!(record["upstream_tool"], "echo");
    assert_eq!(record["policy"], "allow");
    let digest = hex::encode(Sha256::digest(arguments.to_string().as_bytes()));
    assert_eq!(record["arguments_sha256"], digest);
    assert_eq!(
        record["arguments"],
        json!({"message": "hi", "secret": "[redacted]"})
    );
    assert!(!cp.stderr_text().contains("s3cr3t"));

    // Only admins read the trail.
    assert_eq!(admin_query(&cp, Some(TESTER_TOKEN), "").await.0, 403);
    assert_eq!(admin_query(&cp, None, "").await.0, 401);
    assert_eq!(
        admin_query(&cp, Some(ADMIN_TOKEN), "since=yesterday")
            .await
            .0,
        400
    );
    let refused = cp
        .audit_matching(1, |r| {
            r["action"] == "admin_query" && r["tool"] == "admin/audit?since=yesterday"
        })
        .await;
    assert_eq!(refused[0]["outcome"], "bad_request", "a 400 is no `ok`");

    if !exclusive {
        return;
    }
    // Filters and pages: the agent's records two at a time, none twice.
    let mut seen = HashSet::new();
    let mut cursor = String::new();
    loop {
        let (_, page) = admin_query(
            &cp,
            Some(ADMIN_TOKEN),
            &format!("agent_id=tester-1&limit=2{cursor}"),
        )
        .await;
        for record in page["records"].as_array().unwrap() {
            assert_eq!(record["agent_id"], "tester-1");
            assert!(seen.insert(record["id"].as_str().unwrap().to_string()));
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    // All but the unauthenticated call, plus the agent's refused attempt to
    // read the trail: reading the trail is recorded too.
    assert_eq!(seen.len(), expected.len(), "{seen:?}");
    let (_, page) = admin_query(
        &cp,
        Some(ADMIN_TOKEN),
        "agent_id=tester-1&outcome=denied_role",
    )
    .await;
    let actions: Vec<&str> = page["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"admin_query"), "{page}");
    let (_, page) = admin_query(&cp, Some(ADMIN_TOKEN), "agent_id=ops&limit=1").await;
    let read = &page["records"][0];
    assert_eq!(read["action"], "admin_query");
    assert_eq!(read["role"], "admin");
    assert!(
        read["tool"].as_str().unwrap().starts_with("admin/audit?"),
        "{read}"
    );
    let (_, page) = admin_query(&cp, Some(ADMIN_TOKEN), "outcome=timeout").await;
    assert_eq!(page["records"].as_array().unwrap().len(), 1);
    let (_, page) = admin_query(&cp, Some(ADMIN_TOKEN), "since=2999-01-01T00:00:00Z").await;
    assert!(page["records"].as_array().unwrap().is_empty());

    // The CLI reads the same store.
    let output = std::process::Command::new(binary())
        .args(["audit", "--json", "--trace", &echo_trace, "--config"])
        .arg(&cp.config)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let lines: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["id"], record["id"]);
    // `--limit` bounds what is printed, with a filter too.
    for filter in [&[][..], &["--agent", "tester-1"][..]] {
        let output = std::process::Command::new(binary())
            .args(["audit", "--json", "--limit", "1"])
            .args(filter)
            .arg("--config")
            .arg(&cp.config)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        assert_eq!(String::from_utf8(output.stdout).unwrap().lines().count(), 1);
    }
    // A reader that stops early (`| head -1`) is no failure and no panic.
    let mut child = std::process::Command::new(binary())
        .args(["audit", "--config"])
        .arg(&cp.config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // And the metrics count what happened.
    let metrics = cp.metrics().await;
    assert!(
        metrics.contains(r#"mcp_cp_requests_total{action="call",tool="echo",outcome="ok"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("mcp_cp_upstream_seconds_count"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mcp_cp_audit_records_written_total{sink=\"sqlite:"),
        "{metrics}"
    );
}

#[tokio::test]
async fn kill_9_right_after_the_responses_loses_no_record() {
    let upstream = test_upstream(0).await;
    let mut cp = ControlPlane::start(&audit_catalog(&upstream.url, ""));
    cp.wait_all_ready().await;
    let traces = echo_calls(&cp, 20).await;
    cp.kill();
    assert_recorded_once(&cp, &traces);
}

#[tokio::test]
async fn sigterm_finishes_in_flight_calls_and_writes_every_record() {
    let upstream = test_upstream(0).await;
    let mut cp = ControlPlane::start(&audit_catalog(&upstream.url, ""));
    cp.wait_all_ready().await;
    // Calls held at the upstream, in flight for as long as the test says.
    upstream.hold();
    let calls: Vec<_> = (0..5)
        .map(|i| {
            let request = (cp.http.post(cp.url("/invoke")))
                .bearer_auth(TESTER_TOKEN)
                .json(&json!({"action": "echo", "payload": {"n": i}}));
            tokio::spawn(request.send())
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while upstream.calls() < calls.len() {
        assert!(Instant::now() < deadline, "the calls never arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cp.terminate();
    cp.wait_log("shutdown requested; finishing in-flight requests")
        .await;
    // Shutting down: no new connection is taken while the calls still run.
    while tokio::net::TcpStream::connect(cp.addr).await.is_ok() {
        assert!(Instant::now() < deadline, "still accepting connections");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    upstream.release();
    let mut answered = Vec::new();
    for call in calls {
        let response = call.await.unwrap().expect("answered, not cut off");
        assert_eq!(response.status(), 200);
        answered.push(trace_of(response).await.1);
    }
    // The process ends by itself; then read the store it closed.
    assert!(
        cp.wait_exit(Duration::from_secs(30)).await,
        "no exit after SIGTERM"
    );
    assert_recorded_once(&cp, &answered);
}
