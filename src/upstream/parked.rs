//! An initialize-era server asking a 2026-07-28 client for input.
//!
//! A server on an initialize-era session asks for sampling, elicitation or
//! roots during a call with a request on the call's stream, and waits for
//! the answer. A client on 2026-07-28 cannot take such a request (rmcp
//! refuses server-to-client requests on that revision); it takes an
//! `input_required` result and retries with its answers (SEP-2322). So the
//! control plane translates: the call is *parked* (its request to the
//! server stays open, the server's request waits for its answer), the client
//! gets `input_required` naming the server's request and a request state
//! that names the parked call (sealed on its way out, like any request
//! state), and its retry answers the waiting request and waits on the call
//! again: for its result, or for the server's next request.
//!
//! A parked call lives in this process (a retry must come back to the
//! replica that answered, as with every sealed state), for at most the
//! server's timeout, and at most [`MAX_PARKED`] per server: beyond either,
//! the server's request is refused and the call cancelled upstream.

// Sampling and roots are deprecated from the 2026-07-28 revision on
// (SEP-2577), but remain part of the revisions we serve.
#![allow(deprecated)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use rmcp::ErrorData;
use rmcp::model::{
    ClientCapabilities, ClientResult, CreateMessageResult, ElicitResult, ErrorCode, InputRequest,
    InputRequests, InputRequiredResult, InputResponses, ListRootsResult, ProgressToken, RequestId,
    ServerRequest, ServerResult,
};
use rmcp::service::ServiceError;
use tokio::sync::{mpsc, oneshot};

use super::CallSinks;
use super::cancel::CancelOnDrop;
use super::client::UpstreamClient;
use super::in_flight::Owned;
use super::progress::ProgressSink;
use super::relay::{Caller, Relay, can_answer};

/// Most calls parked on one server at once.
pub const MAX_PARKED: usize = 1000;

/// How a request state names a parked call.
const PREFIX: &str = "mcp-control-plane/parked/";

/// The key the server's request has in `inputRequests`.
const KEY: &str = "upstream";

/// A request the server made during the call, and where its answer goes.
pub type Ask = (
    ServerRequest,
    oneshot::Sender<Result<ClientResult, ErrorData>>,
);

/// A call in flight whose server may ask for input: its answer to come, the
/// requests it makes meanwhile, where what the server sends goes, and the
/// cancellation sent upstream if it is dropped unanswered.
pub struct Waiting {
    pub answer: BoxFuture<'static, Result<ServerResult, ServiceError>>,
    pub asks: mpsc::Receiver<Ask>,
    pub routes: Routes,
    pub cancel: CancelOnDrop,
    /// The first round's leased credential, held (never read) so the
    /// server may use it until the call ends, whichever round that is.
    pub _lease: Option<Arc<crate::credentials::Lease>>,
}

/// Where what a parked call's server sends goes: its requests to the
/// parking relay, its progress and logs to the current round's caller.
pub struct Routes {
    id: RequestId,
    token: ProgressToken,
    relay: Relay,
    progress: Option<Owned<ProgressToken, ProgressSink>>,
    caller: Option<Owned<RequestId, Caller>>,
}

impl Routes {
    /// The routes of our request `id` (progress token `token`), whose
    /// server's requests go to `asks` if the client, which declared
    /// `capabilities`, can answer them.
    pub fn new(
        id: RequestId,
        token: ProgressToken,
        asks: mpsc::Sender<Ask>,
        capabilities: Option<Arc<ClientCapabilities>>,
    ) -> Self {
        Self {
            id,
            token,
            relay: asking(asks, capabilities.unwrap_or_default()),
            progress: None,
            caller: None,
        }
    }

    /// Send what the server sends from now on to the round whose sinks
    /// are `sinks`.
    pub fn follow(&mut self, client: &UpstreamClient, sinks: &CallSinks) {
        // The old routes go first: they are keyed alike.
        self.progress = None;
        self.caller = None;
        self.progress = (sinks.progress.clone())
            .map(|sink| client.progress.register_owned(self.token.clone(), sink));
        let caller = Caller {
            relay: Some(self.relay.clone()),
            log: sinks.log.clone(),
        };
        self.caller = Some(client.relays.register_owned(self.id.clone(), caller));
    }
}

/// A relay that hands the server's request to the parked call's round; a
/// request the client did not declare it can answer gets the
/// specification's error at once.
fn asking(asks: mpsc::Sender<Ask>, capabilities: Arc<ClientCapabilities>) -> Relay {
    Arc::new(move |request| {
        let asks = asks.clone();
        let supported = can_answer(&capabilities, &request);
        Box::pin(async move {
            if !supported {
                return Err(refusal("the client does not support this request"));
            }
            let gone = || ErrorData::internal_error("the client did not answer in time", None);
            let (answer, answered) = oneshot::channel();
            if asks.send((request, answer)).await.is_err() {
                return Err(gone());
            }
            answered.await.unwrap_or_else(|_| Err(gone()))
        })
    })
}

