//! One `tools/call` on an upstream session: bounded by the server's timeout,
//! cancelled upstream when the caller goes away, with the server's progress
//! notifications routed back to the caller.

use rmcp::model::{
    CallToolRequestParams, CallToolResult, CancelledNotificationParam, ClientRequest, JsonObject,
    Request, ServerResult,
};
use rmcp::service::{Peer, PeerRequestOptions, RoleClient, ServiceError};

use super::progress::ProgressSink;
use super::{Upstream, UpstreamError};
use crate::catalog::ToolRoute;

pub(super) async fn call_tool(
    upstream: &Upstream,
    route: &ToolRoute,
    arguments: JsonObject,
    progress: Option<ProgressSink>,
) -> Result<CallToolResult, UpstreamError> {
    let connection = upstream.state.load_full();
    let peer = connection.peer.as_ref().ok_or(UpstreamError::Unavailable)?;
    if !connection.tools.contains_key(&*route.upstream_name) {
        return Err(UpstreamError::ToolUnavailable);
    }
    let params =
        CallToolRequestParams::new(route.upstream_name.to_string()).with_arguments(arguments);
    let exchange = async {
        let request = ClientRequest::CallToolRequest(Request::new(params));
        let mut handle = peer
            .send_request_with_option(request, PeerRequestOptions::no_options())
            .await?;
        // The session stamps its own progress token on every request; route
        // notifications carrying it to this call while it runs.
        let _registration = progress.map(|sink| {
            upstream
                .client
                .progress
                .register(handle.progress_token.clone(), sink)
        });
        let mut abandoned = CancelOnDrop {
            peer,
            request: Some(handle.id.clone()),
        };
        let response = (&mut handle.rx).await;
        abandoned.request = None;
        response.unwrap_or(Err(ServiceError::TransportClosed))
    };
    let response = tokio::time::timeout(upstream.spec.timeout, exchange).await;
    match response {
        Err(_elapsed) => Err(UpstreamError::Timeout),
        Ok(Ok(ServerResult::CallToolResult(result))) => Ok(result),
        Ok(Ok(other)) => {
            tracing::warn!(server = %upstream.spec.name, ?other, "upstream answered tools/call with another result type");
            Err(UpstreamError::InvalidAnswer)
        }
        Ok(Err(ServiceError::McpError(error))) => {
            Err(UpstreamError::Rejected { code: error.code.0 })
        }
        Ok(Err(error)) => {
            tracing::warn!(server = %upstream.spec.name, %error, "upstream call failed");
            connection.lost.cancel();
            Err(UpstreamError::Unavailable)
        }
    }
}

/// Tells the upstream to stop a request whose caller went away (timeout,
/// client cancellation or disconnect), as `notifications/cancelled`.
struct CancelOnDrop<'a> {
    peer: &'a Peer<RoleClient>,
    request: Option<rmcp::model::RequestId>,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        let Some(request_id) = self.request.take() else {
            return;
        };
        let peer = self.peer.clone();
        tokio::spawn(async move {
            let params = CancelledNotificationParam::new(
                Some(request_id),
                Some("the caller abandoned the request".into()),
            );
            let _ = peer.notify_cancelled(params).await;
        });
    }
}
