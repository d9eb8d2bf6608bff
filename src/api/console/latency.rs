//! The recent latency of each upstream, for the console's overview: an
//! exponentially weighted mean of the latency of its requests (each leg
//! that left), fed by the audit writer (never by a request's own path).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::audit::{AuditRecord, Observer};

/// How much the newest request weighs in the mean.
const WEIGHT: f64 = 0.2;

#[derive(Default)]
pub struct RecentLatency(Mutex<HashMap<Arc<str>, f64>>);

impl RecentLatency {
    /// The recent latency of `server`, in milliseconds, once it has had a
    /// request.
    pub fn of(&self, server: &str) -> Option<f64> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(server)
            .copied()
    }
}

impl Observer for RecentLatency {
    fn observe(&self, record: &AuditRecord) {
        if record.legs.is_empty() {
            return;
        }
        let mut means = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for leg in record.legs.iter().filter(|leg| leg.upstream.is_some()) {
            let mean = means.entry(leg.server.clone()).or_insert(leg.latency_ms);
            *mean += WEIGHT * (leg.latency_ms - *mean);
        }
    }
}
