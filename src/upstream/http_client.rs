//! The HTTP client of upstream sessions: rmcp's reqwest client, plus the
//! per-request credential.
//!
//! rmcp's Streamable HTTP transport sends one fixed `Authorization` value
//! per session. Ours differs per call: the pipeline puts each call's
//! credential in the request's `_meta` (as it does for stdio servers), and
//! this client moves it into the `Authorization` header before the request
//! leaves, so an HTTP server never sees it in the body. Requests without one
//! (handshake, listings, notifications, the event stream) carry the
//! control plane's own credential for the server, if its provider has one.
//! An `aws-sts` server's requests are signed with SigV4 instead (or carry
//! the AWS credentials in headers): the call's own, or the connection's.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::{HeaderName, HeaderValue};
use futures::stream::BoxStream;
use rmcp::model::{
    ClientJsonRpcMessage, ClientRequest, GetExtensions, GetMeta, JsonRpcMessage, RequestMetaObject,
};
use rmcp::transport::streamable_http_client::{
    SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
    StreamableHttpResponseLimits,
};
use sse_stream::Sse;

use arc_swap::ArcSwap;

use super::own_answer;
use crate::credentials::sigv4::AwsCredentials;
use crate::credentials::{META_KEY, ServerCredentials};

/// Idle connections kept per server, and for how long.
const MAX_IDLE_PER_SERVER: usize = 32;
const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Clone)]
pub struct CredentialedClient {
    inner: reqwest::Client,
    /// The server's provider as the catalog in force has it.
    credentials: Arc<ArcSwap<ServerCredentials>>,
}

impl CredentialedClient {
    pub fn new(credentials: Arc<ArcSwap<ServerCredentials>>) -> Self {
        // Kept-alive connections, a bounded number idle per server: a new
        // connection per request cost a handshake each time and left
        // thousands of sockets in TIME-WAIT under load (rmcp's own client
        // pools none, against a delayed-ACK stall that `TCP_NODELAY`
        // prevents). HTTP/2 where a TLS server offers it by ALPN (plain
        // `http` stays on HTTP/1.1: prior-knowledge h2c would fail every
        // HTTP/1-only server). No redirects (`outbound`).
        let inner = crate::outbound::client()
            .pool_max_idle_per_host(MAX_IDLE_PER_SERVER)
            .pool_idle_timeout(IDLE_TIMEOUT)
            .tcp_nodelay(true)
            .build()
            .unwrap_or_default();
        Self { inner, credentials }
    }

    /// The server's credential provider in force.
    pub fn credentials(&self) -> Arc<ServerCredentials> {
        self.credentials.load_full()
    }

    /// The bearer for `message`: the call's own credential, taken out of
    /// its `_meta`, or else the connection's. The call's trace context goes
    /// into `traceparent` and `tracestate` headers as well (and stays in
    /// `_meta`).
    pub(super) fn prepare(
        &self,
        message: &mut ClientJsonRpcMessage,
        headers: &mut HashMap<HeaderName, HeaderValue>,
    ) -> Option<String> {
        let JsonRpcMessage::Request(request) = message else {
            return self.connection_header(headers);
        };
        let meta = request.request.get_meta();
        let trace_headers = [
            ("traceparent", meta.get_traceparent()),
            ("tracestate", meta.get_tracestate()),
        ];
        for (name, value) in trace_headers {
            if let Some(value) = value.and_then(|v| HeaderValue::from_str(v).ok()) {
                headers.insert(HeaderName::from_static(name), value);
            }
        }
        let credential = match meta.contains_key(META_KEY) {
            true => take_credential(&mut request.request),
            false => None,
        };
        self.in_header(credential.or_else(|| self.connection_bearer()), headers)
    }

    /// A credential for a server that takes it in another header (a static
    /// API key) goes there; otherwise it is the bearer.
    fn in_header(
        &self,
        credential: Option<String>,
        headers: &mut HashMap<HeaderName, HeaderValue>,
    ) -> Option<String> {
        let credentials = self.credentials.load();
        let Some(header) = credentials.header() else {
            return credential;
        };
        if let Some(mut value) = credential.and_then(|c| HeaderValue::from_str(&c).ok()) {
            value.set_sensitive(true);
            headers.insert(header.clone(), value);
        }
        None
    }

    /// The connection's own credential for a request that carries no call
    /// (handshake, listings, the event stream): the bearer, or in `headers`.
    pub(super) fn connection_header(
        &self,
        headers: &mut HashMap<HeaderName, HeaderValue>,
    ) -> Option<String> {
        self.in_header(self.connection_bearer(), headers)
    }

    fn connection_bearer(&self) -> Option<String> {
        self.credentials
            .load()
            .for_connection()
            .map(|credential| credential.expose().to_string())
    }
}

