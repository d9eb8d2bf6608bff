//! The live catalog: `serve` reloads the catalog (and every file it names)
//! when it changes, swaps the new version in atomically, and never lets a
//! broken one replace the version in force.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::upstream::test_upstream;
use crate::common::{ControlPlane, TESTER_TOKEN, catalog};

/// Replace `path` the way deployment tools do: a new file renamed over
/// the old, so a reader never sees half of it.
pub fn replace_file(path: &Path, text: &str) {
    let next = path.with_extension("next");
    std::fs::write(&next, text).unwrap();
    std::fs::rename(&next, path).unwrap();
}

pub async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn version(cp: &ControlPlane) -> Value {
    cp.readyz().await["catalog"]["version"].clone()
}

/// Wait until the catalog version differs from `before`; returns the new one.
async fn next_version(cp: &ControlPlane, before: &Value) -> Value {
    wait_for("a new catalog version", async || {
        version(cp).await != *before
    })
    .await;
    version(cp).await
}

async fn invoke(cp: &ControlPlane, token: &str, tool: &str) -> (u16, Value) {
    let response = cp
        .invoke(
            Some(token),
            json!({"action": tool, "payload": {"message": "hi"}}),
        )
        .await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn servers(entries: &[(&str, &str)]) -> String {
    entries
        .iter()
        .map(|(name, url)| format!("  {name}:\n    http: {{url: \"{url}\"}}\n"))
        .collect()
}

#[tokio::test]
async fn a_valid_change_while_calls_are_in_flight_fails_none_and_each_record_names_its_version() {
    let upstream = test_upstream(0).await;
    let servers = servers(&[("testsrv", &upstream.url)]);
    let tools = "  echo: {server: testsrv}\n  chatty: {server: testsrv}\n";
    let text = catalog(&servers, tools, &["echo", "chatty"]);
    let cp = ControlPlane::start(&text);
    cp.wait_all_ready().await;
    let first = version(&cp).await;
    let listings = || {
        upstream
            .seen()
            .iter()
            .filter(|s| s.method == "tools/list")
            .count()
    };
    let listed = listings();

    // Calls that take 200 ms each, still running while the catalog changes.
    let calls: Vec<_> = (0..12)
        .map(|_| {
            let cp = &cp;
            async move { invoke(cp, TESTER_TOKEN, "chatty").await }
        })
        .collect();
    let change = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        // A description changes: the new version leaves both tools callable.
        let tools = "  echo: {server: testsrv, description: Echoes}\n  chatty: {server: testsrv}\n";
        replace_file(&cp.config, &catalog(&servers, tools, &["echo", "chatty"]));
    };
    let (answers, ()) = tokio::join!(futures::future::join_all(calls), change);
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
    }
    let second = next_version(&cp, &first).await;
    let (status, body) = invoke(&cp, TESTER_TOKEN, "echo").await;
    assert_eq!(status, 200);

    // Every call is recorded under the version that served it.
    let records = cp
        .audit_matching(13, |r| r["action"] == "call" && r["outcome"] == "ok")
        .await;
    assert_eq!(records.len(), 13);
    for record in &records {
        let version = &record["catalog_version"];
        assert!(*version == first || *version == second, "{record}");
    }
    let after = &records
        .iter()
        .find(|r| r["trace_id"] == body["trace_id"])
        .unwrap();
    assert_eq!(after["catalog_version"], second);
    let metrics = cp.metrics().await;
    assert!(
        metrics.contains("mcp_cp_catalog_reloads_total{result=\"ok\"} 1"),
        "{metrics}"
    );
    // The server did not change: its session was kept, not listed anew.
    assert_eq!(listings(), listed);
}

/// A control plane serving the test upstream's `echo`, ready; the
/// catalog it serves.
async fn serving_echo() -> (crate::common::upstream::HttpUpstream, ControlPlane, String) {
    let upstream = test_upstream(0).await;
    let servers = servers(&[("testsrv", &upstream.url)]);
    let good = catalog(&servers, "  echo: {server: testsrv}\n", &["echo"]);
    let cp = ControlPlane::start(&good);
    cp.wait_all_ready().await;
    (upstream, cp, good)
}

