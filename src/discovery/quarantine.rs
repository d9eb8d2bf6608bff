//! Which tools and prompts the lock of pinned definitions quarantines
//! ([`crate::guardrails::pins`]): one a server now serves differently from
//! its pin, or that the lock does not know. Under `pinning: enforce` it is
//! not listed and its calls are refused; under `warn` it is served, and
//! logged and recorded.

use std::sync::Arc;

use serde::Serialize;

use crate::catalog::{Catalog, Route};
use serde_json::Value;

use crate::guardrails::pins::{self, Pinned, PinningMode, Verdict};
use crate::upstream::Upstreams;

/// One quarantined tool or prompt, for `/readyz` and the metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quarantined {
    pub kind: Pinned,
    pub name: Arc<str>,
    pub server: Arc<str>,
    /// `changed` or `unknown`.
    pub verdict: Verdict,
}

/// How `route` (of `kind`) stands against the lock: the verdict of its
/// first server whose definition is not as pinned, if any. Without a lock
/// (or with `pinning: off`) nothing is quarantined; a server that does not
/// serve the tool now has nothing to judge.
pub fn verdict(
    catalog: &Catalog,
    upstreams: &Upstreams,
    kind: Pinned,
    route: &Route,
) -> Option<(PinningMode, Verdict, Arc<str>)> {
    let pinning = catalog.pinning()?;
    for leg in route.legs.iter() {
        let offered = upstreams.offered(leg.server);
        let digests = match kind {
            Pinned::Tool => &offered.digests.tools,
            Pinned::Prompt => &offered.digests.prompts,
        };
        let Some(served) = digests.get(&*leg.upstream_name) else {
            continue;
        };
        let server = &catalog.server(leg.server).name;
        let verdict = pinning.verdict(kind, &route.public_name, server, served);
        if verdict != Verdict::Pinned {
            return Some((pinning.mode, verdict, server.clone()));
        }
    }
    None
}

/// What each server of `route` serves for it now, as pinned: the server,
/// its name there and the definition (servers that do not serve it are
/// left out).
pub fn served(
    catalog: &Catalog,
    upstreams: &Upstreams,
    kind: Pinned,
    route: &Route,
) -> Vec<(Arc<str>, Arc<str>, Value)> {
    (route.legs.iter())
        .filter_map(|leg| {
            let offered = upstreams.offered(leg.server);
            let definition = match kind {
                Pinned::Tool => (offered.tools.get(&*leg.upstream_name)).map(pins::tool_definition),
                Pinned::Prompt => {
                    (offered.prompts.get(&*leg.upstream_name)).map(pins::prompt_definition)
                }
            }?;
            let server = catalog.server(leg.server).name.clone();
            Some((server, leg.upstream_name.clone(), definition))
        })
        .collect()
}

/// Whether `route` is withheld: quarantined under `pinning: enforce`.
pub fn withheld(catalog: &Catalog, upstreams: &Upstreams, kind: Pinned, route: &Route) -> bool {
    matches!(
        verdict(catalog, upstreams, kind, route),
        Some((PinningMode::Enforce, _, _))
    )
}

/// Every tool and prompt not as pinned, sorted by name.
pub fn all(catalog: &Catalog, upstreams: &Upstreams) -> Vec<Quarantined> {
    if catalog.pinning().is_none() {
        return Vec::new();
    }
    let tools = catalog.tools().map(|route| (Pinned::Tool, route));
    let prompts = catalog.prompts().map(|route| (Pinned::Prompt, route));
    let mut all: Vec<Quarantined> = (tools.chain(prompts))
        .filter_map(|(kind, route)| {
            let (_, verdict, server) = verdict(catalog, upstreams, kind, route)?;
            Some(Quarantined {
                kind,
                name: route.public_name.clone(),
                server,
                verdict,
            })
        })
        .collect();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    all
}
