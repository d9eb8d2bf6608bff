//! The control plane as one MCP server: every method is answered from the
//! caller's view through the [`Pipeline`], exactly like the REST front door.

use std::sync::Arc;

use axum::http::request::Parts;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use tokio::sync::mpsc;

use super::error::to_error_data;
use crate::audit::FrontDoor;
use crate::discovery;
use crate::pipeline::{Assertions, CallContext, Pipeline, ToolCall};

/// Tools per `tools/list` page.
const PAGE_SIZE: usize = 100;

/// One instance per MCP session (or per request, statelessly); all share the pipeline.
#[derive(Clone)]
pub struct McpFrontDoor {
    pipeline: Arc<Pipeline>,
}

impl McpFrontDoor {
    pub fn new(pipeline: Arc<Pipeline>) -> Self {
        Self { pipeline }
    }
}

/// The caller's bearer token and the request's trace context. The token is
/// read from the HTTP request that carried this message (the auth layer
/// already refused requests without a valid one); the trace continues the
/// message's `_meta.traceparent`, else the HTTP `traceparent` header.
fn request_context(context: &RequestContext<RoleServer>) -> (CallContext, Option<&str>) {
    let parts = context.extensions.get::<Parts>();
    let header = |name: &str| {
        parts
            .and_then(|p| p.headers.get(name))
            .and_then(|v| v.to_str().ok())
    };
    let traceparent = context
        .meta
        .get_traceparent()
        .or_else(|| header("traceparent"));
    let token = header("authorization").and_then(crate::identity::bearer_token);
    (CallContext::new(FrontDoor::Mcp, traceparent), token)
}

impl ServerHandler for McpFrontDoor {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                env!("CARGO_PKG_NAME"),
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(
                "MCP Control Plane: the tools your role may use, from every server behind this endpoint.",
            )
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let (ctx, token) = request_context(&context);
        let tools = self
            .pipeline
            .discover(&ctx, token, Assertions::default(), discovery::definitions)
            .map_err(|e| to_error_data(&e, &ctx.trace))?;
        let start = match request.and_then(|r| r.cursor) {
            None => 0,
            Some(cursor) => cursor
                .parse::<usize>()
                .ok()
                .filter(|&start| start <= tools.len())
                .ok_or_else(|| ErrorData::invalid_params("invalid cursor", None))?,
        };
        let end = (start + PAGE_SIZE).min(tools.len());
        let page = tools[start..end].to_vec();
        let mut result = ListToolsResult::with_all_items(page);
        result.next_cursor = (end < tools.len()).then(|| end.to_string());
        Ok(result)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let (ctx, token) = request_context(&context);
        let client_token = context.meta.get_progress_token();
        let (progress_tx, mut progress_rx) = mpsc::unbounded_channel();
        let call = ToolCall {
            tool: &request.name,
            arguments: request.arguments.unwrap_or_default(),
            progress: client_token.is_some().then_some(progress_tx),
        };
        let call = self.pipeline.call(&ctx, token, Assertions::default(), call);
        tokio::pin!(call);
        loop {
            tokio::select! {
                biased;
                // Upstream progress, renamed to the client's own token.
                Some(mut progress) = progress_rx.recv(), if client_token.is_some() => {
                    if let Some(client_token) = &client_token {
                        progress.progress_token = client_token.clone();
                        let _ = context.peer.notify_progress(progress).await;
                    }
                }
                result = &mut call => {
                    return result
                        .map(Into::into)
                        .map_err(|e| to_error_data(&e, &ctx.trace));
                }
                // A client's `notifications/cancelled`: dropping the call
                // cancels it upstream and records it as cancelled.
                _ = context.ct.cancelled() => {
                    return Err(ErrorData::internal_error("request cancelled", None));
                }
            }
        }
    }
}
