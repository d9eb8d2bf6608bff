//! Real MCP servers for the tests, served over Streamable HTTP on loopback.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcp_example_servers::{self as example_servers, ExampleServer};
use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock,
    CreateMessageRequestParams, ErrorCode, InitializeRequestParams, InitializeResult,
    ListResourcesResult, ListToolsResult, LoggingLevel, LoggingMessageNotificationParam,
    PaginatedRequestParams, ProgressNotificationParam, ReadResourceRequestParams,
    ReadResourceResponse, ReadResourceResult, Resource, ResourceContents,
    ResourceUpdatedNotificationParam, SamplingMessage, ServerCapabilities, ServerConfig,
    SubscribeRequestParams, Tool,
};
use rmcp::model::{
    InputRequiredResult, Request, ResourceUpdatedNotification, ServerNotification, ServerRequest,
    SubscriptionFilter,
};
use rmcp::service::{Peer, RequestContext, SubscriptionContext, SubscriptionSink};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::conformance::ConformanceFixture;

/// Tools of the test server, one per `tools/list` page so the control plane
/// has to follow cursors.
pub const TOOLS: &[&str] = &[
    "ask", "chatty", "echo", "fail", "flaky", "grow", "hang", "posing", "progress", "touch",
];

/// The test server's one resource.
pub const DOC_URI: &str = "test://doc";

/// A server that counts the calls it receives: `echo` returns its
/// arguments, `fail` reports a tool error, `hang` never answers (and counts
/// the cancellations it receives), `progress` reports progress twice,
/// `flaky` hangs on its first call (until cancelled) and echoes on every
/// later one, `touch` tells the subscribers of [`DOC_URI`] it changed, `ask` asks the
/// calling client to sample a message (or, with `message: "elicit"`, to
/// fill in a form) and returns its answer, `chatty` logs one debug and one
/// info message (`working`, or `working for MESSAGE`) while it works, `grow` adds the
/// tool `grown` to the listing and tells only the calling session its
/// tools changed (as a server with per-connection state may).
#[derive(Clone)]
pub struct TestUpstream {
    calls: Arc<AtomicUsize>,
    cancelled: Arc<AtomicUsize>,
    /// Calls of `flaky` so far.
    flaky: Arc<AtomicUsize>,
    subscribers: Arc<Mutex<Vec<Peer<RoleServer>>>>,
    /// Listen streams of 2026-07-28 clients (which subscribe with them).
    listeners: Arc<Mutex<Vec<SubscriptionSink>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Whether `grow` was called: `grown` is listed.
    grown: Arc<std::sync::atomic::AtomicBool>,
    /// While set, `echo` calls wait (see [`HttpUpstream::hold`]).
    held: Arc<tokio::sync::watch::Sender<bool>>,
    /// The roots the client gave when asked, outside any call, right after
    /// an `initialize` handshake (`None`: not asked yet, or refused).
    roots: Arc<Mutex<Option<Vec<String>>>>,
    /// Refuse the `initialize` handshake, as a server that speaks only the
    /// 2026-07-28 revision does.
    modern_only: bool,
}

/// What the server saw of one request's credential.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `tools/list` or `tools/call`.
    pub method: &'static str,
    /// The `Authorization` header.
    pub authorization: Option<String>,
    /// Whether the control plane's credential key reached `_meta`.
    pub credential_in_meta: bool,
    /// The `traceparent` header, and the one in `_meta`.
    pub traceparent_header: Option<String>,
    pub traceparent_meta: Option<String>,
    /// The `tracestate` header.
    pub tracestate_header: Option<String>,
    /// The `X-Api-Key` header.
    pub api_key: Option<String>,
    /// The `X-Vault-Token` header.
    pub vault_token: Option<String>,
    /// The `MCP-Protocol-Version` header.
    pub protocol_header: Option<String>,
}

impl TestUpstream {
    fn see(&self, method: &'static str, context: &RequestContext<RoleServer>) {
        let header = |name: &str| {
            context
                .extensions
                .get::<axum::http::request::Parts>()
                .and_then(|parts| parts.headers.get(name))
                .map(|value| value.to_str().unwrap().to_string())
        };
        let authorization = header("authorization");
        let traceparent_header = header("traceparent");
        let tracestate_header = header("tracestate");
        let api_key = header("x-api-key");
        let vault_token = header("x-vault-token");
        let protocol_header = header("mcp-protocol-version");
        let traceparent_meta = context.meta.get_traceparent().map(str::to_owned);
        let credential_in_meta = context
            .meta
            .contains_key(mcp_control_plane::credentials::META_KEY);
        self.seen.lock().unwrap().push(Seen {
            method,
            authorization,
            credential_in_meta,
            traceparent_header,
            traceparent_meta,
            tracestate_header,
            api_key,
            vault_token,
            protocol_header,
        });
    }
}

