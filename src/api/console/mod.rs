//! The operator's console at `/ui/`, for the catalog's `admins`: server-
//! rendered pages on the same listener, with nothing fetched from another
//! host. An admin token is exchanged once (`POST /ui/login`, as
//! `Authorization: Bearer` or a form field `token`) for a session cookie
//! (`HttpOnly`, `SameSite=Strict`, `Secure` behind TLS); an agent's token
//! never opens it. Every state-changing request carries the session's CSRF
//! token and comes from the console's own origin, and every answer has a
//! strict `Content-Security-Policy`.

mod audit;
mod charts;
mod latency;
mod pages;
mod playground;
mod sessions;
mod tail;
mod timeline;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

pub use latency::RecentLatency;
pub use sessions::ConsoleSessions;
pub use tail::ConsoleTail;

use super::App;
use crate::catalog::TransportSpec;
use crate::identity::{self, Caller};

/// The session cookie's name.
const COOKIE: &str = "mcp_cp_console";

/// What every console answer says about itself.
const SECURITY_HEADERS: [(&str, &str); 5] = [
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    // Not `no-referrer`: with it a browser posts forms with `Origin: null`.
    ("referrer-policy", "same-origin"),
    ("x-frame-options", "DENY"),
    ("cache-control", "no-store"),
];

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(overview))
        .route("/ui/login", post(login))
        .route("/ui/logout", post(logout))
        .route("/ui/approve", post(approve))
        .route("/ui/access", get(access))
        .route("/ui/audit", get(audit::search))
        .route("/ui/audit/tail", get(tail::tail))
        .route("/ui/assets/console.js", get(script))
        .route("/ui/charts", get(charts::charts))
        .route("/ui/trace/{trace_id}", get(audit::trace))
        .route(
            "/ui/playground",
            get(playground::form_page).post(playground::decide),
        )
        .route("/ui/assets/console.css", get(style))
        .layer(axum::middleware::from_fn(secure_headers))
        .with_state(app)
}

async fn secure_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

async fn script() -> Response {
    let javascript = "text/javascript; charset=utf-8";
    ([(header::CONTENT_TYPE, javascript)], tail::SCRIPT).into_response()
}

async fn style() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        pages::STYLE,
    )
        .into_response()
}

/// The cookie's value, if the request carries it.
fn cookie(headers: &HeaderMap) -> Option<&str> {
    (headers.get_all(header::COOKIE).iter())
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

/// The signed-in session of this request, if any.
fn session(app: &App, headers: &HeaderMap) -> Option<sessions::Session> {
    app.console.get(cookie(headers)?)
}

/// Whether a state-changing request comes from the console's own origin
/// (a browser always says where a form was posted from). The origin is
/// compared with the admin listener's configured origin, never with the
/// request's `Host`, which whoever sends it chooses.
fn same_origin(app: &App, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        // Not a browser's cross-site form (those carry an Origin).
        return true;
    };
    app.admin_origins.iter().any(|own| own == origin)
}

