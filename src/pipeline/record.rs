//! How a request's end is recorded: the outcome of an answer, the policy's
//! decision, and the wait until the record is durable.

use rmcp::model::{CallToolResult, ServerResult};

use super::PipelineError;
use crate::audit::AuditGuard;
use crate::policy::{Decision, NotPermitted};
use crate::vocabulary::Outcome;

/// The audit outcome of an upstream's answer.
pub trait Classify {
    fn outcome(&self) -> Outcome {
        Outcome::Ok
    }
}

impl Classify for CallToolResult {
    fn outcome(&self) -> Outcome {
        if self.is_error == Some(true) {
            Outcome::ToolError
        } else {
            Outcome::Ok
        }
    }
}

impl Classify for ServerResult {}

/// Finish the request's audit record and wait until it is durable. If it
/// cannot be made durable (fail-closed), the request fails with 503 instead
/// of `result`: no answer leaves without its record.
pub(super) async fn settle<T>(
    audit: AuditGuard,
    outcome: Outcome,
    result: Result<T, PipelineError>,
) -> Result<T, PipelineError> {
    match audit.finish(outcome).await {
        Ok(()) => result,
        Err(_) => Err(PipelineError::AuditUnavailable),
    }
}

/// Finish the record of a request that reached its upstream (its intent is
/// durable). The upstream has acted, so its answer goes back even if the
/// outcome cannot be recorded: a refusal would be untrue, and a client
/// that retries would act twice. The intent record stands, `unfinished`.
pub(super) async fn settle_contacted<T>(
    audit: AuditGuard,
    outcome: Outcome,
    result: Result<T, PipelineError>,
) -> Result<T, PipelineError> {
    let trace_id = audit.trace_id();
    if audit.finish(outcome).await.is_err() {
        tracing::error!(
            %trace_id,
            outcome = outcome.as_str(),
            "the outcome of a call that reached its upstream could not be recorded; its intent record stands as unfinished"
        );
    }
    result
}

/// Put the policy's decision into the audit record; a refusal becomes the
/// request's error.
pub(super) fn record_decision(
    audit: &mut AuditGuard,
    decision: Decision,
) -> Result<(), PipelineError> {
    let record = audit.record_mut();
    match decision {
        Decision::Allow => {
            record.policy = Some("allow");
            Ok(())
        }
        Decision::Hidden => {
            record.policy = Some("hidden");
            Err(NotPermitted { by_policy: true }.into())
        }
        Decision::Deny { reasons, cause } => {
            record.policy = Some(cause.as_str());
            record.reasons = reasons.clone();
            Err(PipelineError::PolicyDenied(reasons))
        }
    }
}

/// Refuse a request because records cannot be made durable (fail-closed),
/// recording the refusal if that works again.
pub(super) async fn refuse_unaudited<T>(audit: AuditGuard) -> Result<T, PipelineError> {
    settle(
        audit,
        Outcome::AuditUnavailable,
        Err(PipelineError::AuditUnavailable),
    )
    .await
}
