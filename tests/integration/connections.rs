//! Hostile network clients: sockets that send nothing, half a request, a
//! stalled body, or sit idle; too many of them; an announced body far over
//! the limit; and names chosen to grow the metrics and the audit trail.

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::upstream::test_upstream;
use crate::common::{ControlPlane, TESTER_TOKEN, echo_catalog};

/// The echo catalog with tight connection bounds.
fn bounded_catalog(url: &str, http: &str) -> String {
    format!("{}http:\n{http}", echo_catalog(url))
}

const TIGHT: &str = "  header_timeout: 1s\n  body_timeout: 1s\n  idle_timeout: 2s\n";

/// Read until the server closes the connection (or 20 s pass); what it sent.
async fn until_closed(stream: &mut TcpStream) -> Option<String> {
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut received));
    match read.await {
        Ok(_) => Some(String::from_utf8_lossy(&received).into_owned()),
        Err(_) => None,
    }
}

async fn open(cp: &ControlPlane) -> TcpStream {
    TcpStream::connect(cp.addr).await.unwrap()
}

#[tokio::test]
async fn silent_slow_and_idle_connections_are_closed() {
    let upstream = test_upstream(0).await;
    let cp = ControlPlane::start(&bounded_catalog(&upstream.url, TIGHT));
    cp.wait_all_ready().await;
    let partial: [&[u8]; 3] = [
        b"",
        b"GET /hea",
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
    ];
    for sent in partial {
        let mut stream = open(&cp).await;
        stream.write_all(sent).await.unwrap();
        assert!(
            until_closed(&mut stream).await.is_some(),
            "the server closes a connection that sent {:?}",
            String::from_utf8_lossy(sent)
        );
    }
    // A body that stalls halfway gets an answer and the connection ends.
    let mut stream = open(&cp).await;
    let head = format!(
        "POST /invoke HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TESTER_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"action\""
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = until_closed(&mut stream).await.expect("closed");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("within the designated timeout"), "{answer}");
    // An idle keep-alive connection after a full answer is closed too.
    let mut stream = open(&cp).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let answer = until_closed(&mut stream).await.expect("closed when idle");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// A connection that has had one answer and is kept alive: the server
/// has taken it (and counts it) by then.
async fn kept_alive(cp: &ControlPlane) -> TcpStream {
    let mut stream = open(cp).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    while !String::from_utf8_lossy(&answer).contains(r#"{"status":"ok"}"#) {
        let mut chunk = [0u8; 1024];
        let read = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut chunk));
        let n = read.await.expect("answered").unwrap();
        assert!(n > 0, "kept alive");
        answer.extend_from_slice(&chunk[..n]);
    }
    stream
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let upstream = test_upstream(0).await;
    let http = "  max_connections: 3\n  header_timeout: 60s\n";
    let mut cp = ControlPlane::start(&bounded_catalog(&upstream.url, http));
    cp.wait_all_ready().await;
    // The test client's pooled connection would hold a place too.
    cp.http = reqwest::Client::new();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(kept_alive(&cp).await);
    }
    let health = cp.http.get(cp.url("/healthz")).send();
    tokio::pin!(health);
    let early = tokio::time::timeout(Duration::from_millis(700), &mut health).await;
    assert!(early.is_err(), "a fourth connection is not served yet");
    held.pop();
    let response = tokio::time::timeout(Duration::from_secs(20), health)
        .await
        .expect("served once a connection closed")
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn an_announced_oversized_body_is_refused_before_it_is_sent() {
    let upstream = test_upstream(0).await;
    let cp = ControlPlane::start(&echo_catalog(&upstream.url));
    cp.wait_all_ready().await;
    for path in ["/invoke", "/mcp"] {
        let mut stream = open(&cp).await;
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TESTER_TOKEN}\r\n\
             Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
             Content-Length: 1073741824\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let answer = until_closed(&mut stream)
            .await
            .expect("answered and closed");
        assert!(answer.starts_with("HTTP/1.1 413"), "{path}: {answer}");
    }
    let records = cp
        .audit_matching(2, |r| {
            r["outcome"] == "bad_request" && r["action"] == "connect"
        })
        .await;
    assert_eq!(records.len(), 2, "both refusals recorded");
    assert_eq!(records[0]["agent_id"], "tester-1");
}

