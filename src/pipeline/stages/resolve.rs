//! resolve: where the target goes, as far as the caller's view reaches.
//!
//! A resource URI is put in normal form first (so `..` and percent tricks
//! cannot walk out of a granted prefix). The caller's role must grant the
//! target (an unknown target gets the same refusal as a forbidden one);
//! the route then names the server and the upstream's own name. The audit
//! record learns where the request goes or would have gone (never the
//! agent), the metrics the catalog's bounded name for it, and, where the
//! catalog opts the tool in, the arguments of an authenticated caller.

use futures::future::BoxFuture;

use crate::pipeline::exchange::Recording;
use crate::pipeline::stage::Stage;
use crate::pipeline::{Exchange, PipelineError};
use crate::policy;
use crate::uri;
use crate::vocabulary::Target;

pub struct Resolve;

impl Stage for Resolve {
    fn name(&self) -> &'static str {
        "resolve"
    }

    fn request<'a, 'e>(
        &'a self,
        exchange: &'a mut Exchange<'e>,
    ) -> BoxFuture<'a, Result<(), PipelineError>> {
        Box::pin(std::future::ready(resolve(exchange)))
    }
}

fn resolve(exchange: &mut Exchange<'_>) -> Result<(), PipelineError> {
    let Some(target) = exchange.target else {
        return Ok(());
    };
    let snapshot = exchange.snapshot.clone();
    let catalog = &snapshot.catalog;
    if let (Target::Tool(name), Some(arguments), Recording::Request(audit)) =
        (target, &exchange.arguments, &mut exchange.audit)
        && let Some(keep) = catalog
            .tool(name)
            .and_then(|r| r.audit_arguments.as_deref())
    {
        audit.record_mut().keep_arguments(arguments, keep);
    }
    if let Target::Resource(uri) = target {
        let normal =
            uri::normalize(uri).map_err(|e| PipelineError::InvalidRequest(e.to_string()))?;
        exchange.normalized = Some(normal);
    }
    let target = exchange.target().expect("a target is set");
    // Looked up once when allowed; a second time only when refused.
    let endpoint = exchange.ctx.endpoint.as_deref();
    let authorized = policy::authorize(catalog, exchange.caller(), endpoint, target);
    let located = match &authorized {
        Ok(to) => Some((to.server, to.name.clone())),
        Err(_) => policy::locate(catalog, target).map(|at| (at.server, at.name)),
    };
    let record = exchange.record();
    record.server = located
        .as_ref()
        .map(|(server, _)| catalog.server(*server).name.clone());
    record.label = located.map(|(_, name)| name);
    let authorized = authorized?;
    record.upstream_tool = Some(authorized.upstream_name.clone());
    exchange.authorized = Some(authorized);
    Ok(())
}
