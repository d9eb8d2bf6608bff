//! split: a tool with weighted targets (versions, canaries) goes to one
//! of them for this call ([`crate::router::split`]), chosen before the
//! policy decides, so the policy, the credential and the audit record all
//! see the target that serves. A sticky split keeps each agent on its
//! target while the weights stand.
//!
//! The seals of an `input_required` state and of a task id bind the target
//! that issued them: with a split that is not sticky, a retry or follow-up
//! that lands on the other target is refused there rather than handed to a
//! server that never issued it.

use futures::future::BoxFuture;

use crate::catalog::Routing;
use crate::pipeline::stage::Stage;
use crate::pipeline::{Exchange, PipelineError};
use crate::vocabulary::{Action, Target};

pub struct Split;

impl Stage for Split {
    fn name(&self) -> &'static str {
        "split"
    }

    fn request<'a, 'e>(
        &'a self,
        exchange: &'a mut Exchange<'e>,
    ) -> BoxFuture<'a, Result<(), PipelineError>> {
        split(exchange);
        Box::pin(std::future::ready(Ok(())))
    }
}

fn split(exchange: &mut Exchange<'_>) {
    // A task's follow-up is split as its call was: the same agent reaches
    // the same target of a sticky split.
    let (Action::Call | Action::Task, Some(Target::Tool(name)), Some(_)) =
        (exchange.action, exchange.target, &exchange.authorized)
    else {
        return;
    };
    let snapshot = exchange.snapshot.clone();
    let Some(Routing::Split(split)) = snapshot.catalog.tool(name).map(|route| &route.routing)
    else {
        return;
    };
    let leg = split.choose(&exchange.caller().agent_id, name);
    let server = snapshot.catalog.server(leg.server).name.clone();
    let to = exchange.authorized.as_mut().expect("checked above");
    to.server = leg.server;
    to.upstream_name = leg.upstream_name.clone();
    let record = exchange.record();
    record.server = Some(server);
    record.upstream_tool = Some(leg.upstream_name.clone());
}
