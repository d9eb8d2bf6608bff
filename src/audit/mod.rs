//! Audit: one record for every discovery and every call, whatever path it took.
//!
//! The pipeline opens an [`AuditGuard`] when a request enters and fills it in
//! as the request passes each stage. The guard emits its record exactly once:
//! when the pipeline finishes it, or, if the request is abandoned midway (the
//! client hung up), when it is dropped. For now a record is one structured log
//! event on the `audit` target (a JSON line with `--log-format json`); the
//! durable store slots in behind [`emit`].

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::telemetry::TraceContext;

/// What was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Discovery,
    Call,
    ReadResource,
    GetPrompt,
    Complete,
    Subscribe,
    Unsubscribe,
    /// An HTTP request to a session-based front door, refused before any
    /// message in it was read.
    Connect,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Discovery => "discovery",
            Self::Call => "call",
            Self::ReadResource => "read_resource",
            Self::GetPrompt => "get_prompt",
            Self::Complete => "complete",
            Self::Subscribe => "subscribe",
            Self::Unsubscribe => "unsubscribe",
            Self::Connect => "connect",
        }
    }
}

/// Which front door the request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FrontDoor {
    Rest,
    Mcp,
}

impl FrontDoor {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rest => "rest",
            Self::Mcp => "mcp",
        }
    }
}

/// How the request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    /// The tool ran and reported an error (`isError: true`).
    ToolError,
    UpstreamError,
    /// No credential for the upstream could be had (token exchange failed).
    CredentialUnavailable,
    Timeout,
    Unauthenticated,
    Impersonation,
    DeniedRole,
    /// The Rego policy did not allow the request.
    DeniedPolicy,
    BadRequest,
    /// The caller went away before an answer.
    Cancelled,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::ToolError => "tool_error",
            Self::UpstreamError => "upstream_error",
            Self::CredentialUnavailable => "credential_unavailable",
            Self::Timeout => "timeout",
            Self::Unauthenticated => "unauthenticated",
            Self::Impersonation => "impersonation",
            Self::DeniedRole => "denied_role",
            Self::DeniedPolicy => "denied_policy",
            Self::BadRequest => "bad_request",
            Self::Cancelled => "cancelled",
        }
    }
}

/// One audit record.
#[derive(Debug, Clone)]
pub struct AuditRecord {
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
    pub outcome: Outcome,
}

/// Emits its record exactly once; see the module docs.
pub struct AuditGuard {
    record: AuditRecord,
    started: Instant,
    emitted: bool,
}

impl AuditGuard {
    pub fn open(
        trace: TraceContext,
        action: Action,
        front_door: FrontDoor,
        environment: Arc<str>,
        started: Instant,
    ) -> Self {
        Self {
            record: AuditRecord {
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
                outcome: Outcome::Cancelled,
            },
            started,
            emitted: false,
        }
    }

    pub fn record_mut(&mut self) -> &mut AuditRecord {
        &mut self.record
    }

    /// Emit the record with its final outcome.
    pub fn finish(mut self, outcome: Outcome) {
        self.record.outcome = outcome;
        self.emit_once();
    }

    fn emit_once(&mut self) {
        if !self.emitted {
            self.emitted = true;
            emit(&self.record, self.started.elapsed().as_secs_f64() * 1000.0);
        }
    }
}

impl Drop for AuditGuard {
    fn drop(&mut self) {
        self.emit_once();
    }
}

fn emit(record: &AuditRecord, latency_ms: f64) {
    let text = |v: &Option<Arc<str>>| v.as_deref().unwrap_or("").to_string();
    tracing::info!(
        target: "audit",
        trace_id = %record.trace,
        action = record.action.as_str(),
        front_door = record.front_door.as_str(),
        agent_id = text(&record.agent_id),
        role = text(&record.role),
        tool = text(&record.tool),
        upstream_tool = text(&record.upstream_tool),
        server = text(&record.server),
        environment = &*record.environment,
        policy = record.policy.unwrap_or(""),
        reasons = record.reasons.join("; "),
        outcome = record.outcome.as_str(),
        latency_ms,
        "audit"
    );
}
