//! The control plane as one MCP server: every method is answered from the
//! caller's view through the [`Pipeline`], exactly like the REST front door.

// Logging, sampling and roots are deprecated from the 2026-07-28 revision on
// (SEP-2577), but remain part of the revisions we serve.
#![allow(deprecated)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use axum::http::request::Parts;
use rmcp::model::SubscriptionFilter;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CancelTaskParams, CompleteRequestParams,
    CompleteResult, CustomRequest, CustomResult, GetPromptRequestParams, GetPromptResponse,
    GetTaskParams, GetTaskResult, Implementation, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams,
    ReadResourceResponse, ServerCapabilities, ServerConfig, ServerResult, SubscribeRequestParams,
    UnsubscribeRequestParams, UpdateTaskParams,
};
use rmcp::model::{ErrorCode, LoggingMessageNotificationParam, SetLevelRequestParams};
use rmcp::service::{NotificationContext, RequestContext, SubscriptionContext};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use tokio::sync::mpsc;

use super::error::{invalid_arguments_as_result, to_error_data};
use super::listen;
use super::relay::{forward_progress, relay_to};
use super::replicas::Replicas;
use super::rounds::{self, Retried};
use super::sessions::Sessions;
use crate::discovery::{self, View, search};
use crate::identity::{Caller, Presented};
use crate::pipeline::{
    Assertions, CallContext, Pipeline, PipelineError, SubscriptionChange, TaskOp, ToolCall,
};
use crate::upstream::{CallSinks, Continuation, LogSink, Subscriber, UpstreamError};
use crate::vocabulary::{Action, FrontDoor};

/// One instance per MCP session (or per request, statelessly); all share the pipeline.
#[derive(Clone)]
pub struct McpFrontDoor {
    pub(super) pipeline: Arc<Pipeline>,
    live: Sessions,
    /// What the other replicas must hear of this session.
    replicas: Arc<Replicas>,
    sessions: Arc<AtomicU64>,
    /// This session's number, to tell its subscriptions apart.
    session: u64,
    /// The least severe log level this session asked for (`logging/setLevel`),
    /// as its rank; `u8::MAX` until it asks.
    log_level: Arc<AtomicU8>,
    /// Items per page of a `*/list` answer (`http.mcp_page_size`).
    page_size: usize,
}

impl McpFrontDoor {
    pub fn new(
        pipeline: Arc<Pipeline>,
        live: Sessions,
        replicas: Arc<Replicas>,
        page_size: usize,
    ) -> Self {
        Self {
            pipeline,
            live,
            replicas,
            sessions: Arc::default(),
            session: 0,
            log_level: Arc::new(AtomicU8::new(u8::MAX)),
            page_size,
        }
    }

    /// The handler of a new session.
    pub fn for_new_session(&self) -> Self {
        Self {
            pipeline: self.pipeline.clone(),
            live: self.live.clone(),
            replicas: self.replicas.clone(),
            sessions: self.sessions.clone(),
            session: self.sessions.fetch_add(1, Ordering::Relaxed) + 1,
            log_level: Arc::new(AtomicU8::new(u8::MAX)),
            page_size: self.page_size,
        }
    }

    /// Where an upstream's log messages for a call go: to this client, at or
    /// above the level it chose: per request on 2026-07-28 (no choice, no
    /// messages), per session with `logging/setLevel` before (all until it
    /// chooses, as on a direct connection).
    fn log_sink(&self, context: &RequestContext<RoleServer>) -> Option<LogSink> {
        let session_level = self.log_level.load(Ordering::Relaxed);
        let minimum = match context.meta.log_level() {
            Some(level) => level as u8,
            None if context.meta.protocol_version().is_some() => return None,
            None if session_level != u8::MAX => session_level,
            None => 0,
        };
        let peer = context.peer.clone();
        Some(Arc::new(move |message: LoggingMessageNotificationParam| {
            if message.level as u8 >= minimum {
                let peer = peer.clone();
                tokio::spawn(async move {
                    let _ = peer.notify_logging_message(message).await;
                });
            }
        }))
    }