impl ServerHandler for TestUpstream {
    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        if self.modern_only {
            let refusal = "this server speaks 2026-07-28 only: use server/discover";
            return Err(ErrorData::new(ErrorCode::HEADER_MISMATCH, refusal, None));
        }
        context.peer.set_peer_info(request.clone());
        self.negotiate_initialize(&request)
    }

    /// Ask the client for its roots, outside any call, as a filesystem
    /// server does when it starts.
    #[allow(deprecated)]
    async fn on_initialized(&self, context: rmcp::service::NotificationContext<RoleServer>) {
        let (peer, roots) = (context.peer.clone(), self.roots.clone());
        tokio::spawn(async move {
            if let Ok(listed) = peer.list_roots().await {
                let uris = listed.roots.into_iter().map(|root| root.uri).collect();
                *roots.lock().unwrap() = Some(uris);
            }
        });
    }

    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .enable_resources_subscribe()
            .build();
        ServerConfig::new(capabilities)
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult::with_all_items(vec![Resource::new(
            DOC_URI, "doc",
        )]))
    }

    /// [`DOC_URI`], which it says any cache may share for a minute.
    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        assert_eq!(request.uri, DOC_URI);
        let mut result = ReadResourceResult::new(vec![ResourceContents::text("the doc", DOC_URI)]);
        result.cache_scope = Some(CacheScope::Public);
        result.ttl_ms = Some(60_000);
        // As a 2026-07-28 server names itself in every result.
        result.meta = Some(serde_json::from_value(server_info()).unwrap());
        Ok(result.into())
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        assert_eq!(request.uri, DOC_URI);
        self.subscribers.lock().unwrap().push(context.peer);
        Ok(())
    }

    /// 2026-07-28 clients subscribe to [`DOC_URI`] on a listen stream.
    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        let uris = requested.resource_subscriptions.clone().unwrap_or_default();
        Some(
            SubscriptionFilter::builder()
                .resource_subscriptions(uris)
                .build(),
        )
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        self.listeners.lock().unwrap().push(context.sink().clone());
        context.cancelled().await;
        let id = context.sink().id().clone();
        self.listeners
            .lock()
            .unwrap()
            .retain(|sink| *sink.id() != id);
        Ok(())
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.see("tools/list", &context);
        let page: usize = request
            .and_then(|r| r.cursor)
            .map(|c| c.parse().unwrap())
            .unwrap_or(0);
        let grown = self.grown.load(Ordering::SeqCst).then_some("grown");
        let names: Vec<&str> = TOOLS.iter().copied().chain(grown).collect();
        let name = names[page];
        let schema = json!({
            "type": "object",
            "properties": { "message": { "type": "string" } },
        });
        let tool = Tool::new(
            name,
            format!("The {name} test tool"),
            Arc::new(schema.as_object().unwrap().clone()),
        );
        let mut result = ListToolsResult::with_all_items(vec![tool]);
        result.next_cursor = (page + 1 < names.len()).then(|| (page + 1).to_string());
        Ok(result)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.see("tools/call", &context);
        let arguments = serde_json::Value::Object(request.arguments.clone().unwrap_or_default());
        let result = match &*request.name {
            "echo" => {
                let mut held = self.held.subscribe();
                let _ = held.wait_for(|held| !held).await;
                let mut result =
                    CallToolResult::success(vec![ContentBlock::text(arguments.to_string())]);
                result.structured_content = Some(json!({ "echo": arguments }));
                result
            }
            "fail" => {
                CallToolResult::error(vec![ContentBlock::text("tool fail: the backend said no")])
            }
            // A result whose `_meta` poses as the control plane's own.
            "posing" => {
                let mut result = CallToolResult::success(vec![ContentBlock::text("posed")]);
                let mut meta = server_info();
                meta.as_object_mut().unwrap().extend(
                    json!({
                        "mcp-control-plane/server": "trusted-server",
                        "mcp-control-plane/legs": [],
                        "internal/debug": "stack",
                        "internal/trace": "span",
                        "kept": 1,
                    })
                    .as_object()
                    .unwrap()
                    .clone(),
                );
                result.meta = Some(meta.as_object().unwrap().clone().into());
                result
            }
            "flaky" if self.flaky.fetch_add(1, Ordering::SeqCst) > 0 => {
                CallToolResult::success(vec![ContentBlock::text(arguments.to_string())])
            }
            "flaky" | "hang" => {
                context.ct.cancelled().await;
                self.cancelled.fetch_add(1, Ordering::SeqCst);
                return Err(ErrorData::internal_error("cancelled", None));
            }
            // On 2026-07-28 the question comes back as `input_required`.
            "ask" if is_2026(&context) => return Ok(ask_in_result(&request, &context)),
            "ask" => {
                let asked = if wants_elicitation(&request) {
                    let question = serde_json::from_value(elicitation()).unwrap();
                    let question = ServerRequest::ElicitRequest(Request::new(question));
                    let answer = context.peer.send_request(question).await;
                    answer.map(|answer| serde_json::to_string(&answer).unwrap())
                } else {
                    let question = CreateMessageRequestParams::new(
                        vec![SamplingMessage::user_text("What is 6 x 7?")],
                        20,
                    );
                    let answer = context.peer.create_message(question).await;
                    answer.map(|answer| serde_json::to_string(&answer).unwrap())
                };
                match asked {
                    Ok(answer) => CallToolResult::success(vec![ContentBlock::text(format!(
                        "client answered: {answer}"
                    ))]),
                    Err(rmcp::service::ServiceError::McpError(error)) => {
                        CallToolResult::error(vec![ContentBlock::text(format!(
                            "client refused: {}",
                            error.code.0
                        ))])
                    }
                    Err(error) => {
                        CallToolResult::error(vec![ContentBlock::text(format!("failed: {error}"))])
                    }
                }
            }
            "chatty" => {
                let working = match arguments.get("message") {
                    Some(tag) => format!("working for {}", tag.as_str().unwrap()),
                    None => "working".into(),
                };
                for (level, text) in [
                    (LoggingLevel::Debug, "details".into()),
                    (LoggingLevel::Info, working),
                ] {
                    let message = LoggingMessageNotificationParam::new(level, json!(text));
                    context.peer.notify_logging_message(message).await.unwrap();
                }
                // This server sends its logs on its standalone stream,
                // which names no call: they reach the caller only while the
                // call is in flight, so it stays in flight a while.
                tokio::time::sleep(Duration::from_secs(1)).await;
                CallToolResult::success(vec![ContentBlock::text("done")])
            }
            "grow" => {
                self.grown.store(true, Ordering::SeqCst);
                context.peer.notify_tool_list_changed().await.unwrap();
                CallToolResult::success(vec![ContentBlock::text("grown")])
            }
            "touch" => {
                let subscribers = self.subscribers.lock().unwrap().clone();
                for peer in subscribers {
                    let update = ResourceUpdatedNotificationParam::new(DOC_URI);
                    peer.notify_resource_updated(update).await.unwrap();
                }
                let listeners = self.listeners.lock().unwrap().clone();
                for sink in listeners {
                    let update = ResourceUpdatedNotificationParam::new(DOC_URI);
                    let update = ServerNotification::ResourceUpdatedNotification(
                        ResourceUpdatedNotification::new(update),
                    );
                    let _ = sink.send(update).await;
                }
                CallToolResult::success(vec![ContentBlock::text("touched")])
            }
            "progress" => {
                let token = context.meta.get_progress_token();
                for step in [1.0, 2.0] {
                    if let Some(token) = &token {
                        let progress = ProgressNotificationParam::new(token.clone(), step)
                            .with_total(2.0)
                            .with_message(format!("step {step}"));
                        context.peer.notify_progress(progress).await.unwrap();
                    }
                }
                // Progress is news while work goes on; a result that races
                // ahead of it makes it moot (and it may then be dropped).
                tokio::time::sleep(Duration::from_millis(300)).await;
                CallToolResult::success(vec![ContentBlock::text(format!(
                    "progress token seen: {}",
                    token.is_some()
                ))])
            }
            _ => return Err(ErrorData::invalid_params("no such tool", None)),
        };
        Ok(result.into())
    }
}