#[tokio::test]
async fn an_invalid_catalog_never_replaces_the_version_in_force() {
    let (_upstream, cp, good) = serving_echo().await;
    let first = version(&cp).await;
    let reload_error = async || cp.readyz().await["catalog"]["reload_error"].clone();

    let broken = [
        // Not YAML at all: the file and line are named.
        ("environment: test\nservers: [\n", "catalog.yaml:"),
        // A tool on a server that does not exist.
        (
            &*good.replace("echo: {server: testsrv}", "echo: {server: gone}"),
            "tools.echo.server",
        ),
    ];
    for (text, named) in broken {
        replace_file(&cp.config, text);
        wait_for("the refusal", async || {
            reload_error()
                .await
                .as_str()
                .is_some_and(|e| e.contains(named))
        })
        .await;
        assert_eq!(version(&cp).await, first);
        assert_eq!(invoke(&cp, TESTER_TOKEN, "echo").await.0, 200);
    }
    // A policy whose tests fail is refused as well.
    let dir = cp.config.parent().unwrap();
    std::fs::write(
        dir.join("authz.rego"),
        "package mcp.authz\n\nallow := true\n\ntest_denies if not allow\n",
    )
    .unwrap();
    let with_policy = good.replace("policy: allow-all", "policy: {files: [authz.rego]}");
    replace_file(&cp.config, &with_policy);
    wait_for("the failing test", async || {
        reload_error()
            .await
            .as_str()
            .is_some_and(|e| e.contains("test_denies"))
    })
    .await;
    assert_eq!(version(&cp).await, first);
    assert!(cp.stderr_text().contains("catalog reload refused"));

    // A good version clears the error.
    std::fs::write(
        dir.join("authz.rego"),
        "package mcp.authz\n\nallow := true\n",
    )
    .unwrap();
    let second = next_version(&cp, &first).await;
    assert!(reload_error().await.is_null());
    assert_ne!(second, first);
    let metrics = cp.metrics().await;
    let reloads = |result: &str| {
        let series = format!("mcp_cp_catalog_reloads_total{{result=\"{result}\"}}");
        crate::common::metric(&metrics, &series)
    };
    assert_eq!(reloads("ok"), 1.0, "{metrics}");
    assert!(reloads("error") >= 1.0, "{metrics}");
}