#[tokio::test]
async fn sigterm_does_not_wait_forever_on_a_half_sent_request() {
    let upstream = test_upstream(0).await;
    let http = "  header_timeout: 120s\n  shutdown_grace: 1s\n";
    let mut cp = ControlPlane::start(&bounded_catalog(&upstream.url, http));
    cp.wait_all_ready().await;
    let mut stream = open(&cp).await;
    stream
        .write_all(b"POST /invoke HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\n{")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    cp.terminate();
    assert!(
        cp.wait_exit(Duration::from_secs(20)).await,
        "exits within its shutdown grace"
    );
}

#[tokio::test]
async fn names_a_caller_chooses_never_grow_the_metrics_or_the_audit_trail() {
    let upstream = test_upstream(0).await;
    let cp = ControlPlane::start(&echo_catalog(&upstream.url));
    cp.wait_all_ready().await;
    let long = "x".repeat(30_000);
    // Without a valid token: 401; with one, a tool that does not exist: 403.
    for (token, name, expected) in [
        (None, long.as_str(), 401),
        (Some("wrong-token"), long.as_str(), 401),
        (Some(TESTER_TOKEN), long.as_str(), 403),
        (Some(TESTER_TOKEN), "nul\u{0}and\nnewline", 403),
    ] {
        let body = json!({"action": name, "payload": {"big": long}});
        let status = cp.invoke(token, body).await.status();
        assert_eq!(status, expected, "{token:?}");
    }
    let admin = cp
        .http
        .get(cp.admin_url(&format!("/admin/audit?junk={long}")))
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 401);
    let metrics = cp.metrics().await;
    assert!(metrics.len() < 20_000, "{} bytes of metrics", metrics.len());
    assert!(!metrics.contains('\u{0}'));
    assert!(metrics.contains(r#"tool="unknown""#), "{metrics}");
    assert!(metrics.contains(r#"tool="admin/audit""#), "{metrics}");
    let records = cp
        .audit_matching(5, |r| r["action"] == "call" || r["action"] == "admin_query")
        .await;
    assert_eq!(records.len(), 5);
    for record in &records {
        let tool = record["tool"].as_str().unwrap();
        assert!(tool.chars().count() <= 201, "{} characters", tool.len());
        assert!(!tool.contains('\u{0}') && !tool.contains('\n'));
    }
    assert!(
        records
            .iter()
            .any(|r| r["tool"] == "nul\\u{0}and\\u{a}newline"),
        "the NUL and the newline are escaped"
    );
}

/// An HTTP/2 connection (prior knowledge) that sends no request, only a
/// PING every 200 ms: what the server sent before it closed, if it did
/// within 20 s.
async fn pings_only(cp: &ControlPlane) -> Option<usize> {
    let mut stream = open(cp).await;
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let settings = [0u8, 0, 0, 4, 0, 0, 0, 0, 0];
    stream.write_all(preface).await.unwrap();
    stream.write_all(&settings).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let pinging = tokio::spawn(async move {
        let ping = [0u8, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];
        while write.write_all(&ping).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let mut received = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(20), read.read_to_end(&mut received));
    let closed = closed.await.ok().map(|_| received.len());
    pinging.abort();
    closed
}

#[tokio::test]
async fn a_connection_kept_alive_by_pings_alone_is_closed() {
    let upstream = test_upstream(0).await;
    let cp = ControlPlane::start(&bounded_catalog(&upstream.url, TIGHT));
    cp.wait_all_ready().await;
    let sent = pings_only(&cp).await.expect("closed although it pings");
    // It was an HTTP/2 connection: the server answered the pings.
    assert!(sent > 9, "{sent} bytes");
}

#[tokio::test]
async fn one_client_cannot_take_every_connection() {
    let upstream = test_upstream(0).await;
    let http = "  max_connections_per_client: 3\n  header_timeout: 60s\n";
    let mut cp = ControlPlane::start(&bounded_catalog(&upstream.url, http));
    cp.wait_all_ready().await;
    cp.http = reqwest::Client::new();
    // Three connections the server has served hold the client's places...
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(kept_alive(&cp).await);
    }
    // ...and a fourth is closed at once, not left waiting.
    let mut fourth = open(&cp).await;
    let _ = fourth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await;
    let answer = until_closed(&mut fourth).await.expect("closed at once");
    assert!(answer.is_empty(), "{answer}");
    // A place given back is a place taken again (once the server has
    // seen the connection close).
    held.pop();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        match cp.http.get(cp.url("/healthz")).send().await {
            Ok(response) => break assert_eq!(response.status(), 200),
            Err(error) => assert!(std::time::Instant::now() < deadline, "{error}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_agent_opens_no_more_streams_than_its_cap() {
    let upstream = test_upstream(0).await;
    let http = "  mcp_max_streams_per_agent: 2\n";
    let cp = ControlPlane::start(&bounded_catalog(&upstream.url, http));
    cp.wait_all_ready().await;
    let initialize = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;
    let post = |body: &'static str, session: Option<&str>| {
        let mut request = (cp.http.post(cp.url("/mcp")))
            .bearer_auth(TESTER_TOKEN)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body);
        if let Some(session) = session {
            request = request
                .header("mcp-session-id", session)
                .header("mcp-protocol-version", "2025-06-18");
        }
        request.send()
    };
    let mut streams = Vec::new();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let opened = post(initialize, None).await.unwrap();
        let session = opened.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
        post(initialized, Some(&session)).await.unwrap();
        let stream = (cp.http.get(cp.url("/mcp")))
            .bearer_auth(TESTER_TOKEN)
            .header("accept", "text/event-stream")
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", "2025-06-18")
            .send()
            .await
            .unwrap();
        statuses.push(stream.status().as_u16());
        streams.push(stream);
    }
    assert_eq!(statuses, [200, 200, 429]);
    let refused = streams.pop().unwrap();
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32015, "{body}");
    let records = cp
        .audit_matching(1, |r| r["outcome"] == "session_limit")
        .await;
    assert_eq!(records.len(), 1);
}

#[tokio::test]
async fn a_flood_of_unauthenticated_requests_is_recorded_in_aggregate() {
    let upstream = test_upstream(0).await;
    let cp = ControlPlane::start(&crate::common::echo_catalog(&upstream.url));
    cp.wait_all_ready().await;
    let refused = |r: &serde_json::Value| r["outcome"] == "unauthenticated";
    for i in 0..60 {
        let token = format!("guess-{i}");
        let (status, _) = cp.call(&token, "echo", json!({})).await;
        assert_eq!(status, 401);
    }
    // The first 20 one by one; the rest in one summary at the end of the
    // window (10 s; were the 60 slower than that, a second window starts).
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    let accounted = |records: &[serde_json::Value]| -> u64 {
        (records.iter())
            .map(|r| r["aggregated"].as_u64().unwrap_or(1))
            .sum()
    };
    let records = loop {
        let records: Vec<_> = cp.audit_records().into_iter().filter(refused).collect();
        if accounted(&records) >= 60 {
            break records;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "unaccounted: {records:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(accounted(&records), 60);
    let summary = (records.iter())
        .find(|r| !r["aggregated"].is_null())
        .unwrap_or_else(|| panic!("no summary: {records:?}"));
    assert!(records.len() < 60, "{records:?}");
    assert!(summary["aggregated"].as_u64().unwrap() >= 20, "{summary}");
    assert_eq!(summary["client"], "127.0.0.1", "{summary}");
    let counted = summary["aggregated"].as_u64().unwrap();
    let reasons = summary["reasons"].as_str().unwrap();
    assert!(reasons.starts_with(&format!("{counted} more")), "{reasons}");
    // A caller with a valid token is recorded as ever.
    let (status, body) = cp.call(TESTER_TOKEN, "echo", json!({})).await;
    assert_eq!(status, 200);
    cp.audit_record(body["trace_id"].as_str().unwrap()).await;
}
