//! The one path every request takes, whichever front door it came through:
//!
//! ```text
//! authenticate -> catalog view -> authorize -> call upstream -> record
//!  identity/       discovery/      policy/      upstream/        audit/
//! ```
//!
//! Front doors (REST today, MCP next) translate their wire format into one
//! call of [`Pipeline::discover`] or [`Pipeline::call`] and translate the
//! answer back. Nothing here knows about HTTP or JSON-RPC.

mod error;

use std::sync::Arc;
use std::time::Instant;

use rmcp::model::{CallToolResult, JsonObject, Tool};

use crate::audit::{Action, AuditGuard, FrontDoor, Outcome};
use crate::catalog::Catalog;
use crate::discovery;
use crate::identity::{self, Caller};
use crate::policy;
use crate::telemetry::TraceContext;
use crate::upstream::{ProgressSink, UpstreamPool};

pub use error::PipelineError;

/// What travels with a request through every stage.
#[derive(Debug, Clone, Copy)]
pub struct CallContext {
    pub trace: TraceContext,
    pub front_door: FrontDoor,
    pub started: Instant,
}

impl CallContext {
    pub fn new(front_door: FrontDoor, traceparent: Option<&str>) -> Self {
        Self {
            trace: TraceContext::from_traceparent(traceparent),
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
#[derive(Debug)]
pub struct ToolCall<'a> {
    /// The public tool name.
    pub tool: &'a str,
    pub arguments: JsonObject,
    /// Where the server's progress notifications for this call go, if the
    /// caller asked for them.
    pub progress: Option<ProgressSink>,
}

impl<'a> ToolCall<'a> {
    pub fn new(tool: &'a str, arguments: JsonObject) -> Self {
        Self {
            tool,
            arguments,
            progress: None,
        }
    }
}

/// What a caller may see.
#[derive(Debug, Clone)]
pub struct Discovery {
    pub tools: Vec<Arc<str>>,
    /// Present when the caller asked for details.
    pub definitions: Option<Vec<Tool>>,
}

pub struct Pipeline {
    catalog: Arc<Catalog>,
    upstreams: UpstreamPool,
}

impl Pipeline {
    pub fn new(catalog: Arc<Catalog>, upstreams: UpstreamPool) -> Self {
        Self { catalog, upstreams }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn upstreams(&self) -> &UpstreamPool {
        &self.upstreams
    }

    /// List what the caller may use.
    pub fn discover(
        &self,
        ctx: &CallContext,
        token: Option<&str>,
        assertions: Assertions<'_>,
        detail: bool,
    ) -> Result<Discovery, PipelineError> {
        let mut audit = self.open_audit(ctx, Action::Discovery);
        let result = self
            .admit(&mut audit, token, assertions)
            .map(|caller| Discovery {
                tools: discovery::visible_tools(&self.catalog, &caller).to_vec(),
                definitions: detail
                    .then(|| discovery::definitions(&self.catalog, &self.upstreams, &caller)),
            });
        audit.finish(
            result
                .as_ref()
                .map_or_else(PipelineError::outcome, |_| Outcome::Ok),
        );
        result
    }

    /// Call one tool on behalf of the caller.
    pub async fn call(
        &self,
        ctx: &CallContext,
        token: Option<&str>,
        assertions: Assertions<'_>,
        call: ToolCall<'_>,
    ) -> Result<CallToolResult, PipelineError> {
        let mut audit = self.open_audit(ctx, Action::Call);
        audit.record_mut().tool = Some(call.tool.into());
        let result = self.call_stages(&mut audit, token, assertions, call).await;
        audit.finish(match &result {
            Ok(r) if r.is_error == Some(true) => Outcome::ToolError,
            Ok(_) => Outcome::Ok,
            Err(e) => e.outcome(),
        });
        result
    }

    /// Record a request its front door refused before it could enter the
    /// pipeline (a malformed body), attributing it to the caller when the
    /// credential is valid. Returns the error for the front door to send.
    pub fn reject(
        &self,
        ctx: &CallContext,
        action: Action,
        token: Option<&str>,
        error: PipelineError,
    ) -> PipelineError {
        let mut audit = self.open_audit(ctx, action);
        let error = match self.admit(&mut audit, token, Assertions::default()) {
            Ok(_) => error,
            Err(unauthenticated) => unauthenticated,
        };
        audit.finish(error.outcome());
        error
    }

    /// Authenticate a connection-level request (an HTTP request to `/mcp`)
    /// before any message in it is read. Only a refusal is recorded: the
    /// messages inside an admitted request are recorded one by one.
    pub fn admit_connection(
        &self,
        ctx: &CallContext,
        token: Option<&str>,
    ) -> Result<(), PipelineError> {
        let Err(error) = identity::authenticate(&self.catalog, token) else {
            return Ok(());
        };
        let error = PipelineError::from(error);
        self.open_audit(ctx, Action::Connect)
            .finish(error.outcome());
        Err(error)
    }

    async fn call_stages(
        &self,
        audit: &mut AuditGuard,
        token: Option<&str>,
        assertions: Assertions<'_>,
        call: ToolCall<'_>,
    ) -> Result<CallToolResult, PipelineError> {
        let caller = self.admit(audit, token, assertions)?;
        let route = match policy::authorize(&self.catalog, &caller, call.tool) {
            Ok(route) => route,
            Err(denied) => {
                // The audit trail (never the agent) learns where it would have gone.
                if let Some(route) = self.catalog.tool(call.tool) {
                    audit.record_mut().server =
                        Some(self.catalog.server(route.server).name.clone());
                }
                return Err(denied.into());
            }
        };
        let record = audit.record_mut();
        record.upstream_tool = Some(route.upstream_name.clone());
        record.server = Some(self.catalog.server(route.server).name.clone());
        Ok(self
            .upstreams
            .call_tool(route, call.arguments, call.progress)
            .await?)
    }

    /// Authenticate, then hold the request's assertions against the verified
    /// identity and the deployment.
    fn admit(
        &self,
        audit: &mut AuditGuard,
        token: Option<&str>,
        assertions: Assertions<'_>,
    ) -> Result<Caller, PipelineError> {
        let caller = identity::authenticate(&self.catalog, token)?;
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
            ctx.trace,
            action,
            ctx.front_door,
            self.catalog.environment.clone(),
            ctx.started,
        )
    }
}
