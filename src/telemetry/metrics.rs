//! Prometheus metrics, fed from the audit record stream.
//!
//! Every request yields exactly one audit record, so counting records in
//! the audit writer (one task, no contention) counts every request without
//! touching the hot path; the policy and upstream latencies travel in the
//! record.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::audit::{AuditRecord, Observer};

/// Upper bounds (seconds) of the latency histograms' buckets.
const BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A histogram with fixed buckets; counts and the sum in atomics.
pub struct Histogram {
    counts: Vec<AtomicU64>,
    count: AtomicU64,
    /// The sum in nanoseconds.
    sum_nanos: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: BUCKETS.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    pub fn observe(&self, seconds: f64) {
        for (bound, count) in BUCKETS.iter().zip(&self.counts) {
            if seconds <= *bound {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos
            .fetch_add((seconds * 1e9) as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bound, count) in BUCKETS.iter().zip(&self.counts) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                count.load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

/// The labels of one request counter: action, tool, outcome.
type RequestKey = (&'static str, Arc<str>, &'static str);

/// The labels of one upstream request counter: server, outcome, and
/// whether it was a retry.
type UpstreamKey = (Arc<str>, &'static str, bool);

/// The `tool` label of requests for something the catalog does not know.
const UNKNOWN: &str = "unknown";

/// What the control plane counts.
#[derive(Default)]
pub struct Metrics {
    /// (action, tool, outcome) -> requests.
    requests: Mutex<BTreeMap<RequestKey, u64>>,
    /// (server, outcome, retry) -> requests to upstreams.
    upstream_requests: Mutex<BTreeMap<UpstreamKey, u64>>,
    pub policy_seconds: Histogram,
    pub upstream_seconds: Histogram,
}

impl Observer for Metrics {
    /// Count one finished request.
    fn observe(&self, record: &AuditRecord) {
        // Labels from a bounded set: the catalog's names, `unknown` for
        // whatever else a caller sent, empty where nothing was named.
        let tool = match (&record.label, &record.tool) {
            (Some(label), _) => label.clone(),
            (None, Some(_)) => Arc::from(UNKNOWN),
            (None, None) => Arc::from(""),
        };
        let key = (record.action.as_str(), tool, record.outcome.as_str());
        let mut requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        *requests.entry(key).or_default() += 1;
        drop(requests);
        if let Some(seconds) = record.policy_seconds {
            self.policy_seconds.observe(seconds);
        }
        if record.legs.is_empty() {
            return;
        }
        let mut upstream = (self.upstream_requests.lock()).unwrap_or_else(|p| p.into_inner());
        for leg in &record.legs {
            let key = (leg.server.clone(), leg.outcome.as_str(), leg.attempt > 1);
            *upstream.entry(key).or_default() += 1;
            if let Some(span) = leg.upstream {
                self.upstream_seconds.observe(span.seconds);
            }
        }
    }
}

impl Metrics {
    /// The request counter and histograms in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        out.push_str("# HELP mcp_cp_requests_total Requests by action, tool and outcome.\n# TYPE mcp_cp_requests_total counter\n");
        let requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        for ((action, tool, outcome), count) in requests.iter() {
            let _ = writeln!(
                out,
                "mcp_cp_requests_total{{action=\"{action}\",tool=\"{}\",outcome=\"{outcome}\"}} {count}",
                escape(tool)
            );
        }
        drop(requests);
        out.push_str("# HELP mcp_cp_upstream_requests_total Requests to upstream servers (each attempt, each fan-out leg) by server, outcome and whether it was a retry.\n# TYPE mcp_cp_upstream_requests_total counter\n");
        let upstream = (self.upstream_requests.lock()).unwrap_or_else(|p| p.into_inner());
        for ((server, outcome, retry), count) in upstream.iter() {
            let _ = writeln!(
                out,
                "mcp_cp_upstream_requests_total{{server=\"{}\",outcome=\"{outcome}\",retry=\"{retry}\"}} {count}",
                escape(server)
            );
        }
        drop(upstream);
        self.policy_seconds.render(
            out,
            "mcp_cp_policy_decision_seconds",
            "Time to evaluate the Rego policy for one request.",
        );
        self.upstream_seconds.render(
            out,
            "mcp_cp_upstream_seconds",
            "Time an upstream server took to answer one request.",
        );
    }
}

/// A label value with `\`, `"` and newlines escaped.
pub fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
