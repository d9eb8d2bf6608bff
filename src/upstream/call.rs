//! One `tools/call` (or any request) on an upstream session: bounded by
//! the server's timeout, cancelled upstream when the caller goes away, with
//! the server's progress notifications routed back to the caller.

// Logging is deprecated from the 2026-07-28 revision on (SEP-2577), but
// its per-request level remains part of that revision.
#![allow(deprecated)]

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientRequest, JsonObject, LoggingLevel, Request,
    RequestMetaObject, ResultType, ServerResult,
};
use rmcp::service::{PeerRequestOptions, ServiceError};

use super::cancel::CancelOnDrop;
use super::listen::per_request_metadata;
use super::parked::{self, Next, Routes, Waiting};
use super::relay::Caller;
use super::{CallSinks, Connection, Continuation, Outbound, Upstream, UpstreamError};

pub(super) async fn call_tool(
    upstream: &Upstream,
    tool: &str,
    arguments: JsonObject,
    continuation: Continuation,
    sinks: CallSinks,
    outbound: Outbound,
) -> Result<ServerResult, UpstreamError> {
    let connection = upstream.state.load_full();
    if connection.peer.is_some() && !connection.offered.tools.contains_key(tool) {
        return Err(UpstreamError::ToolUnavailable);
    }
    let timeout = outbound.time_limit(upstream.spec.timeout);
    if let Some(id) = parked::named(continuation.request_state.as_deref()) {
        let responses = continuation.input_responses;
        return resume(upstream, id, responses, sinks, timeout).await;
    }
    let mut params = CallToolRequestParams::new(tool.to_string()).with_arguments(arguments);
    params.input_responses = continuation.input_responses;
    params.request_state = continuation.request_state;
    let mut request = ClientRequest::CallToolRequest(Request::new(params));
    let mut sinks = sinks;
    sinks.lease = (outbound.credential.as_ref()).and_then(|credential| credential.lease());
    let capabilities = outbound.stamp(&mut request);
    match send(upstream, &connection, request, capabilities, sinks, timeout).await? {
        result @ (ServerResult::CallToolResult(_)
        | ServerResult::InputRequiredResult(_)
        | ServerResult::CreateTaskResult(_)) => Ok(result),
        other => {
            tracing::warn!(server = %upstream.spec.name, ?other, "upstream answered tools/call with another result type");
            Err(UpstreamError::InvalidAnswer)
        }
    }
}

/// Send one request on `connection` and wait for its answer. On a
/// 2026-07-28 session the request declares the calling client's
/// `capabilities` (each request declares its client's on that revision;
/// an initialize-era session declared ours once, at its start), and asks
/// for log messages when the caller takes them. It waits at most `timeout`.
pub(super) async fn send(
    upstream: &Upstream,
    connection: &Connection,
    request: ClientRequest,
    capabilities: Option<Arc<ClientCapabilities>>,
    sinks: CallSinks,
    timeout: std::time::Duration,
) -> Result<ServerResult, UpstreamError> {
    let peer = connection.peer.as_ref().ok_or(UpstreamError::Unavailable)?;
    let mut options = PeerRequestOptions::no_options();
    let modern = per_request_metadata(peer);
    if modern {
        let mut meta = RequestMetaObject::default();
        if let Some(capabilities) = &capabilities {
            meta.set_client_capabilities(ClientCapabilities::clone(capabilities));
        }
        // The caller's own level filters what it gets (see `LogSink`).
        if sinks.log.is_some() {
            meta.set_log_level(LoggingLevel::Debug);
        }
        options.meta = Some(meta);
    }
    let client = &upstream.client;
    let parks = sinks.parks && !modern;
    let exchange = async {
        let mut handle = peer.send_request_with_option(request, options).await?;
        if parks {
            let (asks_tx, asks) = tokio::sync::mpsc::channel(1);
            let id = handle.id.clone();
            let token = handle.progress_token.clone();
            let mut routes = Routes::new(id.clone(), token, asks_tx, capabilities);
            routes.follow(client, &sinks);
            let waiting = Waiting {
                answer: Box::pin(async move {
                    (handle.rx.await).unwrap_or(Err(ServiceError::TransportClosed))
                }),
                asks,
                routes,
                cancel: CancelOnDrop::new(peer, id),
                _lease: sinks.lease,
            };
            return Ok(next_of_parked(upstream, waiting).await);
        }
        // The session stamps its own progress token on every request; route
        // notifications carrying it to this call while it runs.
        let _progress = sinks.progress.map(|sink| {
            client
                .progress
                .register(handle.progress_token.clone(), sink)
        });
        let caller = Caller {
            relay: sinks.relay,
            log: sinks.log,
        };
        let _caller = (caller.relay.is_some() || caller.log.is_some())
            .then(|| client.relays.register(handle.id.clone(), caller));
        let mut abandoned = CancelOnDrop::new(peer, handle.id.clone());
        let response = (&mut handle.rx).await;
        abandoned.disarm();
        if _progress.is_some() || _caller.is_some() {
            // Progress and logs the server sent before its answer may still
            // be on their way (see `ordered`): route them before the routes
            // are removed.
            client.delivered.settle().await;
        }
        Ok(Next::Answer(
            response.unwrap_or(Err(ServiceError::TransportClosed)),
        ))
    };
    match tokio::time::timeout(timeout, exchange).await {
        Err(_elapsed) => Err(UpstreamError::Timeout),
        Ok(Err(error)) => judge(upstream, connection, Err(error)),
        Ok(Ok(Next::Asked(asked))) => Ok(ServerResult::InputRequiredResult(asked)),
        Ok(Ok(Next::Answer(answer))) => judge(upstream, connection, answer),
    }
}

