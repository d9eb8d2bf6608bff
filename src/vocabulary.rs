//! The request's words, shared by every floor (audit, policy, telemetry,
//! the pipeline, the front doors): what was asked for, through which door,
//! about what, and how it ended. A leaf: it imports nothing of ours.

use serde::Serialize;

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
    /// A read of the audit trail itself (`/admin/audit`).
    AdminQuery,
    /// A follow-up on a task a tool call started (`tasks/get`,
    /// `tasks/update`, `tasks/cancel`).
    Task,
    /// A tool or prompt quarantined, or released, by the lock of pinned
    /// definitions (no caller: the control plane's own event).
    Quarantine,
    /// An admin approved a quarantined tool or prompt (the console).
    Approve,
    /// A sign-in to the operator's console, accepted or refused.
    SignIn,
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
            Self::AdminQuery => "admin_query",
            Self::Task => "task",
            Self::Quarantine => "quarantine",
            Self::Approve => "approve",
            Self::SignIn => "sign_in",
        }
    }
}

/// Which front door the request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FrontDoor {
    Rest,
    Mcp,
    /// The control plane's own events (a quarantine).
    Internal,
}

impl FrontDoor {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rest => "rest",
            Self::Mcp => "mcp",
            Self::Internal => "internal",
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
    /// Refused because the audit trail could not be written (fail-closed).
    AuditUnavailable,
    /// The caller went away before an answer.
    Cancelled,
    /// An MCP session was refused: the session limits were reached.
    SessionLimit,
    /// A rate limit refused the call.
    RateLimited,
    /// The server's circuit breaker was open: the call was refused.
    CircuitOpen,
    /// The server's concurrency limit and queue were full.
    UpstreamBusy,
    /// The arguments did not fit the tool's input schema.
    InvalidArguments,
    /// The tool's result was larger than the catalog lets through.
    ResultTooLarge,
    /// The result policy withheld the result.
    ResultDenied,
    /// The tool's definition was not as pinned.
    Quarantined,
    /// The intent of a call about to reach its upstream; the call's outcome
    /// replaces it. One left standing means the process stopped in between.
    Unfinished,
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
            Self::AuditUnavailable => "audit_unavailable",
            Self::Cancelled => "cancelled",
            Self::SessionLimit => "session_limit",
            Self::RateLimited => "rate_limited",
            Self::CircuitOpen => "circuit_open",
            Self::UpstreamBusy => "upstream_busy",
            Self::InvalidArguments => "invalid_arguments",
            Self::ResultTooLarge => "result_too_large",
            Self::ResultDenied => "result_denied",
            Self::Quarantined => "quarantined",
            Self::Unfinished => "unfinished",
        }
    }
}

/// What a request wants to reach.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// A public tool name.
    Tool(&'a str),
    /// A public prompt name.
    Prompt(&'a str),
    /// A resource URI.
    Resource(&'a str),
}

impl<'a> Target<'a> {
    /// What kind of thing it is, in words for a refusal.
    pub fn noun(&self) -> &'static str {
        match self {
            Self::Tool(_) => "tool",
            Self::Prompt(_) => "prompt",
            Self::Resource(_) => "resource",
        }
    }

    /// The name or URI the caller asked for.
    pub fn name(&self) -> &'a str {
        match self {
            Self::Tool(name) | Self::Prompt(name) | Self::Resource(name) => name,
        }
    }
}