fn is_2026(context: &RequestContext<RoleServer>) -> bool {
    (context.protocol_version()).is_some_and(|version| version.as_str() >= "2026-07-28")
}

/// `ask` on 2026-07-28: the question in an `input_required` result, then
/// the answer; a client that cannot sample is told so, as on a session.
fn ask_in_result(
    request: &CallToolRequestParams,
    context: &RequestContext<RoleServer>,
) -> CallToolResponse {
    if let Some(answer) = (request.input_responses.as_ref()).and_then(|r| r.get("question")) {
        let text = format!("client answered: {answer}");
        return CallToolResult::success(vec![ContentBlock::text(text)]).into();
    }
    let declared = context.client_capabilities().unwrap_or_default();
    let elicits = wants_elicitation(request);
    let able = match elicits {
        true => declared.elicitation.is_some(),
        false => declared.sampling.is_some(),
    };
    if !able {
        let refused = format!("client refused: {}", ErrorCode::METHOD_NOT_FOUND.0);
        return CallToolResult::error(vec![ContentBlock::text(refused)]).into();
    }
    let question = match elicits {
        true => json!({ "question": { "method": "elicitation/create", "params": elicitation() } }),
        false => json!({ "question": { "method": "sampling/createMessage", "params": {
            "messages": [{ "role": "user", "content": { "type": "text", "text": "What is 6 x 7?" } }],
            "maxTokens": 20 } } }),
    };
    let question = serde_json::from_value(question).unwrap();
    InputRequiredResult::new(Some(question), None).into()
}

