//! One audit record, and its one JSON form (stored by every sink, returned
//! by the query API).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use humantime_serde::re::humantime;
use rmcp::model::JsonObject;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::guardrails::detect::Finding;
use crate::guardrails::redact::Redaction;
use crate::trace_context::TraceContext;
use crate::vocabulary::{Action, FrontDoor, Outcome};

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
    /// The version of the catalog that decided the request.
    pub catalog_version: Option<Arc<str>>,
    pub agent_id: Option<Arc<str>>,
    pub role: Option<Arc<str>>,
    /// The tool name (or URI) the caller asked for, as a bounded excerpt
    /// ([`excerpt`]).
    pub tool: Option<Arc<str>>,
    /// The catalog's public name of what was asked for, when the catalog
    /// knows it: the metrics' bounded label (never stored).
    pub label: Option<Arc<str>>,
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
    /// Every request to an upstream this one made or tried: one, or each
    /// attempt of a retried call, or each leg of a fan-out.
    pub legs: Vec<LegRecord>,
    /// The virtual endpoint the request came through, if any.
    pub endpoint: Option<Arc<str>>,
    /// The built-in tool a call came through (`call_tool`), if any.
    pub via: Option<&'static str>,
    /// What the detectors found in the arguments and the result: kinds and
    /// paths, never what matched.
    pub findings: Vec<Finding>,
    /// What the result policy had replaced in the result (paths and kinds).
    pub redactions: Vec<Redaction>,
    /// The address the request came from.
    pub client: Option<std::net::IpAddr>,
    /// For a summary of refusals from one address: how many it stands for.
    pub aggregated: Option<u64>,
}

/// One request to an upstream on behalf of a request: how it went.
#[derive(Debug, Clone)]
pub struct LegRecord {
    /// The server's logical name.
    pub server: Arc<str>,
    pub upstream_tool: Arc<str>,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub outcome: Outcome,
    pub latency_ms: f64,
    /// The request to the upstream as a child span of this request's, if
    /// it left.
    pub upstream: Option<UpstreamSpan>,
    /// Why a fan-out's leg was refused before it left.
    pub reasons: Vec<String>,
}

impl LegRecord {
    pub fn to_json(&self) -> Value {
        let mut leg = json!({
            "server": &*self.server,
            "upstream_tool": &*self.upstream_tool,
            "attempt": self.attempt,
            "outcome": self.outcome.as_str(),
            "latency_ms": self.latency_ms,
            "span_id": self.upstream.map(|u| hex::encode(u.span_id)),
            "started": self
                .upstream
                .map(|u| humantime::format_rfc3339_millis(u.started).to_string()),
        });
        if !self.reasons.is_empty() {
            leg["reasons"] = json!(self.reasons);
        }
        leg
    }
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
            catalog_version: None,
            agent_id: None,
            role: None,
            tool: None,
            label: None,
            upstream_tool: None,
            server: None,
            policy: None,
            reasons: Vec::new(),
            arguments_sha256: None,
            arguments: None,
            outcome: Outcome::Cancelled,
            latency_ms: 0.0,
            policy_seconds: None,
            legs: Vec::new(),
            endpoint: None,
            via: None,
            client: None,
            aggregated: None,
            findings: Vec::new(),
            redactions: Vec::new(),
        }
    }

    /// The request to the upstream whose answer this one gave (the last
    /// that left).
    pub fn upstream(&self) -> Option<UpstreamSpan> {
        self.legs.iter().rev().find_map(|leg| leg.upstream)
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

    /// Record the arguments' digest (SHA-256 of their canonical JSON).
    pub fn set_arguments_digest(&mut self, arguments: &JsonObject) {
        // serde_json's map is ordered by key: the serialization is canonical.
        let bytes = serde_json::to_vec(arguments).unwrap_or_default();
        self.arguments_sha256 = Some(hex::encode(Sha256::digest(&bytes)));
    }

    /// Keep the arguments themselves, with the fields `redact` names
    /// replaced, and every secret the detectors see in them too.
    pub fn keep_arguments(&mut self, arguments: &JsonObject, redact: &[Arc<str>]) {
        let mut value = Value::Object(arguments.clone());
        redact_fields(&mut value, redact);
        crate::guardrails::detect::redact_secrets(&mut value);
        self.arguments = Some(value);
    }

    /// The record as stored and queried.
    pub fn to_json(&self) -> Value {
        let text = |v: &Option<Arc<str>>| v.as_deref().unwrap_or("").to_string();
        let mut record = json!({
            "id": self.id,
            "time": humantime::format_rfc3339_millis(self.time).to_string(),
            "trace_id": self.trace.trace_id_hex(),
            "span_id": hex::encode(self.trace.span_id),
            "upstream_span_id": self.upstream().map(|u| hex::encode(u.span_id)),
            "action": self.action.as_str(),
            "front_door": self.front_door.as_str(),
            "agent_id": text(&self.agent_id),
            "role": text(&self.role),
            "tool": text(&self.tool),
            "upstream_tool": text(&self.upstream_tool),
            "server": text(&self.server),
            "environment": &*self.environment,
            "catalog_version": self.catalog_version.as_deref(),
            "policy": self.policy.unwrap_or(""),
            "reasons": self.reasons,
            "outcome": self.outcome.as_str(),
            "latency_ms": self.latency_ms,
            "arguments_sha256": self.arguments_sha256,
            "arguments": self.arguments,
            "legs": self.legs.iter().map(LegRecord::to_json).collect::<Vec<_>>(),
            "endpoint": self.endpoint.as_deref(),
            "via": self.via,
        });
        if !self.findings.is_empty() {
            record["findings"] = json!(self.findings);
        }
        if !self.redactions.is_empty() {
            record["redactions"] = json!(self.redactions);
        }
        if let Some(client) = self.client {
            record["client"] = json!(client.to_string());
        }
        if let Some(count) = self.aggregated {
            record["aggregated"] = json!(count);
        }
        record
    }
}

