//! What travels with one request through the stages.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rmcp::model::{
    ClientCapabilities, CompleteRequestParams, GetPromptRequestParams, InputResponses, JsonObject,
};

use super::PipelineError;
use super::stages::TaskRef;
use crate::audit::record::UpstreamSpan;
use crate::audit::{AuditGuard, AuditRecord};
use crate::guardrails::detect::Finding;
use crate::identity::{Caller, Presented};
use crate::live::Snapshot;
use crate::policy::Authorized;
use crate::router::breaker::Ticket;
use crate::router::concurrency::Slot;
use crate::trace_context::TraceContext;
use crate::upstream::{CallSinks, Continuation, Outbound, Subscriber};
use crate::vocabulary::{Action, FrontDoor, Target};

/// Where a request comes from and its trace: set by the front door.
#[derive(Debug, Clone)]
pub struct CallContext {
    pub trace: TraceContext,
    /// The caller's W3C `tracestate`, passed on to upstreams unchanged.
    pub tracestate: Option<Arc<str>>,
    pub front_door: FrontDoor,
    pub started: Instant,
    /// What the calling client declared it can answer, where its front
    /// door says (MCP); passed on to upstreams that ask per request.
    pub client_capabilities: Option<Arc<ClientCapabilities>>,
    /// How long the caller will wait, if it said (the `X-Request-Timeout`
    /// header): it may shorten the request's deadline, never lengthen it.
    pub requested_timeout: Option<RequestedTimeout>,
    /// The virtual endpoint the request came through (`/mcp/<endpoint>`,
    /// `/endpoints/<endpoint>/tools`): it narrows what the role sees.
    pub endpoint: Option<Arc<str>>,
    /// The built-in tool a call came through (`call_tool`), if any.
    pub via: Option<&'static str>,
    /// The address the request came from, where the front door knows it.
    pub client: Option<std::net::IpAddr>,
}

/// The header a caller shortens its request's deadline with.
pub const REQUEST_TIMEOUT_HEADER: &str = "x-request-timeout";

/// What a caller's `X-Request-Timeout` said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestedTimeout {
    Within(Duration),
    /// Not a duration (`2.5`, `2500ms`, `3s`): the request is refused.
    Malformed,
}

impl RequestedTimeout {
    /// A header value: seconds (`2.5`) or a duration with its unit
    /// (`2500ms`, `3s`), above zero.
    pub fn parse(value: &str) -> Self {
        let value = value.trim();
        let seconds = value
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s > 0.0);
        let duration = match seconds {
            Some(seconds) => Duration::try_from_secs_f64(seconds).ok(),
            None => humantime_serde::re::humantime::parse_duration(value).ok(),
        };
        match duration.filter(|d| !d.is_zero()) {
            Some(duration) => Self::Within(duration),
            None => Self::Malformed,
        }
    }
}

impl CallContext {
    /// Continue the caller's trace (`traceparent`, with its `tracestate`
    /// when that is well-formed) or start one.
    pub fn new(front_door: FrontDoor, traceparent: Option<&str>, tracestate: Option<&str>) -> Self {
        let trace = TraceContext::from_traceparent(traceparent);
        // A tracestate belongs to the caller's trace: kept only with it.
        let tracestate = tracestate
            .filter(|_| trace.parent_span_id.is_some())
            .filter(|state| crate::trace_context::is_valid_tracestate(state))
            .map(Arc::from);
        Self {
            trace,
            tracestate,
            front_door,
            started: Instant::now(),
            client_capabilities: None,
            requested_timeout: None,
            endpoint: None,
            via: None,
            client: None,
        }
    }
}

/// Who the request says it is (the seed clients' body fields). Never trusted:
/// each one present must match the verified identity and the deployment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Assertions<'a> {
    pub agent_id: Option<&'a str>,
    pub role: Option<&'a str>,
    pub environment: Option<&'a str>,
}

