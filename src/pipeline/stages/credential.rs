//! credential: what the upstream gets instead of the agent's own
//! credential: one minted (or exchanged, or configured) for this request,
//! scoped to its one server and its one tool, prompt or resource, with the
//! trace context the upstream continues.

use futures::future::BoxFuture;

use crate::pipeline::stage::Stage;
use crate::pipeline::{Exchange, PipelineError};
use crate::upstream::Outbound;
use crate::vocabulary::Target;

pub struct Credential;

impl Stage for Credential {
    fn name(&self) -> &'static str {
        "credential"
    }

    fn request<'a, 'e>(
        &'a self,
        exchange: &'a mut Exchange<'e>,
    ) -> BoxFuture<'a, Result<(), PipelineError>> {
        Box::pin(async move {
            let (Some(to), Some(target)) = (&exchange.authorized, exchange.target) else {
                return Ok(());
            };
            let scope = match target {
                Target::Tool(_) => to.upstream_name.to_string(),
                Target::Prompt(_) => format!("prompt:{}", to.upstream_name),
                Target::Resource(_) => format!("resource:{}", to.upstream_name),
            };
            let ctx = exchange.ctx;
            let trace_id = ctx.trace.trace_id_hex();
            let snapshot = &exchange.snapshot;
            let credential = snapshot
                .credentials
                .server(to.server)
                .issue(exchange.caller(), &scope, &trace_id)
                .await
                .map_err(|error| {
                    let server = &snapshot.catalog.server(to.server).name;
                    tracing::warn!(%server, %error, "no credential for the upstream call");
                    error
                });
            // Why, for the audit trail: the provider's words, which never
            // hold a secret or a URL.
            let credential = match credential {
                Ok(credential) => credential,
                Err(error) => {
                    exchange.record().reasons = vec![error.to_string()];
                    return Err(PipelineError::CredentialUnavailable);
                }
            };
            exchange.lease = credential.as_ref().and_then(|c| c.lease());
            exchange.outbound = Some(Outbound {
                credential,
                traceparent: Some(ctx.trace.traceparent_for(exchange.upstream_span)),
                tracestate: ctx.tracestate.clone(),
                client_capabilities: ctx.client_capabilities.clone(),
                // A tool's own limit, as resolve found its route.
                timeout: to.timeout,
                deadline: exchange.deadline,
            });
            Ok(())
        })
    }
}