    /// One round of a request that may be answered `input_required`,
    /// through the pipeline.
    pub(super) async fn attempt(
        &self,
        request: Retried,
        continuation: Continuation,
        context: &RequestContext<RoleServer>,
    ) -> Result<ServerResult, ErrorData> {
        // A tool call makes its own call context, with its relays.
        if let Retried::Tool {
            name,
            arguments,
            via,
        } = request
        {
            let call = ToolCall {
                tool: &name,
                arguments,
                continuation,
                sinks: CallSinks::default(),
            };
            return self.call_once(call, via, context).await;
        }
        let (ctx, who) = request_context(context);
        let answer = match request {
            Retried::Tool { .. } => unreachable!("answered above"),
            Retried::Prompt(mut params) => {
                params.input_responses = continuation.input_responses;
                params.request_state = continuation.request_state;
                self.pipeline.get_prompt(&ctx, who, params).await
            }
            Retried::Resource { uri } => {
                (self.pipeline)
                    .read_resource(&ctx, who, &uri, continuation)
                    .await
            }
        };
        answer.map_err(|e| to_error_data(&e, &ctx.trace))
    }

    /// A follow-up on a task, through the pipeline.
    async fn task(
        &self,
        context: &RequestContext<RoleServer>,
        task_id: &str,
        op: TaskOp,
    ) -> Result<ServerResult, ErrorData> {
        let (ctx, who) = request_context(context);
        let answer = self.pipeline.task(&ctx, who, task_id, op).await;
        answer.map_err(|e| to_error_data(&e, &ctx.trace))
    }

    /// A `tools/call` through the pipeline, with the upstream's progress,
    /// requests and log messages relayed to the caller meanwhile.
    async fn call_once(
        &self,
        mut call: ToolCall<'_>,
        via: Option<&'static str>,
        context: &RequestContext<RoleServer>,
    ) -> Result<ServerResult, ErrorData> {
        let (mut ctx, who) = request_context(context);
        ctx.via = via;
        let client_token = context.meta.get_progress_token();
        let (progress_tx, mut progress_rx) = mpsc::unbounded_channel();
        call.sinks = CallSinks {
            progress: client_token.is_some().then_some(progress_tx),
            relay: Some(relay_to(context)),
            log: self.log_sink(context),
            parks: super::rounds::takes_input_required(context),
            // Set on the way out, from the call's credential.
            lease: None,
        };
        let call = self.pipeline.call(&ctx, who, Assertions::default(), call);
        tokio::pin!(call);
        loop {
            tokio::select! {
                biased;
                // Upstream progress, renamed to the client's own token.
                Some(progress) = progress_rx.recv(), if client_token.is_some() => {
                    forward_progress(context, client_token.as_ref(), progress).await;
                }
                result = &mut call => {
                    // Progress that arrived with the answer goes out first.
                    while let Ok(progress) = progress_rx.try_recv() {
                        forward_progress(context, client_token.as_ref(), progress).await;
                    }
                    return result
                        .or_else(invalid_arguments_as_result)
                        .map(|mut result| {
                            // The caller learns the trace its call belongs to.
                            if let ServerResult::CallToolResult(result) = &mut result {
                                let meta = result.meta.get_or_insert_with(Default::default);
                                meta.insert("traceparent".into(), ctx.trace.traceparent().into());
                            }
                            result
                        })
                        .map_err(|e| to_error_data(&e, &ctx.trace));
                }
                // A client's `notifications/cancelled`: dropping the call
                // cancels it upstream and records it as cancelled.
                _ = context.ct.cancelled() => {
                    return Err(ErrorData::internal_error("request cancelled", None));
                }
            }
        }
    }

