//! The way back to the caller of a call: what an upstream sends while
//! serving it (progress, and requests for sampling, elicitation or roots)
//! reaches the client that made the call, on that call's stream.

// Sampling and roots are deprecated from the 2026-07-28 revision on
// (SEP-2577), but remain part of the revisions we serve.
#![allow(deprecated)]

use std::sync::Arc;

use rmcp::model::{
    ErrorCode, GetExtensions, ProgressNotificationParam, ProgressToken, ServerRequest,
};
use rmcp::service::{OriginatingRequestId, RequestContext, ServiceError};
use rmcp::{ErrorData, RoleServer};

use crate::upstream::{Relay, can_answer};

/// Send an upstream's progress to the caller, under the caller's token.
pub(super) async fn forward_progress(
    context: &RequestContext<RoleServer>,
    client_token: Option<&ProgressToken>,
    mut progress: ProgressNotificationParam,
) {
    if let Some(client_token) = client_token {
        progress.progress_token = client_token.clone();
        let _ = context.peer.notify_progress(progress).await;
    }
}

/// Relay what an upstream asks during a call (sampling, elicitation, roots)
/// to the client that made the call, on that call's stream. A client that did
/// not declare the capability gets the spec's error instead of a hang.
pub(super) fn relay_to(context: &RequestContext<RoleServer>) -> Relay {
    let peer = context.peer.clone();
    let capabilities = context.client_capabilities().unwrap_or_default();
    let call = context.id.clone();
    Arc::new(move |mut request: ServerRequest| {
        let peer = peer.clone();
        let supported = can_answer(&capabilities, &request);
        // Deliver it on the stream of the call it belongs to (SEP-2260).
        request
            .extensions_mut()
            .insert(OriginatingRequestId(call.clone()));
        Box::pin(async move {
            if !supported {
                return Err(ErrorData::new(
                    ErrorCode::METHOD_NOT_FOUND,
                    "the client does not support this request",
                    None,
                ));
            }
            // Sent from a task of its own: this closure runs inside the
            // upstream connection's request handler, whose task-locals (the
            // upstream's request id and protocol version) rmcp would
            // otherwise stamp on the request, sending it down the wrong
            // stream or refusing it for the upstream's protocol revision.
            let answer = tokio::spawn(async move { peer.send_request(request).await }).await;
            match answer {
                Ok(Ok(result)) => Ok(result),
                Ok(Err(ServiceError::McpError(error))) => Err(error),
                _ => Err(ErrorData::internal_error("the client did not answer", None)),
            }
        })
    })
}
