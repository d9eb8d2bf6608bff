//! The MCP front door: `/mcp`, Streamable HTTP, served by `rmcp`.
//!
//! `rmcp` speaks the protocol (every revision it supports, sessions,
//! `Host`/`Origin` checks, body limits); this module adds authentication in
//! front of it and answers MCP methods through the pipeline ([`handler`]).

mod error;
mod handler;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use super::error::ApiError;
use crate::audit::FrontDoor;
use crate::identity;
use crate::pipeline::Pipeline;

pub use handler::McpFrontDoor;

/// The `/mcp` route. `shutdown` ends every open session and stream.
pub fn router(pipeline: Arc<Pipeline>, shutdown: CancellationToken) -> Router {
    let settings = &pipeline.catalog().http;
    let mut config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(settings.mcp_sessions)
        .with_max_request_body_bytes(settings.max_body_bytes)
        .with_cancellation_token(shutdown)
        .with_allowed_origins(settings.allowed_origins.clone())
        .enforce_origin_validation();
    config = if settings.allowed_hosts.is_empty() {
        config.disable_allowed_hosts()
    } else {
        config.with_allowed_hosts(settings.allowed_hosts.clone())
    };
    let front_door = McpFrontDoor::new(pipeline.clone());
    let service: StreamableHttpService<McpFrontDoor, LocalSessionManager> =
        StreamableHttpService::new(
            move || Ok(front_door.clone()),
            Default::default(),
            config,
        );
    Router::new()
        .route_service("/mcp", service)
        .layer(middleware::from_fn_with_state(pipeline, authenticate))
}

/// Refuse a request without a valid bearer token with 401 before any MCP
/// message in it is read. The refusal is recorded.
async fn authenticate(
    State(pipeline): State<Arc<Pipeline>>,
    request: Request,
    next: Next,
) -> Response {
    let token = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(identity::bearer_token);
    let ctx = super::request_context(request.headers(), FrontDoor::Mcp);
    match pipeline.admit_connection(&ctx, token) {
        Ok(()) => next.run(request).await,
        Err(error) => ApiError::from(error).into_response_with(&ctx.trace),
    }
}