    /// List what the caller may see, one page at a time.
    async fn list<T: Clone>(
        &self,
        context: &RequestContext<RoleServer>,
        request: Option<PaginatedRequestParams>,
        list: fn(&View<'_>) -> Vec<T>,
    ) -> Result<(Vec<T>, Option<String>), ErrorData> {
        let (ctx, who) = request_context(context);
        let items = self
            .pipeline
            .discover(&ctx, who, Assertions::default(), list)
            .await
            .map_err(|e| to_error_data(&e, &ctx.trace))?;
        paginate(items, request.and_then(|r| r.cursor), self.page_size)
    }
}

/// The stateless revision's `MCP-Protocol-Version`.
const MODERN: axum::http::HeaderValue = axum::http::HeaderValue::from_static("2026-07-28");

/// The caller and the request's trace context. The caller is the one the
/// guard verified for the HTTP request that carried this message; the trace
/// continues the message's `_meta.traceparent`, else the HTTP `traceparent`
/// header.
pub(super) fn request_context(
    context: &RequestContext<RoleServer>,
) -> (CallContext, Presented<'_>) {
    let parts = context.extensions.get::<Parts>();
    let header = |name: &str| {
        parts
            .and_then(|p| p.headers.get(name))
            .and_then(|v| v.to_str().ok())
    };
    // The message's own trace context wins over the HTTP request's.
    let (traceparent, tracestate) = match context.meta.get_traceparent() {
        Some(traceparent) => (Some(traceparent), context.meta.get_tracestate()),
        None => (header("traceparent"), header("tracestate")),
    };
    let mut ctx = CallContext::new(FrontDoor::Mcp, traceparent, tracestate);
    ctx.client_capabilities = context.client_capabilities().map(Arc::new);
    ctx.requested_timeout = parts.and_then(|p| super::super::requested_timeout(&p.headers));
    ctx.endpoint = parts.and_then(|p| super::endpoint_of(p.uri.path()));
    (ctx, presented(&context.extensions))
}

/// Who sent a message: the caller the guard verified for the HTTP request
/// that carried it. Every request to `/mcp` passes the guard; should one
/// not have, its bearer token is checked as usual.
fn presented(extensions: &rmcp::model::Extensions) -> Presented<'_> {
    let parts = extensions.get::<Parts>();
    match verified(extensions) {
        Some(caller) => Presented::Verified(caller),
        None => Presented::Bearer(parts.and_then(|parts| super::super::bearer(&parts.headers))),
    }
}

/// The `Mcp-Session-Id` of the HTTP request a message came in.
fn session_id(extensions: &rmcp::model::Extensions) -> Option<Arc<str>> {
    let parts = extensions.get::<Parts>()?;
    let id = parts.headers.get("mcp-session-id")?.to_str().ok()?;
    Some(id.into())
}

/// The caller the guard verified for the HTTP request of a message.
fn verified(extensions: &rmcp::model::Extensions) -> Option<&Caller> {
    extensions.get::<Parts>()?.extensions.get::<Caller>()
}

/// One page of `items` from `cursor` (an offset we handed out).
fn paginate<T: Clone>(
    items: Vec<T>,
    cursor: Option<String>,
    page_size: usize,
) -> Result<(Vec<T>, Option<String>), ErrorData> {
    let start = match cursor {
        None => 0,
        Some(cursor) => cursor
            .parse::<usize>()
            .ok()
            .filter(|&start| start <= items.len())
            .ok_or_else(|| ErrorData::invalid_params("invalid cursor", None))?,
    };
    let end = (start + page_size).min(items.len());
    let next = (end < items.len()).then(|| end.to_string());
    Ok((items[start..end].to_vec(), next))
}

/// A refused read names the URI it was refused (SEP-2164): the caller's
/// own words, never the server's.
fn naming_the_uri(mut error: ErrorData, uri: &str) -> ErrorData {
    let refused = [ErrorCode::INVALID_PARAMS, ErrorCode::RESOURCE_NOT_FOUND];
    if refused.contains(&error.code)
        && let Some(serde_json::Value::Object(data)) = &mut error.data
    {
        data.insert("uri".into(), uri.into());
    }
    error
}

/// The error for an upstream answer of the wrong kind.
fn invalid_answer(context: &RequestContext<RoleServer>) -> ErrorData {
    let (ctx, _) = request_context(context);
    to_error_data(
        &PipelineError::Upstream(UpstreamError::InvalidAnswer),
        &ctx.trace,
    )
}