/// Longest excerpt of a caller-chosen name kept in a record, in characters.
pub const EXCERPT_CHARS: usize = 200;

/// A name the caller chose, fit for the audit trail: at most
/// [`EXCERPT_CHARS`] characters (then `…`), control characters escaped
/// (`\u{0}`), so a hostile name can neither grow the store nor forge lines.
pub fn excerpt(text: &str) -> Arc<str> {
    let clean = text.len() <= EXCERPT_CHARS && !text.chars().any(char::is_control);
    if clean {
        return Arc::from(text);
    }
    let mut out = String::with_capacity(EXCERPT_CHARS + 8);
    for (i, c) in text.chars().enumerate() {
        if i == EXCERPT_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    Arc::from(out)
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
    fn excerpts_are_bounded_and_escaped() {
        assert_eq!(&*excerpt("read_positions"), "read_positions");
        let long = "x".repeat(1_000_000);
        let cut = excerpt(&long);
        assert_eq!(cut.chars().count(), EXCERPT_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(&*excerpt("a\0b\nc"), "a\\u{0}b\\u{a}c");
    }

    #[test]
    fn an_intent_and_its_outcome_collapse_to_the_outcome() {
        let stored = |id: &str, outcome: &str| StoredRecord {
            id: id.into(),
            time_ms: 0,
            trace_id: String::new(),
            agent_id: String::new(),
            tool: String::new(),
            outcome: outcome.into(),
            json: String::new(),
        };
        let batch = [
            stored("a", "unfinished"),
            stored("b", "ok"),
            stored("a", "ok"),
        ];
        let latest: Vec<_> = StoredRecord::latest_per_id(&batch)
            .iter()
            .map(|r| (r.id.as_str(), r.outcome.as_str()))
            .collect();
        assert_eq!(latest, [("a", "ok"), ("b", "ok")]);
    }

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
        record.set_arguments_digest(arguments);
        assert!(record.arguments.is_none());
        let digest = record.arguments_sha256.clone().unwrap();
        assert_eq!(digest.len(), 64);
        let redact: Vec<Arc<str>> = vec!["password".into()];
        record.keep_arguments(arguments, &redact);
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

impl StoredRecord {
    /// `batch` with only the last record of each id, in order of first
    /// appearance (an intent followed by its outcome becomes the outcome).
    pub fn latest_per_id(batch: &[StoredRecord]) -> Vec<&StoredRecord> {
        let mut position = std::collections::HashMap::with_capacity(batch.len());
        let mut latest: Vec<&StoredRecord> = Vec::with_capacity(batch.len());
        for record in batch {
            match position.entry(record.id.as_str()) {
                std::collections::hash_map::Entry::Occupied(at) => latest[*at.get()] = record,
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(latest.len());
                    latest.push(record);
                }
            }
        }
        latest
    }
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
