//! A bad answer fails its own request only. rmcp's HTTP client treats an
//! answer it cannot read (a body over its limit, JSON that does not parse
//! or nests too deep, an event stream that breaks, an answer to another
//! request's id) as the end of the transport, and every call in flight on
//! that server would fail with it, some after their server had acted.
//! Here each POST's answer is judged on its own: one that cannot be read
//! becomes a JSON-RPC error answer to that request alone, and the session
//! goes on.

use std::sync::Arc;

use futures::StreamExt;
use rmcp::model::{
    ClientJsonRpcMessage, ErrorCode, ErrorData, JsonRpcError, JsonRpcMessage, JsonRpcVersion2_0,
    RequestId, ServerJsonRpcMessage,
};
use rmcp::transport::streamable_http_client::{StreamableHttpError, StreamableHttpPostResponse};
use sse_stream::Sse;

/// The message an upstream answers a request with when its answer cannot
/// be read; the pipeline reports it as the server's refusal.
const UNREADABLE: &str = "the server's answer could not be read";

/// The id of `message`, if it is a request (notifications and answers get
/// no answer to fail).
pub fn request_id(message: &ClientJsonRpcMessage) -> Option<RequestId> {
    match message {
        JsonRpcMessage::Request(request) => Some(request.id.clone()),
        _ => None,
    }
}

/// `answered`, with an answer that cannot be read, or that answers
/// another request, replaced by an error answer to request `id`.
pub fn judged<E: std::error::Error + Send + Sync + 'static>(
    id: Option<RequestId>,
    answered: Result<StreamableHttpPostResponse, StreamableHttpError<E>>,
) -> Result<StreamableHttpPostResponse, StreamableHttpError<E>> {
    let Some(id) = id else {
        return answered;
    };
    match answered {
        Err(error) if unreadable(&error) => {
            tracing::warn!(%error, "an upstream answer could not be read; failing its request only");
            Ok(StreamableHttpPostResponse::Json(failed(&id), None))
        }
        Ok(StreamableHttpPostResponse::Json(message, session))
            if answers_another(&message, &id) =>
        {
            tracing::warn!("an upstream answered another request's id; failing this request only");
            Ok(StreamableHttpPostResponse::Json(failed(&id), session))
        }
        Ok(StreamableHttpPostResponse::Sse(stream, session)) => Ok(
            StreamableHttpPostResponse::Sse(ended_cleanly(stream, id), session),
        ),
        other => other,
    }
}

/// Errors about the answer itself, not about reaching the server (those
/// say the connection is gone, and rmcp reconnects).
fn unreadable<E: std::error::Error + Send + Sync + 'static>(
    error: &StreamableHttpError<E>,
) -> bool {
    matches!(
        error,
        StreamableHttpError::ResponseBodyTooLarge { .. }
            | StreamableHttpError::Deserialize(_)
            | StreamableHttpError::UnexpectedContentType(_)
            | StreamableHttpError::UnexpectedServerResponse(_)
            | StreamableHttpError::Sse(_)
    )
}

/// Whether `message` is an answer, to another request than `id`.
fn answers_another(message: &ServerJsonRpcMessage, id: &RequestId) -> bool {
    match message {
        JsonRpcMessage::Response(response) => response.id != *id,
        JsonRpcMessage::Error(error) => error.id.as_ref().is_some_and(|other| other != id),
        _ => false,
    }
}

/// The error answer to request `id`.
fn failed(id: &RequestId) -> ServerJsonRpcMessage {
    JsonRpcMessage::Error(JsonRpcError {
        jsonrpc: JsonRpcVersion2_0,
        id: Some(id.clone()),
        error: ErrorData::new(ErrorCode::INTERNAL_ERROR, UNREADABLE, None),
    })
}

type SseStream = futures::stream::BoxStream<
    'static,
    Result<Sse, rmcp::transport::streamable_http_client::SseError>,
>;

/// A request's event stream that, where it breaks (an event over the size
/// limit, a broken connection), ends with an error answer to the request
/// instead of an error of the transport.
fn ended_cleanly(stream: SseStream, id: RequestId) -> SseStream {
    let id = Arc::new(id);
    stream
        .scan(false, move |ended, event| {
            let next = match (*ended, event) {
                (true, _) => None,
                (false, Ok(event)) => Some(Ok(event)),
                (false, Err(error)) => {
                    tracing::warn!(%error, "an upstream event stream broke; failing its request only");
                    *ended = true;
                    let answer = serde_json::to_string(&failed(&id)).unwrap_or_default();
                    Some(Ok(Sse::default().event("message").data(answer)))
                }
            };
            std::future::ready(next)
        })
        .boxed()
}
