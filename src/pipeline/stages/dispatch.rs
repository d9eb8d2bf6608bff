//! dispatch: the innermost step of the request's stages, where the
//! request leaves for its server, or its servers, through the leg stages
//! (circuit, concurrency, ..., credential, and the call itself).
//!
//! - One server: the leg stages run once, or, for a tool the catalog calls
//!   idempotent, again after a transient failure (a time-out, a lost or
//!   absent connection), with a jittered backoff, within the request's
//!   deadline ([`crate::router::retry`]). A tool that is not idempotent is
//!   never sent twice: its server may have acted.
//! - A fan-out: one leg per server, all at once under the one deadline,
//!   each with its own breaker, slot and minted credential; their answers
//!   merged ([`crate::router::fan_out`]). The policy decided once, before.
//!
//! Each request that left (or was refused on its way) is an entry of the
//! audit record's `legs`: server, attempt, outcome and latency.

use std::time::Instant;

use rmcp::model::ServerResult;

use super::call;
use crate::audit::record::LegRecord;
use crate::catalog::{Leg, Retry, Routing};
use crate::pipeline::stage::{self, Answer, Stage};
use crate::pipeline::{Classify, Exchange, Operation, PipelineError};
use crate::router::fan_out::{self, FanOutMode, LegAnswer};
use crate::trace_context::TraceContext;
use crate::upstream::UpstreamError;
use crate::vocabulary::{Action, Target};

/// Send `operation` down `legs` (the leg stages) as the route asks.
pub async fn dispatch(
    legs: &[Box<dyn Stage>],
    exchange: &mut Exchange<'_>,
    operation: Operation,
) -> Answer {
    let snapshot = exchange.snapshot.clone();
    let route = match (exchange.action, exchange.target) {
        (Action::Call, Some(Target::Tool(name))) => snapshot.catalog.tool(name),
        _ => None,
    };
    let retry = route.and_then(|route| route.retry);
    match route.map(|route| (&route.routing, &route.legs)) {
        Some((Routing::FanOut(mode), servers)) => {
            fan_out(legs, exchange, servers, *mode, retry, operation).await
        }
        _ => attempts(legs, exchange, retry, operation).await,
    }
}

/// The leg stages on `exchange`, as often as its tool's retry settings
/// allow and its answers call for.
async fn attempts(
    legs: &[Box<dyn Stage>],
    exchange: &mut Exchange<'_>,
    retry: Option<Retry>,
    operation: Operation,
) -> Answer {
    let backoff = retry.filter(|retry| may_retry(exchange, retry));
    let (Some(backoff), Operation::CallTool(sinks)) = (backoff, &operation) else {
        return once(legs, exchange, operation, 1).await;
    };
    let (sinks, arguments) = (sinks.clone(), exchange.arguments.clone());
    // The deadline stage set it for every request with a target; without
    // one, no retry could be bounded.
    let Some(deadline) = exchange.deadline else {
        return once(legs, exchange, operation, 1).await;
    };
    let mut operation = operation;
    let mut attempt = 1;
    loop {
        let answer = once(legs, exchange, operation, attempt).await;
        let wait = match &answer {
            Err(error) if transient(error) => backoff.backoff.next(attempt, deadline),
            _ => None,
        };
        let Some(wait) = wait else {
            return answer;
        };
        tracing::debug!(attempt, ?wait, "an idempotent call failed; trying again");
        tokio::time::sleep(wait).await;
        attempt += 1;
        exchange.arguments = arguments.clone();
        exchange.upstream_span = TraceContext::child_span_id();
        operation = Operation::CallTool(sinks.clone());
    }
}

