//! The one error type of the pipeline. Front doors map it to their wire
//! format in one place each (HTTP status in `api::error`), so REST and MCP
//! can never disagree. No variant carries upstream text, a URL, a command or
//! a credential.

use crate::audit::AuditError;
use crate::guardrails::arguments::InvalidArguments;
use crate::identity::IdentityError;
use crate::policy::NotPermitted;
use crate::router::RateLimited;
use crate::upstream::UpstreamError;
use crate::vocabulary::Outcome;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PipelineError {
    #[error("the request is malformed: {0}")]
    InvalidRequest(String),
    #[error("the request body exceeds the limit of {0} bytes")]
    PayloadTooLarge(usize),
    /// The request's head alone is refused (an ambiguous authority), before
    /// anyone is authenticated.
    #[error("the request is malformed: {0}")]
    MalformedHead(&'static str),
    #[error("the request body must be `application/json`")]
    UnsupportedMediaType,
    #[error("authentication required: {0}")]
    Unauthenticated(#[from] IdentityError),
    /// The request body names another agent, role or environment than the
    /// verified identity and the deployment.
    #[error("the request's `{0}` does not match the authenticated caller or deployment")]
    Impersonation(&'static str),
    #[error("the {} does not exist or is not permitted for this caller", .0.what)]
    Forbidden(#[from] NotPermitted),
    /// The policy denied the request; its reasons are the policy author's
    /// words, meant for the caller.
    #[error("denied by policy{}", reasons_text(.0))]
    PolicyDenied(Vec<String>),
    /// The audit trail cannot be written (or did not answer in time) and
    /// the deployment fails closed.
    #[error("{0}; the request is refused")]
    AuditUnavailable(AuditError),
    /// The server's credential provider could not produce a credential.
    #[error("no credential for the upstream server could be obtained")]
    CredentialUnavailable,
    #[error("{0}")]
    Upstream(#[from] UpstreamError),
    /// An MCP session was refused: the agent, or the control plane, has as
    /// many open as it may.
    #[error("too many open MCP sessions ({0}); close one (DELETE /mcp) or let one idle out")]
    TooManySessions(&'static str),
    /// An agent has as many MCP streams open (`GET /mcp`, or
    /// `subscriptions/listen`) as it may.
    #[error("too many open MCP streams of this agent; close one first")]
    TooManyStreams,
    /// The server's circuit breaker is open: it is not called for now.
    #[error("the tool is temporarily unavailable; retry later")]
    CircuitOpen,
    /// The server has as many calls at it, and waiting, as it may.
    #[error("the tool's server is busy; retry shortly")]
    UpstreamBusy,
    /// A rate limit of the catalog refused the call.
    #[error("{0}")]
    RateLimited(#[from] RateLimited),
    /// The arguments do not fit the tool's input schema.
    #[error("{0}")]
    InvalidArguments(#[from] InvalidArguments),
    /// The tool's result is larger than the catalog lets through.
    #[error("the tool's result exceeds the limit of {0} bytes")]
    ResultTooLarge(usize),
    /// The result policy withheld the result; its reasons are the policy
    /// author's words.
    #[error("the result was withheld by policy{}", reasons_text(.0))]
    ResultDenied(Vec<String>),
    /// The tool's definition is not as pinned: withheld until approved.
    #[error(
        "the tool is quarantined: its definition changed since it was reviewed, and an operator must approve it"
    )]
    ToolQuarantined,
}

impl PipelineError {
    /// Whether the refusal stands whoever sent the request: judged on its
    /// head (its size, its authority) or on its credential, so it comes
    /// before any 401.
    pub fn precedes_authentication(&self) -> bool {
        matches!(
            self,
            Self::Unauthenticated(_) | Self::PayloadTooLarge(_) | Self::MalformedHead(_)
        )
    }

    /// Stable machine-readable code, shared by every front door.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) | Self::MalformedHead(_) => "invalid_request",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Unauthenticated(_) => "unauthenticated",
            Self::Impersonation(_) => "impersonation",
            Self::Forbidden(_) => "forbidden",
            Self::PolicyDenied(_) => "policy_denied",
            Self::CredentialUnavailable => "credential_unavailable",
            Self::AuditUnavailable(_) => "audit_unavailable",
            Self::Upstream(UpstreamError::Timeout) => "upstream_timeout",
            Self::Upstream(UpstreamError::Rejected { .. }) => "upstream_rejected",
            Self::Upstream(_) => "upstream_unavailable",
            Self::TooManySessions(_) => "too_many_sessions",
            Self::TooManyStreams => "too_many_streams",
            Self::RateLimited(_) => "rate_limited",
            Self::CircuitOpen => "upstream_circuit_open",
            Self::UpstreamBusy => "upstream_busy",
            Self::InvalidArguments(_) => "invalid_arguments",
            Self::ResultTooLarge(_) => "result_too_large",
            Self::ResultDenied(_) => "result_denied",
            Self::ToolQuarantined => "tool_quarantined",
        }
    }

    /// The audit outcome of a request that ended with this error.
    pub fn outcome(&self) -> Outcome {
        match self {
            Self::InvalidRequest(_)
            | Self::MalformedHead(_)
            | Self::PayloadTooLarge(_)
            | Self::UnsupportedMediaType => Outcome::BadRequest,
            Self::Unauthenticated(_) => Outcome::Unauthenticated,
            Self::Impersonation(_) => Outcome::Impersonation,
            Self::Forbidden(refusal) if refusal.by_policy => Outcome::DeniedPolicy,
            Self::Forbidden(_) => Outcome::DeniedRole,
            Self::PolicyDenied(_) => Outcome::DeniedPolicy,
            Self::CredentialUnavailable => Outcome::CredentialUnavailable,
            Self::AuditUnavailable(_) => Outcome::AuditUnavailable,
            Self::Upstream(UpstreamError::Timeout) => Outcome::Timeout,
            Self::Upstream(_) => Outcome::UpstreamError,
            Self::TooManySessions(_) | Self::TooManyStreams => Outcome::SessionLimit,
            Self::RateLimited(_) => Outcome::RateLimited,
            Self::CircuitOpen => Outcome::CircuitOpen,
            Self::UpstreamBusy => Outcome::UpstreamBusy,
            Self::InvalidArguments(_) => Outcome::InvalidArguments,
            Self::ResultTooLarge(_) => Outcome::ResultTooLarge,
            Self::ResultDenied(_) => Outcome::ResultDenied,
            Self::ToolQuarantined => Outcome::Quarantined,
        }
    }
}

fn reasons_text(reasons: &[String]) -> String {
    if reasons.is_empty() {
        String::new()
    } else {
        format!(": {}", reasons.join("; "))
    }
}
