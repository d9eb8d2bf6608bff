//! Requests an upstream sends back while serving a call (sampling,
//! elicitation, roots) are relayed to the client that made that call, and
//! only to it; the client's answer goes back to the upstream.
//!
//! Over Streamable HTTP the upstream's request arrives on the response
//! stream of our call, which names the call. Over stdio nothing names it, so
//! it is relayed only when exactly one call is in flight on that server, and
//! refused otherwise, never guessed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::future::BoxFuture;
use rmcp::ErrorData;
use rmcp::model::{ClientResult, RequestId, ServerRequest};
use rmcp::service::InboundStreamOrigin;

/// Forwards one upstream request to the calling client.
pub type Relay =
    Arc<dyn Fn(ServerRequest) -> BoxFuture<'static, Result<ClientResult, ErrorData>> + Send + Sync>;

/// The calls in flight on one server that can take relayed requests, by the
/// id of our request to the server.
#[derive(Default)]
pub struct Relays {
    by_request: Mutex<HashMap<RequestId, Relay>>,
}

impl Relays {
    /// Relay requests tied to `request` until the guard is dropped.
    pub fn register(&self, request: RequestId, relay: Relay) -> Registration<'_> {
        self.lock().insert(request.clone(), relay);
        Registration {
            relays: self,
            request,
        }
    }

    /// The call an upstream request belongs to, judged by the stream it came on.
    pub fn find(&self, origin: Option<&InboundStreamOrigin>) -> Option<Relay> {
        let relays = self.lock();
        match origin {
            Some(InboundStreamOrigin::OutboundRequest(id)) => relays.get(id).cloned(),
            Some(InboundStreamOrigin::Unassociated) => None,
            None if relays.len() == 1 => relays.values().next().cloned(),
            None => None,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<RequestId, Relay>> {
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