/// Whether this call may be sent again after a transient failure: a
/// first call (not the answer to an `input_required`, whose state the
/// server may have used), of a tool whose settings or, where the catalog
/// defers to them, whose server's annotations say it is idempotent.
fn may_retry(exchange: &Exchange<'_>, retry: &Retry) -> bool {
    let continuation = &exchange.continuation;
    if continuation.input_responses.is_some() || continuation.request_state.is_some() {
        return false;
    }
    if !retry.only_if_hinted {
        return true;
    }
    let Some(to) = &exchange.authorized else {
        return false;
    };
    let offered = exchange.snapshot.upstreams.offered(to.server);
    let hinted = (offered.tools.get(&*to.upstream_name))
        .and_then(|tool| tool.annotations.as_ref())
        .and_then(|annotations| annotations.idempotent_hint);
    hinted == Some(true)
}

/// A failure another attempt may cure: the server did not answer in time,
/// or could not be reached. A JSON-RPC error is the server's answer.
fn transient(error: &PipelineError) -> bool {
    matches!(
        error,
        PipelineError::Upstream(UpstreamError::Timeout | UpstreamError::Unavailable)
    )
}

/// One attempt through the leg stages, entered in the audit record.
async fn once(
    legs: &[Box<dyn Stage>],
    exchange: &mut Exchange<'_>,
    operation: Operation,
    attempt: u32,
) -> Answer {
    let started = Instant::now();
    exchange.sent = false;
    exchange.called = None;
    let inner = async move |exchange: &mut Exchange<'_>| call::call(exchange, operation).await;
    let answer = stage::run(legs, exchange, inner).await;
    let (Some(to), Some(server)) = (&exchange.authorized, exchange.server_name()) else {
        return answer;
    };
    let leg = LegRecord {
        server: server.clone(),
        upstream_tool: to.upstream_name.clone(),
        attempt,
        outcome: match &answer {
            Ok(result) => result.outcome(),
            Err(error) => error.outcome(),
        },
        latency_ms: started.elapsed().as_secs_f64() * 1000.0,
        upstream: exchange.called.take(),
        reasons: Vec::new(),
    };
    exchange.record().legs.push(leg);
    answer
}

/// Every leg of a fan-out at once, merged into one answer.
async fn fan_out(
    stages: &[Box<dyn Stage>],
    exchange: &mut Exchange<'_>,
    servers: &[Leg],
    mode: FanOutMode,
    retry: Option<Retry>,
    operation: Operation,
) -> Answer {
    let Operation::CallTool(sinks) = operation else {
        unreachable!("only tool calls fan out");
    };
    let to = exchange.authorized.clone().expect("resolve ran");
    // Nothing reaches an upstream before the request's record does.
    exchange.intent().await?;
    let runs = servers.iter().map(|leg| {
        let mut to = to.clone();
        to.server = leg.server;
        to.upstream_name = leg.upstream_name.clone();
        let mut leg = exchange.leg(to);
        let operation = Operation::CallTool(sinks.clone());
        async move {
            let answer = attempts(stages, &mut leg, retry, operation).await;
            (leg, answer)
        }
    });
    let done = futures::future::join_all(runs).await;
    let mut answers = Vec::with_capacity(done.len());
    for (mut leg, answer) in done {
        exchange.contacted |= leg.contacted;
        let record = leg.record();
        let reasons = std::mem::take(&mut record.reasons);
        let mut entries = std::mem::take(&mut record.legs);
        if let Some(last) = entries.last_mut() {
            last.reasons = reasons;
        }
        exchange.record().legs.extend(entries);
        let server = leg.server_name().expect("a leg has its server").clone();
        answers.push(LegAnswer {
            server,
            answer: answer.and_then(|result| match result {
                ServerResult::CallToolResult(result) => Ok(result),
                // Input requests and tasks are one server's conversation;
                // a merged answer cannot carry them.
                _ => Err(PipelineError::Upstream(UpstreamError::InvalidAnswer)),
            }),
        });
    }
    let merged = fan_out::merge(answers, mode, PipelineError::code)?;
    Ok(ServerResult::CallToolResult(merged))
}
