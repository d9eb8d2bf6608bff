//! HTTP front doors. Each is an adapter over the [`Pipeline`]; this module
//! only wires routes, limits and the catch-all errors.

mod admin;
mod console;
mod error;
#[doc(hidden)]
pub mod fuzz;
mod health;
mod mcp;
mod metrics;
mod rest;
mod server;
mod well_known;

pub use console::{ConsoleTail, RecentLatency};

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use tower_http::timeout::RequestBodyTimeoutLayer;

use crate::audit::AuditLog;
use crate::config::HttpSettings;
use crate::identity::Presented;
use crate::live::Live;
use crate::pipeline::{
    CallContext, Pipeline, PipelineError, REQUEST_TIMEOUT_HEADER, RequestedTimeout,
};
use crate::telemetry::metrics::Metrics;
use crate::vocabulary::{Action, FrontDoor};
use error::ApiError;

/// What the front doors share, built once by `serve`.
pub struct App {
    /// The one request path.
    pub pipeline: Arc<Pipeline>,
    /// The catalog in force, for readiness and the public documents.
    pub live: Arc<Live>,
    /// The audit trail, for readiness and metrics.
    pub audit: AuditLog,
    /// Requests counted from their audit records.
    pub metrics: Arc<Metrics>,
    /// The `http` section as the process started with it: the listener's
    /// limits (a reload does not change them).
    pub http: HttpSettings,
    /// The operator console's sign-ins.
    pub console: console::ConsoleSessions,
    /// The audit records the console's live tail shows.
    pub tail: Arc<console::ConsoleTail>,
    /// Each upstream's recent latency, for the console.
    pub latency: Arc<console::RecentLatency>,
}

impl App {
    /// The front doors' state; starts recording the quarantine's changes
    /// (so it must run on the runtime).
    pub fn new(
        live: Arc<Live>,
        audit: AuditLog,
        metrics: Arc<Metrics>,
        tail: Arc<console::ConsoleTail>,
        latency: Arc<console::RecentLatency>,
    ) -> Arc<Self> {
        let pipeline = Arc::new(Pipeline::new(live.clone(), audit.clone()));
        tokio::spawn(pipeline.clone().follow_quarantine());
        Arc::new(Self {
            pipeline,
            http: live.current().catalog.http.clone(),
            live,
            audit,
            metrics,
            console: console::ConsoleSessions::default(),
            tail,
            latency,
        })
    }
}

/// Every route of the control plane. Cancelling `sessions` closes every open
/// MCP session and stream.
pub fn router(app: Arc<App>, sessions: CancellationToken) -> Router {
    let body_limit = app.http.max_body_bytes;
    let body_timeout = app.http.body_timeout;
    let open_sessions = mcp::OpenSessions::default();
    Router::new()
        .route("/tools", get(rest::tools).post(rest::tools))
        .route(
            "/endpoints/{endpoint}/tools",
            get(rest::endpoint_tools).post(rest::endpoint_tools),
        )
        .route("/invoke", post(rest::invoke))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/admin/audit", get(admin::audit))
        .route(
            "/metrics",
            get(metrics::metrics).layer(axum::Extension(open_sessions.clone())),
        )
        .route("/.well-known/jwks.json", get(well_known::jwks))
        .route(
            "/.well-known/oauth-protected-resource",
            get(well_known::protected_resource),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(well_known::protected_resource),
        )
        .with_state(app.clone())
        .merge(mcp::router(app.clone(), sessions, open_sessions))
        .merge(console::router(app.clone()))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(RequestBodyTimeoutLayer::new(body_timeout))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            refuse_malformed_heads,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app,
            well_known::challenge,
        ))
}

/// Requests refused on their head alone, before any of the body is read
/// (each refusal recorded): two `Authorization` headers (which one would
/// count is anyone's guess), and a body announced larger than the limit
/// (`Content-Length`), which gets 413 at once.
async fn refuse_malformed_heads(
    State(app): State<Arc<App>>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let limit = app.http.max_body_bytes;
    let announced = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let error = if headers
        .get_all(axum::http::header::AUTHORIZATION)
        .iter()
        .count()
        > 1
    {
        PipelineError::Unauthenticated(crate::identity::IdentityError::Ambiguous)
    } else if announced.is_some_and(|length| length > limit as u64) {
        PipelineError::PayloadTooLarge(limit)
    } else {
        return next.run(request).await;
    };
    let front_door = if request.uri().path().starts_with("/mcp") {
        FrontDoor::Mcp
    } else {
        FrontDoor::Rest
    };
    let ctx = request_context(headers, front_door);
    let error = (app.pipeline)
        .reject(
            &ctx,
            Action::Connect,
            Presented::Bearer(bearer(headers)),
            None,
            error,
        )
        .await;
    let mut response = ApiError::from(error).into_response_with(&ctx.trace);
    // The body is never read: the connection cannot carry another request.
    response.headers_mut().insert(
        axum::http::header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    response
}

/// Serve until `shutdown` resolves, then finish in-flight requests.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let sessions = CancellationToken::new();
    let http = app.http.clone();
    let routes = router(app, sessions.clone());
    server::serve(listener, routes, &http, async move {
        shutdown.await;
        // Open MCP streams would otherwise keep the server waiting.
        sessions.cancel();
    })
    .await
}

async fn not_found(headers: HeaderMap) -> Response {
    ApiError::NotFound.into_response_with(&request_context(&headers, FrontDoor::Rest).trace)
}

async fn method_not_allowed(headers: HeaderMap) -> Response {
    ApiError::MethodNotAllowed.into_response_with(&request_context(&headers, FrontDoor::Rest).trace)
}

/// The bearer token of a request's `Authorization` header, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(crate::identity::bearer_token)
}

/// A new request context, continuing the caller's `traceparent` if valid.
fn request_context(headers: &HeaderMap, front_door: FrontDoor) -> CallContext {
    let traceparent = headers.get("traceparent").and_then(|v| v.to_str().ok());
    let tracestate = headers.get("tracestate").and_then(|v| v.to_str().ok());
    let mut ctx = CallContext::new(front_door, traceparent, tracestate);
    ctx.requested_timeout = requested_timeout(headers);
    ctx
}

/// What the caller's `X-Request-Timeout` header asks, if it sent one.
fn requested_timeout(headers: &HeaderMap) -> Option<RequestedTimeout> {
    let value = headers.get(REQUEST_TIMEOUT_HEADER)?;
    Some(
        value
            .to_str()
            .map_or(RequestedTimeout::Malformed, RequestedTimeout::parse),
    )
}
