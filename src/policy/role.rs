//! The role check: a target is allowed when the caller's role grants it.
//! An unknown target gets exactly the same refusal as a forbidden one, so an
//! agent cannot probe what exists.

use std::sync::Arc;
use std::time::Duration;

use crate::catalog::{Catalog, Route, ServerId};
use crate::identity::Caller;
use crate::uri::reveals_address;
use crate::vocabulary::Target;

/// An allowed target and where it goes.
#[derive(Debug, Clone)]
pub struct Authorized {
    pub server: ServerId,
    /// The tool's or prompt's name on its server, or the resource URI.
    pub upstream_name: Arc<str>,
    /// The catalog's public name of the tool, prompt or resource set.
    pub name: Arc<str>,
    /// A tool's own time limit, in place of its server's `timeout`.
    pub timeout: Option<Duration>,
    /// A tool's own limit on the size of its result.
    pub max_result_bytes: Option<usize>,
}

/// The refusal. It carries nothing about whether the target exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not permitted")]
pub struct NotPermitted {
    /// Refused by the policy's `visible` rule rather than the role (for
    /// the audit trail; the caller gets the same answer either way).
    pub by_policy: bool,
    /// What was refused (`tool`, `prompt`, `resource`), for the answer.
    pub what: &'static str,
}

impl NotPermitted {
    /// `what` refused by the caller's role.
    pub fn by_role(what: &'static str) -> Self {
        Self {
            by_policy: false,
            what,
        }
    }
}

/// Where `target` goes, if `caller`'s role may reach it through
/// `endpoint` (the whole catalog without one).
pub fn authorize(
    catalog: &Catalog,
    caller: &Caller,
    endpoint: Option<&str>,
    target: Target<'_>,
) -> Result<Authorized, NotPermitted> {
    let view = catalog
        .view(&caller.role, endpoint)
        .ok_or(NotPermitted::by_role(target.noun()))?;
    let routed = |route: Option<&Route>| {
        route.map(|r| Authorized {
            server: r.server,
            upstream_name: r.upstream_name.clone(),
            name: r.public_name.clone(),
            timeout: r.timeout,
            max_result_bytes: r.max_result_bytes,
        })
    };
    let authorized = match target {
        Target::Tool(name) if view.tools.allows(name) => routed(catalog.tool(name)),
        Target::Prompt(name) if view.prompts.allows(name) => routed(catalog.prompt(name)),
        Target::Resource(uri) if !reveals_address(uri) => {
            // The most specific set decides: a narrower set the role lacks
            // carves its URIs out of a broader one it has.
            catalog
                .resource_sets()
                .iter()
                .find(|set| uri.starts_with(&*set.prefix))
                .filter(|set| view.resources.allows(&set.name))
                .map(|set| Authorized {
                    server: set.server,
                    upstream_name: uri.into(),
                    name: set.name.clone(),
                    timeout: None,
                    max_result_bytes: None,
                })
        }
        _ => None,
    };
    authorized.ok_or(NotPermitted::by_role(target.noun()))
}

/// What the catalog knows of a target, whoever asks: for the audit trail
/// and the metrics only.
#[derive(Debug, Clone)]
pub struct Located {
    pub server: ServerId,
    /// The catalog's public name of the tool, prompt or resource set: a
    /// bounded label, unlike the name the caller sent.
    pub name: Arc<str>,
}

/// Where a target would go, whoever asks (for one the caller may not reach).
pub fn locate(catalog: &Catalog, target: Target<'_>) -> Option<Located> {
    let routed = |route: &Route| Located {
        server: route.server,
        name: route.public_name.clone(),
    };
    match target {
        Target::Tool(name) => catalog.tool(name).map(routed),
        Target::Prompt(name) => catalog.prompt(name).map(routed),
        Target::Resource(uri) => catalog
            .resource_sets()
            .iter()
            .find(|set| uri.starts_with(&*set.prefix))
            .map(|set| Located {
                server: set.server,
                name: set.name.clone(),
            }),
    }
}
