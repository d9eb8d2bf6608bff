//! What an operator may ask of the pipeline without being a caller: what
//! an agent would see ([`Pipeline::preview`]), and what the policy would
//! decide on a call ([`Pipeline::evaluate`]), each built by the very code
//! a request takes, for the console.

use rmcp::model::JsonObject;
use serde_json::Value;

use super::stages::Facts;
use super::{CallContext, Pipeline};
use crate::discovery::View;
use crate::guardrails::detect::{self, Part};
use crate::identity::Caller;
use crate::live::Snapshot;
use crate::policy::{self, Decision, NotPermitted};
use crate::vocabulary::{Action, FrontDoor, Target};

impl Pipeline {
    /// What `caller` would see through `endpoint` now, exactly as its own
    /// listing builds it (not recorded: the console that asks records its
    /// own reads).
    pub fn preview<T>(
        &self,
        caller: &Caller,
        endpoint: Option<&str>,
        list: impl FnOnce(&View<'_>) -> T,
    ) -> T {
        let mut ctx = CallContext::new(FrontDoor::Internal, None, None);
        ctx.endpoint = endpoint.map(Into::into);
        with_view(&self.live.current(), &ctx, caller, list)
    }

    /// The policy's decision on `caller` calling `tool` with `arguments`
    /// now: the role check, then the policy on the input document a call
    /// would have (the detectors' findings in it), as `policy eval` gives
    /// it. Nothing is sent anywhere.
    pub fn evaluate(
        &self,
        caller: &Caller,
        tool: &str,
        arguments: JsonObject,
    ) -> Result<Decision, NotPermitted> {
        let snapshot = self.live.current();
        let ctx = CallContext::new(FrontDoor::Internal, None, None);
        let target = Target::Tool(tool);
        let to = policy::authorize(&snapshot.catalog, caller, None, target)?;
        let value = Value::Object(arguments);
        let mut findings = Vec::new();
        detect::scan(&value, Part::Arguments, &mut findings);
        let Value::Object(arguments) = value else {
            unreachable!("an object stays one");
        };
        let facts = Facts {
            ctx: &ctx,
            catalog: &snapshot.catalog,
            caller,
            action: Action::Call,
            findings: &findings,
        };
        Ok(snapshot
            .policies
            .decide(|| facts.input(target, &to, Some(&arguments))))
    }
}

/// `caller`'s [`View`] on `snapshot`: its role's grants (through the
/// request's endpoint), as far as the policy's `visible` rule shows them.
pub(super) fn with_view<T>(
    snapshot: &Snapshot,
    ctx: &CallContext,
    caller: &Caller,
    list: impl FnOnce(&View<'_>) -> T,
) -> T {
    let facts = Facts {
        ctx,
        catalog: &snapshot.catalog,
        caller,
        action: Action::Discovery,
        findings: &[],
    };
    // The role grants every name listed; the route is looked up only when
    // a `visible` rule needs it for its input.
    let shows = |target: Target<'_>| {
        snapshot.policies.shows(|| {
            let endpoint = ctx.endpoint.as_deref();
            let to = policy::authorize(&snapshot.catalog, caller, endpoint, target).ok()?;
            Some(facts.input(target, &to, None))
        })
    };
    list(&View {
        catalog: &snapshot.catalog,
        upstreams: &snapshot.upstreams,
        caller,
        endpoint: ctx.endpoint.as_deref(),
        shows: &shows,
    })
}
