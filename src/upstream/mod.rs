//! Upstream MCP servers: one long-lived client session per server.
//!
//! Each server has a supervisor task ([`supervisor`]) that owns the session
//! and publishes the current [`Connection`] behind an atomic pointer. A call
//! only loads that pointer and talks to the session's peer handle, so calls to
//! different servers never wait on each other, and a slow server is bounded
//! by its own timeout.

mod call;
mod cancel;
mod client;
mod connect;
mod definitions;
mod http_client;
mod in_flight;
mod legacy_sse;
mod listen;
mod offered;
mod ordered;
mod own_answer;
mod parked;
mod pool;
mod progress;
mod relay;
mod subscriptions;
mod supervisor;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use rmcp::model::{
    ClientCapabilities, ClientRequest, GetMeta, InputResponses, JsonObject, Request, ServerResult,
    SubscribeRequestParams, UnsubscribeRequestParams,
};
use rmcp::service::{Peer, RoleClient};
use serde::Serialize;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::catalog::{ServerId, ServerSpec};
use crate::credentials::{Credential, ServerCredentials};
use client::UpstreamClient;
use http_client::CredentialedClient;

pub use connect::SELF_COMMAND;
pub use offered::Offered;
pub use pool::UpstreamPool;
pub use progress::ProgressSink;
pub use relay::{LogSink, Relay, can_answer};
pub use subscriptions::{Subscriber, UpdateSink};

/// Why an upstream call failed, already free of any URL, command or message
/// text from the upstream: safe to show to an agent.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UpstreamError {
    #[error("the upstream server is unavailable")]
    Unavailable,
    #[error("the tool is currently unavailable on its server")]
    ToolUnavailable,
    #[error("the upstream server did not answer in time")]
    Timeout,
    /// The server answered with a JSON-RPC error (for example invalid
    /// params). For a missing client capability (-32021), the capabilities
    /// the request needs, as the server named them (a typed value, never
    /// its text).
    #[error("the upstream server rejected the request (JSON-RPC error {code})")]
    Rejected {
        code: i32,
        required: Option<Box<ClientCapabilities>>,
    },
    #[error("the upstream server gave an invalid answer")]
    InvalidAnswer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Connecting,
    Ready,
    Down,
}

/// The published state of one server's session.
struct Connection {
    health: Health,
    peer: Option<Peer<RoleClient>>,
    /// What the server offers (empty until connected).
    offered: Arc<Offered>,
    last_error: Option<&'static str>,
    /// Cancelled by a call that saw the transport fail, to make the
    /// supervisor reconnect.
    lost: CancellationToken,
}

impl Connection {
    fn connecting() -> Self {
        Self::with_health(Health::Connecting, None)
    }

    fn down(reason: &'static str) -> Self {
        Self::with_health(Health::Down, Some(reason))
    }

    fn with_health(health: Health, last_error: Option<&'static str>) -> Self {
        Self {
            health,
            peer: None,
            offered: Arc::default(),
            last_error,
            lost: CancellationToken::new(),
        }
    }
}

struct Upstream {
    spec: ServerSpec,
    /// The catalog's tools on this server (public and upstream name), to
    /// report the ones it lacks; replaced when the catalog is reloaded.
    catalog_tools: ArcSwap<Vec<(Arc<str>, Arc<str>)>>,
    state: ArcSwap<Connection>,
    first_attempt_done: AtomicBool,
    client: UpstreamClient,
    /// The server's credential provider; a reload may replace it (a
    /// rotated secret) without reconnecting.
    credentials: Arc<ArcSwap<ServerCredentials>>,
    /// The HTTP client of a Streamable HTTP server, which adds credentials.
    http: CredentialedClient,
    changes: broadcast::Sender<Arc<str>>,
    /// Where its definitions are cached for every replica, if anywhere;
    /// a reload may point it elsewhere without reconnecting.
    shared: arc_swap::ArcSwapOption<crate::shared::Shared>,
    /// Another replica heard this server say its lists changed.
    heard: tokio::sync::Notify,
    /// Stops this server's supervisor (and closes its session).
    stop: CancellationToken,
}

impl Upstream {
    /// Whether the current session is on the 2026-07-28 revision.
    fn speaks_2026(&self) -> bool {
        (self.state.load().peer.as_ref()).is_some_and(listen::per_request_metadata)
    }