/// Unwrap the answer an upstream gave, or turn a wrong one into an error.
fn expect<T>(
    ctx: &CallContext,
    answer: Result<ServerResult, PipelineError>,
    pick: impl FnOnce(ServerResult) -> Option<T>,
) -> Result<T, ErrorData> {
    let answer = answer.map_err(|e| to_error_data(&e, &ctx.trace))?;
    pick(answer).ok_or_else(|| {
        to_error_data(
            &PipelineError::Upstream(UpstreamError::InvalidAnswer),
            &ctx.trace,
        )
    })
}

impl ServerHandler for McpFrontDoor {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_tool_list_changed()
            .enable_prompts()
            .enable_prompts_list_changed()
            .enable_resources()
            .enable_resources_subscribe()
            .enable_resources_list_changed()
            .enable_completions()
            .enable_logging()
            .enable_tasks()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new(
                env!("CARGO_PKG_NAME"),
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(
                "MCP Control Plane: the tools, prompts and resources your role may use, from every server behind this endpoint.",
            )
    }

    /// A session that finished its handshake hears of changes to its view.
    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        match verified(&context.extensions) {
            Some(caller) => {
                tracing::debug!(agent = %caller.agent_id, "MCP session initialized");
                let id = session_id(&context.extensions);
                self.live.add_session(caller.role.clone(), id, context.peer);
            }
            None => tracing::debug!("MCP session initialized without a verified caller"),
        }
    }

    /// A method MCP does not have: answered as rmcp would (-32601), and
    /// recorded like every refusal (a 2026-07-28 request's by the guard:
    /// rmcp answers it with HTTP 404).
    async fn on_custom_request(
        &self,
        request: CustomRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        let not_found = ErrorData::new(ErrorCode::METHOD_NOT_FOUND, "Method not found", None);
        let parts = context.extensions.get::<Parts>();
        if parts.is_some_and(|p| p.headers.get("mcp-protocol-version") == Some(&MODERN)) {
            return Err(not_found);
        }
        let (ctx, who) = request_context(&context);
        let error = PipelineError::InvalidRequest("no such method".into());
        let named = Some(request.method.as_str());
        let recorded = (self.pipeline)
            .reject(&ctx, Action::Connect, who, named, error)
            .await;
        Err(match recorded {
            PipelineError::AuditUnavailable(_) => to_error_data(&recorded, &ctx.trace),
            _ => not_found,
        })
    }

    /// The level from which upstream log messages reach this session.
    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.log_level.store(request.level as u8, Ordering::Relaxed);
        Ok(())
    }

    /// 2026-07-28 clients hear of list changes and resource updates through
    /// `subscriptions/listen`.
    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        let uris = requested.resource_subscriptions.clone().unwrap_or_default();
        Some(
            SubscriptionFilter::builder()
                .tools_list_changed()
                .prompts_list_changed()
                .resources_list_changed()
                .resource_subscriptions(uris)
                .build(),
        )
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        let role = verified(&context.request_context().extensions)
            .map(|caller| caller.role.clone())
            .ok_or_else(|| ErrorData::invalid_request("not authenticated", None))?;
        let id = self.live.add_listen(role, context.sink().clone());
        let stream = self.sessions.fetch_add(1, Ordering::Relaxed) + 1;
        let uris = (context.accepted().resource_subscriptions.clone()).unwrap_or_default();
        let request = context.request_context();
        let pipeline = &self.pipeline;
        let subscribed = listen::subscribe(pipeline, request, stream, &uris, context.sink()).await;
        context.cancelled().await;
        listen::unsubscribe(pipeline, request, stream, &subscribed).await;
        self.live.remove(id);
        Ok(())
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let (page, next) = self.list(&context, request, search::listed).await?;
        let mut result = ListToolsResult::with_all_items(page);
        result.next_cursor = next;
        Ok(result)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let first = Continuation {
            input_responses: request.input_responses,
            request_state: request.request_state,
        };
        let mut retried = Retried::Tool {
            name: request.name.to_string(),
            arguments: request.arguments.unwrap_or_default(),
            via: None,
        };
        if let Some(answered) = self.builtin(&mut retried, &context).await {
            return answered;
        }
        match rounds::drive(self, &context, retried, first).await? {
            ServerResult::CallToolResult(result) => Ok(result.into()),
            ServerResult::InputRequiredResult(asked) => Ok(CallToolResponse::InputRequired(asked)),
            ServerResult::CreateTaskResult(task) => Ok(CallToolResponse::Task(task)),
            _ => Err(invalid_answer(&context)),
        }
    }

    /// SEP-2663 follow-ups on a task a tool call started (rmcp refuses them
    /// to a client that did not declare the tasks extension).
    async fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        let answer = self.task(&context, &request.task_id, TaskOp::Get).await?;
        match answer {
            ServerResult::GetTaskResult(result) => Ok(result),
            _ => Err(invalid_answer(&context)),
        }
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let op = TaskOp::Update(request.input_responses);
        self.task(&context, &request.task_id, op).await.map(drop)
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        (self.task(&context, &request.task_id, TaskOp::Cancel).await).map(drop)
    }

    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let (page, next) = self.list(&context, request, discovery::prompts).await?;
        let mut result = ListPromptsResult::with_all_items(page);
        result.next_cursor = next;
        Ok(result)
    }

    async fn get_prompt(
        &self,
        mut request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let first = Continuation {
            input_responses: request.input_responses.take(),
            request_state: request.request_state.take(),
        };
        match rounds::drive(self, &context, Retried::Prompt(request), first).await? {
            ServerResult::GetPromptResult(result) => Ok(result.into()),
            ServerResult::InputRequiredResult(asked) => Ok(GetPromptResponse::InputRequired(asked)),
            _ => Err(invalid_answer(&context)),
        }
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let (page, next) = self.list(&context, request, discovery::resources).await?;
        let mut result = ListResourcesResult::with_all_items(page);
        result.next_cursor = next;
        Ok(result)
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let (page, next) = self
            .list(&context, request, discovery::resource_templates)
            .await?;
        let mut result = ListResourceTemplatesResult::with_all_items(page);
        result.next_cursor = next;
        Ok(result)
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let first = Continuation {
            input_responses: request.input_responses,
            request_state: request.request_state,
        };
        let uri = request.uri;
        let retried = Retried::Resource { uri: uri.clone() };
        let answer = rounds::drive(self, &context, retried, first).await;
        match answer.map_err(|error| naming_the_uri(error, &uri))? {
            ServerResult::ReadResourceResult(result) => Ok(result.into()),
            ServerResult::InputRequiredResult(asked) => {
                Ok(ReadResourceResponse::InputRequired(asked))
            }
            _ => Err(invalid_answer(&context)),
        }
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let (ctx, who) = request_context(&context);
        let peer = context.peer.clone();
        let (replicas, id) = (self.replicas.clone(), session_id(&context.extensions));
        let subscriber = Subscriber {
            session: self.session,
            deliver: Arc::new(move |update| {
                if let Some(id) = &id {
                    replicas.updated_elsewhere(id, &update);
                }
                let peer = peer.clone();
                tokio::spawn(async move {
                    let _ = peer.notify_resource_updated(update).await;
                });
            }),
        };
        let change = SubscriptionChange::Subscribe(subscriber);
        let answer = self
            .pipeline
            .change_subscription(&ctx, who, &request.uri, change)
            .await;
        expect(&ctx, answer, |_| Some(()))
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let (ctx, who) = request_context(&context);
        let change = SubscriptionChange::Unsubscribe {
            session: self.session,
        };
        let answer = self
            .pipeline
            .change_subscription(&ctx, who, &request.uri, change)
            .await;
        expect(&ctx, answer, |_| Some(()))
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        let (ctx, who) = request_context(&context);
        let answer = self.pipeline.complete(&ctx, who, request).await;
        expect(&ctx, answer, |answer| match answer {
            ServerResult::CompleteResult(result) => Some(result),
            _ => None,
        })
    }
}
