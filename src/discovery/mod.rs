//! Discovery: what a caller may see.
//!
//! A caller sees the tools, prompts and resources its role grants, as the
//! servers declare them but under public names. Nothing here can carry a
//! server name, URL or command: definitions keep only what an agent needs
//! (icons and `_meta`, which may point at an upstream, are dropped), and a
//! resource whose URI would reveal an address is never listed.

use std::borrow::Cow;
use std::sync::Arc;

use rmcp::model::{Prompt, Resource, ResourceTemplate, Tool};

use crate::catalog::{Catalog, Grants, Route};
use crate::identity::Caller;
use crate::upstream::UpstreamPool;

/// URI schemes that name a network or file location.
const ADDRESS_SCHEMES: &[&str] = &[
    "http", "https", "ws", "wss", "file", "ftp", "sftp", "ssh", "tcp", "udp", "unix", "smb", "nfs",
];

/// Whether `uri` would tell an agent where something lives: an address
/// scheme, or an authority with a port, user info or an IP address.
pub fn reveals_address(uri: &str) -> bool {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return false;
    };
    if ADDRESS_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()) {
        return true;
    }
    let Some(after) = rest.strip_prefix("//") else {
        return false;
    };
    let authority = after.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    authority.contains('@')
        || host.parse::<std::net::IpAddr>().is_ok()
        || authority
            .rsplit_once(':')
            .is_some_and(|(_, port)| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
}

fn grants<'c>(
    catalog: &'c Catalog,
    caller: &Caller,
    pick: fn(&crate::catalog::RoleView) -> &Grants,
) -> &'c [Arc<str>] {
    catalog
        .role_view(&caller.role)
        .map(|view| pick(view).names())
        .unwrap_or_default()
}

/// The public names of the tools `caller` may use, sorted.
pub fn visible_tools<'c>(catalog: &'c Catalog, caller: &Caller) -> &'c [Arc<str>] {
    grants(catalog, caller, |view| &view.tools)
}

/// The operator's description if set, else the server's.
fn description(route: &Route, upstream: Option<Cow<'static, str>>) -> Option<Cow<'static, str>> {
    match &route.description {
        Some(description) => Some(Cow::Owned(description.to_string())),
        None => upstream,
    }
}

/// Definitions of the visible tools whose servers currently offer them.
pub fn definitions(catalog: &Catalog, upstreams: &UpstreamPool, caller: &Caller) -> Vec<Tool> {
    visible_tools(catalog, caller)
        .iter()
        .filter_map(|name| {
            let route = catalog.tool(name)?;
            let upstream = upstreams
                .offered(route.server)
                .tools
                .get(&*route.upstream_name)?
                .clone();
            let mut tool = Tool::new_with_raw(
                route.public_name.to_string(),
                description(route, upstream.description),
                upstream.input_schema,
            );
            tool.title = upstream.title;
            tool.output_schema = upstream.output_schema;
            tool.annotations = upstream.annotations;
            Some(tool)
        })
        .collect()
}

/// The visible prompts whose servers currently offer them.
pub fn prompts(catalog: &Catalog, upstreams: &UpstreamPool, caller: &Caller) -> Vec<Prompt> {
    grants(catalog, caller, |view| &view.prompts)
        .iter()
        .filter_map(|name| {
            let route = catalog.prompt(name)?;
            let upstream = upstreams
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
pub fn resources(catalog: &Catalog, upstreams: &UpstreamPool, caller: &Caller) -> Vec<Resource> {
    visible_in_sets(
        catalog,
        upstreams,
        caller,
        |offered| &offered.resources,
        |r| &r.uri,
    )
}

/// The resource templates of every visible set.
pub fn resource_templates(
    catalog: &Catalog,
    upstreams: &UpstreamPool,
    caller: &Caller,
) -> Vec<ResourceTemplate> {
    visible_in_sets(
        catalog,
        upstreams,
        caller,
        |offered| &offered.templates,
        |t| &t.uri_template,
    )
}

/// Items of the caller's resource sets whose URI the caller could read.
fn visible_in_sets<T: Clone>(
    catalog: &Catalog,
    upstreams: &UpstreamPool,
    caller: &Caller,
    items: fn(&crate::upstream::Offered) -> &Vec<T>,
    uri: fn(&T) -> &String,
) -> Vec<T> {
    let Some(view) = catalog.role_view(&caller.role) else {
        return Vec::new();
    };
    let mut seen = std::collections::HashSet::new();
    let mut visible = Vec::new();
    for set in catalog.resource_sets() {
        if !view.resources.allows(&set.name) {
            continue;
        }
        let offered = upstreams.offered(set.server);
        for item in items(&offered) {
            let uri = uri(item);
            let readable = uri.starts_with(&*set.prefix)
                && crate::policy::authorize(catalog, caller, crate::policy::Target::Resource(uri))
                    .is_ok_and(|a| a.server == set.server);
            if readable && seen.insert(uri.clone()) {
                visible.push(item.clone());
            }
        }
    }
    visible
}

#[cfg(test)]
mod tests {
    use super::reveals_address;

    #[test]
    fn address_revealing_uris_are_recognised() {
        for uri in [
            "http://10.0.0.5/x",
            "HTTPS://internal.example/x",
            "file:///etc/passwd",
            "db://10.0.0.5/positions",
            "notes://svc.internal:8443/x",
            "notes://user@host/x",
            "notes://[::1]/x",
        ] {
            assert!(reveals_address(uri), "{uri}");
        }
        for uri in [
            "research://notes/daily",
            "urn:isbn:123",
            "memo://desk/equities",
            "positions",
        ] {
            assert!(!reveals_address(uri), "{uri}");
        }
    }
}
