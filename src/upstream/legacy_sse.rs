//! The 2024-11-05 HTTP+SSE transport, client side, for servers that speak
//! nothing newer.
//!
//! The client GETs an event stream; the server's first event (`endpoint`)
//! names the URL to POST messages to, and every later `message` event is
//! one JSON-RPC message from the server. rmcp has no client for it, so this
//! is one: a [`Transport`] like the Streamable HTTP one, with the same
//! credentials (a call's own credential goes into the header of its POST,
//! taken out of `_meta` by [`CredentialedClient`]), bounded events, and an
//! end that the supervisor sees (the stream closing ends the session, and
//! it reconnects).
//!
//! Only 2024-11-05-era sessions run over it: the `initialize` handshake,
//! with whatever revision the server accepts.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::{HeaderName, HeaderValue, header};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::service::RoleClient;
use rmcp::transport::Transport;
use sse_stream::{Sse, SseStream};
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, DropGuard};
use url::Url;

use super::http_client::CredentialedClient;

/// The largest event accepted from a server, as rmcp bounds the events of
/// Streamable HTTP.
const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;
/// Messages read from the stream and not yet taken by the session; the
/// reader waits (and the server's writes with it) while it is full.
const INCOMING_CAPACITY: usize = 64;
/// The most of a POST's answer body read (it is `Accepted` or empty; it is
/// read only so the connection can be reused).
const MAX_POST_ANSWER_BYTES: usize = 64 * 1024;

