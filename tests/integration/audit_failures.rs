//! A failing audit store: no call reaches its upstream before its record
//! (the intent) is durable; a store that cannot be written makes the
//! replica unready, and it never crashes the process; a store removed or
//! replaced underneath is noticed, a disk that fills is spooled around; a
//! crash mid-call leaves the intent.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::audit::{audit_catalog, call};
use crate::common::upstream::test_upstream;
use crate::common::{ControlPlane, TESTER_TOKEN, catalog, metric};

fn store_dir(cp: &ControlPlane) -> PathBuf {
    cp.config.parent().unwrap().join(".mcp-control-plane")
}

/// `/readyz`'s status code and body.
async fn readyz(cp: &ControlPlane) -> (u16, Value) {
    let response = cp.http.get(cp.admin_url("/readyz")).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// The outcomes SQLite holds for `trace`.
fn sqlite_outcomes(cp: &ControlPlane, trace: &str) -> Vec<String> {
    let connection = rusqlite::Connection::open(store_dir(cp).join("audit.db")).unwrap();
    let mut statement = connection
        .prepare("SELECT outcome FROM audit_records WHERE trace_id = ?1")
        .unwrap();
    statement
        .query_map([trace], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Make `path` (a directory) unusable as the spool's directory, even for
/// root: a plain file stands in its place.
fn break_dir(path: &Path) {
    std::fs::remove_dir_all(path).unwrap();
    std::fs::write(path, "not a directory").unwrap();
}

#[tokio::test]
async fn a_call_whose_intent_cannot_be_recorded_never_reaches_its_upstream() {
    let upstream = test_upstream(0).await;
    let cp = ControlPlane::start(&audit_catalog(&upstream.url, ""));
    cp.wait_all_ready().await;
    let echo = json!({"action": "echo", "payload": {}});
    assert_eq!(call(&cp, Some(TESTER_TOKEN), echo.clone()).await.0, 200);
    // The database is deleted underneath and the spool cannot be written.
    let dir = store_dir(&cp);
    std::fs::remove_file(dir.join("audit.db")).unwrap();
    break_dir(&dir.join("spool"));
    let before = upstream.calls();
    let response = cp.invoke(Some(TESTER_TOKEN), echo.clone()).await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "audit_unavailable");
    assert_eq!(upstream.calls(), before, "refused before the upstream");
    let (status, ready) = readyz(&cp).await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["status"], "audit_unavailable");
    assert_eq!(ready["audit"]["writable"], false);
    let metrics = cp.metrics().await;
    assert!(metric(&metrics, "mcp_cp_audit_records_lost_total") >= 1.0);
    // The spool comes back: ready again without waiting for traffic, and
    // records go to the spool, since the database file is not the one opened.
    std::fs::remove_file(dir.join("spool")).unwrap();
    std::fs::create_dir(dir.join("spool")).unwrap();
    cp.wait_readyz("audit writable again", |body| {
        body["audit"]["writable"] == true
    })
    .await;
    let (status, trace) = call(&cp, Some(TESTER_TOKEN), echo).await;
    assert_eq!(status, 200);
    assert!(!dir.join("audit.db").exists(), "no new file written unseen");
    let spool = std::fs::read_to_string(dir.join("spool/sink-0.jsonl")).unwrap();
    let lines: Vec<&str> = spool.lines().filter(|l| l.contains(&trace)).collect();
    assert_eq!(lines.len(), 2, "intent and outcome: {spool}");
    assert!(lines[0].contains(r#""outcome":"unfinished""#), "{spool}");
    assert!(lines[1].contains(r#""outcome":"ok""#), "{spool}");
}

#[tokio::test]
async fn a_database_removed_while_running_fails_over_to_the_spool() {
    let upstream = test_upstream(0).await;
    let cp = ControlPlane::start(&audit_catalog(&upstream.url, ""));
    cp.wait_all_ready().await;
    let dir = store_dir(&cp);
    std::fs::remove_file(dir.join("audit.db")).unwrap();
    let traces = crate::audit::echo_calls(&cp, 5).await;
    let metrics = cp.metrics().await;
    assert_eq!(metric(&metrics, "mcp_cp_audit_records_lost_total"), 0.0);
    let spool = std::fs::read_to_string(dir.join("spool/sink-0.jsonl")).unwrap();
    for trace in &traces {
        assert!(spool.contains(trace.as_str()), "{trace} spooled");
    }
    // The next start replays the spool into a new database.
    let cp = cp.restart();
    cp.wait_all_ready().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while traces.iter().any(|t| sqlite_outcomes(&cp, t) != ["ok"]) {
        assert!(Instant::now() < deadline, "spool replayed after restart");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Clears the immutable flag it set, whatever happens to the test.
struct Immutable(Vec<PathBuf>);

impl Immutable {
    fn set(paths: Vec<PathBuf>) -> Self {
        chattr("+i", &paths);
        Self(paths)
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        chattr("-i", &self.0);
    }
}

fn chattr(flag: &str, paths: &[PathBuf]) {
    let status = std::process::Command::new("chattr")
        .arg(flag)
        .args(paths)
        .status()
        .expect("chattr (e2fsprogs) runs");
    assert!(status.success(), "chattr {flag} {paths:?}");
}

#[tokio::test]
async fn immutable_audit_files_are_an_error_never_a_crash() {
    let upstream = test_upstream(0).await;
    let mut cp = ControlPlane::start(&audit_catalog(&upstream.url, ""));
    cp.wait_all_ready().await;
    let echo = json!({"action": "echo", "payload": {}});
    assert_eq!(call(&cp, Some(TESTER_TOKEN), echo.clone()).await.0, 200);
    let dir = store_dir(&cp);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("audit.db"))
        .collect();
    files.push(dir.join("spool"));
    let frozen = Immutable::set(files);
    let before = upstream.calls();
    for _ in 0..3 {
        let (status, _) = call(&cp, Some(TESTER_TOKEN), echo.clone()).await;
        assert_eq!(status, 503);
    }
    assert_eq!(upstream.calls(), before, "refused before the upstream");
    assert!(
        !cp.wait_exit(Duration::from_millis(500)).await,
        "still running"
    );
    assert_eq!(readyz(&cp).await.0, 503);
    drop(frozen);
    cp.wait_readyz("audit writable again", |body| body["status"] == "ready")
        .await;
    assert_eq!(call(&cp, Some(TESTER_TOKEN), echo).await.0, 200);
}

/// A control plane whose `hang` tool waits at the test upstream for up to
/// a minute, and a `hang` call under `trace`, sent.
async fn hanging_call(
    trace: &str,
) -> (
    crate::common::upstream::HttpUpstream,
    ControlPlane,
    impl Future<Output = reqwest::Result<reqwest::Response>>,
) {
    let upstream = test_upstream(0).await;
    let servers = format!(
        "  testsrv:\n    http: {{url: \"{}\"}}\n    timeout: 60s\n",
        upstream.url
    );
    let cp = ControlPlane::start(&catalog(&servers, "  hang: {server: testsrv}\n", &["hang"]));
    cp.wait_all_ready().await;
    let hanging = cp
        .http
        .post(cp.url("/invoke"))
        .bearer_auth(TESTER_TOKEN)
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .json(&json!({"action": "hang", "payload": {}}))
        .send();
    (upstream, cp, hanging)
}

/// Wait until the intent of `trace` (and nothing else of it) is in SQLite.
async fn until_intent(cp: &ControlPlane, trace: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while sqlite_outcomes(cp, trace) != ["unfinished"] {
        assert!(Instant::now() < deadline, "no intent recorded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_crash_mid_call_leaves_the_intent_marked_unfinished() {
    let trace = "0af7651916cd43dd8448eb211c80319c";
    let (_upstream, mut cp, hanging) = hanging_call(trace).await;
    tokio::select! {
        _ = hanging => panic!("the hanging call answered"),
        () = until_intent(&cp, trace) => {}
    }
    cp.kill();
    assert_eq!(sqlite_outcomes(&cp, trace), ["unfinished"]);
}

#[tokio::test]
async fn a_call_that_reached_its_upstream_gets_its_answer_even_if_the_outcome_cannot_be_recorded() {
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let upstream = test_upstream(0).await;
    let cp = ControlPlane::start(&crate::common::echo_catalog(&upstream.url));
    cp.wait_all_ready().await;
    // The call waits at the upstream while the store breaks.
    upstream.hold();
    let call = (cp.http.post(cp.url("/invoke")))
        .bearer_auth(TESTER_TOKEN)
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .json(&json!({"action": "echo", "payload": {}}))
        .send();
    let break_store = async {
        until_intent(&cp, trace).await;
        let dir = store_dir(&cp);
        std::fs::remove_file(dir.join("audit.db")).unwrap();
        break_dir(&dir.join("spool"));
        upstream.release();
    };
    let (response, ()) = tokio::join!(call, break_store);
    // The upstream acted: its answer goes back, not a refusal that would
    // invite the client to act twice.
    let response = response.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(upstream.calls(), 1);
    cp.wait_log("its intent record stands as unfinished").await;
}

/// A PostgreSQL sink reached through a relay that can go silent (the
/// database accepts connections and never answers), with `audit` settings
/// `settings` (YAML lines under `audit:`).
async fn hung_postgres(
    settings: &str,
    deadline: &str,
) -> (
    ControlPlane,
    crate::common::relay::Relay,
    crate::common::upstream::HttpUpstream,
    tempfile::TempDir,
) {
    let upstream = test_upstream(0).await;
    let relay = crate::common::relay::relay("127.0.0.1:5432".parse().unwrap()).await;
    let secrets = tempfile::tempdir().unwrap();
    let url_file = secrets.path().join("pg-url");
    let url = format!(
        "postgres://postgres@127.0.0.1:{}/test?sslmode=disable",
        relay.addr.port()
    );
    std::fs::write(&url_file, url).unwrap();
    let sinks = format!(
        "audit:\n{settings}  sinks:\n    - postgres: {{url: {{file: \"{}\"}}}}\n",
        url_file.display()
    );
    // The call's deadline, against the sink's time limit.
    let catalog = audit_catalog(&upstream.url, &sinks);
    let catalog = catalog.replace("timeout: 1s", &format!("timeout: {deadline}"));
    let cp = ControlPlane::start(&catalog);
    cp.wait_all_ready().await;
    (cp, relay, upstream, secrets)
}

/// A client that gives up after a minute: a request that takes that long
/// is one that hangs.
fn patient() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_database_that_stops_answering_is_a_failing_sink_not_a_stall() {
    let (cp, relay, upstream, _secrets) = hung_postgres("  timeout: 300ms\n", "10s").await;
    let echo = json!({"action": "echo", "payload": {}});
    let (status, _) = call(&cp, Some(TESTER_TOKEN), echo.clone()).await;
    assert_eq!(status, 200);

    relay.go_silent();
    // Calls go on: the sink that does not answer in time has failed, and
    // their records wait in its spool.
    let mut traces = Vec::new();
    for _ in 0..3 {
        let response = (patient().post(cp.url("/invoke")))
            .bearer_auth(TESTER_TOKEN)
            .json(&echo)
            .send()
            .await
            .expect("a call is answered while the database hangs");
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        traces.push(body["trace_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(upstream.calls(), 4);
    let metrics = cp.metrics().await;
    assert!(
        metric(&metrics, "mcp_cp_audit_spool_records{sink=\"postgres\"}") >= 6.0,
        "{metrics}"
    );
    // Readiness answers, and says the records are durable (in the spool).
    let (status, ready) = readyz(&cp).await;
    assert_eq!(status, 200, "{ready}");
    // Reading the trail back fails at once, and says so.
    let read = (patient().get(cp.admin_url("/admin/audit?limit=1")))
        .bearer_auth(crate::audit::ADMIN_TOKEN)
        .send()
        .await
        .expect("the admin API answers while the database hangs");
    assert_eq!(read.status(), 503);
    let body: Value = read.json().await.unwrap();
    assert_eq!(body["error"]["code"], "audit_unavailable", "{body}");

    // The database answers again: every spooled record arrives.
    relay.speak();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let read = (cp
            .http
            .get(cp.admin_url(&format!("/admin/audit?trace_id={}", traces[2]))))
        .bearer_auth(crate::audit::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
        if read.status() == 200 {
            let page: Value = read.json().await.unwrap();
            if page["records"].as_array().is_some_and(|r| r.len() == 1) {
                assert_eq!(page["records"][0]["outcome"], "ok", "{page}");
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the spooled records never arrived"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn the_wait_for_the_intent_record_ends_with_the_requests_deadline() {
    // The sink's own limit is far beyond the call's deadline (the server's
    // timeout of 1 s): the deadline decides, and the refusal says why.
    let (cp, relay, upstream, _secrets) = hung_postgres("  timeout: 30s\n", "1s").await;
    relay.go_silent();
    let response = (patient().post(cp.url("/invoke")))
        .bearer_auth(TESTER_TOKEN)
        .json(&json!({"action": "echo", "payload": {}}))
        .send()
        .await
        .expect("the call is answered at its deadline");
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "audit_unavailable", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("did not answer in time"), "{message}");
    // The upstream was never contacted: no record, no call.
    assert_eq!(upstream.calls(), 0);
}

#[test]
fn a_store_on_a_nearly_full_disk_is_refused_at_start_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.yaml");
    // More free space than any disk has: the check must refuse.
    let catalog = catalog("", "", &[]) + "audit:\n  min_free_bytes: 1000000000000000000\n";
    std::fs::write(&path, catalog).unwrap();
    let output = std::process::Command::new(crate::common::binary())
        .args(["serve", "--config"])
        .arg(&path)
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("MiB free, less than audit.min_free_bytes"),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&output.stdout).contains("listening on"));
}

#[tokio::test]
async fn a_database_replaced_while_running_is_never_written_and_gets_the_records_at_restart() {
    let upstream = test_upstream(0).await;
    let cp = ControlPlane::start(&audit_catalog(&upstream.url, ""));
    cp.wait_all_ready().await;
    // Another database renamed over the store, as a restore from backup
    // would: its own table, one row of its own.
    let dir = store_dir(&cp);
    let other = dir.join("restored.db");
    let restored = rusqlite::Connection::open(&other).unwrap();
    restored
        .execute_batch("CREATE TABLE kept (x TEXT); INSERT INTO kept VALUES ('mine');")
        .unwrap();
    drop(restored);
    std::fs::rename(&other, dir.join("audit.db")).unwrap();
    let traces = crate::audit::echo_calls(&cp, 3).await;
    let metrics = cp.metrics().await;
    assert_eq!(metric(&metrics, "mcp_cp_audit_records_lost_total"), 0.0);
    let spool = std::fs::read_to_string(dir.join("spool/sink-0.jsonl")).unwrap();
    for trace in &traces {
        assert!(spool.contains(trace.as_str()), "{trace} spooled");
    }
    let tables = |db: &Path| -> Vec<String> {
        let connection = rusqlite::Connection::open(db).unwrap();
        let mut statement =
            (connection.prepare("SELECT name FROM sqlite_master WHERE type = 'table'")).unwrap();
        let names = statement.query_map([], |row| row.get(0)).unwrap();
        names.map(Result::unwrap).collect()
    };
    assert_eq!(
        tables(&dir.join("audit.db")),
        ["kept"],
        "not written while serving"
    );
    // The next start takes the new file as the store, and the spool's
    // records go into it.
    let cp = cp.restart();
    cp.wait_all_ready().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while traces.iter().any(|t| sqlite_outcomes(&cp, t) != ["ok"]) {
        assert!(Instant::now() < deadline, "spool replayed after restart");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A small tmpfs mounted on a fresh directory; unmounted on drop.
struct SmallDisk(tempfile::TempDir);

impl SmallDisk {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(status.success(), "mount a tmpfs (needs root)");
        Self(dir)
    }

    /// Write a file until the disk is full; its path.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.0.path().join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while file.write_all(&chunk).is_ok() {}
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.0.path())
            .status();
    }
}

#[tokio::test]
async fn a_disk_that_fills_while_serving_is_spooled_around_and_the_records_arrive_later() {
    let disk = SmallDisk::mount("8m");
    let upstream = test_upstream(0).await;
    let db = disk.0.path().join("audit.db");
    let sinks = format!(
        "audit:\n  min_free_bytes: 1048576\n  sinks:\n    - sqlite: {{path: \"{}\"}}\n",
        db.display()
    );
    let cp = ControlPlane::start(&audit_catalog(&upstream.url, &sinks));
    cp.wait_all_ready().await;
    let filler = disk.fill();
    // Calls go on; their records wait in the spool (on another disk).
    let traces = crate::audit::echo_calls(&cp, 5).await;
    let metrics = cp.metrics().await;
    assert_eq!(metric(&metrics, "mcp_cp_audit_records_lost_total"), 0.0);
    let spool = std::fs::read_to_string(store_dir(&cp).join("spool/sink-0.jsonl")).unwrap();
    for trace in &traces {
        assert!(spool.contains(trace.as_str()), "{trace} spooled");
    }
    cp.wait_log("audit sink failed; spooling its records until it recovers")
        .await;
    // Space again: the records reach the database without a restart.
    std::fs::remove_file(filler).unwrap();
    let connection = rusqlite::Connection::open(&db).unwrap();
    let count = |trace: &String| -> i64 {
        let query = "SELECT count(*) FROM audit_records WHERE trace_id = ?1";
        connection.query_row(query, [trace], |r| r.get(0)).unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while traces.iter().any(|trace| count(trace) != 1) {
        assert!(Instant::now() < deadline, "the spool never drained");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
