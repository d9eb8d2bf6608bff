//! record: every request leaves exactly one audit record, durable before
//! the answer leaves.
//!
//! On the way in the record is opened (what was asked, by which door,
//! under which catalog version), and a request is refused at once while
//! records cannot be made durable (fail-closed). On the way back the
//! outcome goes in and the stage waits until the record is durable. (The
//! intent record, written just before the upstream is contacted, is the
//! call stage's: see [`super::call`].)

use futures::future::BoxFuture;
use rmcp::model::ServerResult;

use crate::audit::record::excerpt;
use crate::audit::{AuditError, AuditGuard, AuditLog};
use crate::identity::IdentityError;
use crate::live::Snapshot;
use crate::pipeline::exchange::Recording;
use crate::pipeline::stage::{Answer, Stage};
use crate::pipeline::{CallContext, Exchange, PipelineError};
use crate::vocabulary::{Action, Outcome};

pub struct Record {
    log: AuditLog,
}

impl Record {
    pub fn new(log: AuditLog) -> Self {
        Self { log }
    }
}

impl Stage for Record {
    fn name(&self) -> &'static str {
        "record"
    }

    fn request<'a, 'e>(
        &'a self,
        exchange: &'a mut Exchange<'e>,
    ) -> BoxFuture<'a, Result<(), PipelineError>> {
        let mut audit = open(&self.log, exchange.ctx, &exchange.snapshot, exchange.action);
        let record = audit.record_mut();
        // What the caller sent, as a bounded excerpt: it may be anything.
        record.tool = exchange.target.map(|target| excerpt(target.name()));
        if let Some(arguments) = &exchange.arguments {
            record.set_arguments_digest(arguments);
        }
        exchange.audit = Recording::Request(audit);
        let accepting = self.log.accepting();
        Box::pin(async move {
            match accepting {
                true => Ok(()),
                false => Err(PipelineError::AuditUnavailable(AuditError::Unavailable)),
            }
        })
    }

    fn response<'a, 'e>(
        &'a self,
        exchange: &'a mut Exchange<'e>,
        answer: &'a mut Answer,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let Recording::Request(mut audit) =
                std::mem::replace(&mut exchange.audit, Recording::Off)
            else {
                return;
            };
            audit.wait_until(exchange.deadline);
            let outcome = match &answer {
                Ok(result) => result.outcome(),
                Err(error) => error.outcome(),
            };
            let refused = PipelineError::AuditUnavailable(AuditError::Unavailable);
            let done = std::mem::replace(answer, Err(refused));
            *answer = if exchange.contacted {
                settle_contacted(audit, outcome, done).await
            } else {
                settle(audit, outcome, done).await
            };
        })
    }
}

/// Open the record of a request under the catalog version deciding it.
pub fn open(log: &AuditLog, ctx: &CallContext, snapshot: &Snapshot, action: Action) -> AuditGuard {
    let mut audit = AuditGuard::open(
        log,
        ctx.trace,
        action,
        ctx.front_door,
        snapshot.catalog.environment.clone(),
        ctx.started,
    );
    let record = audit.record_mut();
    record.catalog_version = Some(snapshot.version.clone());
    record.endpoint = ctx.endpoint.clone();
    record.via = ctx.via;
    record.client = ctx.client;
    audit
}

/// The audit outcome of an upstream's answer.
pub trait Classify {
    fn outcome(&self) -> Outcome;
}

impl Classify for ServerResult {
    fn outcome(&self) -> Outcome {
        match self {
            ServerResult::CallToolResult(result) if result.is_error == Some(true) => {
                Outcome::ToolError
            }
            _ => Outcome::Ok,
        }
    }
}

/// Finish the request's audit record and wait until it is durable. If it
/// cannot be made durable (fail-closed), the request fails with 503 instead
/// of `result`: no answer leaves without its record.
pub async fn settle<T>(
    mut audit: AuditGuard,
    outcome: Outcome,
    result: Result<T, PipelineError>,
) -> Result<T, PipelineError> {
    if let Err(error) = &result {
        explain(&mut audit, error);
    }
    match audit.finish(outcome).await {
        Ok(()) => result,
        Err(failed) => Err(PipelineError::AuditUnavailable(failed)),
    }
}

/// Put in the record why a credential was refused (the agent is told only
/// that it was not accepted).
pub fn explain(audit: &mut AuditGuard, error: &PipelineError) {
    if let PipelineError::Unauthenticated(IdentityError::Invalid(refusal)) = error {
        audit.record_mut().reasons = vec![refusal.to_string()];
    }
}

/// Finish the record of a request that reached its upstream (its intent is
/// durable). The upstream has acted, so its answer goes back even if the
/// outcome cannot be recorded: a refusal would be untrue, and a client
/// that retries would act twice. The intent record stands, `unfinished`.
async fn settle_contacted<T>(
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