type Result<T> = std::result::Result<T, StreamableHttpError<reqwest::Error>>;

impl CredentialedClient {
    /// For an `aws-sts` server: sign the request with the call's AWS
    /// credentials (`credential`, as its provider issued them) or else the
    /// connection's, or put them in headers; the bearer is then none. Any
    /// other server keeps `credential` as its bearer. `body` is the bytes
    /// the request will carry, made only when a signature needs them.
    async fn aws(
        &self,
        credential: Option<String>,
        method: &str,
        uri: &str,
        body: impl FnOnce() -> Vec<u8>,
        headers: &mut HashMap<HeaderName, HeaderValue>,
    ) -> Result<Option<String>> {
        let credentials = self.credentials.load_full();
        let Some(delivery) = credentials.aws_delivery() else {
            return Ok(credential);
        };
        let unavailable = |e: &dyn std::fmt::Display| {
            StreamableHttpError::Io(std::io::Error::other(format!("AWS credentials: {e}")))
        };
        let aws = match credential.as_deref().and_then(AwsCredentials::from_json) {
            Some(aws) => aws,
            None => (credentials.aws_connection().await).map_err(|e| unavailable(&e))?,
        };
        let added = match delivery.signing {
            Some(signing) => {
                (signing.sign(&aws, method, uri, &body())).map_err(|e| unavailable(&e))?
            }
            None => aws.headers(),
        };
        headers.extend(added);
        Ok(None)
    }

    /// [`Self::prepare`], then [`Self::aws`] for a POST of `message`.
    async fn prepare_post(
        &self,
        uri: &str,
        message: &mut ClientJsonRpcMessage,
        headers: &mut HashMap<HeaderName, HeaderValue>,
    ) -> Result<Option<String>> {
        let bearer = self.prepare(message, headers);
        // The bytes reqwest's `json` sends.
        let body = || serde_json::to_vec(&*message).unwrap_or_default();
        self.aws(bearer, "POST", uri, body, headers).await
    }
}

impl StreamableHttpClient for CredentialedClient {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        mut message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        _auth_header: Option<String>,
        mut custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse> {
        let bearer = (self.prepare_post(&uri, &mut message, &mut custom_headers)).await?;
        let id = own_answer::request_id(&message);
        let answered = (self.inner)
            .post_message(uri, message, session_id, bearer, custom_headers)
            .await;
        own_answer::judged(id, answered)
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        mut message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        _auth_header: Option<String>,
        mut custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse> {
        let bearer = (self.prepare_post(&uri, &mut message, &mut custom_headers)).await?;
        let id = own_answer::request_id(&message);
        let answered = (self.inner)
            .post_message_with_response_limits(
                uri,
                message,
                session_id,
                bearer,
                custom_headers,
                limits,
            )
            .await;
        own_answer::judged(id, answered)
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        _auth_header: Option<String>,
        mut custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<()> {
        let bearer = self.connection_header(&mut custom_headers);
        let bearer = (self.aws(bearer, "DELETE", &uri, Vec::new, &mut custom_headers)).await?;
        self.inner
            .delete_session(uri, session_id, bearer, custom_headers)
            .await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        _auth_header: Option<String>,
        mut custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxStream<'static, std::result::Result<Sse, SseError>>> {
        let bearer = self.connection_header(&mut custom_headers);
        let bearer = (self.aws(bearer, "GET", &uri, Vec::new, &mut custom_headers)).await?;
        self.inner
            .get_stream(uri, session_id, last_event_id, bearer, custom_headers)
            .await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        _auth_header: Option<String>,
        mut custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<BoxStream<'static, std::result::Result<Sse, SseError>>> {
        let bearer = self.connection_header(&mut custom_headers);
        let bearer = (self.aws(bearer, "GET", &uri, Vec::new, &mut custom_headers)).await?;
        self.inner
            .get_stream_with_max_sse_event_size(
                uri,
                session_id,
                last_event_id,
                bearer,
                custom_headers,
                max_sse_event_size,
            )
            .await
    }
}

/// The call's credential, out of the request's `_meta`; a `_meta` left
/// empty goes too. (An empty `_meta` on `initialize` tells a server that
/// speaks both eras the request is of the 2026-07-28 revision, which then
/// wants its header: the reference server refused every handshake so.)
fn take_credential(request: &mut ClientRequest) -> Option<String> {
    let meta = request.get_meta_mut();
    let credential = match meta.remove(META_KEY) {
        Some(serde_json::Value::String(credential)) => Some(credential),
        _ => None,
    };
    if meta.is_empty() {
        request.extensions_mut().remove::<RequestMetaObject>();
    }
    credential
}
