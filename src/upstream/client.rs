//! The MCP client the control plane runs towards each upstream: it
//! identifies itself and routes what upstreams send back: progress, resource
//! updates, list changes, and requests relayed to the calling client.

// Sampling and roots are deprecated from the 2026-07-28 revision on
// (SEP-2577), but remain part of the revisions we serve and relay.
#![allow(deprecated)]

use std::sync::Arc;

use rmcp::ClientHandler;
use rmcp::ErrorData;
use rmcp::model::{
    ClientCapabilities, ClientConfig, ClientResult, CreateMessageRequestParams,
    CreateMessageResult, ElicitRequestParams, ElicitResult, Implementation, ListRootsResult,
    LoggingMessageNotificationParam, ProgressNotificationParam, ProtocolVersion, Request,
    ResourceUpdatedNotificationParam, ServerRequest,
};
use rmcp::service::{InboundStreamOrigin, NotificationContext, RequestContext, RoleClient};
use tokio::sync::Notify;

use super::ordered::{Counted, Delivered};
use super::parked::ParkedCalls;
use super::progress::{self, ProgressRouter};
use super::relay::{self, Relays};
use super::subscriptions::Subscriptions;

#[derive(Clone)]
pub struct UpstreamClient {
    pub progress: Arc<ProgressRouter>,
    pub subscriptions: Arc<Subscriptions>,
    /// Woken when the server says its tools, prompts or resources changed.
    pub relist: Arc<Notify>,
    pub relays: Arc<Relays>,
    /// The progress and log notifications read and routed, so a call can
    /// wait for those sent before its answer.
    pub delivered: Arc<Delivered>,
    /// Calls waiting for their client's answer to the server's request.
    pub parked: Arc<ParkedCalls>,
    /// Whether the catalog lets this server's call logs reach the caller.
    pub forward_logs: bool,
    /// The revision an `initialize` handshake claims: always one of the
    /// initialize era, never 2026-07-28 (the two eras never mix).
    pub initialize_version: ProtocolVersion,
    /// The catalog's answer to `roots/list` outside a call.
    pub roots: Arc<[crate::config::RootConfig]>,
}

impl Default for UpstreamClient {
    fn default() -> Self {
        Self {
            progress: Arc::default(),
            subscriptions: Arc::default(),
            relist: Arc::default(),
            relays: Arc::default(),
            delivered: Arc::default(),
            parked: Arc::default(),
            forward_logs: false,
            initialize_version: ProtocolVersion::LATEST_WITH_INITIALIZE,
            roots: Arc::new([]),
        }
    }
}

impl UpstreamClient {
    /// The way to the client whose call an upstream request belongs to,
    /// if one takes relayed requests.
    fn relay_for(&self, context: &RequestContext<RoleClient>) -> Option<relay::Relay> {
        let origin = context.extensions.get::<InboundStreamOrigin>();
        relay::find(&self.relays, origin).and_then(|caller| caller.relay)
    }

    /// Hand an upstream's request to the client whose call it serves.
    async fn relay(
        &self,
        context: &RequestContext<RoleClient>,
        request: ServerRequest,
    ) -> Result<ClientResult, ErrorData> {
        let relay = self.relay_for(context).ok_or_else(|| {
            ErrorData::invalid_request("no call in flight that this request belongs to", None)
        })?;
        relay(request).await
    }
}

fn unexpected() -> ErrorData {
    ErrorData::internal_error("the client gave an unexpected answer", None)
}

impl ClientHandler for UpstreamClient {
    /// Sampling, elicitation and roots are declared so servers may use them;
    /// each request is relayed to the calling client, which answers or
    /// refuses according to its own capabilities.
    fn get_info(&self) -> ClientConfig {
        let capabilities = ClientCapabilities::builder()
            .enable_roots()
            .enable_sampling()
            .enable_elicitation()
            .build();
        ClientConfig::new(
            capabilities,
            Implementation::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION")),
        )
        .with_protocol_version(self.initialize_version.clone())
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        context: NotificationContext<RoleClient>,
    ) {
        progress::forward(&self.progress, params);
        self.delivered.routed(counted(&context));
    }

    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.subscriptions.deliver(params);
    }

    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, ErrorData> {
        let request = ServerRequest::CreateMessageRequest(Request::new(params));
        match self.relay(&context, request).await? {
            ClientResult::CreateMessageResult(result) => Ok(*result),
            _ => Err(unexpected()),
        }
    }

    async fn create_elicitation(
        &self,
        params: ElicitRequestParams,
        context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        let request = ServerRequest::ElicitRequest(Request::new(params));
        match self.relay(&context, request).await? {
            ClientResult::ElicitResult(result) => Ok(result),
            _ => Err(unexpected()),
        }
    }

    /// During a call the calling client answers; outside one (a server
    /// asking when it starts, or on its own time) the catalog's
    /// `servers.<name>.roots` do, so no client's roots are ever guessed.
    async fn list_roots(
        &self,
        context: RequestContext<RoleClient>,
    ) -> Result<ListRootsResult, ErrorData> {
        let Some(relay) = self.relay_for(&context) else {
            let roots = (self.roots.iter()).map(|root| {
                let mut listed = rmcp::model::Root::new(root.uri.clone());
                listed.name = root.name.clone();
                listed
            });
            return Ok(ListRootsResult::new(roots.collect()));
        };
        match relay(ServerRequest::ListRootsRequest(Default::default())).await? {
            ClientResult::ListRootsResult(result) => Ok(result),
            _ => Err(unexpected()),
        }
    }

    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        context: NotificationContext<RoleClient>,
    ) {
        if self.forward_logs {
            let caller = relay::find(
                &self.relays,
                context.extensions.get::<InboundStreamOrigin>(),
            );
            if let Some(log) = caller.and_then(|caller| caller.log) {
                log(params);
            }
        }
        self.delivered.routed(counted(&context));
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.relist.notify_one();
    }

    async fn on_prompt_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.relist.notify_one();
    }

    async fn on_resource_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.relist.notify_one();
    }
}

/// Whether the session's transport counted this notification.
fn counted(context: &NotificationContext<RoleClient>) -> bool {
    context.extensions.get::<Counted>().is_some()
}