/// A retry of a call parked for its client's input: answer the server's
/// waiting request with the client's `responses`, and wait on the call again.
pub(super) async fn resume(
    upstream: &Upstream,
    parked: &str,
    responses: Option<rmcp::model::InputResponses>,
    sinks: CallSinks,
    timeout: std::time::Duration,
) -> Result<ServerResult, UpstreamError> {
    let client = &upstream.client;
    let mut waiting = (client.parked.resume(parked, responses)).map_err(|problem| {
        // As a server refuses a request state it cannot use.
        tracing::debug!(server = %upstream.spec.name, %problem, "a retry of a parked call refused");
        UpstreamError::Rejected {
            code: rmcp::model::ErrorCode::INVALID_PARAMS.0,
            required: None,
        }
    })?;
    waiting.routes.follow(client, &sinks);
    match tokio::time::timeout(timeout, next_of_parked(upstream, waiting)).await {
        Err(_elapsed) => Err(UpstreamError::Timeout),
        Ok(Next::Asked(asked)) => Ok(ServerResult::InputRequiredResult(asked)),
        Ok(Next::Answer(answer)) => judge(upstream, &upstream.state.load_full(), answer),
    }
}

/// The next step of a call that may park: on its answer, the progress and
/// logs the server sent before it are routed first (see `ordered`), as for
/// any call; a request parks it for at most the server's timeout.
async fn next_of_parked(upstream: &Upstream, waiting: Waiting) -> Next {
    let client = &upstream.client;
    let next = client.parked.next(waiting, upstream.spec.timeout).await;
    if matches!(next, Next::Answer(_)) {
        client.delivered.settle().await;
    }
    next
}

/// What the server's answer (or its failure) means for the caller.
fn judge(
    upstream: &Upstream,
    connection: &Connection,
    answer: Result<ServerResult, ServiceError>,
) -> Result<ServerResult, UpstreamError> {
    match answer {
        Ok(mut result) => {
            mark_complete(&mut result);
            Ok(result)
        }
        Err(ServiceError::McpError(error)) => {
            let required = (error.data.as_ref())
                .and_then(|data| data.get("requiredCapabilities"))
                .and_then(|required| serde_json::from_value(required.clone()).ok())
                .map(Box::new);
            Err(UpstreamError::Rejected {
                code: error.code.0,
                required,
            })
        }
        Err(error) => {
            tracing::warn!(server = %upstream.spec.name, %error, "upstream request failed");
            connection.lost.cancel();
            Err(UpstreamError::Unavailable)
        }
    }
}

/// An answer from a server on an initialize-based revision carries no
/// `resultType`; the 2026-07-28 revision requires `"complete"` on a final
/// result. Mark it, so the answer suits every client revision (rmcp removes
/// the marker again for clients on older revisions).
fn mark_complete(result: &mut ServerResult) {
    let result_type = match result {
        ServerResult::CallToolResult(r) => &mut r.result_type,
        ServerResult::GetPromptResult(r) => &mut r.result_type,
        ServerResult::ReadResourceResult(r) => &mut r.result_type,
        ServerResult::CompleteResult(r) => &mut r.result_type,
        _ => return,
    };
    result_type.get_or_insert(ResultType::COMPLETE);
}
