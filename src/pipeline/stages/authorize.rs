//! authorize: the Rego policy decides, in-process, on an input document
//! describing the verified caller, the target, the arguments and the
//! deployment. (The role check came first, in resolve: a target outside
//! the caller's view never reaches the policy.) Anything but an allow
//! refuses.

use std::time::Instant;

use futures::future::BoxFuture;
use rmcp::model::JsonObject;

use crate::catalog::Catalog;
use crate::guardrails::detect::Finding;
use crate::identity::Caller;
use crate::pipeline::stage::Stage;
use crate::pipeline::{CallContext, Exchange, PipelineError};
use crate::policy::input::{self, RequestFacts, TargetFacts};
use crate::policy::{Authorized, Decision, NotPermitted};
use crate::vocabulary::{Action, Target};

pub struct Authorize;

impl Stage for Authorize {
    fn name(&self) -> &'static str {
        "authorize"
    }

    fn request<'a, 'e>(
        &'a self,
        exchange: &'a mut Exchange<'e>,
    ) -> BoxFuture<'a, Result<(), PipelineError>> {
        Box::pin(std::future::ready(authorize(exchange)))
    }
}

fn authorize(exchange: &mut Exchange<'_>) -> Result<(), PipelineError> {
    let (Some(to), Some(target)) = (&exchange.authorized, exchange.target()) else {
        return Ok(());
    };
    let snapshot = &exchange.snapshot;
    let deciding = Instant::now();
    let mut kept = None;
    let decision = snapshot.policies.decide(|| {
        let facts = Facts {
            ctx: exchange.ctx,
            catalog: &snapshot.catalog,
            caller: exchange.caller(),
            action: exchange.action,
            findings: &exchange.findings,
        };
        let input = facts.input(target, to, exchange.arguments.as_ref());
        // The result rule judges on the same document (a shared clone).
        if exchange.action == Action::Call && snapshot.policies.judges_results() {
            kept = Some(input.clone());
        }
        input
    });
    let what = target.noun();
    exchange.policy_input = kept;
    let seconds = deciding.elapsed().as_secs_f64();
    let record = exchange.record();
    record.policy_seconds = Some(seconds);
    match decision {
        Decision::Allow => {
            record.policy = Some("allow");
            Ok(())
        }
        Decision::Hidden => {
            record.policy = Some("hidden");
            Err(NotPermitted {
                by_policy: true,
                what,
            }
            .into())
        }
        Decision::Deny { reasons, cause } => {
            record.policy = Some(cause.as_str());
            record.reasons = reasons.clone();
            Err(PipelineError::PolicyDenied(reasons))
        }
    }
}

/// What the policy's input document is built from, for calls and for
/// discovery's `visible` rule alike.
pub struct Facts<'a> {
    pub ctx: &'a CallContext,
    pub catalog: &'a Catalog,
    pub caller: &'a Caller,
    pub action: Action,
    /// What the detectors found in the arguments.
    pub findings: &'a [Finding],
}

impl Facts<'_> {
    /// The input document for a target the role check allowed.
    pub fn input(
        &self,
        target: Target<'_>,
        to: &Authorized,
        arguments: Option<&JsonObject>,
    ) -> regorus::Value {
        let (kind, route) = match target {
            Target::Tool(name) => ("tool", self.catalog.tool(name)),
            Target::Prompt(_) => ("prompt", None),
            Target::Resource(_) => ("resource", None),
        };
        let facts = TargetFacts {
            kind,
            name: target.name(),
            upstream_name: &to.upstream_name,
            server: &self.catalog.server(to.server).name,
            tags: route.map(|r| &*r.tags).unwrap_or_default(),
            annotations: route.map(|r| r.annotations).unwrap_or_default(),
        };
        let request = RequestFacts {
            trace_id: &self.ctx.trace.trace_id_hex(),
            front_door: self.ctx.front_door,
            action: self.action,
            findings: self.findings,
        };
        input::document(
            self.caller,
            &facts,
            arguments,
            &self.catalog.environment,
            &request,
        )
    }
}
