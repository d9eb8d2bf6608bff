//! Discovery: what a caller may see.
//!
//! A caller sees the public names of its role's tools, and on request their
//! definitions (description and input schema as the upstream declares them,
//! renamed to the public name). Nothing here can carry a server name, URL or
//! command: the types simply have no field for them.

use std::sync::Arc;

use std::borrow::Cow;

use rmcp::model::Tool;

use crate::catalog::Catalog;
use crate::identity::Caller;
use crate::upstream::UpstreamPool;

/// The public names of the tools `caller` may use, sorted.
pub fn visible_tools<'c>(catalog: &'c Catalog, caller: &Caller) -> &'c [Arc<str>] {
    catalog
        .role_view(&caller.role)
        .map(|view| view.tools())
        .unwrap_or_default()
}

/// Definitions of the visible tools whose servers currently offer them, as
/// the servers declare them but under their public names. Only what an agent
/// needs to call a tool is kept: name, title, description, input and output
/// schemas and annotations. Icons and `_meta` are dropped, as they may point
/// at an upstream's address.
pub fn definitions(catalog: &Catalog, upstreams: &UpstreamPool, caller: &Caller) -> Vec<Tool> {
    visible_tools(catalog, caller)
        .iter()
        .filter_map(|name| {
            let route = catalog.tool(name)?;
            let upstream = upstreams.tool_definition(route)?;
            let description = match &route.description {
                Some(description) => Some(Cow::Owned(description.to_string())),
                None => upstream.description,
            };
            let mut tool = Tool::new_with_raw(
                route.public_name.to_string(),
                description,
                upstream.input_schema,
            );
            tool.title = upstream.title;
            tool.output_schema = upstream.output_schema;
            tool.annotations = upstream.annotations;
            Some(tool)
        })
        .collect()
}