    /// Make `connection` current and tell whoever listens when what this
    /// server offers changed.
    fn publish(&self, connection: Connection) {
        let ready = connection.health == Health::Ready;
        let previous = self.state.swap(Arc::new(connection));
        // Between two states without a session (retries) nothing changed.
        if ready || previous.health == Health::Ready {
            let _ = self.changes.send(self.spec.name.clone());
        }
    }
}

/// Where what a server sends back during one call goes.
#[derive(Default, Clone)]
pub struct CallSinks {
    /// Its progress notifications for the call.
    pub progress: Option<ProgressSink>,
    /// Its requests (sampling, elicitation, roots) made while serving the call.
    pub relay: Option<Relay>,
    /// Its log messages sent while serving the call (if the catalog allows).
    pub log: Option<LogSink>,
    /// The caller takes `input_required` results: a request an
    /// initialize-era server makes during the call parks the call and
    /// becomes one (see `parked`), in place of `relay`.
    pub parks: bool,
    /// The call's leased credential (a Vault token), which a parked call
    /// keeps alive until it ends, beyond the round that obtained it.
    pub lease: Option<Arc<crate::credentials::Lease>>,
}

/// A retry of a request the server answered `input_required` (SEP-2322
/// multi round-trip requests): the client's answers to the server's input
/// requests, and the server's request state, echoed.
#[derive(Debug, Default)]
pub struct Continuation {
    pub input_responses: Option<InputResponses>,
    pub request_state: Option<String>,
}

/// What travels to the upstream with a request besides the request: the
/// call's credential and its trace context, both in the request's `_meta`.
#[derive(Debug, Default)]
pub struct Outbound {
    pub credential: Option<Credential>,
    pub traceparent: Option<String>,
    pub tracestate: Option<Arc<str>>,
    /// What the calling client can answer (sampling, elicitation, roots).
    /// A 2026-07-28 server reads it from each request to decide what input
    /// it may ask for; without it, it would see the control plane's.
    pub client_capabilities: Option<Arc<ClientCapabilities>>,
    /// The call's own time limit, in place of the server's `timeout`.
    pub timeout: Option<Duration>,
    /// When the request's time is up, whatever its time limit.
    pub deadline: Option<std::time::Instant>,
}

impl Outbound {
    /// How long the request may wait for its answer on a server whose own
    /// limit is `server_timeout`.
    fn time_limit(&self, server_timeout: Duration) -> Duration {
        let limit = self.timeout.unwrap_or(server_timeout);
        match self.deadline {
            Some(deadline) => {
                limit.min(deadline.saturating_duration_since(std::time::Instant::now()))
            }
            None => limit,
        }
    }

    /// Put the credential and trace context into `request`'s `_meta`; the
    /// client's capabilities are returned, for [`call::send`] to declare.
    fn stamp(self, request: &mut ClientRequest) -> Option<Arc<ClientCapabilities>> {
        let meta = request.get_meta_mut();
        if let Some(credential) = self.credential {
            meta.insert(
                crate::credentials::META_KEY.into(),
                credential.expose().into(),
            );
        }
        if let Some(traceparent) = self.traceparent {
            meta.set_traceparent(&traceparent);
        }
        if let Some(tracestate) = self.tracestate {
            meta.set_tracestate(&*tracestate);
        }
        self.client_capabilities
    }
}

/// What readiness reports about one server: its logical name and state,
/// never its address.
#[derive(Debug, Clone, Serialize)]
pub struct ServerStatus {
    pub name: Arc<str>,
    pub state: Health,
    pub tools_offered: usize,
    /// The MCP revision the session speaks, while there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Public names of catalog tools this server does not offer.
    pub missing_tools: Vec<Arc<str>>,
    /// Tools it offers beyond its `max_tools`, not served.
    #[serde(skip_serializing_if = "is_zero")]
    pub tools_held_back: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<&'static str>,
}

/// The upstream servers of one catalog version, indexed by [`ServerId`]:
/// what a request reaches its server through. Built by [`UpstreamPool`].
#[derive(Clone, Default)]
pub struct Upstreams {
    servers: Vec<Arc<Upstream>>,
}

impl Upstreams {
    /// Another replica heard `server` say its lists changed: list it
    /// again here (without telling the others).
    pub fn relist(&self, server: &str) {
        if let Some(upstream) = self.servers.iter().find(|u| *u.spec.name == *server) {
            upstream.heard.notify_one();
        }
    }

    /// This replica may have missed what other replicas heard: list every
    /// server again (each publishes only what differs).
    pub fn relist_all(&self) {
        for upstream in &self.servers {
            upstream.heard.notify_one();
        }
    }

