//! `GET /metrics`: Prometheus text format.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Extension;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::App;
use super::mcp::OpenSessions;
use crate::audit::log::SinkCounters;
use crate::telemetry::metrics::escape;

pub async fn metrics(
    State(app): State<Arc<App>>,
    Extension(open_sessions): Extension<OpenSessions>,
) -> Response {
    let audit = app.audit.metrics();
    let mut out = String::new();
    app.metrics.render(&mut out);
    let gauge = |out: &mut String, name: &str, kind: &str, help: &str, value: i64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    };
    gauge(
        &mut out,
        "mcp_cp_mcp_sessions",
        "gauge",
        "Open MCP sessions (initialize-based revisions).",
        open_sessions.load(Ordering::Relaxed),
    );
    let snapshot = app.live.current();
    let _ = writeln!(
        out,
        "# HELP mcp_cp_circuit_state Circuit breaker per server: 0 closed, 1 open, 2 half-open.\n\
         # TYPE mcp_cp_circuit_state gauge"
    );
    for (server, breaker) in snapshot.breakers.iter() {
        let _ = writeln!(
            out,
            "mcp_cp_circuit_state{{server=\"{}\"}} {}",
            escape(server),
            breaker.state().as_gauge()
        );
    }
    if let Some(shared) = &snapshot.shared {
        let _ = writeln!(
            out,
            "# HELP mcp_cp_redis_up Whether Redis answered the last command (1), or each replica keeps its own rate limits (0).\n\
             # TYPE mcp_cp_redis_up gauge\nmcp_cp_redis_up {}",
            u8::from(shared.is_up())
        );
    }
    type Count = fn(&crate::router::concurrency::Gate) -> usize;
    let per_gate: [(&str, &str, Count); 2] = [
        (
            "mcp_cp_upstream_in_flight",
            "Calls at each server now (see servers.<name>.concurrency).",
            |g| g.in_flight(),
        ),
        (
            "mcp_cp_upstream_queued",
            "Calls waiting for a slot at each server now.",
            |g| g.waiting(),
        ),
    ];
    for (name, help, count) in per_gate {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (server, gate) in snapshot.gates.iter() {
            let _ = writeln!(
                out,
                "{name}{{server=\"{}\"}} {}",
                escape(server),
                count(gate)
            );
        }
    }
    if snapshot.catalog.pinning().is_some() {
        let quarantined = crate::discovery::quarantine::all(&snapshot.catalog, &snapshot.upstreams);
        gauge(
            &mut out,
            "mcp_cp_quarantined",
            "gauge",
            "Tools and prompts whose definition is not as pinned (quarantined under pinning: enforce).",
            i64::try_from(quarantined.len()).unwrap_or(i64::MAX),
        );
    }
    let _ = writeln!(
        out,
        "# HELP mcp_cp_vault_revocations_failed_total Per-call Vault tokens whose revocation failed every attempt (they expire with their TTL).\n\
         # TYPE mcp_cp_vault_revocations_failed_total counter\n\
         mcp_cp_vault_revocations_failed_total {}",
        crate::credentials::REVOCATIONS_FAILED.load(Ordering::Relaxed)
    );
    let (ok, failed) = app.live.reload_counts();
    let _ = writeln!(
        out,
        "# HELP mcp_cp_catalog_reloads_total Catalog reloads: put in force (ok) or refused (error).\n\
         # TYPE mcp_cp_catalog_reloads_total counter\n\
         mcp_cp_catalog_reloads_total{{result=\"ok\"}} {ok}\n\
         mcp_cp_catalog_reloads_total{{result=\"error\"}} {failed}"
    );
    gauge(
        &mut out,
        "mcp_cp_audit_queue_depth",
        "gauge",
        "Audit records handed over and not yet written.",
        audit.queued.load(Ordering::Relaxed),
    );
    gauge(
        &mut out,
        "mcp_cp_audit_records_lost_total",
        "counter",
        "Audit records neither a sink nor its spool took (fail-closed: their requests were refused, or their intent stands as unfinished).",
        audit.lost.load(Ordering::Relaxed) as i64,
    );
    type Read = fn(&SinkCounters) -> i64;
    let per_sink: [(&str, &str, &str, Read); 3] = [
        (
            "mcp_cp_audit_records_written_total",
            "counter",
            "Audit records written, per sink.",
            |s| s.written.load(Ordering::Relaxed) as i64,
        ),
        (
            "mcp_cp_audit_records_spooled_total",
            "counter",
            "Audit records spooled while their sink was down.",
            |s| s.spooled.load(Ordering::Relaxed) as i64,
        ),
        (
            "mcp_cp_audit_spool_records",
            "gauge",
            "Audit records waiting in a sink's spool.",
            |s| s.backlog.load(Ordering::Relaxed),
        ),
    ];
    for (name, kind, help, value) in per_sink {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for sink in &audit.sinks {
            let _ = writeln!(
                out,
                "{name}{{sink=\"{}\"}} {}",
                escape(&sink.name),
                value(sink)
            );
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
