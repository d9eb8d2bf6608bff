//! The one path every request takes, whichever front door it came through:
//! a list of named stages ([`stages`]), each acting on the way in and on
//! the way back ([`stage`]). The request's stages run once; the leg
//! stages once per request to an upstream (an attempt, a fan-out's leg):
//!
//! ```text
//! record -> admit -> resolve -> split -> pins -> deadline -> detect -> authorize -> limit -> results -> dispatch (or list)
//! audit/    identity/ catalog    router/  guardrails/ (time) guardrails/ policy/ router/  policy/   router/
//!
//! arguments -> circuit -> concurrency -> request_state -> task_ids -> credential -> cache_hints -> result_size -> call
//! guardrails/  router/   router/        (MRTR state)     (task ids)  credentials/                  guardrails/    upstream/
//! ```
//!
//! Front doors (REST, MCP) translate their wire format into one call of a
//! [`Pipeline`] method and translate the answer back. Nothing here knows
//! about HTTP or JSON-RPC. A request takes the catalog version in force
//! when it starts ([`crate::live`]) and finishes on it.

mod edges;
mod error;
mod exchange;
mod preview;
mod quarantine;
mod seal;
pub mod stage;
pub mod stages;

use std::sync::Arc;

use rmcp::model::{
    CompleteRequestParams, GetPromptRequestParams, JsonObject, Reference, ServerResult,
};

use crate::audit::AuditLog;
use crate::discovery::View;
use crate::identity::Presented;
use crate::live::Live;
use crate::upstream::{CallSinks, Continuation, Subscriber};
use crate::vocabulary::{Action, Target};
use stage::Answer;

pub use error::PipelineError;
pub use exchange::{
    Assertions, CallContext, Exchange, Operation, REQUEST_TIMEOUT_HEADER, RequestedTimeout, TaskOp,
};
pub use stages::record::Classify;

/// One tool call as a front door hands it over.
pub struct ToolCall<'a> {
    /// The public tool name.
    pub tool: &'a str,
    pub arguments: JsonObject,
    /// A retry's answers and sealed request state, if it is one.
    pub continuation: Continuation,
    /// Where the server's progress notifications and requests for this call
    /// go, if the caller can take them.
    pub sinks: CallSinks,
}

impl<'a> ToolCall<'a> {
    pub fn new(tool: &'a str, arguments: JsonObject) -> Self {
        Self {
            tool,
            arguments,
            continuation: Continuation::default(),
            sinks: CallSinks::default(),
        }
    }
}

/// A change to a client session's resource subscriptions.
pub enum SubscriptionChange {
    Subscribe(Subscriber),
    /// End the subscription of this session (see [`Subscriber::session`]).
    Unsubscribe {
        session: u64,
    },
}

pub struct Pipeline {
    live: Arc<Live>,
    audit: AuditLog,
    stages: stages::Stages,
}

impl Pipeline {
    /// The catalog in force, over the life of the process.
    pub fn live(&self) -> &Arc<Live> {
        &self.live
    }

    pub fn new(live: Arc<Live>, audit: AuditLog) -> Self {
        Self {
            stages: stages::standard(audit.clone()),
            live,
            audit,
        }
    }

