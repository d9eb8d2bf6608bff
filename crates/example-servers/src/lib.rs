//! The shipped example's MCP servers (`examples/trading/`): `marketdata`
//! (`read_positions`), `execution` (`execute_trade`) and `research`
//! (`run_report`, plus desk-note resources, a briefing prompt and
//! completions). They are real MCP servers built with `rmcp`, serving stdio
//! (how the example catalog runs them) or Streamable HTTP, with deterministic
//! data so demos and tests can check exact results.

mod data;
mod research;
mod verify;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CompleteRequestParams, CompleteResult,
    ContentBlock, GetPromptRequestParams, GetPromptResponse, Implementation, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt, tool, tool_handler, tool_router};
use tokio::net::TcpListener;

pub use data::{ExecuteTradeArgs, ReadPositionsArgs, RunReportArgs};
pub use verify::{
    CREDENTIAL_META_KEY, CREDENTIAL_REFUSED, CredentialCheck, ISSUER_ENV, JWKS_URL_ENV,
};

/// Which of the example's servers to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExampleServer {
    Marketdata,
    Execution,
    Research,
}

impl ExampleServer {
    pub fn name(self) -> &'static str {
        match self {
            Self::Marketdata => "marketdata",
            Self::Execution => "execution",
            Self::Research => "research",
        }
    }

    fn tool(self) -> &'static str {
        match self {
            Self::Marketdata => "read_positions",
            Self::Execution => "execute_trade",
            Self::Research => "run_report",
        }
    }
}

/// One example server: the trading desk's tools, restricted to the ones
/// this server offers.
#[derive(Clone)]
pub struct TradingDesk {
    server: ExampleServer,
    /// Simulated backend latency added to every call.
    latency: Duration,
    /// Checks each call's credential; `None` accepts calls without one.
    check: Option<Arc<CredentialCheck>>,
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl TradingDesk {
    pub fn new(server: ExampleServer, latency: Duration) -> Self {
        let mut tool_router = Self::tool_router();
        for name in ["read_positions", "execute_trade", "run_report"] {
            if name != server.tool() {
                tool_router.remove_route(name);
            }
        }
        Self {
            server,
            latency,
            check: None,
            tool_router,
        }
    }

    /// Refuse calls whose credential `check` does not accept.
    pub fn with_check(mut self, check: Option<Arc<CredentialCheck>>) -> Self {
        self.check = check;
        self
    }

    #[tool(
        description = "Read the current positions of a trading account, optionally for one symbol."
    )]
    async fn read_positions(
        &self,
        Parameters(args): Parameters<ReadPositionsArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        self.simulate_latency().await;
        Ok(data::read_positions(&args))
    }

    #[tool(description = "Submit a trade order (market or limit) to the execution venue.")]
    async fn execute_trade(
        &self,
        Parameters(args): Parameters<ExecuteTradeArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        self.simulate_latency().await;
        Ok(data::execute_trade(&args))
    }

    #[tool(description = "Run a research report (pnl, exposure or risk) for a desk.")]
    async fn run_report(
        &self,
        Parameters(args): Parameters<RunReportArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        self.simulate_latency().await;
        Ok(data::run_report(&args))
    }
}

impl TradingDesk {
    async fn simulate_latency(&self) {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for TradingDesk {
    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        // The trace the control plane continues (`_meta.traceparent`, or
        // the HTTP header), logged so a trace can be followed end to end.
        let traceparent = context
            .meta
            .get_traceparent()
            .or_else(|| request_header(&context, "traceparent"));
        let trace_id = traceparent.and_then(|t| t.split('-').nth(1)).unwrap_or("");
        tracing::info!(server = self.server.name(), tool = %request.name, trace_id, "tool call");
        if let Some(check) = &self.check {
            check.check(&context, &request.name).await?;
        }
        let call = ToolCallContext::new(self, request, context);
        self.tool_router.call(call).await
    }

    fn get_info(&self) -> ServerConfig {
        let capabilities = if self.server == ExampleServer::Research {
            ServerCapabilities::builder()
                .enable_tools()
                .enable_prompts()
                .enable_resources()
                .enable_completions()
                .build()
        } else {
            ServerCapabilities::builder().enable_tools().build()
        };
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new(
                format!("trading-{}", self.server.name()),
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions("A demo server of the MCP Control Plane trading example.")
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        self.research()?;
        Ok(ListResourcesResult::with_all_items(research::resources()))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        self.research()?;
        Ok(ListResourceTemplatesResult::with_all_items(
            research::templates(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        self.research()?;
        research::read(&request.uri).map(Into::into)
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        self.research()?;
        Ok(ListPromptsResult::with_all_items(research::prompts()))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        self.research()?;
        research::get_prompt(&request).map(Into::into)
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        self.research()?;
        Ok(research::complete(&request.argument))
    }
}

impl TradingDesk {
    /// Only the research server has resources, prompts and completions.
    fn research(&self) -> Result<(), ErrorData> {
        if self.server == ExampleServer::Research {
            Ok(())
        } else {
            Err(ErrorData::method_not_found::<
                rmcp::model::ListResourcesRequestMethod,
            >())
        }
    }
}

/// A header of the HTTP request that carried a message (none over stdio).
fn request_header<'a>(context: &'a RequestContext<RoleServer>, name: &str) -> Option<&'a str> {
    context
        .extensions
        .get::<axum::http::request::Parts>()?
        .headers
        .get(name)?
        .to_str()
        .ok()
}

/// Serve MCP over this process's stdin/stdout until the client hangs up.
pub async fn serve_stdio(
    server: ExampleServer,
    latency: Duration,
    check: Option<Arc<CredentialCheck>>,
) -> anyhow::Result<()> {
    let service = TradingDesk::new(server, latency)
        .with_check(check)
        .serve(rmcp::transport::stdio())
        .await?;
    service.waiting().await?;
    Ok(())
}

/// Serve MCP over Streamable HTTP at `/mcp` on `listener` until the process ends.
pub async fn serve_http(
    server: ExampleServer,
    latency: Duration,
    check: Option<Arc<CredentialCheck>>,
    listener: TcpListener,
) -> anyhow::Result<()> {
    let service: StreamableHttpService<TradingDesk, LocalSessionManager> =
        StreamableHttpService::new(
            move || Ok(TradingDesk::new(server, latency).with_check(check.clone())),
            Default::default(),
            StreamableHttpServerConfig::default(),
        );
    let router = axum::Router::new().nest_service("/mcp", service);
    axum::serve(listener, router).await?;
    Ok(())
}

/// Text content of a JSON value, for clients that read only `content`.
fn json_result(value: serde_json::Value, is_error: bool) -> CallToolResult {
    let text = ContentBlock::text(value.to_string());
    let mut result = if is_error {
        CallToolResult::error(vec![text])
    } else {
        CallToolResult::success(vec![text])
    };
    result.structured_content = Some(value);
    result
}

/// The address an HTTP example server reports on start-up.
pub fn listening_line(addr: SocketAddr) -> String {
    format!("listening on {addr}")
}
