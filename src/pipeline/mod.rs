//! The one path every request takes, whichever front door it came through:
//!
//! ```text
//! authenticate -> catalog view -> authorize (role, then Rego) -> mint credential -> call upstream -> record
//!  identity/       discovery/      policy/                        credentials/      upstream/        audit/
//! ```
//!
//! Front doors (REST today, MCP next) translate their wire format into one
//! call of [`Pipeline::discover`] or [`Pipeline::call`] and translate the
//! answer back. Nothing here knows about HTTP or JSON-RPC.

mod error;
mod record;

use std::future::Future;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use rmcp::model::{
    CallToolResult, ClientRequest, GetPromptRequestParams, JsonObject, ReadResourceRequestParams,
    Request, ServerResult,
};

use crate::audit::record::{UpstreamSpan, excerpt};
use crate::audit::{AuditGuard, AuditLog};
use crate::catalog::Catalog;
use crate::credentials::Credentials;
use crate::discovery::View;
use crate::identity::{Authenticator, Caller, Presented};
use crate::policy::input::{self, RequestFacts, TargetFacts};
use crate::policy::{self, Authorized, Policies};
use crate::telemetry::TraceContext;
use crate::upstream::{CallSinks, Outbound, Subscriber, UpstreamError, UpstreamPool};
use crate::uri;
use crate::vocabulary::{Action, FrontDoor, Outcome, Target};

pub use error::PipelineError;
pub use record::Classify;
use record::{record_decision, refuse_unaudited, settle, settle_contacted};

/// What travels with a request through every stage.
#[derive(Debug, Clone)]
pub struct CallContext {
    pub trace: TraceContext,
    /// The caller's W3C `tracestate`, passed on to upstreams unchanged.
    pub tracestate: Option<Arc<str>>,
    pub front_door: FrontDoor,
    pub started: Instant,
}