    /// A new exchange on the catalog version in force.
    fn exchange<'a>(
        &self,
        ctx: &'a CallContext,
        action: Action,
        who: Presented<'a>,
    ) -> Exchange<'a> {
        Exchange::new(ctx, self.live.current(), action, who)
    }

    /// Run `exchange` through the stages to its upstream.
    async fn reach(&self, mut exchange: Exchange<'_>, operation: Operation) -> Answer {
        let legs = &self.stages.leg;
        let dispatch = async move |exchange: &mut Exchange<'_>| {
            stages::dispatch::dispatch(legs, exchange, operation).await
        };
        stage::run(&self.stages.request, &mut exchange, dispatch).await
    }

    /// List what the caller may see: `list` builds the answer from the
    /// caller's [`View`]: its role's grants, as far as the policy shows them.
    pub async fn discover<T>(
        &self,
        ctx: &CallContext,
        who: Presented<'_>,
        assertions: Assertions<'_>,
        list: impl FnOnce(&View<'_>) -> T,
    ) -> Result<T, PipelineError> {
        let mut exchange = self
            .exchange(ctx, Action::Discovery, who)
            .with_assertions(assertions);
        let mut listed = None;
        let listing = async |exchange: &mut Exchange<'_>| {
            listed = Some(preview::with_view(
                &exchange.snapshot,
                ctx,
                exchange.caller(),
                list,
            ));
            Ok(ServerResult::empty(()))
        };
        stage::run(&self.stages.request, &mut exchange, listing).await?;
        Ok(listed.expect("the listing ran"))
    }

    /// Call one tool on behalf of the caller. The answer is the tool's
    /// result or the server's `input_required` (with its state sealed).
    pub async fn call(
        &self,
        ctx: &CallContext,
        who: Presented<'_>,
        assertions: Assertions<'_>,
        call: ToolCall<'_>,
    ) -> Result<ServerResult, PipelineError> {
        let exchange = self
            .exchange(ctx, Action::Call, who)
            .with_target(Target::Tool(call.tool))
            .with_assertions(assertions)
            .with_arguments(call.arguments)
            .with_continuation(call.continuation);
        self.reach(exchange, Operation::CallTool(call.sinks)).await
    }

    /// Read one resource by URI (a retry carries its `continuation`).
    pub async fn read_resource(
        &self,
        ctx: &CallContext,
        who: Presented<'_>,
        uri: &str,
        continuation: Continuation,
    ) -> Result<ServerResult, PipelineError> {
        let exchange = self
            .exchange(ctx, Action::ReadResource, who)
            .with_target(Target::Resource(uri))
            .with_continuation(continuation);
        self.reach(exchange, Operation::ReadResource).await
    }

    /// Get one prompt by public name.
    pub async fn get_prompt(
        &self,
        ctx: &CallContext,
        who: Presented<'_>,
        mut params: GetPromptRequestParams,
    ) -> Result<ServerResult, PipelineError> {
        let name = std::mem::take(&mut params.name);
        let continuation = Continuation {
            input_responses: params.input_responses.take(),
            request_state: params.request_state.take(),
        };
        let exchange = self
            .exchange(ctx, Action::GetPrompt, who)
            .with_target(Target::Prompt(&name))
            .with_continuation(continuation);
        self.reach(exchange, Operation::GetPrompt(params)).await
    }

    /// Complete an argument of a prompt or of a resource template.
    pub async fn complete(
        &self,
        ctx: &CallContext,
        who: Presented<'_>,
        params: CompleteRequestParams,
    ) -> Result<ServerResult, PipelineError> {
        let named = match &params.r#ref {
            Reference::Prompt(prompt) => Target::Prompt(&prompt.name),
            Reference::Resource(resource) => Target::Resource(&resource.uri),
            _ => {
                let error =
                    PipelineError::InvalidRequest("unsupported completion reference".into());
                return Err(self.reject(ctx, Action::Complete, who, None, error).await);
            }
        };
        // The exchange borrows the name; the upstream request gets its own.
        let name = named.name().to_string();
        let target = match named {
            Target::Prompt(_) => Target::Prompt(&name),
            _ => Target::Resource(&name),
        };
        let exchange = self
            .exchange(ctx, Action::Complete, who)
            .with_target(target);
        self.reach(exchange, Operation::Complete(params)).await
    }

    /// A follow-up on the task `task_id` (a public id) that a tool call
    /// started. An id that is not of our format is refused and recorded
    /// like one that is not the caller's.
    pub async fn task(
        &self,
        ctx: &CallContext,
        who: Presented<'_>,
        task_id: &str,
        op: TaskOp,
    ) -> Result<ServerResult, PipelineError> {
        let Some(task) = stages::TaskRef::parse(task_id) else {
            let refusal = stages::unknown_task();
            return Err(self.reject(ctx, Action::Task, who, None, refusal).await);
        };
        let tool = task.tool.clone();
        let exchange = self
            .exchange(ctx, Action::Task, who)
            .with_target(Target::Tool(&tool))
            .with_task(task);
        self.reach(exchange, Operation::Task(op)).await
    }

    /// Subscribe a client session to a resource's updates, or end that.
    pub async fn change_subscription(
        &self,
        ctx: &CallContext,
        who: Presented<'_>,
        uri: &str,
        change: SubscriptionChange,
    ) -> Result<ServerResult, PipelineError> {
        let (action, operation) = match change {
            SubscriptionChange::Subscribe(subscriber) => {
                (Action::Subscribe, Operation::Subscribe(subscriber))
            }
            SubscriptionChange::Unsubscribe { session } => {
                (Action::Unsubscribe, Operation::Unsubscribe { session })
            }
        };
        let exchange = self
            .exchange(ctx, action, who)
            .with_target(Target::Resource(uri));
        self.reach(exchange, operation).await
    }
}

#[cfg(test)]
mod tests;