/// What a request asks of its upstream, once it may.
pub enum Operation {
    /// `tools/call`, with the exchange's arguments.
    CallTool(CallSinks),
    ReadResource,
    GetPrompt(GetPromptRequestParams),
    Complete(CompleteRequestParams),
    Subscribe(Subscriber),
    /// End the subscription of this session (see [`Subscriber::session`]).
    Unsubscribe {
        session: u64,
    },
    /// A follow-up on the exchange's task.
    Task(TaskOp),
}

/// What a follow-up does with a task.
pub enum TaskOp {
    /// `tasks/get`: its status, and its result once it has one.
    Get,
    /// `tasks/update`: answers to the input the task asked for.
    Update(InputResponses),
    /// `tasks/cancel`.
    Cancel,
}

/// One request on its way through the stages: what it asks, and what
/// each stage found out. A stage reads what the ones before it set.
pub struct Exchange<'a> {
    pub ctx: &'a CallContext,
    /// The catalog version the request started on; it finishes on it.
    pub snapshot: Arc<Snapshot>,
    pub action: Action,
    pub who: Presented<'a>,
    pub assertions: Assertions<'a>,
    /// What the request is about (none for a listing).
    pub target: Option<Target<'a>>,
    /// A resource URI in normal form, once resolved.
    pub normalized: Option<String>,
    /// The arguments the policy may judge (handed on to the upstream).
    pub arguments: Option<JsonObject>,
    /// A retry's answers and request state, for the upstream (the
    /// request_state stage opens the state).
    pub continuation: Continuation,
    /// The task a follow-up is about (the task_ids stage checks its seal).
    pub task: Option<TaskRef>,
    /// Set by admit: the verified caller.
    pub caller: Option<Caller>,
    /// Set by resolve: where the target goes, the caller's view allowing.
    pub authorized: Option<Authorized>,
    /// Set by credential: the credential and trace context for the upstream.
    pub outbound: Option<Outbound>,
    /// Set by credential: what keeps a leased credential (a Vault token)
    /// alive until the exchange ends, which revokes it.
    pub lease: Option<std::sync::Arc<crate::credentials::Lease>>,
    /// The span id of the request to the upstream.
    pub upstream_span: [u8; 8],
    /// Set by deadline: when the request's time is up, for every attempt
    /// and every leg alike.
    pub deadline: Option<Instant>,
    /// Set once an upstream was contacted (its intent record is durable).
    pub contacted: bool,
    /// Set once this attempt's request left for its upstream.
    pub sent: bool,
    /// Set by call: when this attempt's request left, and how long its
    /// answer took.
    pub called: Option<UpstreamSpan>,
    /// Set by circuit: the server's breaker let the call through.
    pub circuit: Option<Ticket>,
    /// Set by concurrency: the call's slot at its server.
    pub slot: Option<Slot>,
    /// Set by detect: what the detectors found in the arguments (and, on
    /// the way back, by results: in the result).
    pub findings: Vec<Finding>,
    /// Set by authorize when the policy judges results: the request's
    /// input document, for the result rule.
    pub policy_input: Option<regorus::Value>,
    /// Opened by the record stage, finished on the way back.
    pub(super) audit: Recording,
}

/// Where a stage's notes on the request go.
// Inline, like the guard was before: boxing it would cost every request
// an allocation to save the few bytes of the rare `Off`.
#[allow(clippy::large_enum_variant)]
pub(super) enum Recording {
    /// Before the record stage ran.
    Off,
    /// The request's own audit record.
    Request(AuditGuard),
    /// One leg of a fan-out: notes that go into the request's record as
    /// the leg's entry. The request's intent was made durable before any
    /// leg left.
    Leg(Box<AuditRecord>),
}

impl<'a> Exchange<'a> {
    pub fn new(
        ctx: &'a CallContext,
        snapshot: Arc<Snapshot>,
        action: Action,
        who: Presented<'a>,
    ) -> Self {
        Self {
            ctx,
            snapshot,
            action,
            who,
            assertions: Assertions::default(),
            target: None,
            normalized: None,
            arguments: None,
            continuation: Continuation::default(),
            task: None,
            caller: None,
            authorized: None,
            outbound: None,
            lease: None,
            upstream_span: TraceContext::child_span_id(),
            deadline: None,
            contacted: false,
            sent: false,
            called: None,
            circuit: None,
            slot: None,
            findings: Vec::new(),
            policy_input: None,
            audit: Recording::Off,
        }
    }

