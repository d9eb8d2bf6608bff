//! Requests an upstream sends back while serving a call (sampling,
//! elicitation, roots) are relayed to the client that made that call, and
//! only to it; the client's answer goes back to the upstream. Log messages
//! the server sends during the call go the same way, where the catalog
//! allows it.
//!
//! Over Streamable HTTP the upstream's request arrives on the response
//! stream of our call, which names the call. Over stdio nothing names it, so
//! it is relayed only when exactly one call is in flight on that server, and
//! refused otherwise, never guessed.

// Logging is deprecated from the 2026-07-28 revision on (SEP-2577), but
// remains part of the revisions we serve.
#![allow(deprecated)]

use std::sync::Arc;

use futures::future::BoxFuture;
use rmcp::ErrorData;
use rmcp::model::{
    ClientCapabilities, ClientResult, LoggingMessageNotificationParam, RequestId, ServerRequest,
};
use rmcp::service::InboundStreamOrigin;

use super::in_flight::InFlight;

/// Forwards one upstream request to the calling client.
pub type Relay =
    Arc<dyn Fn(ServerRequest) -> BoxFuture<'static, Result<ClientResult, ErrorData>> + Send + Sync>;

/// Delivers one upstream log message to the calling client.
pub type LogSink = Arc<dyn Fn(LoggingMessageNotificationParam) + Send + Sync>;

/// The way back to the client of one call.
#[derive(Clone)]
pub struct Caller {
    pub relay: Option<Relay>,
    pub log: Option<LogSink>,
}

/// The calls in flight on one server that can take relayed requests, by the
/// id of our request to the server.
pub type Relays = InFlight<RequestId, Caller>;

/// The call an upstream request belongs to, judged by the stream it came on.
pub fn find(relays: &Relays, origin: Option<&InboundStreamOrigin>) -> Option<Caller> {
    relays.with(|callers| match origin {
        Some(InboundStreamOrigin::OutboundRequest(id)) => callers.get(id).cloned(),
        Some(InboundStreamOrigin::Unassociated) => None,
        None if callers.len() == 1 => callers.values().next().cloned(),
        None => None,
    })
}

/// Whether a client with `capabilities` can be asked `request` (sampling,
/// elicitation and roots each need the client to have declared them).
pub fn can_answer(capabilities: &ClientCapabilities, request: &ServerRequest) -> bool {
    match request {
        ServerRequest::CreateMessageRequest(_) => capabilities.sampling.is_some(),
        ServerRequest::ElicitRequest(_) => capabilities.elicitation.is_some(),
        ServerRequest::ListRootsRequest(_) => capabilities.roots.is_some(),
        _ => false,
    }
}
