//! The audit's cost: one record made durable at a time (what a lone call
//! waits for, twice: its intent and its outcome), and throughput with
//! group commit, 256 requests committing at once, on SQLite (at each
//! durability) and, when it answers on 127.0.0.1:5432 (database `test`),
//! PostgreSQL. Divide 256 by the time per iteration for records per
//! second.
//!
//! `cargo bench --bench audit`

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use mcp_control_plane::audit::postgres::PostgresSink;
use mcp_control_plane::audit::spool::{Sink, Spooled};
use mcp_control_plane::audit::sqlite::SqliteSink;
use mcp_control_plane::audit::{AuditLog, AuditRecord};
use mcp_control_plane::config::{Durability, FailureMode, Retention};
use mcp_control_plane::trace_context::TraceContext;
use mcp_control_plane::vocabulary::{Action, FrontDoor, Outcome};

const CONCURRENT: usize = 256;

fn record() -> AuditRecord {
    let mut record = AuditRecord::new(
        TraceContext::from_traceparent(None),
        Action::Call,
        FrontDoor::Rest,
        "bench".into(),
    );
    record.agent_id = Some("agent-7".into());
    record.tool = Some("execute_trade".into());
    record.outcome = Outcome::Ok;
    record
}

fn bench_sink(c: &mut Criterion, name: &str, sink: Box<dyn Sink>, spool: std::path::PathBuf) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let log = runtime.block_on(async {
        AuditLog::start(
            vec![Spooled::new(sink, spool, std::time::Duration::from_secs(5))],
            FailureMode::FailClosed,
            None,
            Vec::new(),
        )
    });
    c.bench_function(&format!("audit: one durable record ({name})"), |b| {
        b.to_async(&runtime).iter(|| log.commit(record(), None))
    });
    c.bench_function(
        &format!("audit: {CONCURRENT} concurrent durable records ({name})"),
        |b| {
            b.iter_custom(|iterations| {
                runtime.block_on(async {
                    let started = Instant::now();
                    for _ in 0..iterations {
                        let commits = (0..CONCURRENT).map(|_| {
                            let log = log.clone();
                            tokio::spawn(async move { log.commit(record(), None).await })
                        });
                        for commit in futures::future::join_all(commits).await {
                            commit.unwrap().unwrap();
                        }
                    }
                    started.elapsed()
                })
            })
        },
    );
}

fn audit(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    for (durability, name) in [
        (Durability::ProcessCrash, "SQLite, process-crash"),
        (Durability::PowerLoss, "SQLite, power-loss"),
    ] {
        let sqlite = SqliteSink::open(&path, durability, Retention::default()).unwrap();
        bench_sink(c, name, Box::new(sqlite), dir.path().join("sqlite.spool"));
    }
    let reachable = std::net::TcpStream::connect_timeout(
        &"127.0.0.1:5432".parse().unwrap(),
        Duration::from_millis(200),
    )
    .is_ok();
    if reachable {
        let postgres = PostgresSink::new(
            "postgres://postgres@127.0.0.1:5432/test?sslmode=disable".into(),
            Retention::default(),
        );
        bench_sink(
            c,
            "PostgreSQL",
            Box::new(postgres),
            dir.path().join("pg.spool"),
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = audit
}
criterion_main!(benches);
