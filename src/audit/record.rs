//! One audit record, and its one JSON form (stored by every sink, returned
//! by the query API).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use humantime_serde::re::humantime;
use rmcp::model::JsonObject;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Action, FrontDoor, Outcome};
use crate::telemetry::TraceContext;

/// Everything recorded about one request.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    /// Unique per record: sinks ignore a record they already hold, so a
    /// replay after a failure never duplicates.
    pub id: String,
    pub time: SystemTime,
    pub trace: TraceContext,
    pub action: Action,
    pub front_door: FrontDoor,
    pub environment: Arc<str>,
    pub agent_id: Option<Arc<str>>,
    pub role: Option<Arc<str>>,
    /// The tool name the caller asked for (public name).
    pub tool: Option<Arc<str>>,
    pub upstream_tool: Option<Arc<str>>,
    /// The server's logical name.
    pub server: Option<Arc<str>>,
    /// The policy's decision: `allow`, `hidden`, or why it denied.
    pub policy: Option<&'static str>,
    /// The policy's reasons for a denial.
    pub reasons: Vec<String>,
    /// SHA-256 of the call's arguments (canonical JSON).
    pub arguments_sha256: Option<String>,
    /// The arguments themselves, where the catalog opts the tool in
    /// (redacted fields replaced).
    pub arguments: Option<Value>,
    pub outcome: Outcome,
    pub latency_ms: f64,
    /// How long the policy took to decide (for metrics).
    pub policy_seconds: Option<f64>,
    /// The call to the upstream, as a child span of this request's.
    pub upstream: Option<UpstreamSpan>,
}

/// The control plane's span for its request to an upstream server.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamSpan {
    pub span_id: [u8; 8],
    pub started: SystemTime,
    pub seconds: f64,
}

impl AuditRecord {
    pub fn new(
        trace: TraceContext,
        action: Action,
        front_door: FrontDoor,
        environment: Arc<str>,
    ) -> Self {
        let id: [u8; 16] = rand::random();
        Self {
            id: hex::encode(id),
            time: SystemTime::now(),
            trace,
            action,
            front_door,
            environment,
            agent_id: None,
            role: None,
            tool: None,
            upstream_tool: None,
            server: None,
            policy: None,
            reasons: Vec::new(),
            arguments_sha256: None,
            arguments: None,
            outcome: Outcome::Cancelled,
            latency_ms: 0.0,
            policy_seconds: None,
            upstream: None,
        }
    }

    /// Milliseconds since the Unix epoch.
    pub fn time_ms(&self) -> i64 {
        let ms = self
            .time
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        i64::try_from(ms).unwrap_or(i64::MAX)
    }

    /// Record the arguments' digest, and the arguments themselves when
    /// `keep` is set (with the fields it names redacted).
    pub fn set_arguments(&mut self, arguments: &JsonObject, keep: Option<&[Arc<str>]>) {
        // serde_json's map is ordered by key: the serialization is canonical.
        let bytes = serde_json::to_vec(arguments).unwrap_or_default();
        self.arguments_sha256 = Some(hex::encode(Sha256::digest(&bytes)));
        if let Some(redact) = keep {
            let mut value = Value::Object(arguments.clone());
            redact_fields(&mut value, redact);
            self.arguments = Some(value);
        }
    }

    /// The record as stored and queried.
    pub fn to_json(&self) -> Value {
        let text = |v: &Option<Arc<str>>| v.as_deref().unwrap_or("").to_string();
        json!({
            "id": self.id,
            "time": humantime::format_rfc3339_millis(self.time).to_string(),
            "trace_id": self.trace.trace_id_hex(),
            "span_id": hex::encode(self.trace.span_id),
            "upstream_span_id": self.upstream.map(|u| hex::encode(u.span_id)),
            "action": self.action.as_str(),
            "front_door": self.front_door.as_str(),
            "agent_id": text(&self.agent_id),
            "role": text(&self.role),
            "tool": text(&self.tool),
            "upstream_tool": text(&self.upstream_tool),
            "server": text(&self.server),
            "environment": &*self.environment,
            "policy": self.policy.unwrap_or(""),
            "reasons": self.reasons,
            "outcome": self.outcome.as_str(),
            "latency_ms": self.latency_ms,
            "arguments_sha256": self.arguments_sha256,
            "arguments": self.arguments,
        })
    }
}

/// Replace the value of every field named in `redact`, at any depth.
fn redact_fields(value: &mut Value, redact: &[Arc<str>]) {
    match value {
        Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                if redact.iter().any(|r| **r == *key) {
                    *field = Value::String("[redacted]".into());
                } else {
                    redact_fields(field, redact);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| redact_fields(v, redact)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_digested_and_kept_only_redacted() {
        let arguments = json!({"user": "u", "auth": {"password": "p", "otp": "1"}, "list": [{"password": "q"}]});
        let arguments = arguments.as_object().unwrap();
        let mut record = AuditRecord::new(
            TraceContext::from_traceparent(None),
            Action::Call,
            FrontDoor::Rest,
            "test".into(),
        );
        record.set_arguments(arguments, None);
        assert!(record.arguments.is_none());
        let digest = record.arguments_sha256.clone().unwrap();
        assert_eq!(digest.len(), 64);
        let redact: Vec<Arc<str>> = vec!["password".into()];
        record.set_arguments(arguments, Some(&redact));
        assert_eq!(record.arguments_sha256.unwrap(), digest);
        assert_eq!(
            record.arguments.unwrap(),
            json!({"user": "u", "auth": {"password": "[redacted]", "otp": "1"}, "list": [{"password": "[redacted]"}]})
        );
    }
}

/// A record as sinks and the spool store it: the JSON text, plus the
/// fields stores index.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StoredRecord {
    pub id: String,
    pub time_ms: i64,
    pub trace_id: String,
    pub agent_id: String,
    pub tool: String,
    pub outcome: String,
    /// The whole record ([`AuditRecord::to_json`]).
    pub json: String,
}

impl From<&AuditRecord> for StoredRecord {
    fn from(record: &AuditRecord) -> Self {
        let text = |v: &Option<Arc<str>>| v.as_deref().unwrap_or("").to_string();
        Self {
            id: record.id.clone(),
            time_ms: record.time_ms(),
            trace_id: record.trace.trace_id_hex(),
            agent_id: text(&record.agent_id),
            tool: text(&record.tool),
            outcome: record.outcome.as_str().to_string(),
            json: record.to_json().to_string(),
        }
    }
}