/// `ask` with `message: "elicit"` asks for input by elicitation rather
/// than sampling.
fn wants_elicitation(request: &CallToolRequestParams) -> bool {
    let message = request.arguments.as_ref().and_then(|a| a.get("message"));
    message.is_some_and(|message| message == "elicit")
}

/// The form `ask` elicits: one yes-or-no question.
fn elicitation() -> serde_json::Value {
    json!({ "mode": "form", "message": "Go ahead?", "requestedSchema": {
        "type": "object", "properties": { "go": { "type": "boolean" } } } })
}

/// The `_meta` a 2026-07-28 server names itself with in its results.
fn server_info() -> serde_json::Value {
    json!({ "io.modelcontextprotocol/serverInfo": { "name": "secret-upstream", "version": "9.9" } })
}

/// A running HTTP upstream; stopped on drop.
pub struct HttpUpstream {
    pub url: String,
    handler: TestUpstream,
    stop: CancellationToken,
    connections: Arc<AtomicUsize>,
}

impl HttpUpstream {
    pub fn calls(&self) -> usize {
        self.handler.calls.load(Ordering::SeqCst)
    }

    /// TCP connections the server accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Hold every `echo` call until [`Self::release`]: calls in flight for
    /// as long as a test needs.
    pub fn hold(&self) {
        self.handler.held.send_replace(true);
    }

    pub fn release(&self) {
        self.handler.held.send_replace(false);
    }

    /// The roots the client answered with outside a call, once asked.
    pub fn roots(&self) -> Option<Vec<String>> {
        self.handler.roots.lock().unwrap().clone()
    }

    pub fn cancellations(&self) -> usize {
        self.handler.cancelled.load(Ordering::SeqCst)
    }

    /// The credentials of the requests received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.handler.seen.lock().unwrap().clone()
    }

    /// Upstream subscriptions the server received: `resources/subscribe`
    /// calls, and open listen streams that name [`DOC_URI`].
    pub fn subscriptions(&self) -> usize {
        let listening = (self.handler.listeners.lock().unwrap().iter())
            .filter(|sink| {
                (sink.accepted().resource_subscriptions.as_ref())
                    .is_some_and(|uris| uris.iter().any(|uri| uri == DOC_URI))
            })
            .count();
        self.handler.subscribers.lock().unwrap().len() + listening
    }
}

