//! The MCP front door: `/mcp`, Streamable HTTP, served by `rmcp`.
//!
//! `rmcp` speaks the protocol (every revision it supports, sessions,
//! `Host`/`Origin` checks, body limits); this module adds authentication in
//! front of it and answers MCP methods through the pipeline ([`handler`]).

mod error;
mod handler;
mod sessions;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use rmcp::model::ErrorCode;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde::de::IgnoredAny;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::error::ApiError;
use crate::audit::{Action, FrontDoor};
use crate::identity::Presented;
use crate::pipeline::{CallContext, Pipeline, PipelineError};

pub use handler::McpFrontDoor;

/// The `/mcp` route. `shutdown` ends every open session and stream.
pub fn router(pipeline: Arc<Pipeline>, shutdown: CancellationToken) -> Router {
    let settings = &pipeline.catalog().http;
    let mut config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(settings.mcp_sessions)
        // A plain JSON answer where nothing streams before the result (rmcp
        // switches to SSE when a notification or request comes first):
        // measured 3.7k instead of 2.35k stateless tool calls/s.
        .with_json_response(true)
        .with_max_request_body_bytes(settings.max_body_bytes)
        .with_cancellation_token(shutdown.clone())
        .with_allowed_origins(settings.allowed_origins.clone())
        .enforce_origin_validation();
    config = if settings.allowed_hosts.is_empty() {
        config.disable_allowed_hosts()
    } else {
        config.with_allowed_hosts(settings.allowed_hosts.clone())
    };
    let live = sessions::Sessions::default();
    tokio::spawn(live.clone().notify_changes(pipeline.clone()));
    let front_door = McpFrontDoor::new(pipeline.clone(), live);
    let manager = Arc::new(LocalSessionManager::default());
    let service: StreamableHttpService<McpFrontDoor, LocalSessionManager> =
        StreamableHttpService::new(
            move || Ok(front_door.for_new_session()),
            manager.clone(),
            config,
        );
    let guard_state = Arc::new(Guard {
        pipeline,
        owners: Mutex::default(),
    });
    tokio::spawn(forget_ended_sessions(
        guard_state.clone(),
        manager,
        shutdown,
    ));
    Router::new()
        .route_service("/mcp", service)
        .layer(middleware::from_fn_with_state(guard_state, guard))
}

/// What the guard in front of rmcp needs.
struct Guard {
    pipeline: Arc<Pipeline>,
    /// Which agent opened each session: a session answers only to it, so a
    /// leaked session id is of no use to another agent.
    owners: Mutex<HashMap<String, Arc<str>>>,
}

impl Guard {
    fn owners(&self) -> MutexGuard<'_, HashMap<String, Arc<str>>> {
        self.owners
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

const SESSION_HEADER: &str = "mcp-session-id";

/// Sessions also end by idling out inside rmcp; drop their owners too.
async fn forget_ended_sessions(
    guard: Arc<Guard>,
    manager: Arc<LocalSessionManager>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let live: HashSet<String> = manager
            .sessions
            .read()
            .await
            .keys()
            .map(|id| id.to_string())
            .collect();
        guard.owners().retain(|id, _| live.contains(id));
    }
}

/// Everything `/mcp` checks before `rmcp` sees a request:
/// - a valid bearer token, else 401 before any MCP message is read;
/// - a POST body within the limit (413) that is JSON at all (else the
///   JSON-RPC parse error), and a JSON-RPC message (else invalid request).
///
/// Every refusal is recorded.
async fn guard(State(guard): State<Arc<Guard>>, mut request: Request, next: Next) -> Response {
    let pipeline = &guard.pipeline;
    let ctx = super::request_context(request.headers(), FrontDoor::Mcp);
    let token = super::bearer(request.headers()).map(str::to_owned);
    let caller = match pipeline.admit_connection(&ctx, token.as_deref()).await {
        Ok(caller) => caller,
        Err(error) => return ApiError::from(error).into_response_with(&ctx.trace),
    };
    // The messages inside are attributed to this caller without checking
    // the credential again (see `handler::presented`).
    request.extensions_mut().insert(caller.clone());
    let who = Presented::Verified(&caller);
    let session = request
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(session) = &session {
        let owner = guard.owners().get(session).cloned();
        if owner.is_some_and(|owner| owner != caller.agent_id) {
            // Another agent's session: exactly as unknown as a made-up id.
            return jsonrpc_error(
                &ctx,
                StatusCode::NOT_FOUND,
                ErrorCode::INVALID_REQUEST,
                "Session not found",
            );
        }
    }
    if request.method() == Method::DELETE {
        // rmcp answers a session's end with 202; the SDKs expect 200 or 204.
        let mut response = next.run(request).await;
        if response.status() == StatusCode::ACCEPTED {
            *response.status_mut() = StatusCode::NO_CONTENT;
        }
        if response.status().is_success()
            && let Some(session) = &session
        {
            guard.owners().remove(session);
        }
        return response;
    }
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let limit = pipeline.catalog().http.max_body_bytes;
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        let error = pipeline
            .reject(
                &ctx,
                Action::Connect,
                who,
                PipelineError::PayloadTooLarge(limit),
            )
            .await;
        return ApiError::from(error).into_response_with(&ctx.trace);
    };
    if serde_json::from_slice::<IgnoredAny>(&bytes).is_err() {
        let error = PipelineError::InvalidRequest("the body is not valid JSON".into());
        pipeline.reject(&ctx, Action::Connect, who, error).await;
        return jsonrpc_error(
            &ctx,
            StatusCode::BAD_REQUEST,
            ErrorCode::PARSE_ERROR,
            "Parse error: the body is not valid JSON",
        );
    }
    let declared_json = is_json(&parts.headers);
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    // A new session (the answer to `initialize`) belongs to its caller.
    if session.is_none()
        && let Some(created) = response
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
    {
        guard
            .owners()
            .insert(created.to_owned(), caller.agent_id.clone());
    }
    // rmcp answers a JSON body that is no JSON-RPC message with a plain-text 415.
    if declared_json && response.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE {
        let error = PipelineError::InvalidRequest("not a JSON-RPC 2.0 message".into());
        pipeline.reject(&ctx, Action::Connect, who, error).await;
        return jsonrpc_error(
            &ctx,
            StatusCode::BAD_REQUEST,
            ErrorCode::INVALID_REQUEST,
            "Invalid Request: not a JSON-RPC 2.0 message",
        );
    }
    response
}

fn is_json(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        })
}

/// A JSON-RPC error response to a message that was not processed (so it has
/// no id).
fn jsonrpc_error(
    ctx: &CallContext,
    status: StatusCode,
    code: ErrorCode,
    message: &str,
) -> Response {
    let body = json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": { "code": code.0, "message": message, "data": { "trace_id": ctx.trace.trace_id_hex() } },
    });
    (status, axum::Json(body)).into_response()
}
