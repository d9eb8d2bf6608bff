//! upstream_meta: on the way back from each leg, first of all, a tool
//! result loses the `_meta` keys a server may not set: the control plane's
//! own namespace (`mcp-control-plane/...`, which agents and policies read
//! as ours: the server a fan-out leg came from, the legs' outcomes), and
//! those the catalog names for the server (`servers.<name>.drop_meta`).

use futures::future::BoxFuture;
use rmcp::model::ServerResult;

use crate::pipeline::Exchange;
use crate::pipeline::stage::{Answer, Stage};

/// The control plane's own `_meta` namespace.
const OURS: &str = "mcp-control-plane/";

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
    let (Ok(ServerResult::CallToolResult(result)), Some(to)) = (answer, &exchange.authorized)
    else {
        return;
    };
    let named = &exchange.snapshot.catalog.server(to.server).drop_meta;
    let dropped = |key: &str| {
        key.starts_with(OURS)
            || (named.iter()).any(|n| n == key || (n.ends_with('/') && key.starts_with(&**n)))
    };
    if let Some(meta) = &mut result.meta {
        meta.retain(|key, _| !dropped(key));
        if meta.is_empty() {
            result.meta = None;
        }
    }
}
