//! Where a public tool's calls go: one server, one of weighted targets,
//! or every server of a fan-out; and whether a failed call may be tried
//! again. Compiled from a tool's `server`/`targets`/`servers`,
//! `idempotent` and `retry` settings.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{FanOutMode, Idempotent, ToolConfig};
use crate::router::retry::Backoff;
use crate::router::split::Split;

use super::ServerId;

/// One server a tool's calls may go to, with the tool's name there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leg {
    pub server: ServerId,
    pub upstream_name: Arc<str>,
}

/// How a tool's calls are routed beyond its route's first server.
#[derive(Debug, Clone, Default)]
pub enum Routing {
    /// To the route's `server`, always.
    #[default]
    One,
    /// To one of weighted targets per call.
    Split(Arc<Split<Leg>>),
    /// To every one of the route's legs at once, merged into one answer.
    FanOut(FanOutMode),
}

/// When a tool's failed calls are tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub backoff: Backoff,
    /// Only where the server's own annotations call the tool idempotent.
    pub only_if_hinted: bool,
}

/// Every server `tool` (public name `name`) routes to, in catalog order,
/// and how calls are spread over them.
pub fn compile(
    name: &str,
    tool: &ToolConfig,
    server_ids: &HashMap<&str, ServerId>,
) -> (Vec<Leg>, Routing) {
    let default_name = tool.upstream_name.as_deref().unwrap_or(name);
    let leg = |(server, upstream): (&str, Option<&str>)| Leg {
        server: server_ids[server],
        upstream_name: upstream.unwrap_or(default_name).into(),
    };
    let legs: Vec<Leg> = tool.legs().into_iter().map(leg).collect();
    let routing = if !tool.targets.is_empty() {
        let weighted = (legs.iter().cloned()).zip(tool.targets.iter().map(|t| t.weight));
        Routing::Split(Arc::new(Split::new(weighted, tool.sticky)))
    } else if !tool.servers.is_empty() {
        Routing::FanOut(tool.mode)
    } else {
        Routing::One
    };
    (legs, routing)
}

/// The retry settings of `tool`, if it may be retried at all.
pub fn retry(tool: &ToolConfig) -> Option<Retry> {
    let only_if_hinted = match tool.idempotent {
        Idempotent::No => return None,
        Idempotent::Yes => false,
        Idempotent::Hint => true,
    };
    Some(Retry {
        backoff: Backoff::from(tool.retry.unwrap_or_default()),
        only_if_hinted,
    })
}