/// What a parked call's next step brought.
// The answer is what nearly every call gets: not boxed, so it costs no
// allocation.
#[allow(clippy::large_enum_variant)]
pub enum Next {
    /// The server answered the call.
    Answer(Result<ServerResult, ServiceError>),
    /// The server asks for input: the client gets `input_required`.
    Asked(InputRequiredResult),
}

/// Why a retry could not continue a parked call.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error("no such parked call (it ended, timed out, or was never ours)")]
    Unknown,
    #[error("the retry does not answer the server's request as asked")]
    BadAnswer,
}

struct Parked {
    waiting: Waiting,
    request: ServerRequest,
    pending: oneshot::Sender<Result<ClientResult, ErrorData>>,
}

/// The calls parked on one server, by the id their request state names.
#[derive(Default)]
pub struct ParkedCalls {
    entries: Mutex<HashMap<String, Parked>>,
}

/// The parked call a request state names, if it names one.
pub fn named(request_state: Option<&str>) -> Option<&str> {
    request_state?.strip_prefix(PREFIX)
}

impl ParkedCalls {
    /// Wait for the call's answer or its server's next request; a request
    /// parks the call (for at most `limit`) and becomes `input_required`.
    pub async fn next(self: &Arc<Self>, mut waiting: Waiting, limit: Duration) -> Next {
        let ask = tokio::select! {
            answer = &mut waiting.answer => {
                waiting.cancel.disarm();
                return Next::Answer(answer);
            }
            Some(ask) = waiting.asks.recv() => ask,
        };
        let (request, pending) = ask;
        let Some(input) = input_request(&request) else {
            let _ = pending.send(Err(refusal("a request the client cannot be asked")));
            return Box::pin(self.next(waiting, limit)).await;
        };
        let id = format!("{:032x}", rand::random::<u128>());
        let parked = Parked {
            waiting,
            request,
            pending,
        };
        if let Err(parked) = self.park(id.clone(), parked) {
            let Parked {
                waiting, pending, ..
            } = *parked;
            let _ = pending.send(Err(refusal("too many calls wait for input")));
            return Box::pin(self.next(waiting, limit)).await;
        }
        // Unanswered in time, the call is dropped: the server's request is
        // refused and the call cancelled upstream.
        let calls = Arc::downgrade(self);
        let expiring = id.clone();
        tokio::spawn(async move {
            tokio::time::sleep(limit).await;
            if let Some(calls) = calls.upgrade() {
                calls.lock().remove(&expiring);
            }
        });
        let requests = InputRequests::from([(KEY.to_owned(), input)]);
        Next::Asked(InputRequiredResult::new(
            Some(requests),
            Some(format!("{PREFIX}{id}")),
        ))
    }

    /// Answer the parked call `id`'s waiting request with the client's
    /// `responses`; the call, waiting again.
    pub fn resume(
        &self,
        id: &str,
        responses: Option<InputResponses>,
    ) -> Result<Waiting, ResumeError> {
        let parked = self.lock().remove(id).ok_or(ResumeError::Unknown)?;
        let answer = responses
            .and_then(|mut responses| responses.remove(KEY))
            .and_then(|answer| client_result(&parked.request, answer));
        match answer {
            Some(answer) => {
                let _ = parked.pending.send(Ok(answer));
                Ok(parked.waiting)
            }
            None => {
                // Put back: the client may retry with a proper answer.
                self.lock().insert(id.to_owned(), parked);
                Err(ResumeError::BadAnswer)
            }
        }
    }

    /// Keep `parked` under `id`, unless [`MAX_PARKED`] calls already wait.
    fn park(&self, id: String, parked: Parked) -> Result<(), Box<Parked>> {
        let mut entries = self.lock();
        if entries.len() >= MAX_PARKED {
            return Err(Box::new(parked));
        }
        entries.insert(id, parked);
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Parked>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn refusal(message: &'static str) -> ErrorData {
    ErrorData::new(ErrorCode::METHOD_NOT_FOUND, message, None)
}

/// The server's request as an input request of `input_required`.
fn input_request(request: &ServerRequest) -> Option<InputRequest> {
    Some(match request {
        ServerRequest::CreateMessageRequest(request) => {
            InputRequest::CreateMessage(request.clone())
        }
        ServerRequest::ElicitRequest(request) => InputRequest::Elicitation(request.clone()),
        ServerRequest::ListRootsRequest(request) => InputRequest::ListRoots(request.clone()),
        _ => return None,
    })
}

/// The client's answer to `request`, read as that request's result.
fn client_result(request: &ServerRequest, answer: serde_json::Value) -> Option<ClientResult> {
    Some(match request {
        ServerRequest::CreateMessageRequest(_) => ClientResult::CreateMessageResult(Box::new(
            serde_json::from_value::<CreateMessageResult>(answer).ok()?,
        )),
        ServerRequest::ElicitRequest(_) => {
            ClientResult::ElicitResult(serde_json::from_value::<ElicitResult>(answer).ok()?)
        }
        ServerRequest::ListRootsRequest(_) => {
            ClientResult::ListRootsResult(serde_json::from_value::<ListRootsResult>(answer).ok()?)
        }
        _ => return None,
    })
}
