//! pins: a tool or prompt whose definition its server now serves
//! differently from the lock of pinned definitions, or that the lock does
//! not know ([`crate::discovery::quarantine`]), is quarantined: under
//! `pinning: enforce` its calls are refused with 403 / JSON-RPC -32020
//! `tool_quarantined` (recorded, the server never contacted) until an
//! operator approves it (`pins approve`); under `warn` the call goes on,
//! logged and recorded.

use futures::future::BoxFuture;

use crate::discovery::quarantine;
use crate::guardrails::pins::{Pinned, PinningMode, Verdict};
use crate::pipeline::stage::Stage;
use crate::pipeline::{Exchange, PipelineError};
use crate::vocabulary::{Action, Target};

pub struct Pins;

impl Stage for Pins {
    fn name(&self) -> &'static str {
        "pins"
    }

    fn request<'a, 'e>(
        &'a self,
        exchange: &'a mut Exchange<'e>,
    ) -> BoxFuture<'a, Result<(), PipelineError>> {
        Box::pin(std::future::ready(check(exchange)))
    }
}

fn check(exchange: &mut Exchange<'_>) -> Result<(), PipelineError> {
    let snapshot = exchange.snapshot.clone();
    let catalog = &snapshot.catalog;
    if catalog.pinning().is_none() || exchange.authorized.is_none() {
        return Ok(());
    }
    let (kind, route) = match (exchange.action, exchange.target) {
        (Action::Call, Some(Target::Tool(name))) => (Pinned::Tool, catalog.tool(name)),
        (Action::GetPrompt, Some(Target::Prompt(name))) => (Pinned::Prompt, catalog.prompt(name)),
        _ => return Ok(()),
    };
    let Some(route) = route else {
        return Ok(());
    };
    let Some((mode, verdict, server)) =
        quarantine::verdict(catalog, &snapshot.upstreams, kind, route)
    else {
        return Ok(());
    };
    let what = match verdict {
        Verdict::Unknown => "is not in the lock of pinned definitions",
        _ => "is served differently from its pinned definition",
    };
    exchange.record().reasons = vec![format!("`{}` on `{server}` {what}", route.public_name)];
    match mode {
        PinningMode::Enforce => Err(PipelineError::ToolQuarantined),
        _ => {
            tracing::warn!(name = %route.public_name, %server, ?verdict, "serving a definition that is not as pinned (pinning: warn)");
            Ok(())
        }
    }
}
