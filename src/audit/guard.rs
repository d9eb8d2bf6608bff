//! The guard that makes sure each request yields exactly one record.

use std::sync::Arc;
use std::time::Instant;

use super::{Action, AuditError, AuditLog, AuditRecord, FrontDoor, Outcome};
use crate::telemetry::TraceContext;

/// Hands its record to the audit log exactly once: when finished, or when
/// dropped unfinished (the request was abandoned; outcome `cancelled`).
pub struct AuditGuard {
    record: Option<AuditRecord>,
    log: AuditLog,
    started: Instant,
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
        }
    }

    pub fn record_mut(&mut self) -> &mut AuditRecord {
        // Only `finish` and `drop` take the record, and both end the guard.
        self.record
            .as_mut()
            .expect("the record is present until the guard ends")
    }

    /// Record the final outcome and wait until the record is durable.
    pub async fn finish(mut self, outcome: Outcome) -> Result<(), AuditError> {
        let Some(mut record) = self.record.take() else {
            return Ok(());
        };
        record.outcome = outcome;
        record.latency_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        self.log.commit(record).await
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
