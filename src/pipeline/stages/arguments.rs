//! arguments: a call's arguments checked against the input schema its
//! server declares for the tool ([`crate::guardrails::arguments`]), on each
//! leg before anything else (no breaker count, no slot, no credential):
//! arguments that do not fit are refused with 400 / JSON-RPC -32602
//! `invalid_arguments` naming the failing path, recorded, and the server
//! is never contacted. Skipped for a server with `validate_arguments:
//! false`.

use futures::future::BoxFuture;

use crate::pipeline::stage::Stage;
use crate::pipeline::{Exchange, PipelineError};
use crate::vocabulary::Action;

pub struct Arguments;

impl Stage for Arguments {
    fn name(&self) -> &'static str {
        "arguments"
    }

    fn request<'a, 'e>(
        &'a self,
        exchange: &'a mut Exchange<'e>,
    ) -> BoxFuture<'a, Result<(), PipelineError>> {
        Box::pin(std::future::ready(check(exchange)))
    }
}

fn check(exchange: &mut Exchange<'_>) -> Result<(), PipelineError> {
    let (Action::Call, Some(to)) = (exchange.action, &exchange.authorized) else {
        return Ok(());
    };
    if !exchange
        .snapshot
        .catalog
        .guards(to.server)
        .validate_arguments
    {
        return Ok(());
    }
    let offered = exchange.snapshot.upstreams.offered(to.server);
    let checked = offered
        .schemas
        .check(&to.upstream_name, &mut exchange.arguments);
    checked.map_err(|invalid| {
        exchange.record().reasons = vec![invalid.to_string()];
        invalid.into()
    })
}
