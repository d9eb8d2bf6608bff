//! The built-in tools of tool search on the MCP front door
//! (`discovery::search`): `search_tools` is answered here, recorded as a
//! discovery; `call_tool` becomes the call it names, which then takes the
//! pipeline like any other (and is recorded `via: call_tool`). A catalog
//! tool of either name wins over the built-in.

use rmcp::model::{CallToolResponse, CallToolResult, ContentBlock, JsonObject};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};
use serde_json::{Value, json};

use super::error::to_error_data;
use super::handler::{McpFrontDoor, request_context};
use super::rounds::Retried;
use crate::discovery::search;
use crate::pipeline::{Assertions, PipelineError};
use crate::vocabulary::Action;

impl McpFrontDoor {
    /// If `retried` calls a built-in tool: answer it (`search_tools`), or
    /// turn it into the call it names (`call_tool`, then `None`). A
    /// malformed built-in call is refused and recorded.
    pub(super) async fn builtin(
        &self,
        retried: &mut Retried,
        context: &RequestContext<RoleServer>,
    ) -> Option<Result<CallToolResponse, ErrorData>> {
        let Retried::Tool {
            name,
            arguments,
            via,
        } = retried
        else {
            return None;
        };
        // Every other name goes straight on (no catalog lookup on the hot
        // path); a built-in's name only if the catalog has no such tool.
        let builtin = [search::SEARCH_TOOLS, search::CALL_TOOL].contains(&name.as_str());
        if !builtin || self.pipeline.live().current().catalog.tool(name).is_some() {
            return None;
        }
        match name.as_str() {
            search::SEARCH_TOOLS => Some(self.search_tools(arguments, context).await),
            search::CALL_TOOL => match search::called(arguments) {
                Ok((called, with)) => {
                    (*name, *arguments, *via) = (called, with, Some(search::CALL_TOOL));
                    None
                }
                Err(problem) => Some(Err(self.refuse(search::CALL_TOOL, problem, context).await)),
            },
            _ => None,
        }
    }

    /// `search_tools`: the caller's tools ranked for its query.
    async fn search_tools(
        &self,
        arguments: &JsonObject,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let Some(query) = arguments.get("query").and_then(Value::as_str) else {
            let problem = "search_tools needs `query`, a few words".to_owned();
            return Err(self.refuse(search::SEARCH_TOOLS, problem, context).await);
        };
        let limit = arguments.get("limit").and_then(Value::as_u64);
        let (ctx, who) = request_context(context);
        let found = (self.pipeline)
            .discover(&ctx, who, Assertions::default(), |view| {
                search::search(view, query, limit)
            })
            .await
            .map_err(|e| to_error_data(&e, &ctx.trace))?;
        let found = json!({ "tools": found });
        let mut result = CallToolResult::success(vec![ContentBlock::text(found.to_string())]);
        result.structured_content = Some(found);
        Ok(result.into())
    }

    /// Record a malformed call of the built-in `tool` and answer it.
    async fn refuse(
        &self,
        tool: &str,
        problem: String,
        context: &RequestContext<RoleServer>,
    ) -> ErrorData {
        let (ctx, who) = request_context(context);
        let error = PipelineError::InvalidRequest(problem);
        let error = (self.pipeline)
            .reject(&ctx, Action::Call, who, Some(tool), error)
            .await;
        to_error_data(&error, &ctx.trace)
    }
}
