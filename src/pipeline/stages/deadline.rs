//! deadline: when the request's time is up. Each attempt may take the
//! tool's own `timeout`, else its server's (a fan-out's longest); the
//! request as a whole that times the attempts the tool may make (one, but
//! for an idempotent tool), counted from when the request arrived. A
//! caller's `X-Request-Timeout` may shorten it, never lengthen it. Every
//! attempt and every leg of the request shares it: a retry goes only if it
//! can still start in time, a queue for a busy server gives up when it
//! passes.

use futures::future::BoxFuture;

use crate::pipeline::exchange::RequestedTimeout;
use crate::pipeline::stage::Stage;
use crate::pipeline::{Exchange, PipelineError};
use crate::vocabulary::Target;

pub struct Deadline;

impl Stage for Deadline {
    fn name(&self) -> &'static str {
        "deadline"
    }

    fn request<'a, 'e>(
        &'a self,
        exchange: &'a mut Exchange<'e>,
    ) -> BoxFuture<'a, Result<(), PipelineError>> {
        Box::pin(std::future::ready(deadline(exchange)))
    }
}

fn deadline(exchange: &mut Exchange<'_>) -> Result<(), PipelineError> {
    let Some(to) = &exchange.authorized else {
        return Ok(());
    };
    let catalog = &exchange.snapshot.catalog;
    let route = match exchange.target {
        Some(Target::Tool(name)) => catalog.tool(name),
        _ => None,
    };
    let timeout = |server| catalog.server(server).timeout;
    let longest = match route {
        Some(route) => route.legs.iter().map(|leg| timeout(leg.server)).max(),
        None => Some(timeout(to.server)),
    };
    let longest = longest.unwrap_or_default();
    let attempts = route
        .and_then(|route| route.retry)
        .map_or(1, |retry| retry.backoff.attempts());
    let mut limit = to.timeout.unwrap_or(longest).saturating_mul(attempts);
    match exchange.ctx.requested_timeout {
        Some(RequestedTimeout::Within(asked)) => limit = limit.min(asked),
        Some(RequestedTimeout::Malformed) => {
            return Err(PipelineError::InvalidRequest(
                "X-Request-Timeout must be a duration above zero: seconds (`2.5`) or with a unit (`2500ms`, `3s`)".into(),
            ));
        }
        None => {}
    }
    exchange.deadline = Some(exchange.ctx.started + limit);
    Ok(())
}