#[tokio::test]
async fn servers_added_and_tools_removed_at_runtime_take_effect_at_once() {
    let first_upstream = test_upstream(0).await;
    let second_upstream = test_upstream(0).await;
    let one = servers(&[("one", &first_upstream.url)]);
    let cp = ControlPlane::start(&catalog(&one, "  echo: {server: one}\n", &["echo"]));
    cp.wait_all_ready().await;
    let listings = || {
        first_upstream
            .seen()
            .iter()
            .filter(|s| s.method == "tools/list")
            .count()
    };
    let listed = listings();
    assert_eq!(invoke(&cp, TESTER_TOKEN, "echo2").await.0, 403);

    // A second server, and a tool on it.
    let both = servers(&[("one", &first_upstream.url), ("two", &second_upstream.url)]);
    let tools = "  echo: {server: one}\n  echo2: {server: two, upstream_name: echo}\n";
    let before = version(&cp).await;
    replace_file(&cp.config, &catalog(&both, tools, &["echo", "echo2"]));
    next_version(&cp, &before).await;
    wait_for("the new server", async || {
        invoke(&cp, TESTER_TOKEN, "echo2").await.0 == 200
    })
    .await;
    assert_eq!(second_upstream.calls(), 1);
    let names: Vec<Value> = cp.wait_all_ready().await["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].clone())
        .collect();
    assert_eq!(names, [json!("one"), json!("two")]);

    // The first tool goes: refused on the very next call.
    let before = version(&cp).await;
    let tools = "  echo2: {server: two, upstream_name: echo}\n";
    replace_file(&cp.config, &catalog(&both, tools, &["echo2"]));
    next_version(&cp, &before).await;
    assert_eq!(invoke(&cp, TESTER_TOKEN, "echo").await.0, 403);
    assert_eq!(invoke(&cp, TESTER_TOKEN, "echo2").await.0, 200);
    // The untouched server kept its session all along.
    assert_eq!(listings(), listed);

    // The first server goes: it is closed (its session ends upstream).
    let before = version(&cp).await;
    let only_two = servers(&[("two", &second_upstream.url)]);
    replace_file(&cp.config, &catalog(&only_two, tools, &["echo2"]));
    next_version(&cp, &before).await;
    wait_for("the retired server", async || {
        cp.readyz().await["servers"]
            .as_array()
            .is_some_and(|s| s.len() == 1)
    })
    .await;
    cp.wait_log("upstream server retired").await;
}

#[tokio::test]
async fn an_agent_revoked_in_the_file_is_refused_on_its_next_request() {
    let upstream = test_upstream(0).await;
    let servers = servers(&[("testsrv", &upstream.url)]);
    let text = catalog(&servers, "  echo: {server: testsrv}\n", &["echo"]);
    let cp = ControlPlane::start(&text);
    cp.wait_all_ready().await;
    assert_eq!(invoke(&cp, TESTER_TOKEN, "echo").await.0, 200);

    replace_file(&cp.config, &revoked(&text));
    wait_for("the revocation", async || {
        invoke(&cp, TESTER_TOKEN, "echo").await.0 == 401
    })
    .await;
    let (_, body) = invoke(&cp, TESTER_TOKEN, "echo").await;
    assert_eq!(body["error"]["code"], "unauthenticated");
}

/// `text` with the tester agent revoked.
fn revoked(text: &str) -> String {
    let revoked = text.replace(
        "tester-1: {role: tester,",
        "tester-1: {role: tester, revoked: true,",
    );
    assert_ne!(revoked, text);
    revoked
}

#[tokio::test]
async fn with_no_watch_only_sighup_reloads() {
    let upstream = test_upstream(0).await;
    let servers = servers(&[("testsrv", &upstream.url)]);
    let text = catalog(&servers, "  echo: {server: testsrv}\n", &["echo"]);
    let cp = ControlPlane::start_with_env(&text, &[("MCP_CP_NO_WATCH", "true")]);
    cp.wait_all_ready().await;
    let before = version(&cp).await;

    // The file changes; nothing watches it, so the version in force stays
    // (a watcher reloads within 150 ms of a change).
    replace_file(&cp.config, &revoked(&text));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(invoke(&cp, TESTER_TOKEN, "echo").await.0, 200);
    assert_eq!(version(&cp).await, before);

    // SIGHUP, and only it, reloads.
    let sent = Command::new("kill")
        .args(["-HUP", &cp.pid().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    cp.wait_log("SIGHUP: reloading the catalog").await;
    wait_for("the revocation", async || {
        invoke(&cp, TESTER_TOKEN, "echo").await.0 == 401
    })
    .await;
    assert_ne!(version(&cp).await, before);
}

/// Put a symbolic link to `target` in place of `path`, atomically.
fn link_over(path: &Path, target: &Path) {
    let next = path.with_extension("link");
    let _ = std::fs::remove_file(&next);
    std::os::unix::fs::symlink(target, &next).unwrap();
    std::fs::rename(&next, path).unwrap();
}

#[tokio::test]
async fn a_catalog_pointed_at_another_file_never_shows_what_it_holds() {
    let (_upstream, cp, good) = serving_echo().await;
    let first = version(&cp).await;
    let dir = cp.config.parent().unwrap().to_path_buf();
    // The control plane's own signing key, a line of which must never show.
    let key = std::fs::read_to_string(cp.key_file()).unwrap();
    let key_line = key.lines().nth(1).unwrap().to_owned();
    assert!(key_line.len() > 20, "{key}");
    // A root-only file of the machine, stood in for by one outside the
    // catalog's directory.
    let outside = tempfile::tempdir().unwrap();
    let shadow = outside.path().join("shadow");
    std::fs::write(&shadow, "root:$y$j9T$SECRETHASHVALUE:19000:0:99999:7:::\n").unwrap();
    let reload_error = async || cp.readyz().await["catalog"]["reload_error"].clone();
    let refused_with = async |named: &str| {
        wait_for(named, async || {
            reload_error()
                .await
                .as_str()
                .is_some_and(|e| e.contains(named))
        })
        .await;
        let error = reload_error().await.as_str().unwrap().to_owned();
        assert_eq!(version(&cp).await, first);
        error
    };

    // The catalog as a link to the signing key beside it: parsed, refused,
    // and the key's lines appear nowhere.
    link_over(&cp.config, &cp.key_file());
    let error = refused_with("catalog.yaml:1:1").await;
    assert!(!error.contains(&key_line), "{error}");
    assert!(error.contains("invalid type"), "{error}");

    // The catalog as a link out of its directory: not even read.
    link_over(&cp.config, &shadow);
    let error = refused_with("symbolic link leads out of the catalog's directory").await;
    assert!(!error.contains("SECRETHASH"), "{error}");

    // A policy file as a link to the key, and one named outside the
    // directory: their content shows nowhere either.
    std::fs::remove_file(&cp.config).unwrap();
    std::os::unix::fs::symlink(cp.key_file(), dir.join("authz.rego")).unwrap();
    let linked = good.replace("policy: allow-all", "policy: {files: [authz.rego]}");
    replace_file(&cp.config, &linked);
    let error = refused_with("authz.rego:1:1").await;
    assert!(!error.contains(&key_line), "{error}");
    let named = good.replace(
        "policy: allow-all",
        &format!("policy: {{files: [\"{}\"]}}", shadow.display()),
    );
    replace_file(&cp.config, &named);
    let error = refused_with("shadow:1:1").await;
    assert!(!error.contains("SECRETHASH"), "{error}");

    // Nor in the log, nor in `check`.
    let log = cp.stderr_text();
    assert!(!log.contains(&key_line) && !log.contains("SECRETHASH"));
    link_over(&cp.config, &cp.key_file());
    let (ok, printed) = crate::common::check_file(&cp.config);
    assert!(!ok);
    assert!(printed.contains("catalog.yaml:1:1"), "{printed}");
    assert!(!printed.contains(&key_line), "{printed}");
    // Unless the operator says so, a link out is refused by `check` too.
    link_over(&cp.config, &shadow);
    let (ok, printed) = crate::common::check_file(&cp.config);
    assert!(!ok);
    assert!(printed.contains("--follow-symlinks"), "{printed}");
}