impl CallContext {
    /// Continue the caller's trace (`traceparent`, with its `tracestate`
    /// when that is well-formed) or start one.
    pub fn new(front_door: FrontDoor, traceparent: Option<&str>, tracestate: Option<&str>) -> Self {
        let trace = TraceContext::from_traceparent(traceparent);
        // A tracestate belongs to the caller's trace: kept only with it.
        let tracestate = tracestate
            .filter(|_| trace.parent_span_id.is_some())
            .filter(|state| crate::telemetry::is_valid_tracestate(state))
            .map(Arc::from);
        Self {
            trace,
            tracestate,
            front_door,
            started: Instant::now(),
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

/// One tool call as a front door hands it over.
pub struct ToolCall<'a> {
    /// The public tool name.
    pub tool: &'a str,
    pub arguments: JsonObject,
    /// Where the server's progress notifications and requests for this call
    /// go, if the caller can take them.
    pub sinks: CallSinks,
}

impl<'a> ToolCall<'a> {
    pub fn new(tool: &'a str, arguments: JsonObject) -> Self {
        Self {
            tool,
            arguments,
            sinks: CallSinks::default(),
        }
    }
}

/// What a request to an upstream is about: its action, its target, and
/// the arguments the policy may judge (handed on to the upstream call).
struct Reach<'a> {
    action: Action,
    target: Target<'a>,
    arguments: Option<JsonObject>,
}

impl<'a> Reach<'a> {
    fn without_arguments(action: Action, target: Target<'a>) -> Self {
        Self {
            action,
            target,
            arguments: None,
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
    catalog: Arc<Catalog>,
    audit: AuditLog,
    identity: Authenticator,
    policies: Arc<Policies>,
    upstreams: UpstreamPool,
    credentials: Arc<Credentials>,
}

impl Pipeline {
    pub fn new(
        catalog: Arc<Catalog>,
        policies: Arc<Policies>,
        upstreams: UpstreamPool,
        credentials: Arc<Credentials>,
        audit: AuditLog,
    ) -> Self {
        Self {
            audit,
            identity: Authenticator::new(catalog.clone()),
            catalog,
            policies,
            upstreams,
            credentials,
        }
    }

    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    pub fn policies(&self) -> &Policies {
        &self.policies
    }

    pub fn identity(&self) -> &Authenticator {
        &self.identity
    }

    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn upstreams(&self) -> &UpstreamPool {
        &self.upstreams
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
        let mut audit = self.open_audit(ctx, Action::Discovery);
        if !self.audit.accepting() {
            return refuse_unaudited(audit).await;
        }
        let result = self.admit(&mut audit, who, assertions).await.map(|caller| {
            // The role grants every name listed; the route is looked up
            // only when a `visible` rule needs it for its input.
            let shows = |target: Target<'_>| {
                self.policies.shows(|| {
                    let to = policy::authorize(&self.catalog, &caller, target).ok()?;
                    Some(self.policy_input(ctx, &caller, target, &to, Action::Discovery, None))
                })
            };
            list(&View {
                catalog: &self.catalog,
                upstreams: &self.upstreams,
                caller: &caller,
                shows: &shows,
            })
        });
        let outcome = result
            .as_ref()
            .map_or_else(PipelineError::outcome, |_| Outcome::Ok);
        settle(audit, outcome, result).await
    }

    /// Call one tool on behalf of the caller.
    pub async fn call(
        &self,
        ctx: &CallContext,
        who: Presented<'_>,
        assertions: Assertions<'_>,
        call: ToolCall<'_>,
    ) -> Result<CallToolResult, PipelineError> {
        let ToolCall {
            tool,
            arguments,
            sinks,
        } = call;
        let upstreams = &self.upstreams;
        self.reach(
            ctx,
            who,
            assertions,
            Reach {
                action: Action::Call,
                target: Target::Tool(tool),
                arguments: Some(arguments),
            },
            |to, outbound, arguments| async move {
                let arguments = arguments.unwrap_or_default();
                upstreams
                    .call_tool(to.server, &to.upstream_name, arguments, sinks, outbound)
                    .await
            },
        )
        .await
    }

    /// Read one resource by URI.
    pub async fn read_resource(
        &self,
        ctx: &CallContext,
        who: Presented<'_>,
        uri: &str,
    ) -> Result<ServerResult, PipelineError> {
        self.forward(
            ctx,
            who,
            Action::ReadResource,
            Target::Resource(uri),
            |uri| {
                let params = ReadResourceRequestParams::new(uri);
                ClientRequest::ReadResourceRequest(Request::new(params))
            },
        )
        .await
    }

    /// Get one prompt by public name.
    pub async fn get_prompt(
        &self,
        ctx: &CallContext,
        who: Presented<'_>,
        mut params: GetPromptRequestParams,
    ) -> Result<ServerResult, PipelineError> {
        let name = std::mem::take(&mut params.name);
        self.forward(
            ctx,
            who,
            Action::GetPrompt,
            Target::Prompt(&name),
            |upstream_name| {
                params.name = upstream_name.to_string();
                params.meta = None;
                ClientRequest::GetPromptRequest(Request::new(params))
            },
        )
        .await
    }

    /// Subscribe a client session to a resource's updates, or end that.
    pub async fn change_subscription(
        &self,
        ctx: &CallContext,
        who: Presented<'_>,
        uri: &str,
        change: SubscriptionChange,
    ) -> Result<ServerResult, PipelineError> {
        let upstreams = &self.upstreams;
        let action = match change {
            SubscriptionChange::Subscribe(_) => Action::Subscribe,
            SubscriptionChange::Unsubscribe { .. } => Action::Unsubscribe,
        };
        let target = Target::Resource(uri);
        self.reach(
            ctx,
            who,
            Assertions::default(),
            Reach::without_arguments(action, target),
            |to, outbound, _| async move {
                match change {
                    SubscriptionChange::Subscribe(subscriber) => {
                        upstreams
                            .subscribe(to.server, &to.upstream_name, subscriber, outbound)
                            .await
                    }
                    SubscriptionChange::Unsubscribe { session } => {
                        upstreams
                            .unsubscribe(to.server, &to.upstream_name, session, outbound)
                            .await
                    }
                }
            },
        )
        .await
    }

    /// Forward a request about a target once the caller may reach it;
    /// `build` makes the upstream request from the target's upstream name.
    pub async fn forward(
        &self,
        ctx: &CallContext,
        who: Presented<'_>,
        action: Action,
        target: Target<'_>,
        build: impl FnOnce(&str) -> ClientRequest,
    ) -> Result<ServerResult, PipelineError> {
        let upstreams = &self.upstreams;
        self.reach(
            ctx,
            who,
            Assertions::default(),
            Reach::without_arguments(action, target),
            |to, outbound, _| {
                let request = build(&to.upstream_name);
                upstreams.request(to.server, request, outbound)
            },
        )
        .await
    }

    /// Record a request its front door refused before it could enter the
    /// pipeline (a malformed body), attributing it to the caller when the
    /// credential is valid, with the name it asked for (an excerpt) if it
    /// named one. Returns the error for the front door to send.
    pub async fn reject(
        &self,
        ctx: &CallContext,
        action: Action,
        who: Presented<'_>,
        named: Option<&str>,
        error: PipelineError,
    ) -> PipelineError {
        let mut audit = self.open_audit(ctx, action);
        audit.record_mut().tool = named.map(excerpt);
        let error = match error {
            // Refused for its credential: nothing to authenticate.
            PipelineError::Unauthenticated(_) => error,
            _ => match self.admit(&mut audit, who, Assertions::default()).await {
                Ok(_) => error,
                Err(unauthenticated) => unauthenticated,
            },
        };
        match audit.finish(error.outcome()).await {
            Ok(()) => error,
            Err(_) => PipelineError::AuditUnavailable,
        }
    }

    /// Record a read of the audit trail: who (an admin id, or the refused
    /// caller's agent id), filtered how, with what outcome. Reading the
    /// trail leaves a trace in it too.
    pub async fn record_admin_query(
        &self,
        ctx: &CallContext,
        reader: Option<Arc<str>>,
        query: &str,
        outcome: Outcome,
    ) -> Result<(), PipelineError> {
        let mut audit = self.open_audit(ctx, Action::AdminQuery);
        let record = audit.record_mut();
        record.role = reader.is_some().then(|| Arc::from("admin"));
        record.agent_id = reader;
        record.tool = Some(excerpt(&format!("admin/audit?{query}")));
        record.label = Some(Arc::from("admin/audit"));
        settle(audit, outcome, Ok(())).await
    }

    /// Authenticate a connection-level request (an HTTP request to `/mcp`)
    /// before any message in it is read. Only a refusal is recorded: the
    /// messages inside an admitted request are recorded one by one.
    pub async fn admit_connection(
        &self,
        ctx: &CallContext,
        token: Option<&str>,
    ) -> Result<Caller, PipelineError> {
        let error = match self.identity.authenticate(token).await {
            Ok(caller) => return Ok(caller),
            Err(error) => error,
        };
        let error = PipelineError::from(error);
        let audit = self.open_audit(ctx, Action::Connect);
        settle(audit, error.outcome(), Err(error)).await
    }

    /// The stages every request to an upstream takes: authenticate,
    /// authorize the target, run `op` on its upstream, record the outcome.
    async fn reach<T, Fut>(
        &self,
        ctx: &CallContext,
        who: Presented<'_>,
        assertions: Assertions<'_>,
        reach: Reach<'_>,
        op: impl FnOnce(Authorized, Outbound, Option<JsonObject>) -> Fut,
    ) -> Result<T, PipelineError>
    where
        T: Classify,
        Fut: Future<Output = Result<T, UpstreamError>>,
    {
        let Reach {
            action,
            target,
            arguments,
        } = reach;
        let mut audit = self.open_audit(ctx, action);
        // What the caller sent, as a bounded excerpt: it may be anything.
        audit.record_mut().tool = Some(excerpt(target.name()));
        if let Some(arguments) = &arguments {
            audit.record_mut().set_arguments_digest(arguments);
        }
        if !self.audit.accepting() {
            return refuse_unaudited(audit).await;
        }
        let mut contacted = false;
        let result: Result<T, PipelineError> = async {
            let caller = self.admit(&mut audit, who, assertions).await?;
            // Only an authenticated caller's arguments are kept (where the
            // catalog opts the tool in).
            if let (Target::Tool(name), Some(arguments)) = (target, &arguments)
                && let Some(keep) = self
                    .catalog
                    .tool(name)
                    .and_then(|r| r.audit_arguments.as_deref())
            {
                audit.record_mut().keep_arguments(arguments, keep);
            }
            let normalized;
            let target = match target {
                Target::Resource(uri) => {
                    normalized = uri::normalize(uri)
                        .map_err(|e| PipelineError::InvalidRequest(e.to_string()))?;
                    Target::Resource(&normalized)
                }
                other => other,
            };
            // The audit trail (never the agent) learns where it goes or
            // would have gone, and the metrics the catalog's name for it.
            // The target is looked up once; a second time only when refused.
            let authorized = policy::authorize(&self.catalog, &caller, target);
            let located = match &authorized {
                Ok(to) => Some((to.server, to.name.clone())),
                Err(_) => policy::locate(&self.catalog, target).map(|at| (at.server, at.name)),
            };
            let record = audit.record_mut();
            record.server = located
                .as_ref()
                .map(|(server, _)| self.catalog.server(*server).name.clone());
            record.label = located.map(|(_, name)| name);
            let authorized = authorized?;
            record.upstream_tool = Some(authorized.upstream_name.clone());
            let deciding = Instant::now();
            let decision = self.policies.decide(|| {
                self.policy_input(
                    ctx,
                    &caller,
                    target,
                    &authorized,
                    action,
                    arguments.as_ref(),
                )
            });
            audit.record_mut().policy_seconds = Some(deciding.elapsed().as_secs_f64());
            record_decision(&mut audit, decision)?;
            let span_id = TraceContext::child_span_id();
            let outbound = self
                .outbound(ctx, &caller, target, &authorized, span_id)
                .await?;
            // Nothing reaches an upstream before its record is durable.
            audit
                .intent()
                .await
                .map_err(|_| PipelineError::AuditUnavailable)?;
            contacted = true;
            let (started, calling) = (SystemTime::now(), Instant::now());
            let answer = op(authorized, outbound, arguments).await;
            audit.record_mut().upstream = Some(UpstreamSpan {
                span_id,
                started,
                seconds: calling.elapsed().as_secs_f64(),
            });
            Ok(answer?)
        }
        .await;
        let outcome = match &result {
            Ok(answer) => answer.outcome(),
            Err(e) => e.outcome(),
        };
        if contacted {
            settle_contacted(audit, outcome, result).await
        } else {
            settle(audit, outcome, result).await
        }
    }

    /// The policy's input document for a request the role check allowed.
    fn policy_input(
        &self,
        ctx: &CallContext,
        caller: &Caller,
        target: Target<'_>,
        to: &Authorized,
        action: Action,
        arguments: Option<&JsonObject>,
    ) -> regorus::Value {
        let (kind, tags) = match target {
            Target::Tool(name) => ("tool", self.catalog.tool(name).map(|r| &*r.tags)),
            Target::Prompt(_) => ("prompt", None),
            Target::Resource(_) => ("resource", None),
        };
        let facts = TargetFacts {
            kind,
            name: target.name(),
            upstream_name: &to.upstream_name,
            server: &self.catalog.server(to.server).name,
            tags: tags.unwrap_or_default(),
        };
        let request = RequestFacts {
            trace_id: &ctx.trace.trace_id_hex(),
            front_door: ctx.front_door,
            action,
        };
        input::document(
            caller,
            &facts,
            arguments,
            &self.catalog.environment,
            &request,
        )
    }

    /// Mint the credential for one upstream request, scoped to its server
    /// and to its one tool, prompt or resource, and add the trace context.
    async fn outbound(
        &self,
        ctx: &CallContext,
        caller: &Caller,
        target: Target<'_>,
        to: &Authorized,
        span_id: [u8; 8],
    ) -> Result<Outbound, PipelineError> {
        let scope = match target {
            Target::Tool(_) => to.upstream_name.to_string(),
            Target::Prompt(_) => format!("prompt:{}", to.upstream_name),
            Target::Resource(_) => format!("resource:{}", to.upstream_name),
        };
        let trace_id = ctx.trace.trace_id_hex();
        let credential = self
            .credentials
            .issue(caller, to.server, &scope, &trace_id)
            .await
            .map_err(|error| {
                let server = &self.catalog.server(to.server).name;
                tracing::warn!(%server, %error, "no credential for the upstream call");
                PipelineError::CredentialUnavailable
            })?;
        Ok(Outbound {
            credential,
            traceparent: Some(ctx.trace.traceparent_for(span_id)),
            tracestate: ctx.tracestate.clone(),
        })
    }

    /// Authenticate, then hold the request's assertions against the verified
    /// identity and the deployment.
    async fn admit(
        &self,
        audit: &mut AuditGuard,
        who: Presented<'_>,
        assertions: Assertions<'_>,
    ) -> Result<Caller, PipelineError> {
        let caller = match who {
            Presented::Bearer(token) => self.identity.authenticate(token).await?,
            Presented::Verified(caller) => caller.clone(),
        };
        let record = audit.record_mut();
        record.agent_id = Some(caller.agent_id.clone());
        record.role = Some(caller.role.clone());
        let mismatch = |asserted: Option<&str>, actual: &str| asserted.is_some_and(|a| a != actual);
        if mismatch(assertions.agent_id, &caller.agent_id) {
            return Err(PipelineError::Impersonation("agent_id"));
        }
        if mismatch(assertions.role, &caller.role) {
            return Err(PipelineError::Impersonation("agent_role"));
        }
        if mismatch(assertions.environment, &self.catalog.environment) {
            return Err(PipelineError::Impersonation("environment"));
        }
        Ok(caller)
    }

    fn open_audit(&self, ctx: &CallContext, action: Action) -> AuditGuard {
        AuditGuard::open(
            &self.audit,
            ctx.trace,
            action,
            ctx.front_door,
            self.catalog.environment.clone(),
            ctx.started,
        )
    }
}
