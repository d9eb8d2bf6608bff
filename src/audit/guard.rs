//! The guard that makes sure each request yields exactly one record.

use std::sync::Arc;
use std::time::Instant;

use super::{AuditError, AuditLog, AuditRecord};
use crate::trace_context::TraceContext;
use crate::vocabulary::{Action, FrontDoor, Outcome};

/// Hands its record to the audit log exactly once: when finished, or when
/// dropped unfinished (the request was abandoned; outcome `cancelled`).
pub struct AuditGuard {
    record: Option<AuditRecord>,
    log: AuditLog,
    started: Instant,
    /// Longest the request waits for its records to be durable.
    deadline: Option<Instant>,
}

impl AuditGuard {
    pub fn open(
        log: &AuditLog,
        trace: TraceContext,
        action: Action,
        front_door: FrontDoor,
        environment: Arc<str>,
        started: Instant,
    ) -> Self {
        Self {
            record: Some(AuditRecord::new(trace, action, front_door, environment)),
            log: log.clone(),
            started,
            deadline: None,
        }
    }

    /// Wait for the records at most until `deadline` (the request's).
    pub fn wait_until(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    /// The request's trace id, for log lines about its record.
    pub fn trace_id(&self) -> String {
        self.record
            .as_ref()
            .map(|r| r.trace.trace_id_hex())
            .unwrap_or_default()
    }

    pub fn record_mut(&mut self) -> &mut AuditRecord {
        // Only `finish` and `drop` take the record, and both end the guard.
        self.record
            .as_mut()
            .expect("the record is present until the guard ends")
    }

    /// Make the request's intent durable before it reaches an upstream: the
    /// record so far, flagged [`Outcome::Unfinished`]. Its final outcome
    /// (same record id) replaces it; a crash in between leaves the intent.
    pub async fn intent(&mut self) -> Result<(), AuditError> {
        let mut intent = self.record_mut().clone();
        intent.outcome = Outcome::Unfinished;
        intent.latency_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        self.log.commit(intent, self.deadline).await
    }

    /// Record the final outcome and wait until the record is durable.
    pub async fn finish(mut self, outcome: Outcome) -> Result<(), AuditError> {
        let Some(mut record) = self.record.take() else {
            return Ok(());
        };
        record.outcome = outcome;
        record.latency_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        self.log.commit(record, self.deadline).await
    }
}

impl Drop for AuditGuard {
    fn drop(&mut self) {
        if let Some(mut record) = self.record.take() {
            record.latency_ms = self.started.elapsed().as_secs_f64() * 1000.0;
            self.log.submit(record);
        }
    }
}
