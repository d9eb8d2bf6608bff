//! Audit sinks under stress: a PostgreSQL that goes away and comes back,
//! JSON-lines rotation, fail-closed and fail-open when nothing can be
//! written, and Kafka records consumed back from a real broker.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

use crate::audit::{ADMIN_TOKEN, admin_query, audit_catalog, call, echo_calls};
use crate::common::upstream::{HttpUpstream, test_upstream};
use crate::common::{ControlPlane, TESTER_TOKEN};

/// A TCP proxy to `target` that can be switched off (dropping every
/// connection) and on again: a database that goes away and comes back.
struct Switch {
    port: u16,
    up: Arc<AtomicBool>,
    generation: tokio::sync::watch::Sender<u64>,
}

impl Switch {
    async fn start(target: &'static str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let (generation, _) = tokio::sync::watch::channel(0u64);
        let (accepting, cuts) = (up.clone(), generation.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !accepting.load(Ordering::SeqCst) {
                    continue;
                }
                let mut cut = cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self {
            port,
            up,
            generation,
        }
    }

    fn set(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
        if !up {
            self.generation.send_modify(|g| *g += 1);
        }
    }
}

async fn postgres_count(traces: &[String]) -> HashMap<String, i64> {
    let (client, connection) = tokio_postgres::connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=test",
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let rows = client
        .query(
            "SELECT trace_id, count(*) FROM audit_records WHERE trace_id = ANY($1) GROUP BY trace_id",
            &[&traces],
        )
        .await
        .unwrap();
    rows.into_iter().map(|r| (r.get(0), r.get(1))).collect()
}

#[tokio::test]
async fn postgres_records_spool_while_the_database_is_away_and_arrive_once_after() {
    let upstream = test_upstream(0).await;
    let switch = Switch::start("127.0.0.1:5432").await;
    let secrets = tempfile::tempdir().unwrap();
    let url_file = secrets.path().join("pg-url");
    std::fs::write(
        &url_file,
        format!(
            "postgres://postgres@127.0.0.1:{}/test?sslmode=disable",
            switch.port
        ),
    )
    .unwrap();
    let sinks = format!(
        "audit:\n  sinks:\n    - postgres: {{url: {{file: \"{}\"}}}}\n",
        url_file.display()
    );
    let cp = ControlPlane::start(&audit_catalog(&upstream.url, &sinks));
    cp.wait_all_ready().await;
    let mut traces = Vec::new();
    let echo = json!({"action": "echo", "payload": {}});
    for _ in 0..5 {
        let (status, trace) = call(&cp, Some(TESTER_TOKEN), echo.clone()).await;
        assert_eq!(status, 200);
        traces.push(trace);
    }
    switch.set(false);
    for _ in 0..5 {
        let (status, trace) = call(&cp, Some(TESTER_TOKEN), echo.clone()).await;
        assert_eq!(status, 200, "records spool while the database is away");
        traces.push(trace);
    }
    let metrics = cp.metrics().await;
    // Each call's intent and its outcome.
    assert!(
        metrics.contains("mcp_cp_audit_spool_records{sink=\"postgres\"} 10"),
        "{metrics}"
    );
    switch.set(true);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let counts = postgres_count(&traces).await;
        if counts.len() == traces.len() {
            assert!(counts.values().all(|&n| n == 1), "{counts:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "records missing after recovery: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The admin API reads PostgreSQL too.
    let (status, page) =
        admin_query(&cp, Some(ADMIN_TOKEN), &format!("trace_id={}", traces[7])).await;
    assert_eq!(status, 200);
    assert_eq!(page["records"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn json_lines_rotate_without_losing_or_repeating_a_record() {
    let upstream = test_upstream(0).await;
    let sinks =
        "audit:\n  sinks:\n    - jsonl: {path: audit/audit.jsonl, max_bytes: 4000, keep: 50}\n";
    let cp = ControlPlane::start(&audit_catalog(&upstream.url, sinks));
    cp.wait_all_ready().await;
    let traces = echo_calls(&cp, 30).await;
    let dir = cp.config.parent().unwrap().join("audit");
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(files.len() > 2, "rotated into several files: {files:?}");
    // Per trace: (intents, outcomes, record ids).
    let mut seen: HashMap<String, (u32, u32, Vec<String>)> = HashMap::new();
    for file in files {
        for line in std::fs::read_to_string(file).unwrap().lines() {
            let record: Value = serde_json::from_str(line).expect("every line is JSON");
            let trace = record["trace_id"].as_str().unwrap().to_string();
            let entry = seen.entry(trace).or_default();
            if record["outcome"] == "unfinished" {
                entry.0 += 1;
            } else {
                entry.1 += 1;
            }
            entry.2.push(record["id"].as_str().unwrap().to_string());
        }
    }
    for trace in &traces {
        let (intents, outcomes, ids) = &seen[trace];
        assert_eq!(
            (*intents, *outcomes),
            (1, 1),
            "{trace}: one intent, one outcome"
        );
        assert_eq!(ids[0], ids[1], "the outcome completes its intent");
    }
}

/// A catalog whose only sink is a database nobody listens on, spooling to
/// `spool` (which the test then makes unwritable).
fn doomed(upstream_url: &str, spool: &std::path::Path, mode: &str) -> String {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let dir = spool.parent().unwrap();
    let url_file = dir.join("url");
    std::fs::write(
        &url_file,
        format!("postgres://postgres@127.0.0.1:{port}/test?sslmode=disable"),
    )
    .unwrap();
    audit_catalog(
        upstream_url,
        &format!(
            "audit:\n  on_failure: {mode}\n  spool_dir: \"{}\"\n  sinks:\n    - postgres: {{url: {{file: \"{}\"}}}}\n",
            spool.display(),
            url_file.display()
        ),
    )
}

#[tokio::test]
async fn when_not_even_the_spool_can_be_written_fail_closed_refuses_and_fail_open_serves() {
    for (mode, refused) in [("fail-closed", true), ("fail-open", false)] {
        let upstream = test_upstream(0).await;
        let scratch = tempfile::tempdir().unwrap();
        let spool = scratch.path().join("spool");
        let cp = ControlPlane::start(&doomed(&upstream.url, &spool, mode));
        cp.wait_all_ready().await;
        let echo = json!({"action": "echo", "payload": {}});
        // The database is down but the spool works: calls go on.
        assert_eq!(
            call(&cp, Some(TESTER_TOKEN), echo.clone()).await.0,
            200,
            "{mode}"
        );
        // Now the spool cannot be written either.
        std::fs::remove_dir_all(&spool).unwrap();
        std::fs::write(&spool, "not a directory").unwrap();
        let (status, _) = call(&cp, Some(TESTER_TOKEN), echo.clone()).await;
        if refused {
            assert_eq!(status, 503, "{mode}");
            let calls = upstream.calls();
            let response = cp.invoke(Some(TESTER_TOKEN), echo.clone()).await;
            assert_eq!(response.status(), 503);
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "audit_unavailable");
            assert_eq!(
                upstream.calls(),
                calls,
                "refused before reaching the server"
            );
        } else {
            assert_eq!(status, 200, "{mode}");
            let metrics = cp.metrics().await;
            let lost = crate::common::metric(&metrics, "mcp_cp_audit_records_lost_total");
            assert!(lost >= 1.0, "{metrics}");
        }
    }
}

#[tokio::test]
async fn kafka_records_are_consumed_back_keyed_by_trace_id() {
    let port = crate::common::free_port();
    let listener = format!("tcp://127.0.0.1:{port}");
    let _broker = crate::common::Background::spawn(
        std::process::Command::new(crate::common::installs::tansu())
            .args(["broker", "--listener-url", &listener])
            .args(["--advertised-listener-url", &listener])
            .args(["--storage-engine", "memory://tansu/"]),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(Instant::now() < deadline, "the broker never listened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let upstream = test_upstream(0).await;
    let sinks = format!(
        "audit:\n  sinks:\n    - sqlite: {{path: audit.db}}\n    - kafka: {{brokers: [\"127.0.0.1:{port}\"], topic: mcp-audit}}\n"
    );
    let cp = ControlPlane::start(&audit_catalog(&upstream.url, &sinks));
    cp.wait_all_ready().await;
    let traces = echo_calls(&cp, 5).await;
    let client = rskafka::client::ClientBuilder::new(vec![format!("127.0.0.1:{port}")])
        .build()
        .await
        .unwrap();
    let partition = client
        .partition_client(
            "mcp-audit",
            0,
            rskafka::client::partition::UnknownTopicHandling::Retry,
        )
        .await
        .unwrap();
    let (records, _) = partition
        .fetch_records(0, 1..1_000_000, 1_000)
        .await
        .unwrap();
    // Per trace, in the order consumed: (outcome, record id).
    let mut consumed: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for record in records {
        let key = String::from_utf8(record.record.key.unwrap()).unwrap();
        let value: Value = serde_json::from_slice(&record.record.value.unwrap()).unwrap();
        assert_eq!(value["trace_id"], key.as_str(), "keyed by trace id");
        let entry = (
            value["outcome"].as_str().unwrap().to_string(),
            value["id"].to_string(),
        );
        consumed.entry(key).or_default().push(entry);
    }
    for trace in &traces {
        let records = &consumed[trace];
        let outcomes: Vec<&str> = records.iter().map(|(o, _)| o.as_str()).collect();
        assert_eq!(
            outcomes,
            ["unfinished", "ok"],
            "{trace}: the intent, then its outcome"
        );
        assert_eq!(records[0].1, records[1].1, "one record id");
    }
}

/// The local PostgreSQL behind TLS that the test controls: it answers a
/// client's SSLRequest with `S`, completes the handshake with its own
/// certificate, then relays to the server in plain text. A client that
/// starts without asking for TLS is counted and cut off.
struct PostgresTls {
    port: u16,
    /// SSLRequests answered, handshakes completed, plain-text starts.
    offered: Arc<AtomicUsize>,
    handshakes: Arc<AtomicUsize>,
    plain: Arc<AtomicUsize>,
}

impl PostgresTls {
    /// The SSLRequest message: length 8, code 80877103.
    const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

    async fn start(config: rustls::ServerConfig) -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let counts: [Arc<AtomicUsize>; 3] = Default::default();
        let [offered, handshakes, plain] = counts.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let (acceptor, offered, handshakes, plain) = (
                    acceptor.clone(),
                    offered.clone(),
                    handshakes.clone(),
                    plain.clone(),
                );
                tokio::spawn(async move {
                    let mut first = [0u8; 8];
                    if client.read_exact(&mut first).await.is_err() {
                        return;
                    }
                    if first != Self::SSL_REQUEST {
                        plain.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                    offered.fetch_add(1, Ordering::SeqCst);
                    client.write_all(b"S").await.unwrap();
                    let Ok(mut tls) = acceptor.accept(client).await else {
                        return;
                    };
                    handshakes.fetch_add(1, Ordering::SeqCst);
                    let mut server = TcpStream::connect("127.0.0.1:5432").await.unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
                });
            }
        });
        let [offered, handshakes, plain] = counts;
        Self {
            port,
            offered,
            handshakes,
            plain,
        }
    }

    fn counts(&self) -> [usize; 3] {
        [&self.offered, &self.handshakes, &self.plain].map(|c| c.load(Ordering::SeqCst))
    }
}

/// The control plane auditing to `tls` with `sslmode=require`, trusting
/// the CAs in `trusted` (a PEM file) as its platform's roots.
async fn audit_over_tls(
    tls: &PostgresTls,
    trusted: &std::path::Path,
) -> (ControlPlane, HttpUpstream, String) {
    let upstream = test_upstream(0).await;
    let secrets = tempfile::tempdir().unwrap();
    let url = secrets.path().join("pg-url");
    let address = format!("127.0.0.1:{}", tls.port);
    std::fs::write(
        &url,
        format!("postgres://postgres@{address}/test?sslmode=require"),
    )
    .unwrap();
    let sinks = format!(
        "audit:\n  sinks:\n    - postgres: {{url: {{file: \"{}\"}}}}\n",
        url.display()
    );
    let env = [("SSL_CERT_FILE", trusted.to_str().unwrap())];
    let cp = ControlPlane::start_with_env(&audit_catalog(&upstream.url, &sinks), &env);
    cp.wait_all_ready().await;
    let payload = json!({"action": "echo", "payload": {}});
    let (status, trace) = call(&cp, Some(TESTER_TOKEN), payload).await;
    assert_eq!(status, 200, "the record is spooled or written");
    (cp, upstream, trace)
}

#[tokio::test]
async fn a_postgres_certificate_that_does_not_verify_is_refused_not_bypassed() {
    let (config, _) = crate::common::tls::certified();
    let tls = PostgresTls::start(config).await;
    // Trusted: some other CA, not the one that signed the server's.
    let (_, other_ca) = crate::common::tls::certified();
    let dir = tempfile::tempdir().unwrap();
    let trusted = dir.path().join("ca.pem");
    std::fs::write(&trusted, other_ca).unwrap();
    let (cp, _upstream, trace) = audit_over_tls(&tls, &trusted).await;

    // Records wait in the spool; the reason is the certificate.
    let reason =
        "cannot connect to PostgreSQL: error performing TLS handshake: invalid peer certificate";
    cp.wait_log(reason).await;
    let spooled = "mcp_cp_audit_spool_records{sink=\"postgres\"}";
    assert_eq!(crate::common::metric(&cp.metrics().await, spooled), 2.0);
    let [offered, handshakes, plain] = tls.counts();
    assert!(offered >= 1, "TLS was offered and asked for");
    assert_eq!((handshakes, plain), (0, 0), "no bypass, no plain text");
    assert!(
        postgres_count(std::slice::from_ref(&trace))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn a_postgres_certificate_from_a_trusted_authority_is_accepted() {
    // The positive control of the test above: the same server, its own CA
    // trusted, and the records arrive over TLS.
    let (config, ca) = crate::common::tls::certified();
    let tls = PostgresTls::start(config).await;
    let dir = tempfile::tempdir().unwrap();
    let trusted = dir.path().join("ca.pem");
    std::fs::write(&trusted, ca).unwrap();
    let (_cp, _upstream, trace) = audit_over_tls(&tls, &trusted).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while postgres_count(std::slice::from_ref(&trace))
        .await
        .get(&trace)
        != Some(&1)
    {
        assert!(Instant::now() < deadline, "never written over TLS");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let [_, handshakes, plain] = tls.counts();
    assert!(handshakes >= 1, "over TLS");
    assert_eq!(plain, 0);
}