    /// Call a tool (by its upstream name) on `server`, bounded by the
    /// server's timeout; what the server sends back meanwhile goes to `sinks`.
    /// The answer is the tool's result, the server's `input_required`, or
    /// the task it started.
    pub async fn call_tool(
        &self,
        server: ServerId,
        tool: &str,
        arguments: JsonObject,
        continuation: Continuation,
        sinks: CallSinks,
        outbound: Outbound,
    ) -> Result<ServerResult, UpstreamError> {
        let upstream = &self.servers[server.0];
        call::call_tool(upstream, tool, arguments, continuation, sinks, outbound).await
    }

    /// Send any other request to `server`, bounded by its timeout.
    pub async fn request(
        &self,
        server: ServerId,
        mut request: ClientRequest,
        outbound: Outbound,
    ) -> Result<ServerResult, UpstreamError> {
        let upstream = &self.servers[server.0];
        let timeout = outbound.time_limit(upstream.spec.timeout);
        let capabilities = outbound.stamp(&mut request);
        let connection = upstream.state.load_full();
        let sinks = CallSinks::default();
        call::send(upstream, &connection, request, capabilities, sinks, timeout).await
    }

    /// Subscribe `subscriber` to `uri` on `server` (upstream only for the
    /// URI's first subscriber).
    pub async fn subscribe(
        &self,
        server: ServerId,
        uri: &str,
        subscriber: Subscriber,
        outbound: Outbound,
    ) -> Result<ServerResult, UpstreamError> {
        let upstream = &self.servers[server.0];
        let subscriptions = &upstream.client.subscriptions;
        let session = subscriber.session;
        if !subscriptions.add(uri, subscriber) {
            return Ok(ServerResult::empty(()));
        }
        // On a 2026-07-28 session the listen stream subscribes (it opens
        // again with the new URI); resources/subscribe is not of that era.
        if upstream.speaks_2026() {
            let timeout = upstream.spec.timeout;
            return match tokio::time::timeout(timeout, subscriptions.acknowledged()).await {
                Ok(()) => Ok(ServerResult::empty(())),
                Err(_) => {
                    subscriptions.remove(uri, session);
                    Err(UpstreamError::Timeout)
                }
            };
        }
        let params = SubscribeRequestParams::new(uri);
        let result = self
            .request(
                server,
                ClientRequest::SubscribeRequest(Request::new(params)),
                outbound,
            )
            .await;
        if result.is_err() {
            subscriptions.remove(uri, session);
        }
        result
    }

    /// End `session`'s subscription to `uri` (upstream when it was the last).
    pub async fn unsubscribe(
        &self,
        server: ServerId,
        uri: &str,
        session: u64,
        outbound: Outbound,
    ) -> Result<ServerResult, UpstreamError> {
        let upstream = &self.servers[server.0];
        if !upstream.client.subscriptions.remove(uri, session) || upstream.speaks_2026() {
            return Ok(ServerResult::empty(()));
        }
        let params = UnsubscribeRequestParams::new(uri);
        self.request(
            server,
            ClientRequest::UnsubscribeRequest(Request::new(params)),
            outbound,
        )
        .await
    }

    /// What `server` currently offers (empty while it is not connected).
    pub fn offered(&self, server: ServerId) -> Arc<Offered> {
        self.servers[server.0].state.load().offered.clone()
    }

    /// Whether every server has had its first connection attempt.
    pub fn settled(&self) -> bool {
        self.servers
            .iter()
            .all(|u| u.first_attempt_done.load(Ordering::Acquire))
    }

    pub fn status(&self) -> Vec<ServerStatus> {
        self.servers
            .iter()
            .map(|u| {
                let connection = u.state.load();
                let missing_tools = if connection.health == Health::Ready {
                    (u.catalog_tools.load().iter())
                        .filter(|(_, upstream)| !connection.offered.tools.contains_key(&**upstream))
                        .map(|(public, _)| public.clone())
                        .collect()
                } else {
                    Vec::new()
                };
                ServerStatus {
                    name: u.spec.name.clone(),
                    state: connection.health,
                    tools_offered: connection.offered.tools.len(),
                    protocol: (connection.peer.as_ref())
                        .and_then(|peer| peer.peer_info())
                        .map(|info| info.protocol_version.as_str().to_owned()),
                    missing_tools,
                    tools_held_back: connection.offered.tools_held_back,
                    last_error: connection.last_error,
                }
            })
            .collect()
    }
}

fn is_zero(count: &usize) -> bool {
    *count == 0
}