fn form(body: &Bytes) -> Form {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A form's fields, in order.
type Form = Vec<(String, String)>;

/// The session and the form of a state-changing request: signed in, from
/// the console's own origin, with the session's CSRF token; else the
/// answer to send (back to sign-in, or 403).
fn signed_form(
    app: &App,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(sessions::Session, Form), Box<Response>> {
    let Some(session) = session(app, headers) else {
        return Err(Box::new(Redirect::to("/ui/").into_response()));
    };
    let form = form(body);
    if !same_origin(app, headers) || field(&form, "csrf") != Some(session.csrf.as_str()) {
        let refusal = "the request did not carry this session's CSRF token";
        return Err(Box::new((StatusCode::FORBIDDEN, refusal).into_response()));
    }
    Ok((session, form))
}

fn refused(status: StatusCode, page: String) -> Response {
    (status, Html(page)).into_response()
}

async fn login(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let ctx = super::request_context(&headers, crate::vocabulary::FrontDoor::Rest);
    if !same_origin(&app, &headers) {
        let bad = crate::vocabulary::Outcome::BadRequest;
        let _ = app.pipeline.record_sign_in(&ctx, None, bad).await;
        return refused(
            StatusCode::FORBIDDEN,
            pages::login(Some("a sign-in must come from this console")),
        );
    }
    let form = form(&body);
    let token = super::bearer(&headers).or_else(|| field(&form, "token"));
    let catalog = &app.live.current().catalog;
    let admin = match identity::authenticate_admin(catalog, token) {
        Ok(admin) => admin,
        Err(_) => {
            tracing::warn!("a console sign-in was refused");
            let _ = (app.pipeline)
                .record_sign_in(&ctx, None, crate::vocabulary::Outcome::Unauthenticated)
                .await;
            let page = pages::login(Some("that is not an admin token"));
            return refused(StatusCode::UNAUTHORIZED, page);
        }
    };
    let recorded = (app.pipeline)
        .record_sign_in(&ctx, Some(admin.clone()), crate::vocabulary::Outcome::Ok)
        .await;
    if recorded.is_err() {
        let page = pages::login(Some("the audit trail is unavailable; try again later"));
        return refused(StatusCode::SERVICE_UNAVAILABLE, page);
    }
    tracing::info!(%admin, "signed in to the console");
    let (value, _) = app.console.open(admin);
    // Behind a proxy that terminates TLS the cookie is only ever sent back
    // over TLS.
    let tls = (headers.get("x-forwarded-proto"))
        .is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"https"));
    let secure = if tls { "; Secure" } else { "" };
    let max_age = sessions::LIFETIME.as_secs();
    let cookie =
        format!("{COOKIE}={value}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}");
    let mut response = Redirect::to("/ui/").into_response();
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

async fn logout(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refused) = signed_form(&app, &headers, &body) {
        return *refused;
    }
    if let Some(value) = cookie(&headers) {
        app.console.close(value);
    }
    let mut response = Redirect::to("/ui/").into_response();
    let expired = format!("{COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0");
    if let Ok(cookie) = HeaderValue::from_str(&expired) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// `POST /ui/approve`: accept what the servers serve now for a
/// quarantined tool or prompt (recorded with the admin's id first).
async fn approve(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let (session, form) = match signed_form(&app, &headers, &body) {
        Ok(signed) => signed,
        Err(refused) => return *refused,
    };
    let name = field(&form, "name").unwrap_or("");
    match app.pipeline.approve(session.admin.clone(), name).await {
        Ok(_) => Redirect::to("/ui/").into_response(),
        Err(error) => render_overview(&app, &session, Some(&error.to_string())),
    }
}

async fn overview(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let Some(session) = session(&app, &headers) else {
        return Html(pages::login(None)).into_response();
    };
    render_overview(&app, &session, None)
}

fn render_overview(app: &App, session: &sessions::Session, problem: Option<&str>) -> Response {
    let snapshot = app.live.current();
    let status = app.live.status();
    let statuses = snapshot.upstreams.status();
    let upstreams = (statuses.iter().zip(snapshot.catalog.servers()))
        .map(|(status, spec)| {
            let (transport, address) = match &spec.transport {
                TransportSpec::Stdio { command, args, .. } => {
                    ("stdio", format!("{command} {}", args.join(" ")))
                }
                TransportSpec::Http { url, .. } => ("http", url.clone()),
                TransportSpec::Sse { url, .. } => ("sse", url.clone()),
            };
            let circuit = snapshot
                .breakers
                .of(&status.name)
                .map(|b| b.state().as_str());
            pages::Upstream {
                status,
                transport,
                address,
                circuit,
                latency_ms: app.latency.of(&status.name),
            }
        })
        .collect();
    let policy = snapshot.policies.status();
    let overview = pages::Overview {
        version: &status.version,
        loaded_at: &status.loaded_at,
        reload_error: status.reload_error.as_deref(),
        policy_mode: policy.mode,
        tests_passed: policy.tests_passed,
        upstreams,
        quarantined: crate::discovery::quarantine::all(&snapshot.catalog, &snapshot.upstreams),
    };
    Html(pages::overview(
        &overview,
        &session.admin,
        &session.csrf,
        problem,
    ))
    .into_response()
}

#[derive(Deserialize)]
struct AccessQuery {
    agent: Option<String>,
    tool: Option<String>,
}

async fn access(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(query): Query<AccessQuery>,
) -> Response {
    let Some(session) = session(&app, &headers) else {
        return Redirect::to("/ui/").into_response();
    };
    let snapshot = app.live.current();
    let mut agents: Vec<(String, String)> = (snapshot.catalog.agents())
        .map(|a| (a.id.to_string(), a.role.to_string()))
        .collect();
    agents.sort();
    let picked = query.agent.as_deref().and_then(|id| {
        let (_, role) = agents.iter().find(|(a, _)| a == id)?;
        let caller = Caller {
            agent_id: id.into(),
            role: role.as_str().into(),
            claims: None,
        };
        let tools = app
            .pipeline
            .preview(&caller, None, crate::discovery::visible_tools);
        Some((id, tools.iter().map(|t| t.to_string()).collect::<Vec<_>>()))
    });
    let picked = picked.as_ref().map(|(id, tools)| (*id, tools.as_slice()));
    // For one tool: which agents' roles grant it, and whether their own
    // listing shows it (the policy's `visible` rule, the quarantine).
    let mut names: Vec<String> = snapshot
        .catalog
        .tools()
        .map(|t| t.public_name.to_string())
        .collect();
    names.sort();
    let tool = query
        .tool
        .as_deref()
        .filter(|t| names.iter().any(|n| n == t));
    let reach: Vec<pages::Reach> = tool
        .map(|tool| {
            (agents.iter())
                .map(|(id, role)| {
                    let granted =
                        (snapshot.catalog.view(role, None)).is_some_and(|v| v.tools.allows(tool));
                    let caller = Caller {
                        agent_id: id.as_str().into(),
                        role: role.as_str().into(),
                        claims: None,
                    };
                    let listed =
                        app.pipeline
                            .preview(&caller, None, crate::discovery::visible_tools);
                    pages::Reach {
                        agent: id.clone(),
                        role: role.clone(),
                        granted,
                        listed: listed.iter().any(|n| &**n == tool),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let by_tool = pages::ByTool {
        tools: &names,
        picked: tool,
        reach: &reach,
    };
    Html(pages::access(
        &agents,
        picked,
        &by_tool,
        &session.admin,
        &session.csrf,
    ))
    .into_response()
}
