//! Discovery: what a caller may see.
//!
//! A caller sees the tools, prompts and resources its role grants (and the
//! policy's `visible` rule shows), as the servers declare them but under
//! public names. Nothing here can carry a
//! server name, URL or command: definitions keep only what an agent needs
//! (icons and `_meta`, which may point at an upstream, are dropped), and a
//! resource whose URI would reveal an address is never listed.

pub mod quarantine;
pub mod search;

use std::borrow::Cow;
use std::sync::Arc;

use rmcp::model::{JsonObject, Prompt, Resource, ResourceTemplate, Tool, ToolAnnotations};
use serde_json::{Value, json};

use crate::catalog::{Catalog, Grants, RoleView, Route, Routing};
use crate::guardrails::pins::Pinned;
use crate::identity::Caller;
use crate::upstream::Upstreams;
use crate::vocabulary::Target;

/// What discovery works from: the catalog, what the servers offer, the
/// verified caller, and whether the policy shows a granted target.
pub struct View<'a> {
    pub catalog: &'a Catalog,
    pub upstreams: &'a Upstreams,
    pub caller: &'a Caller,
    /// The virtual endpoint listed, if any: it narrows the role's view.
    pub endpoint: Option<&'a str>,
    /// The policy's `visible` rule for a tool or prompt the role grants.
    pub shows: &'a dyn Fn(Target<'_>) -> bool,
}

impl View<'_> {
    /// The granted names of one kind that the policy shows, sorted.
    fn shown(
        &self,
        pick: fn(&RoleView) -> &Grants,
        target: fn(&str) -> Target<'_>,
    ) -> Vec<Arc<str>> {
        let granted = self
            .catalog
            .view(&self.caller.role, self.endpoint)
            .map(|view| pick(view).names())
            .unwrap_or_default();
        granted
            .iter()
            .filter(|name| (self.shows)(target(name)))
            .cloned()
            .collect()
    }
}

/// The public names of the tools the caller may use, sorted (a tool the
/// lock of pinned definitions quarantines is not among them).
pub fn visible_tools(view: &View<'_>) -> Vec<Arc<str>> {
    let mut names = view.shown(|role| &role.tools, |name| Target::Tool(name));
    if view.catalog.pinning().is_some() {
        names.retain(|name| {
            (view.catalog.tool(name)).is_none_or(|route| {
                !quarantine::withheld(view.catalog, view.upstreams, Pinned::Tool, route)
            })
        });
    }
    names
}

/// The operator's description if set, else the server's.
fn description(route: &Route, upstream: Option<Cow<'static, str>>) -> Option<Cow<'static, str>> {
    match &route.description {
        Some(description) => Some(Cow::Owned(description.to_string())),
        None => upstream,
    }
}

/// The server's hints with each one the catalog sets replaced.
fn annotations(route: &Route, upstream: Option<ToolAnnotations>) -> Option<ToolAnnotations> {
    let ours = route.annotations;
    if ours == Default::default() {
        return upstream;
    }
    let mut merged = upstream.unwrap_or_default();
    merged.read_only_hint = ours.read_only_hint.or(merged.read_only_hint);
    merged.destructive_hint = ours.destructive_hint.or(merged.destructive_hint);
    merged.idempotent_hint = ours.idempotent_hint.or(merged.idempotent_hint);
    merged.open_world_hint = ours.open_world_hint.or(merged.open_world_hint);
    Some(merged)
}

/// Definitions of the visible tools whose servers currently offer them.
pub fn definitions(view: &View<'_>) -> Vec<Tool> {
    visible_tools(view)
        .iter()
        .filter_map(|name| {
            let route = view.catalog.tool(name)?;
            let upstream = view
                .upstreams
                .offered(route.server)
                .tools
                .get(&*route.upstream_name)?
                .clone();
            let mut tool = Tool::new_with_raw(
                route.public_name.to_string(),
                description(route, upstream.description),
                upstream.input_schema,
            );
            tool.title = (route.title.as_deref().map(str::to_owned)).or(upstream.title);
            tool.output_schema = match route.routing {
                Routing::FanOut(_) => fan_out_schema(view, route),
                _ => upstream.output_schema,
            };
            tool.annotations = annotations(route, upstream.annotations);
            Some(tool)
        })
        .collect()
}

/// A fan-out's structured result is an object keyed by server (a leg
/// that failed is absent): its schema, from each leg's own, if any leg
/// declares one.
fn fan_out_schema(view: &View<'_>, route: &Route) -> Option<Arc<JsonObject>> {
    let mut properties = serde_json::Map::new();
    for leg in route.legs.iter() {
        let offered = view.upstreams.offered(leg.server);
        let declared = offered.tools.get(&*leg.upstream_name);
        if let Some(schema) = declared.and_then(|tool| tool.output_schema.as_ref()) {
            let server = view.catalog.server(leg.server).name.to_string();
            properties.insert(server, Value::Object(JsonObject::clone(schema)));
        }
    }
    if properties.is_empty() {
        return None;
    }
    let schema = json!({"type": "object", "properties": properties});
    schema.as_object().cloned().map(Arc::new)
}

/// The visible prompts whose servers currently offer them.
pub fn prompts(view: &View<'_>) -> Vec<Prompt> {
    view.shown(|role| &role.prompts, |name| Target::Prompt(name))
        .iter()
        .filter_map(|name| {
            let route = view.catalog.prompt(name)?;
            if quarantine::withheld(view.catalog, view.upstreams, Pinned::Prompt, route) {
                return None;
            }
            let upstream = view
                .upstreams
                .offered(route.server)
                .prompts
                .get(&*route.upstream_name)?
                .clone();
            let mut prompt = Prompt::new(
                route.public_name.to_string(),
                description(route, upstream.description.map(Cow::Owned)),
                upstream.arguments,
            );
            prompt.title = upstream.title;
            Some(prompt)
        })
        .collect()
}

/// The resources of every visible set, as their servers list them.
pub fn resources(view: &View<'_>) -> Vec<Resource> {
    visible_in_sets(view, |offered| &offered.resources, |r| &r.uri)
}

/// The resource templates of every visible set.
pub fn resource_templates(view: &View<'_>) -> Vec<ResourceTemplate> {
    visible_in_sets(view, |offered| &offered.templates, |t| &t.uri_template)
}

/// Items of the caller's resource sets whose URI the caller could read.
fn visible_in_sets<T: Clone>(
    view: &View<'_>,
    items: fn(&crate::upstream::Offered) -> &Vec<T>,
    uri: fn(&T) -> &String,
) -> Vec<T> {
    let View {
        catalog,
        caller,
        endpoint,
        ..
    } = *view;
    let Some(role) = catalog.view(&caller.role, endpoint) else {
        return Vec::new();
    };
    let mut seen = std::collections::HashSet::new();
    let mut visible = Vec::new();
    for set in catalog.resource_sets() {
        if !role.resources.allows(&set.name) {
            continue;
        }
        let offered = view.upstreams.offered(set.server);
        for item in items(&offered) {
            let uri = uri(item);
            let readable = uri.starts_with(&*set.prefix)
                && crate::policy::authorize(catalog, caller, endpoint, Target::Resource(uri))
                    .is_ok_and(|a| a.server == set.server);
            if readable && seen.insert(uri.clone()) {
                visible.push(item.clone());
            }
        }
    }
    visible
}
