//! HTTP front doors. Each is an adapter over the [`Pipeline`]; this module
//! only wires routes, limits and the catch-all errors.

mod admin;
mod console;
mod error;
#[doc(hidden)]
pub mod fuzz;
mod health;
mod holding;
mod mcp;
mod metrics;
mod places;
mod rest;
mod server;
mod strict_json;
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
    /// The origins the console accepts a form from (the admin listener's).
    pub admin_origins: Vec<String>,
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
        admin_origins: Vec<String>,
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
            admin_origins,
            tail,
            latency,
        })
    }
}

/// The agents' address: the agent routes, `/healthz`, a `/readyz` that says
/// ready or not, and the public documents. Nothing here names a server, a
/// route or a tool the caller's discovery hides. Cancelling `sessions`
/// closes every open MCP session and stream.
pub fn agent_router(
    app: Arc<App>,
    sessions: CancellationToken,
    open_sessions: mcp::OpenSessions,
) -> Router {
    let routes = Router::new()
        .route("/tools", get(rest::tools).post(rest::tools))
        .route(
            "/endpoints/{endpoint}/tools",
            get(rest::endpoint_tools).post(rest::endpoint_tools),
        )
        .route("/invoke", post(rest::invoke))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
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
        .merge(mcp::router(app.clone(), sessions, open_sessions));
    bounded(routes, app.clone()).layer(axum::middleware::from_fn_with_state(
        app,
        well_known::challenge,
    ))
}

/// The operators' surface, on a listener of its own: `/metrics`, the
/// detailed `/readyz`, `/healthz`, the console and `/admin/*`.
pub fn admin_router(app: Arc<App>, open_sessions: mcp::OpenSessions) -> Router {
    let routes = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz_detail))
        .route("/admin/audit", get(admin::audit))
        .route(
            "/metrics",
            get(metrics::metrics).layer(axum::Extension(open_sessions)),
        )
        .with_state(app.clone())
        .merge(console::router(app.clone()));
    bounded(routes, app)
}

/// What every listener's routes share: the catch-all answers, the body's
/// size and time limits, and the refusals made on a request's head.
fn bounded(routes: Router, app: Arc<App>) -> Router {
    let body_limit = app.http.max_body_bytes;
    let body_timeout = app.http.body_timeout;
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(RequestBodyTimeoutLayer::new(body_timeout))
        .layer(axum::middleware::from_fn_with_state(
            app,
            refuse_malformed_heads,
        ))
}

/// Requests refused on their head alone, before any of the body is read
/// (each refusal recorded): two `Authorization` headers (which one would
/// count is anyone's guess), a body announced larger than the limit
/// (`Content-Length`), which gets 413 at once whoever sent it, and an
/// authority that is not one (see [`ambiguous_authority`]).
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
    } else if let Some(problem) = ambiguous_authority(&request) {
        PipelineError::MalformedHead(problem)
    } else {
        return next.run(request).await;
    };
    let front_door = if request.uri().path().starts_with("/mcp") {
        FrontDoor::Mcp
    } else {
        FrontDoor::Rest
    };
    let mut ctx = request_context(headers, front_door);
    ctx.client = client_of(request.extensions());
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

/// The two bound listeners: the agents' address and the operators'.
pub struct Listeners {
    pub agents: TcpListener,
    pub admin: TcpListener,
}

/// What is ambiguous about the host a request names, if anything: two
/// `Host` headers, or a target (HTTP/1.1's absolute form, HTTP/2's
/// `:authority`) naming another host than `Host`. Each check on the host
/// (`http.allowed_hosts`, the console's origin) must see the one host the
/// request is for.
fn ambiguous_authority(request: &Request) -> Option<&'static str> {
    let mut hosts = request.headers().get_all(axum::http::header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Some("two `Host` headers");
    }
    let authority = request.uri().authority()?;
    match host.and_then(|h| h.to_str().ok()) {
        Some(host) if !host.eq_ignore_ascii_case(authority.as_str()) => {
            Some("the request's target names another host than its `Host` header")
        }
        _ => None,
    }
}

/// Serve both listeners until `shutdown` resolves, then finish in-flight
/// requests. Each has its own connection cap, so a crowd on the agents'
/// address never keeps operators (probes, Prometheus, the console) out;
/// and the operators' listener runs on a thread of its own, so agents'
/// work that keeps the runtime's workers busy (huge listings) never keeps
/// `/healthz`, `/readyz` or `/metrics` waiting.
pub async fn serve(
    listeners: Listeners,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let sessions = CancellationToken::new();
    let open_sessions = mcp::OpenSessions::default();
    let agents = agent_router(app.clone(), sessions.clone(), open_sessions.clone());
    let admin = admin_router(app.clone(), open_sessions);
    let agents_http = app.http.clone();
    let admin_http = HttpSettings {
        max_connections: app.http.admin_max_connections,
        ..app.http.clone()
    };
    let stop = CancellationToken::new();
    let admin = on_own_thread(listeners.admin, admin, admin_http, stop.clone())?;
    let serve_agents = server::serve(
        listeners.agents,
        agents,
        &agents_http,
        stop.clone().cancelled_owned(),
    );
    let watch = async move {
        shutdown.await;
        // Open MCP streams would otherwise keep the server waiting.
        sessions.cancel();
        stop.cancel();
    };
    let ((), agents) = tokio::join!(watch, serve_agents);
    let admin = tokio::task::spawn_blocking(move || admin.join()).await;
    let admin = admin.map_err(std::io::Error::other)?;
    agents.and(admin.unwrap_or_else(|_| Err(std::io::Error::other("the admin listener panicked"))))
}

/// Serve `routes` on `listener` on a thread with a runtime of its own,
/// until `stop` is cancelled.
fn on_own_thread(
    listener: TcpListener,
    routes: Router,
    http: HttpSettings,
    stop: CancellationToken,
) -> std::io::Result<std::thread::JoinHandle<std::io::Result<()>>> {
    let listener = listener.into_std()?;
    std::thread::Builder::new()
        .name("admin-listener".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener)?;
                server::serve(listener, routes, &http, stop.cancelled_owned()).await
            })
        })
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

/// The address a request came from, as the listener saw it.
fn client_of(extensions: &axum::http::Extensions) -> Option<std::net::IpAddr> {
    (extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()).map(|c| c.0.ip())
}

/// The address a request came from, as a handler's argument.
struct ClientAddr(Option<std::net::IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(client_of(&parts.extensions)))
    }
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
