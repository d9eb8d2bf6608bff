//! What travels with one request through the stages.

use std::sync::Arc;
use std::time::Instant;

use rmcp::model::{
    ClientCapabilities, CompleteRequestParams, GetPromptRequestParams, InputResponses, JsonObject,
};

use super::stages::TaskRef;
use crate::audit::{AuditGuard, AuditRecord};
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
    /// The span id of the request to the upstream.
    pub upstream_span: [u8; 8],
    /// Set once the upstream was contacted (its intent record is durable).
    pub contacted: bool,
    /// Set by circuit: the server's breaker let the call through.
    pub circuit: Option<Ticket>,
    /// Set by concurrency: the call's slot at its server.
    pub slot: Option<Slot>,
    /// Opened by the record stage, finished on the way back.
    pub(super) audit: Option<AuditGuard>,
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
            upstream_span: TraceContext::child_span_id(),
            contacted: false,
            circuit: None,
            slot: None,
            audit: None,
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
        self.audit
            .as_mut()
            .expect("the record stage runs first")
            .record_mut()
    }

    /// The verified caller; stages after admit may rely on it.
    pub fn caller(&self) -> &Caller {
        self.caller.as_ref().expect("admit runs before this stage")
    }
}
