//! The MCP front door: `/mcp`, Streamable HTTP, served by `rmcp`.
//!
//! `rmcp` speaks the protocol (every revision it supports, sessions,
//! `Host`/`Origin` checks, body limits); this module adds authentication in
//! front of it and answers MCP methods through the pipeline ([`handler`]).

mod builtins;
mod error;
mod guard;
mod handler;
mod listen;
mod param_headers;
mod params;
mod relay;
mod replicas;
mod rounds;
mod session_records;
mod sessions;

use std::sync::Arc;

use axum::Router;
use axum::middleware;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use super::App;

pub use handler::McpFrontDoor;
pub(crate) use params::check as params_check;

/// The virtual endpoint of an `/mcp/<endpoint>` path.
fn endpoint_of(path: &str) -> Option<Arc<str>> {
    let endpoint = path.strip_prefix("/mcp/")?;
    (!endpoint.is_empty()).then(|| endpoint.into())
}

/// How many MCP sessions are open, for `/metrics`.
pub type OpenSessions = Arc<std::sync::atomic::AtomicI64>;

/// The `/mcp` route. `shutdown` ends every open session and stream.
pub fn router(app: Arc<App>, shutdown: CancellationToken, open_sessions: OpenSessions) -> Router {
    let settings = &app.http;
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
    tokio::spawn(live.clone().notify_changes(app.live.clone()));
    // Sessions any replica can continue (`redis:`), see `session_records`.
    let records = Arc::new(session_records::SessionRecords::new(
        app.live.clone(),
        settings.mcp_session_idle,
    ));
    config.session_store = Some(records.clone());
    let mut manager = LocalSessionManager::default();
    manager.session_config.keep_alive = Some(settings.mcp_session_idle);
    let manager = Arc::new(manager);
    let replicas = Arc::new(replicas::Replicas::new(
        manager.clone(),
        live.clone(),
        records,
    ));
    tokio::spawn((replicas.clone()).follow(app.live.clone(), shutdown.clone()));
    let page_size = app.http.mcp_page_size;
    let front_door = McpFrontDoor::new(app.pipeline.clone(), live, replicas.clone(), page_size);
    let service: StreamableHttpService<McpFrontDoor, LocalSessionManager> =
        StreamableHttpService::new(
            move || Ok(front_door.for_new_session()),
            manager.clone(),
            config,
        );
    let guard_state = Arc::new(guard::Guard::new(
        app.clone(),
        manager,
        replicas,
        open_sessions,
    ));
    tokio::spawn(guard_state.clone().forget_ended_sessions(shutdown));
    Router::new()
        .route_service("/mcp", service.clone())
        .route_service("/mcp/{endpoint}", service)
        .layer(middleware::from_fn_with_state(guard_state, guard::guard))
}
