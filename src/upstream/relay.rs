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

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::future::BoxFuture;
use rmcp::ErrorData;
use rmcp::model::{ClientResult, LoggingMessageNotificationParam, RequestId, ServerRequest};
use rmcp::service::InboundStreamOrigin;

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
#[derive(Default)]
pub struct Relays {
    by_request: Mutex<HashMap<RequestId, Caller>>,
}

impl Relays {
    /// Relay requests tied to `request` until the guard is dropped.
    pub fn register(&self, request: RequestId, caller: Caller) -> Registration<'_> {
        self.lock().insert(request.clone(), caller);
        Registration {
            relays: self,
            request,
        }
    }

    /// The call an upstream request belongs to, judged by the stream it came on.
    pub fn find(&self, origin: Option<&InboundStreamOrigin>) -> Option<Caller> {
        let relays = self.lock();
        match origin {
            Some(InboundStreamOrigin::OutboundRequest(id)) => relays.get(id).cloned(),
            Some(InboundStreamOrigin::Unassociated) => None,
            None if relays.len() == 1 => relays.values().next().cloned(),
            None => None,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<RequestId, Caller>> {
        self.by_request
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

pub struct Registration<'a> {
    relays: &'a Relays,
    request: RequestId,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.relays.lock().remove(&self.request);
    }
}