/// Why the transport failed. The text is for operators' logs only.
#[derive(Debug, thiserror::Error)]
pub enum SseError {
    #[error("HTTP request failed: {0}")]
    Request(#[from] reqwest::Error),
    #[error("the server answered HTTP {0}")]
    Status(u16),
    #[error("the server's answer is not an event stream")]
    NotEventStream,
    #[error("the event stream ended before it named the message endpoint")]
    NoEndpoint,
    #[error("the message endpoint is not a valid URL: {0}")]
    InvalidEndpoint(#[from] url::ParseError),
    #[error("the server named a message endpoint on another origin")]
    ForeignEndpoint,
    #[error("an event exceeded {MAX_EVENT_BYTES} bytes")]
    EventTooLarge,
    #[error("the event stream failed: {0}")]
    Stream(String),
    #[error("a message could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
}

/// One HTTP+SSE session with a server.
pub struct SseTransport {
    incoming: mpsc::Receiver<ServerJsonRpcMessage>,
    poster: Arc<Poster>,
    /// Stops the stream reader when the session ends.
    _reader: DropGuard,
}

/// Sends the client's messages to the endpoint the server named.
struct Poster {
    client: reqwest::Client,
    endpoint: Url,
    headers: HashMap<HeaderName, HeaderValue>,
    http: CredentialedClient,
}

/// Open the event stream at `url` and wait for the server to name its
/// message endpoint (the caller bounds how long).
pub async fn connect(
    url: &str,
    headers: HashMap<HeaderName, HeaderValue>,
    http: CredentialedClient,
) -> Result<SseTransport, SseError> {
    // Pooled, unlike rmcp's Streamable HTTP client: every answer here is
    // read to its end, so a kept-alive connection is always clean. No
    // redirects (`outbound`).
    let client = crate::outbound::client().tcp_nodelay(true).build()?;
    let base = Url::parse(url)?;
    let mut request_headers = headers.clone();
    let bearer = http.connection_header(&mut request_headers);
    let mut request = client
        .get(base.clone())
        .header(header::ACCEPT, "text/event-stream");
    for (name, value) in request_headers {
        request = request.header(name, value);
    }
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    let response = request.send().await?;
    if !response.status().is_success() {
        return Err(SseError::Status(response.status().as_u16()));
    }
    let is_event_stream = (response.headers().get(header::CONTENT_TYPE))
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/event-stream"));
    if !is_event_stream {
        return Err(SseError::NotEventStream);
    }
    let mut events = Box::pin(SseStream::from_bytes_stream(bounded(
        response.bytes_stream(),
    )));
    let endpoint = loop {
        match events.next().await {
            Some(Ok(event)) if event.event.as_deref() == Some("endpoint") => {
                break event.data.unwrap_or_default();
            }
            Some(Ok(_)) => continue,
            Some(Err(error)) => return Err(SseError::Stream(error.to_string())),
            None => return Err(SseError::NoEndpoint),
        }
    };
    let endpoint = message_endpoint(&base, &endpoint)?;
    let (sender, incoming) = mpsc::channel(INCOMING_CAPACITY);
    let stop = CancellationToken::new();
    tokio::spawn(read_messages(events, sender, stop.clone()));
    let poster = Poster {
        client,
        endpoint,
        headers,
        http,
    };
    Ok(SseTransport {
        incoming,
        poster: Arc::new(poster),
        _reader: stop.drop_guard(),
    })
}

/// Where the server's `endpoint` event says to POST: resolved against the
/// stream's URL, and only on the stream's own origin, so a server cannot
/// send our credentials anywhere else.
fn message_endpoint(base: &Url, named: &str) -> Result<Url, SseError> {
    let endpoint = base.join(named.trim())?;
    if endpoint.origin() != base.origin() {
        return Err(SseError::ForeignEndpoint);
    }
    Ok(endpoint)
}

/// Pass the stream's `message` events to the session until the stream ends,
/// fails, or the session is gone.
async fn read_messages(
    mut events: impl Stream<Item = Result<Sse, sse_stream::Error>> + Unpin,
    sender: mpsc::Sender<ServerJsonRpcMessage>,
    stop: CancellationToken,
) {
    loop {
        let event = tokio::select! {
            event = events.next() => event,
            _ = stop.cancelled() => return,
        };
        let event = match event {
            Some(Ok(event)) => event,
            Some(Err(error)) => {
                tracing::warn!(%error, "upstream event stream failed");
                return;
            }
            None => return,
        };
        if !matches!(event.event.as_deref(), None | Some("message")) {
            continue;
        }
        let Some(data) = event.data else { continue };
        match serde_json::from_str::<ServerJsonRpcMessage>(&data) {
            Ok(message) => {
                if sender.send(message).await.is_err() {
                    return;
                }
            }
            Err(error) => {
                tracing::warn!(%error, "upstream sent an event that is not a JSON-RPC message")
            }
        }
    }
}

/// The body's chunks, failing once more than [`MAX_EVENT_BYTES`] arrive
/// without an event boundary (a blank line), so a server cannot make the
/// parser buffer without end.
fn bounded(
    chunks: impl Stream<Item = Result<Bytes, reqwest::Error>>,
) -> impl Stream<Item = Result<Bytes, SseError>> {
    let mut pending = 0usize;
    let mut after_newline = false;
    chunks.map(move |chunk| {
        let chunk = chunk?;
        for &byte in chunk.iter() {
            match byte {
                b'\n' if after_newline => pending = 0,
                b'\n' => after_newline = true,
                b'\r' => {}
                _ => {
                    after_newline = false;
                    pending += 1;
                }
            }
        }
        if pending > MAX_EVENT_BYTES {
            return Err(SseError::EventTooLarge);
        }
        Ok(chunk)
    })
}

impl Poster {
    async fn post(&self, mut message: ClientJsonRpcMessage) -> Result<(), SseError> {
        let mut headers = self.headers.clone();
        let bearer = self.http.prepare(&mut message, &mut headers);
        let mut request = (self.client.post(self.endpoint.clone()))
            .header(header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(&message)?);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        let mut response = request.send().await?;
        let status = response.status();
        let mut read = 0;
        while let Some(chunk) = response.chunk().await? {
            read += chunk.len();
            if read > MAX_POST_ANSWER_BYTES {
                break;
            }
        }
        if !status.is_success() {
            return Err(SseError::Status(status.as_u16()));
        }
        Ok(())
    }
}

impl Transport<RoleClient> for SseTransport {
    type Error = SseError;

    fn send(
        &mut self,
        item: ClientJsonRpcMessage,
    ) -> impl Future<Output = Result<(), SseError>> + Send + 'static {
        let poster = self.poster.clone();
        async move { poster.post(item).await }
    }

    async fn receive(&mut self) -> Option<ServerJsonRpcMessage> {
        self.incoming.recv().await
    }

    async fn close(&mut self) -> Result<(), SseError> {
        self.incoming.close();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_resolved_against_the_stream_and_kept_on_its_origin() {
        let base = Url::parse("http://127.0.0.1:8000/sse").unwrap();
        let relative = message_endpoint(&base, "/messages/?session_id=abc\n").unwrap();
        assert_eq!(
            relative.as_str(),
            "http://127.0.0.1:8000/messages/?session_id=abc"
        );
        let absolute = message_endpoint(&base, "http://127.0.0.1:8000/m?s=1").unwrap();
        assert_eq!(absolute.path(), "/m");
        for foreign in [
            "http://127.0.0.1:9000/m",
            "https://127.0.0.1:8000/m",
            "//evil.example/m",
        ] {
            assert!(
                matches!(
                    message_endpoint(&base, foreign),
                    Err(SseError::ForeignEndpoint)
                ),
                "{foreign}"
            );
        }
    }

    async fn through_bound(chunks: &[&Bytes]) -> Result<usize, SseError> {
        let stream = futures::stream::iter(chunks.iter().map(|&c| Ok(c.clone())));
        let mut bounded = std::pin::pin!(bounded(stream));
        let mut total = 0;
        while let Some(chunk) = bounded.next().await {
            total += chunk?.len();
        }
        Ok(total)
    }

    #[tokio::test]
    async fn an_event_without_end_is_cut_off_but_many_small_ones_are_not() {
        let big = Bytes::from(vec![b'x'; MAX_EVENT_BYTES / 2 + 1]);
        let (data, crlf, lf) = (
            Bytes::from_static(b"data: "),
            Bytes::from_static(b"\r\n\r\ndata: "),
            Bytes::from_static(b"\n\n"),
        );
        let endless = through_bound(&[&data, &big, &big]).await;
        assert!(
            matches!(endless, Err(SseError::EventTooLarge)),
            "{endless:?}"
        );
        let events = through_bound(&[&data, &big, &crlf, &big, &lf]).await;
        assert!(events.is_ok(), "{events:?}");
    }
}
