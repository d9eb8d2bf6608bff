//! upstream_meta: on the way back from each leg, first of all, a result
//! (of a tool, a prompt, a resource read, a completion, a task, a request
//! for input) loses the `_meta` keys a server may not pass on: the control
//! plane's own namespace (`mcp-control-plane/...`, which agents and
//! policies read as ours: the server a fan-out leg came from, the legs'
//! outcomes); what identifies the server (the specification's
//! `io.modelcontextprotocol/serverInfo`, which 2026-07-28 servers put in
//! every result: agents never learn which servers exist); and those the
//! catalog names for the server (`servers.<name>.drop_meta`).

use futures::future::BoxFuture;
use rmcp::model::{MetaObject, ServerResult};

use crate::pipeline::Exchange;
use crate::pipeline::stage::{Answer, Stage};

/// The control plane's own `_meta` namespace.
const OURS: &str = "mcp-control-plane/";

/// Where a server names itself (name, version) in a result's `_meta`.
const SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";

pub struct UpstreamMeta;

impl Stage for UpstreamMeta {
    fn name(&self) -> &'static str {
        "upstream_meta"
    }

    fn response<'a, 'e>(
        &'a self,
        exchange: &'a mut Exchange<'e>,
        answer: &'a mut Answer,
    ) -> BoxFuture<'a, ()> {
        strip(exchange, answer);
        Box::pin(std::future::ready(()))
    }
}

fn strip(exchange: &Exchange<'_>, answer: &mut Answer) {
    let (Ok(result), Some(to)) = (answer, &exchange.authorized) else {
        return;
    };
    let Some(meta) = meta_of(result) else {
        return;
    };
    let named = &exchange.snapshot.catalog.server(to.server).drop_meta;
    let dropped = |key: &str| {
        key.starts_with(OURS)
            || key == SERVER_INFO
            || (named.iter()).any(|n| n == key || (n.ends_with('/') && key.starts_with(&**n)))
    };
    if let Some(kept) = meta {
        kept.retain(|key, _| !dropped(key));
        if kept.is_empty() {
            *meta = None;
        }
    }
}

/// The `_meta` of a result a server sends for a request (listings are the
/// control plane's own, built without the servers' `_meta`).
fn meta_of(result: &mut ServerResult) -> Option<&mut Option<MetaObject>> {
    match result {
        ServerResult::CallToolResult(result) => Some(&mut result.meta),
        ServerResult::GetPromptResult(result) => Some(&mut result.meta),
        ServerResult::ReadResourceResult(result) => Some(&mut result.meta),
        ServerResult::CompleteResult(result) => Some(&mut result.meta),
        ServerResult::InputRequiredResult(result) => Some(&mut result.meta),
        ServerResult::CreateTaskResult(result) => Some(&mut result.meta),
        ServerResult::GetTaskResult(result) => Some(&mut result.meta),
        _ => None,
    }
}
