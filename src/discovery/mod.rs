//! Discovery: what a caller may see.
//!
//! A caller sees the public names of its role's tools, and on request their
//! definitions (description and input schema as the upstream declares them,
//! renamed to the public name). Nothing here can carry a server name, URL or
//! command: the types simply have no field for them.

use std::sync::Arc;

use rmcp::model::JsonObject;
use serde::Serialize;

use crate::catalog::Catalog;
use crate::identity::Caller;
use crate::upstream::UpstreamPool;

/// A tool as an agent sees it.
#[derive(Debug, Clone, Serialize)]
pub struct ToolDefinition {
    pub name: Arc<str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub input_schema: Arc<JsonObject>,
}

/// The public names of the tools `caller` may use, sorted.
pub fn visible_tools<'c>(catalog: &'c Catalog, caller: &Caller) -> &'c [Arc<str>] {
    catalog
        .role_view(&caller.role)
        .map(|view| view.tools())
        .unwrap_or_default()
}

/// Definitions of the visible tools whose servers currently offer them.
pub fn definitions(
    catalog: &Catalog,
    upstreams: &UpstreamPool,
    caller: &Caller,
) -> Vec<ToolDefinition> {
    visible_tools(catalog, caller)
        .iter()
        .filter_map(|name| {
            let route = catalog.tool(name)?;
            let upstream = upstreams.tool_definition(route)?;
            Some(ToolDefinition {
                name: route.public_name.clone(),
                description: route
                    .description
                    .as_deref()
                    .map(str::to_string)
                    .or_else(|| upstream.description.map(|d| d.into_owned())),
                input_schema: upstream.input_schema,
            })
        })
        .collect()
}