    pub fn with_target(mut self, target: Target<'a>) -> Self {
        self.target = Some(target);
        self
    }

    pub fn with_assertions(mut self, assertions: Assertions<'a>) -> Self {
        self.assertions = assertions;
        self
    }

    pub fn with_arguments(mut self, arguments: JsonObject) -> Self {
        self.arguments = Some(arguments);
        self
    }

    pub fn with_task(mut self, task: TaskRef) -> Self {
        self.task = Some(task);
        self
    }

    pub fn with_continuation(mut self, continuation: Continuation) -> Self {
        self.continuation = continuation;
        self
    }

    /// The target as resolved: a resource URI in its normal form.
    pub fn target(&self) -> Option<Target<'_>> {
        match (self.target, &self.normalized) {
            (Some(Target::Resource(_)), Some(uri)) => Some(Target::Resource(uri)),
            (target, _) => target,
        }
    }

    /// The request's audit record, which the record stage opened.
    pub fn record(&mut self) -> &mut AuditRecord {
        match &mut self.audit {
            Recording::Request(audit) => audit.record_mut(),
            Recording::Leg(record) => record,
            Recording::Off => unreachable!("the record stage runs first"),
        }
    }

    /// A leg of this request to `to`: the same caller, arguments and
    /// deadline, its own server, credential, breaker and slot, and a
    /// record of its own for the stages' notes.
    pub fn leg(&self, to: Authorized) -> Exchange<'a> {
        let ctx = self.ctx;
        let environment = self.snapshot.catalog.environment.clone();
        let notes = AuditRecord::new(ctx.trace, self.action, ctx.front_door, environment);
        let mut leg = Exchange::new(self.ctx, self.snapshot.clone(), self.action, self.who);
        leg.assertions = self.assertions;
        leg.target = self.target;
        leg.arguments = self.arguments.clone();
        leg.caller = self.caller.clone();
        leg.authorized = Some(to);
        leg.deadline = self.deadline;
        leg.audit = Recording::Leg(Box::new(notes));
        leg
    }

    /// The logical name of the server the request goes to, once resolved
    /// (of a tool with weighted targets, the one chosen; of a fan-out's
    /// leg, the leg's).
    pub fn server_name(&self) -> Option<&Arc<str>> {
        let to = self.authorized.as_ref()?;
        Some(&self.snapshot.catalog.server(to.server).name)
    }

    /// Make the request's intent record durable before anything reaches
    /// an upstream. A fan-out's leg has nothing to do: its request's
    /// intent was made durable before any leg left.
    pub async fn intent(&mut self) -> Result<(), PipelineError> {
        match &mut self.audit {
            Recording::Request(audit) => {
                audit.wait_until(self.deadline);
                (audit.intent().await).map_err(PipelineError::AuditUnavailable)
            }
            Recording::Leg(_) => Ok(()),
            Recording::Off => unreachable!("the record stage runs first"),
        }
    }

    /// How long this attempt may take: what is left of the deadline, if
    /// there is one.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }

    /// The verified caller; stages after admit may rely on it.
    pub fn caller(&self) -> &Caller {
        self.caller.as_ref().expect("admit runs before this stage")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_requested_timeout_is_seconds_or_a_duration_above_zero() {
        let within = |ms| RequestedTimeout::Within(Duration::from_millis(ms));
        assert_eq!(RequestedTimeout::parse("2.5"), within(2500));
        assert_eq!(RequestedTimeout::parse(" 1500ms "), within(1500));
        assert_eq!(RequestedTimeout::parse("3s"), within(3000));
        for bad in ["0", "-1", "0s", "soon", "", "NaN", "inf"] {
            assert_eq!(
                RequestedTimeout::parse(bad),
                RequestedTimeout::Malformed,
                "{bad}"
            );
        }
    }
}
