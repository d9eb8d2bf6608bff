//! Telemetry built from the audit trail's finished records: Prometheus
//! metrics ([`metrics`]) and OTLP span export ([`otlp`]). Both are audit
//! observers ([`crate::audit::Observer`]): the audit writer hands them each
//! finished record, and knows nothing of them.

pub mod metrics;
pub mod otlp;
