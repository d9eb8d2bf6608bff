//! Upstream connections: both transports, pagination, outages, timeouts,
//! restarts, and proof that refused calls never reach a server.

use std::time::{Duration, Instant};

use mcp_example_servers::ExampleServer;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::hostile::Redirector;
use crate::common::upstream::{example_upstream, test_upstream, tls_test_upstream};
use crate::common::{ANALYST_TOKEN, ControlPlane, TESTER_TOKEN, catalog, free_port};

async fn call(cp: &ControlPlane, token: &str, tool: &str, payload: Value) -> (StatusCode, Value) {
    let response = cp
        .invoke(Some(token), json!({ "action": tool, "payload": payload }))
        .await;
    let status = response.status();
    (status, response.json().await.unwrap())
}

fn server_state(readyz: &Value, name: &str) -> Value {
    readyz["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread")]
async fn http_upstream_tools_are_listed_across_pages_and_called_by_public_name() {
    let upstream = test_upstream(0).await;
    let servers = format!(
        "  svc:\n    http:\n      url: {}\n      headers: {{X-Test: yes}}\n",
        upstream.url
    );
    let tools =
        "  say: {server: svc, upstream_name: echo}\n  fail: {server: svc}\n  hang: {server: svc}\n";
    let cp = ControlPlane::start(&catalog(&servers, tools, &["say", "fail"]));
    let readyz = cp.wait_all_ready().await;
    // One tool per page: the control plane followed the cursors.
    assert_eq!(
        server_state(&readyz, "svc")["tools_offered"],
        crate::common::upstream::TOOLS.len()
    );

    let response = cp.get_tools(TESTER_TOKEN, "?detail=true").await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["tools"], json!(["fail", "say"]));
    assert_eq!(body["definitions"][1]["name"], "say");
    assert_eq!(body["definitions"][1]["description"], "The echo test tool");
    assert!(!body.to_string().contains(&upstream.url));

    let (status, body) = call(&cp, TESTER_TOKEN, "say", json!({ "message": "hi" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["result"]["structuredContent"],
        json!({ "echo": { "message": "hi" } })
    );
    assert_eq!(upstream.calls(), 1);
    let record = cp.audit_record(body["trace_id"].as_str().unwrap()).await;
    assert_eq!(record["tool"], "say");
    assert_eq!(record["upstream_tool"], "echo");
    assert_eq!(record["server"], "svc");
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_calls_never_reach_the_upstream() {
    let upstream = test_upstream(0).await;
    let servers = format!("  svc:\n    http:\n      url: {}\n", upstream.url);
    let cp = ControlPlane::start(&catalog(&servers, "  echo: {server: svc}\n", &["echo"]));
    cp.wait_all_ready().await;
    // Not in the role, unknown, impersonating, unauthenticated: none is forwarded.
    let (status, _) = call(&cp, ANALYST_TOKEN, "echo", json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(&cp, TESTER_TOKEN, "nonexistent", json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let response = cp
        .invoke(
            Some(TESTER_TOKEN),
            json!({ "action": "echo", "agent_role": "admin" }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = cp.invoke(Some("wrong"), json!({ "action": "echo" })).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(upstream.calls(), 0);
    // The allowed call does get through, so the counter works.
    let (status, _) = call(&cp, TESTER_TOKEN, "echo", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(upstream.calls(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upstream_down_at_start_up_is_retried_until_it_comes_up() {
    let port = free_port();
    let servers = format!("  svc:\n    http:\n      url: http://127.0.0.1:{port}/mcp\n");
    let cp = ControlPlane::start(&catalog(&servers, "  echo: {server: svc}\n", &["echo"]));
    let readyz = cp
        .wait_readyz("svc down", |b| server_state(b, "svc")["state"] == "down")
        .await;
    // Readiness reports the state by logical name, never the address.
    assert!(!readyz.to_string().contains(&port.to_string()), "{readyz}");
    let (status, body) = call(&cp, TESTER_TOKEN, "echo", json!({})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"]["code"], "upstream_unavailable");
    assert!(!body.to_string().contains(&port.to_string()), "{body}");
    let record = cp.audit_record(body["trace_id"].as_str().unwrap()).await;
    assert_eq!(record["outcome"], "upstream_error");
    // The control plane itself kept serving.
    let response = cp.get_tools(TESTER_TOKEN, "").await;
    assert_eq!(response.status(), StatusCode::OK);

    let upstream = test_upstream(port).await;
    cp.wait_readyz("svc ready", |b| server_state(b, "svc")["state"] == "ready")
        .await;
    let (status, body) = call(&cp, TESTER_TOKEN, "echo", json!({ "message": "late" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(upstream.calls(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hung_upstream_times_out_without_holding_up_another() {
    let slow = test_upstream(0).await;
    let marketdata = example_upstream(ExampleServer::Marketdata).await;
    let servers = format!(
        "  slow:\n    http: {{url: {}}}\n    timeout: 2s\n  marketdata:\n    http: {{url: {marketdata}}}\n",
        slow.url
    );
    let tools = "  hang: {server: slow}\n  read_positions: {server: marketdata}\n";
    let cp = std::sync::Arc::new(ControlPlane::start(&catalog(
        &servers,
        tools,
        &["hang", "read_positions"],
    )));
    cp.wait_all_ready().await;

    let hung = tokio::spawn({
        let cp = cp.clone();
        async move { call(&cp, TESTER_TOKEN, "hang", json!({})).await }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while slow.calls() == 0 {
        assert!(
            Instant::now() < deadline,
            "the hung call never reached its server"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // While that call hangs, the other server answers.
    let (status, body) = call(
        &cp,
        TESTER_TOKEN,
        "read_positions",
        json!({ "account": "ACC-002" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["result"]["structuredContent"]["positions"][0]["symbol"],
        "JPM"
    );
    assert!(!hung.is_finished(), "the hung call should still be waiting");

    let (status, body) = hung.await.unwrap();
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert_eq!(body["error"]["code"], "upstream_timeout");
    let record = cp.audit_record(body["trace_id"].as_str().unwrap()).await;
    assert_eq!(record["outcome"], "timeout");
    assert_eq!(record["server"], "slow");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_stdio_child_fails_its_call_cleanly_and_is_restarted() {
    let servers = "  marketdata:\n    stdio:\n      command: $SELF\n      args: [example-server, marketdata, --latency-ms, \"5000\"]\n";
    let cp = std::sync::Arc::new(ControlPlane::start(&catalog(
        servers,
        "  read_positions: {server: marketdata}\n",
        &["read_positions"],
    )));
    cp.wait_all_ready().await;
    let children = cp.child_pids();
    assert_eq!(children.len(), 1, "one stdio child: {children:?}");
    let first = children[0];

    let in_flight = tokio::spawn({
        let cp = cp.clone();
        async move {
            call(
                &cp,
                TESTER_TOKEN,
                "read_positions",
                json!({ "account": "ACC-001" }),
            )
            .await
        }
    });
    // Kill the child while the call is at it (it answers after 5 s).
    crate::live::wait_for("the call at the child", async || {
        (cp.metrics().await).contains("mcp_cp_upstream_in_flight{server=\"marketdata\"} 1")
    })
    .await;
    let killed = std::process::Command::new("kill")
        .args(["-9", &first.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let (status, body) = in_flight.await.unwrap();
    // Not a 504 after the 30 s timeout: the call failed as soon as the child died.
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"]["code"], "upstream_unavailable");
    assert!(!body.to_string().contains("example-server"));

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = call(
            &cp,
            TESTER_TOKEN,
            "read_positions",
            json!({ "account": "ACC-001" }),
        )
        .await;
        if status == StatusCode::OK {
            assert_eq!(body["result"]["structuredContent"]["account"], "ACC-001");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the child was never restarted: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let children = cp.child_pids();
    assert_eq!(children.len(), 1, "{children:?}");
    assert_ne!(children[0], first, "a new child process");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_catalog_tool_its_server_lacks_is_reported_and_unavailable() {
    let upstream = test_upstream(0).await;
    let servers = format!("  svc:\n    http: {{url: {}}}\n", upstream.url);
    let tools = "  echo: {server: svc}\n  ghost: {server: svc, upstream_name: not_there}\n";
    let cp = ControlPlane::start(&catalog(&servers, tools, &["echo", "ghost"]));
    let readyz = cp.wait_all_ready().await;
    assert_eq!(
        server_state(&readyz, "svc")["missing_tools"],
        json!(["ghost"])
    );
    let (status, body) = call(&cp, TESTER_TOKEN, "ghost", json!({})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(!body.to_string().contains("not_there"), "{body}");
    let (status, _) = call(&cp, TESTER_TOKEN, "echo", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    cp.wait_log("catalog tool is not offered by its server")
        .await;
    // Discovery lists the name but has no definition to show for it.
    let body: Value = cp
        .get_tools(TESTER_TOKEN, "?detail=true")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["tools"], json!(["echo", "ghost"]));
    assert_eq!(body["definitions"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_connections_are_kept_alive_and_reused() {
    let upstream = test_upstream(0).await;
    let cp = ControlPlane::start(&crate::common::echo_catalog(&upstream.url));
    cp.wait_all_ready().await;
    let before = upstream.connections();
    for n in 0..300 {
        let (status, _) = call(&cp, TESTER_TOKEN, "echo", json!({"message": n.to_string()})).await;
        assert_eq!(status, StatusCode::OK);
    }
    // Kept-alive connections carry the calls: a handful (a request that
    // starts before the previous connection is back in the pool opens one,
    // and the session's own streams come and go), where a new one per
    // request would be 300. Seen here: 4 to 7.
    let opened = upstream.connections() - before;
    assert!(
        opened <= 8,
        "{opened} new upstream connections for 300 calls"
    );
}

/// An upstream that offers HTTP/2 (by ALPN, over TLS) is called over it:
/// the calls share one multiplexed connection.
#[tokio::test(flavor = "multi_thread")]
async fn an_upstream_offering_http2_is_called_over_http2() {
    let upstream = tls_test_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &upstream.ca_pem).unwrap();
    // The platform's trust store, as the test CA alone.
    let cp = ControlPlane::start_with_env(
        &crate::common::echo_catalog(&upstream.url),
        &[("SSL_CERT_FILE", ca.to_str().unwrap())],
    );
    cp.wait_all_ready().await;
    for n in 0..50 {
        let (status, body) =
            call(&cp, TESTER_TOKEN, "echo", json!({"message": n.to_string()})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (http2, http1) = upstream.requests();
    assert_eq!(http1, 0, "{http1} requests over HTTP/1.x");
    assert!(http2 >= 50, "{http2} requests over HTTP/2");
    // One connection carries the session and its calls (a second one
    // only if a stream reconnects).
    assert!(
        upstream.connections() <= 2,
        "{} connections",
        upstream.connections()
    );
}

/// The control plane's resident memory, in MiB.
fn resident_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = (status.lines())
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib / 1024
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endless_listing_is_refused_not_accumulated() {
    let hostile = crate::common::hostile::endless_pages(500).await;
    let servers = format!(
        "  endless:\n    http: {{url: \"{}\"}}\n    timeout: 30s\n",
        hostile.url
    );
    let cp = ControlPlane::start(&crate::common::catalog(&servers, "", &[]));
    let ready = cp
        .wait_readyz("the endless server refused, the replica ready", |body| {
            // (The error is shown a moment before the first attempt counts
            // as done and the replica as ready: wait for both.)
            let refused = (body["servers"].as_array().into_iter().flatten())
                .any(|s| s["name"] == "endless" && s["last_error"] == "listing_too_large");
            refused && body["status"] == "ready"
        })
        .await;
    assert_eq!(ready["status"], "ready", "{ready}");
    // 500 tools of 4 KB a page: the list's 32 MiB bound ends each listing
    // within a few dozen pages, never the server's endless cursor.
    let served = hostile.pages();
    assert!(served < 100, "{served} pages listed");
    let resident = resident_mib(cp.pid());
    assert!(resident < 512, "{resident} MiB resident");
    cp.wait_log("listing refused").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tools_beyond_a_servers_cap_are_held_back_and_shown() {
    let upstream =
        crate::common::many::many_tools_upstream(crate::common::many::generated_names()).await;
    let offered = crate::common::many::generated_names().len();
    let servers = format!(
        "  many:\n    http: {{url: \"{}\"}}\n    max_tools: 120\n",
        upstream.url
    );
    let cp = ControlPlane::start(&crate::common::catalog(&servers, "", &[]));
    let ready = cp.wait_all_ready().await;
    let many = &ready["servers"][0];
    assert_eq!(many["tools_offered"], 120, "{ready}");
    assert_eq!(many["tools_held_back"], offered - 120, "{ready}");
    cp.wait_log("the rest are held back").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_cannot_speak_in_the_control_planes_name() {
    let upstream = test_upstream(0).await;
    let servers = format!(
        "  svc:\n    http: {{url: \"{}\"}}\n    drop_meta: [\"internal/\"]\n",
        upstream.url
    );
    let cp = ControlPlane::start(&catalog(&servers, "  posing: {server: svc}\n", &["posing"]));
    cp.wait_all_ready().await;
    let (status, body) = cp.call(TESTER_TOKEN, "posing", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let meta = &body["result"]["_meta"];
    assert_eq!(meta, &json!({"kept": 1}), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_answer_fails_its_own_call_only() {
    let upstream = test_upstream(0).await;
    let proxy = crate::common::hostile::garbling_proxy(upstream.url.clone()).await;
    let servers = format!("  svc:\n    http: {{url: \"{proxy}\"}}\n    timeout: 10s\n");
    let tools = "  echo: {server: svc}\n  progress: {server: svc}\n";
    let cp = ControlPlane::start(&catalog(&servers, tools, &["echo", "progress"]));
    cp.wait_all_ready().await;
    for how in ["truncated", "huge", "deep", "another"] {
        // A call in flight on the same server while the bad answer comes.
        let in_flight = cp.call(TESTER_TOKEN, "progress", json!({}));
        let bad = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            cp.call(TESTER_TOKEN, "echo", json!({"garble": how})).await
        };
        let ((status, body), (bad_status, bad_body)) = tokio::join!(in_flight, bad);
        assert_eq!(status, StatusCode::OK, "{how}: the call in flight: {body}");
        assert_eq!(bad_status, StatusCode::BAD_GATEWAY, "{how}: {bad_body}");
        assert_eq!(
            bad_body["error"]["code"], "upstream_rejected",
            "{how}: {bad_body}"
        );
        // The session goes on: the next call is answered at once.
        let (status, body) = cp.call(TESTER_TOKEN, "echo", json!({"after": how})).await;
        assert_eq!(status, StatusCode::OK, "{how}: after: {body}");
    }
    let ready = cp.readyz().await;
    assert_eq!(ready["servers"][0]["state"], "ready", "{ready}");
    // The session was never lost: connected once, never again.
    let log = cp.stderr_text();
    assert_eq!(log.matches("upstream connected").count(), 1, "{log}");
    for lost in ["upstream connection closed", "upstream transport failed"] {
        assert!(!log.contains(lost), "{lost}");
    }
}

/// Issue 31: a server's static headers reach the server and nothing else:
/// not an answer, readiness, the metrics or any audit record (the store
/// searched, not only the log).
#[tokio::test(flavor = "multi_thread")]
async fn static_upstream_headers_never_leave_for_anyone_else() {
    const SECRET: &str = "static-secret-4f2a9c";
    let upstream = test_upstream(0).await;
    let servers = format!(
        "  svc:\n    http:\n      url: \"{}\"\n      headers: {{X-Api-Key: {SECRET}}}\n",
        upstream.url
    );
    let tools = "  echo: {server: svc}\n  fail: {server: svc}\n  touch: {server: svc}\n";
    let cp = ControlPlane::start(&catalog(&servers, tools, &["echo", "fail"]));
    cp.wait_all_ready().await;
    let mut answers = Vec::new();
    for (token, tool) in [
        (TESTER_TOKEN, "echo"),
        (TESTER_TOKEN, "fail"),
        (TESTER_TOKEN, "touch"),
        ("nobody", "echo"),
    ] {
        let (_, body) = cp.call(token, tool, json!({})).await;
        answers.push(body.to_string());
    }
    // The positive control: the server got it.
    assert!(
        (upstream.seen().iter()).any(|seen| seen.api_key.as_deref() == Some(SECRET)),
        "the header never reached the server"
    );
    answers.push(cp.readyz().await.to_string());
    answers.push(cp.metrics().await);
    answers.push(cp.stderr_text());
    for text in &answers {
        assert!(!text.contains(SECRET), "{text}");
    }
    // The durable store, read as bytes.
    let store = cp
        .config
        .parent()
        .unwrap()
        .join(".mcp-control-plane/audit.db");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !store.exists() {
        assert!(Instant::now() < deadline, "no store");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let bytes = std::fs::read(&store).unwrap();
    assert!(bytes.len() > 1000);
    let found = bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes());
    assert!(!found, "the secret is in the audit store");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upstreams_redirect_is_never_followed() {
    // The catalog's URL answers 307 to a real server: followed, the
    // handshake (and a credential with it) would reach that server.
    let upstream = test_upstream(0).await;
    let redirector = Redirector::start(upstream.url.trim_end_matches("/mcp")).await;
    let servers = format!("  moved:\n    http: {{url: \"{}/mcp\"}}\n", redirector.url);
    let cp = ControlPlane::start(&catalog(&servers, "  echo: {server: moved}\n", &["echo"]));
    cp.wait_log("upstream connection failed").await;
    assert!(redirector.hits() >= 1);
    let (status, body) = cp.call(TESTER_TOKEN, "echo", json!({})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"]["code"], "upstream_unavailable");
    assert_eq!((upstream.connections(), upstream.calls()), (0, 0));
}

/// A stdio MCP server in Python whose one tool, `env`, answers with the
/// names of the environment variables it was started with.
const ENV_SERVER: &str = r#"
import json, os, sys
for line in sys.stdin:
    message = json.loads(line)
    method, id = message.get("method"), message.get("id")
    if id is None:
        continue
    if method == "initialize":
        result = {"protocolVersion": message["params"]["protocolVersion"],
                  "capabilities": {"tools": {}}, "serverInfo": {"name": "env", "version": "1"}}
    elif method == "tools/list":
        result = {"tools": [{"name": "env", "inputSchema": {"type": "object"}}]}
    elif method == "tools/call":
        names = sorted(os.environ)
        result = {"content": [{"type": "text", "text": json.dumps(names)}]}
    else:
        answer = {"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "no"}}
        print(json.dumps(answer), flush=True)
        continue
    print(json.dumps({"jsonrpc": "2.0", "id": id, "result": result}), flush=True)
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_stdio_server_gets_only_the_environment_the_catalog_gives_it() {
    use mcp_control_plane::credentials::{ISSUER_ENV, JWKS_URL_ENV};
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("env_server.py");
    std::fs::write(&script, ENV_SERVER).unwrap();
    // The interpreter itself, not a launcher (pyenv's shim sets variables
    // of its own).
    let python = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .unwrap();
    let python = String::from_utf8(python.stdout).unwrap();
    let servers = format!(
        "  envsrv:\n    stdio: {{command: \"{}\", args: [\"{}\"], env: {{GIVEN: given}}}}\n",
        python.trim(),
        script.display()
    );
    let text = catalog(&servers, "  env: {server: envsrv}\n", &["env"]);
    // The control plane's own environment holds secrets of its own.
    let own = [
        ("CP_DATABASE_PASSWORD", "never-for-a-server"),
        ("AWS_SECRET_ACCESS_KEY", "never-either"),
    ];
    let cp = ControlPlane::start_with_env(&text, &own);
    cp.wait_all_ready().await;
    let (status, body) = cp.call(TESTER_TOKEN, "env", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let text = body["result"]["content"][0]["text"].as_str().unwrap();
    let names: Vec<String> = serde_json::from_str(text).unwrap();
    // What the catalog gives, what a program needs to run, and where the
    // control plane's keys are; Python itself adds `LC_CTYPE` (PEP 538).
    let allowed = [
        "GIVEN",
        "PATH",
        "HOME",
        "LANG",
        "LC_ALL",
        "TMPDIR",
        "TZ",
        "LC_CTYPE",
        JWKS_URL_ENV,
        ISSUER_ENV,
    ];
    let extra: Vec<&String> = (names.iter())
        .filter(|name| !allowed.contains(&name.as_str()))
        .collect();
    assert!(extra.is_empty(), "the server got {extra:?}");
    for needed in ["GIVEN", "PATH", JWKS_URL_ENV, ISSUER_ENV] {
        assert!(
            names.iter().any(|name| name == needed),
            "{needed}: {names:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tools_error_names_it_by_its_public_name() {
    // The server writes its own tool name into its error text; the agent
    // knows the tool by the catalog's name only.
    let upstream = test_upstream(0).await;
    let servers = format!("  svc:\n    http: {{url: \"{}\"}}\n", upstream.url);
    let tools = "  refuse_order: {server: svc, upstream_name: fail}\n";
    let cp = ControlPlane::start(&catalog(&servers, tools, &["refuse_order"]));
    cp.wait_all_ready().await;
    let (status, body) = cp.call(TESTER_TOKEN, "refuse_order", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["isError"], true);
    assert_eq!(
        body["result"]["content"][0]["text"],
        "tool refuse_order: the backend said no"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_asking_for_roots_outside_a_call_gets_the_catalogs() {
    // The server asks as soon as it is initialized, when no call is in
    // flight: no client can answer, and none is guessed; the catalog's
    // roots are the answer (none, where it names none).
    let (named, unnamed) = (test_upstream(0).await, test_upstream(0).await);
    let servers = format!(
        "  named:\n    http: {{url: \"{}\"}}\n    protocol: \"2025-11-25\"\n    \
         roots: [{{uri: \"file:///srv/repo\", name: repo}}]\n  \
         unnamed:\n    http: {{url: \"{}\"}}\n    protocol: \"2025-11-25\"\n",
        named.url, unnamed.url
    );
    let cp = ControlPlane::start(&catalog(&servers, "", &[]));
    cp.wait_all_ready().await;
    crate::live::wait_for("both servers' roots answered", async || {
        named.roots().is_some() && unnamed.roots().is_some()
    })
    .await;
    assert_eq!(named.roots().unwrap(), ["file:///srv/repo"]);
    assert_eq!(unnamed.roots().unwrap(), Vec::<String>::new());
}