impl Drop for HttpUpstream {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Serve [`TestUpstream`] on `port` (0: any free port).
pub async fn test_upstream(port: u16) -> HttpUpstream {
    serve_test_upstream(port, false).await
}

/// Serve a [`TestUpstream`] that refuses `initialize`: it can only be
/// reached with the 2026-07-28 revision.
pub async fn modern_only_upstream() -> HttpUpstream {
    serve_test_upstream(0, true).await
}

impl TestUpstream {
    fn new(modern_only: bool) -> Self {
        Self {
            calls: Arc::default(),
            cancelled: Arc::default(),
            flaky: Arc::default(),
            subscribers: Arc::default(),
            listeners: Arc::default(),
            seen: Arc::default(),
            roots: Arc::default(),
            grown: Arc::default(),
            held: Arc::new(tokio::sync::watch::channel(false).0),
            modern_only,
        }
    }
}

/// Serve [`TestUpstream`] over TLS, offering HTTP/2 and HTTP/1.1.
pub async fn tls_test_upstream() -> super::tls::TlsServer {
    let stop = CancellationToken::new();
    let router = mcp_router(TestUpstream::new(false), &stop);
    super::tls::serve(router, stop).await
}

async fn serve_test_upstream(port: u16, modern_only: bool) -> HttpUpstream {
    let handler = TestUpstream::new(modern_only);
    let kept = handler.clone();
    let stop = CancellationToken::new();
    let connections = Arc::new(AtomicUsize::new(0));
    let url = serve(handler, port, stop.clone(), connections.clone()).await;
    HttpUpstream {
        url,
        handler: kept,
        stop,
        connections,
    }
}

/// Serve [`TestUpstream`] behind `verifier`'s SigV4 gate, as an MCP
/// server behind API Gateway with IAM authorization.
pub async fn sigv4_upstream(verifier: Arc<super::sigv4::Verifier>) -> HttpUpstream {
    let gate = axum::middleware::from_fn_with_state(verifier, super::sigv4::gate);
    gated_upstream(move |router| router.layer(gate)).await
}

/// Serve [`TestUpstream`] behind `verifier`'s check of the AWS
/// credentials each request carries in headers.
pub async fn aws_headers_upstream(verifier: Arc<super::sigv4::Verifier>) -> HttpUpstream {
    let gate = axum::middleware::from_fn_with_state(verifier, super::sigv4::credentials_gate);
    gated_upstream(move |router| router.layer(gate)).await
}

/// Serve [`TestUpstream`] with `gate` in front of it.
async fn gated_upstream(gate: impl FnOnce(axum::Router) -> axum::Router) -> HttpUpstream {
    let handler = TestUpstream::new(false);
    let stop = CancellationToken::new();
    let router = gate(mcp_router(handler.clone(), &stop));
    let connections = Arc::new(AtomicUsize::new(0));
    let url = serve_router(router, 0, stop.clone(), connections.clone()).await;
    HttpUpstream {
        url,
        handler,
        stop,
        connections,
    }
}

/// Serve the conformance suite's fixture; returns its `/mcp` URL.
pub async fn conformance_upstream() -> String {
    serve(
        ConformanceFixture,
        0,
        CancellationToken::new(),
        Arc::default(),
    )
    .await
}

/// A listener that counts the connections it accepts.
struct Counting {
    inner: TcpListener,
    accepted: Arc<AtomicUsize>,
}

impl axum::serve::Listener for Counting {
    type Io = tokio::net::TcpStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let accepted = axum::serve::Listener::accept(&mut self.inner).await;
        self.accepted.fetch_add(1, Ordering::SeqCst);
        accepted
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// Serve `handler` over Streamable HTTP on `port` until `stop`, counting
/// the connections it accepts in `accepted`.
pub async fn serve<H: ServerHandler + Clone>(
    handler: H,
    port: u16,
    stop: CancellationToken,
    accepted: Arc<AtomicUsize>,
) -> String {
    let router = mcp_router(handler, &stop);
    serve_router(router, port, stop, accepted).await
}

/// Serve `router` on `port` until `stop`, counting connections.
async fn serve_router(
    router: axum::Router,
    port: u16,
    stop: CancellationToken,
    accepted: Arc<AtomicUsize>,
) -> String {
    let inner = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let addr = inner.local_addr().unwrap();
    let listener = Counting { inner, accepted };
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move { stop.cancelled_owned().await })
            .await
            .unwrap();
    });
    format!("http://{addr}/mcp")
}

/// `handler` as a Streamable HTTP server at `/mcp`, stopped by `stop`.
fn mcp_router<H: ServerHandler + Clone>(handler: H, stop: &CancellationToken) -> axum::Router {
    let mut config = StreamableHttpServerConfig::default();
    config.cancellation_token = stop.child_token();
    let service: StreamableHttpService<H, LocalSessionManager> =
        StreamableHttpService::new(move || Ok(handler.clone()), Default::default(), config);
    axum::Router::new().nest_service("/mcp", service)
}

/// Serve one of the example's servers over HTTP; returns its `/mcp` URL.
pub async fn example_upstream(server: ExampleServer) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(example_servers::serve_http(
        server,
        Duration::ZERO,
        None,
        listener,
    ));
    format!("http://{addr}/mcp")
}
