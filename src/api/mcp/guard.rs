//! Everything `/mcp` checks before `rmcp` sees a request, and the
//! sessions it lets an agent open:
//! - a valid bearer token, else 401 before any MCP message is read;
//! - a session id only its owner may use, at the endpoint it was opened on
//!   (another agent's id, or one used at another endpoint, gets exactly
//!   the answer an unknown id gets);
//! - a POST body within the limit (413) that is JSON (else the JSON-RPC
//!   parse error), one JSON-RPC message (else invalid request; batches
//!   are not taken), with params of the right shape for the methods the
//!   pipeline answers (else invalid params);
//! - a new session only within `http.mcp_max_sessions` and
//!   `http.mcp_max_sessions_per_agent`.
//!
//! With replicas (`redis:`), a session opened here is kept for the others
//! and one opened elsewhere is checked against its record
//! ([`super::session_records`]); a session ended here ends on the others,
//! and a client's answer to a relayed request reaches the replica that
//! waits for it, wherever the balancer sent it.
//!
//! Every refusal is recorded, `rmcp`'s own (a bad protocol version, a
//! refused `Host` or `Origin`, a missing session id) too.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::model::ErrorCode;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::OpenSessions;
use super::replicas::Replicas;
use super::session_records::{Owner, SessionRecords};
use super::{param_headers, params};
use crate::api::App;
use crate::api::error::ApiError;
use crate::api::holding::until_sent;
use crate::api::places::{Place, Places};
use crate::api::strict_json::Unreadable;
use crate::identity::{Caller, Presented};
use crate::pipeline::{CallContext, PipelineError};
use crate::shared::Event;
use crate::vocabulary::{Action, FrontDoor};

/// The 2026-07-28 revision's error for headers that disagree with the body.
const HEADER_MISMATCH: ErrorCode = ErrorCode(-32020);

const SESSION_HEADER: &str = "mcp-session-id";

/// What the guard needs.
pub struct Guard {
    app: Arc<App>,
    manager: Arc<LocalSessionManager>,
    replicas: Arc<Replicas>,
    table: Mutex<SessionTable>,
    open: OpenSessions,
    /// Each agent's open `GET /mcp` streams, and its `subscriptions/listen`
    /// streams.
    streams: Arc<Places<Arc<str>>>,
    listens: Arc<Places<Arc<str>>>,
}

/// Who owns each session, and the sessions being opened right now.
#[derive(Default)]
struct SessionTable {
    /// Session id -> the agent that opened it: a session answers only to
    /// it, so a leaked session id is of no use to another agent.
    owners: HashMap<String, Owned>,
    /// Agent -> `initialize` requests in flight (counted against the caps).
    opening: HashMap<Arc<str>, usize>,
}

/// A session held here.
struct Owned {
    owner: Owner,
    /// When its shared record was last renewed (or kept).
    renewed: Instant,
}

impl Owned {
    fn by(owner: Owner) -> Self {
        Self {
            owner,
            renewed: Instant::now(),
        }
    }
}

impl SessionTable {
    fn held_by(&self, agent: &str) -> usize {
        let owned = (self.owners.values())
            .filter(|owned| *owned.owner.agent == *agent)
            .count();
        owned + self.opening.get(agent).copied().unwrap_or(0)
    }

    fn held(&self) -> usize {
        self.owners.len() + self.opening.values().sum::<usize>()
    }
}

impl Guard {
    pub fn new(
        app: Arc<App>,
        manager: Arc<LocalSessionManager>,
        replicas: Arc<Replicas>,
        open: OpenSessions,
    ) -> Self {
        Self {
            app,
            manager,
            replicas,
            table: Mutex::default(),
            open,
            streams: Arc::default(),
            listens: Arc::default(),
        }
    }

    fn records(&self) -> &SessionRecords {
        self.replicas.records()
    }

    fn table(&self) -> MutexGuard<'_, SessionTable> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sessions also end by idling out inside rmcp: forget their owners.
    async fn forget_ended(&self) {
        let live: HashSet<String> = (self.manager.sessions.read().await.keys())
            .map(|id| id.to_string())
            .collect();
        let mut table = self.table();
        table.owners.retain(|id, _| live.contains(id));
        self.open
            .store(table.owners.len() as i64, Ordering::Relaxed);
    }

    /// Until `shutdown`: forget ended sessions every 10 s.
    pub async fn forget_ended_sessions(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(10));
        loop {
            tokio::select! {
                _ = tick.tick() => self.forget_ended().await,
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// A place for one more session of `agent`, if the caps allow it.
    async fn reserve(&self, agent: &Arc<str>) -> Result<Reservation<'_>, PipelineError> {
        let http = &self.app.http;
        let over = |table: &SessionTable| {
            if table.held_by(agent) >= http.mcp_max_sessions_per_agent {
                Some("the agent's limit")
            } else if table.held() >= http.mcp_max_sessions {
                Some("the control plane's limit")
            } else {
                None
            }
        };
        if over(&self.table()).is_some() {
            // Idled-out sessions may still be counted: look again after
            // forgetting them.
            self.forget_ended().await;
        }
        let mut table = self.table();
        if let Some(limit) = over(&table) {
            return Err(PipelineError::TooManySessions(limit));
        }
        *table.opening.entry(agent.clone()).or_default() += 1;
        Ok(Reservation {
            guard: self,
            agent: agent.clone(),
        })
    }

    /// Whom `session` answers to: as this replica knows it, else as its
    /// shared record says (then this replica holds it from now on). A
    /// session in use here has its record renewed now and then.
    async fn owner(&self, session: &str) -> Option<Owner> {
        let renew_every = self.records().renew_every();
        let known = self.table().owners.get_mut(session).map(|owned| {
            let due = owned.renewed.elapsed() >= renew_every;
            if due {
                owned.renewed = Instant::now();
            }
            (owned.owner.clone(), due)
        });
        match known {
            Some((owner, due)) => {
                if due {
                    self.records().renew(session);
                }
                Some(owner)
            }
            None => {
                let owner = self.records().owner(session).await?;
                let mut table = self.table();
                table
                    .owners
                    .insert(session.to_owned(), Owned::by(owner.clone()));
                self.open
                    .store(table.owners.len() as i64, Ordering::Relaxed);
                Some(owner)
            }
        }
    }

    fn forget(&self, session: &str) {
        let mut table = self.table();
        table.owners.remove(session);
        self.open
            .store(table.owners.len() as i64, Ordering::Relaxed);
    }
}

/// A place held for a session being opened; given back when dropped.
struct Reservation<'a> {
    guard: &'a Guard,
    agent: Arc<str>,
}

impl Reservation<'_> {
    /// The session was opened: it now counts as owned by its agent.
    fn opened(self, session: &str, owner: Owner) {
        let mut table = self.guard.table();
        table.owners.insert(session.to_owned(), Owned::by(owner));
        self.guard
            .open
            .store(table.owners.len() as i64, Ordering::Relaxed);
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut table = self.guard.table();
        if let Some(count) = table.opening.get_mut(&self.agent) {
            *count -= 1;
            if *count == 0 {
                table.opening.remove(&self.agent);
            }
        }
    }
}

/// One request through the guard, after authentication.
struct Checked<'a> {
    guard: &'a Guard,
    ctx: CallContext,
    caller: &'a Caller,
    session: Option<String>,
}

impl Checked<'_> {
    /// Whom a session this request opens answers to.
    fn owner(&self) -> Owner {
        Owner {
            agent: self.caller.agent_id.clone(),
            endpoint: self.ctx.endpoint.clone(),
        }
    }

    fn who(&self) -> Presented<'_> {
        Presented::Verified(self.caller)
    }

    /// Record a refusal and answer it as a JSON-RPC error.
    async fn refuse(
        &self,
        action: Action,
        named: Option<&str>,
        error: PipelineError,
        answer: (StatusCode, ErrorCode, &str, Value),
    ) -> Response {
        let recorded = (self.guard.app.pipeline)
            .reject(&self.ctx, action, self.who(), named, error)
            .await;
        if matches!(recorded, PipelineError::AuditUnavailable(_)) {
            return ApiError::from(recorded).into_response_with(&self.ctx.trace);
        }
        let (status, code, message, id) = answer;
        jsonrpc_error(&self.ctx, status, code, message, id)
    }

    /// Refuse a body no message could be read from (HTTP 400, no id).
    async fn refuse_unread(&self, code: ErrorCode, message: &'static str) -> Response {
        let error = PipelineError::InvalidRequest(message.into());
        let answer = (StatusCode::BAD_REQUEST, code, message, Value::Null);
        self.refuse(Action::Connect, None, error, answer).await
    }

    /// The answer to a stream beyond the agent's cap.
    async fn too_many_streams(&self, id: Value) -> Response {
        let error = PipelineError::TooManyStreams;
        let message = error.to_string();
        let code = super::error::TOO_MANY_SESSIONS;
        let answer = (StatusCode::TOO_MANY_REQUESTS, code, message.as_str(), id);
        self.refuse(Action::Connect, None, error, answer).await
    }

    /// A place among the agent's open streams of `kind`, if it has one.
    fn stream_place(&self, kind: &Arc<Places<Arc<str>>>) -> Option<Place<Arc<str>>> {
        let cap = self.guard.app.http.mcp_max_streams_per_agent;
        kind.admit(&self.caller.agent_id, cap)
    }

    /// The one answer to an unknown session id and to another agent's.
    async fn unknown_session(&self) -> Response {
        let error = PipelineError::InvalidRequest("unknown session".into());
        let answer = (
            StatusCode::NOT_FOUND,
            ErrorCode::INVALID_REQUEST,
            "Session not found",
            Value::Null,
        );
        self.refuse(Action::Connect, None, error, answer).await
    }

    /// Record `rmcp`'s own refusals; an unknown session gets our answer.
    async fn after_rmcp(&self, response: Response) -> Response {
        let status = response.status();
        if status == StatusCode::NOT_FOUND && self.session.is_some() {
            return self.unknown_session().await;
        }
        if status.is_client_error() {
            let error =
                PipelineError::InvalidRequest(format!("refused by the transport ({status})"));
            let _ = (self.guard.app.pipeline)
                .reject(&self.ctx, Action::Connect, self.who(), None, error)
                .await;
        }
        response
    }

    async fn post(&self, request: Request, next: Next) -> Response {
        let pipeline = &self.guard.app.pipeline;
        let limit = self.guard.app.http.max_body_bytes;
        let (parts, body) = request.into_parts();
        let bytes = match axum::body::to_bytes(body, limit).await {
            Ok(bytes) => bytes,
            Err(error) => {
                let too_large = std::error::Error::source(&error)
                    .is_some_and(|e| e.is::<http_body_util::LengthLimitError>());
                let error = if too_large {
                    PipelineError::PayloadTooLarge(limit)
                } else {
                    PipelineError::InvalidRequest("the request body could not be read".into())
                };
                let error = pipeline
                    .reject(&self.ctx, Action::Connect, self.who(), None, error)
                    .await;
                return ApiError::from(error).into_response_with(&self.ctx.trace);
            }
        };
        let message = match crate::api::strict_json::parse(&bytes) {
            Ok(message) => message,
            Err(Unreadable::Syntax(_)) => {
                let message = "Parse error: the body is not valid JSON";
                return self.refuse_unread(ErrorCode::PARSE_ERROR, message).await;
            }
            Err(Unreadable::DuplicateKey(_)) => {
                let message = "Invalid Request: an object in the message names a key twice";
                return (self.refuse_unread(ErrorCode::INVALID_REQUEST, message)).await;
            }
        };
        if message.is_array() {
            let message =
                "Invalid Request: JSON-RPC batches are not supported; send one message per request";
            return self
                .refuse_unread(ErrorCode::INVALID_REQUEST, message)
                .await;
        }
        let id = message.get("id").cloned().unwrap_or(Value::Null);
        if let Some(malformed) = params::check(&message) {
            let error = PipelineError::InvalidRequest(malformed.problem.into());
            let text = format!("Invalid params: {}", malformed.problem);
            let answer = (StatusCode::OK, ErrorCode::INVALID_PARAMS, text.as_str(), id);
            let named = malformed.named.as_deref();
            return self.refuse(malformed.action, named, error, answer).await;
        }
        let live = &self.guard.app.live;
        if let Err(reason) = param_headers::check_call(live, self.caller, &parts.headers, &message)
        {
            let named = message.pointer("/params/name").and_then(Value::as_str);
            let text = format!("Header mismatch: {reason}");
            let error = PipelineError::InvalidRequest(reason);
            let answer = (StatusCode::BAD_REQUEST, HEADER_MISMATCH, text.as_str(), id);
            return self.refuse(Action::Call, named, error, answer).await;
        }
        let method = message.get("method").and_then(Value::as_str);
        let opens = self.session.is_none()
            && self.guard.app.http.mcp_sessions
            && method == Some("initialize");
        let reservation = if opens {
            match self.guard.reserve(&self.caller.agent_id).await {
                Ok(reservation) => Some(reservation),
                Err(error) => {
                    let message = error.to_string();
                    let answer = (
                        StatusCode::TOO_MANY_REQUESTS,
                        super::error::TOO_MANY_SESSIONS,
                        message.as_str(),
                        id,
                    );
                    return self.refuse(Action::Connect, None, error, answer).await;
                }
            }
        } else {
            None
        };
        // The replica that relayed a request may not be this one.
        if let Some(session) = &self.session
            && is_answer(&message)
        {
            let session = session.as_str().into();
            let answer = Event::ClientAnswer {
                session,
                message: message.clone(),
            };
            self.guard.records().tell_others(answer);
        }
        let declared_json = is_json(&parts.headers);
        // A listen stream holds its place among the agent's until it ends.
        let place = match method == Some("subscriptions/listen") {
            true => match self.stream_place(&self.guard.listens) {
                Some(place) => Some(place),
                None => return self.too_many_streams(id).await,
            },
            false => None,
        };
        let response = next
            .run(Request::from_parts(parts, Body::from(bytes)))
            .await;
        let response = match place {
            Some(place) => until_sent(response, place),
            None => response,
        };
        // A new session (the answer to `initialize`) belongs to its caller,
        // on every replica.
        if let Some(reservation) = reservation
            && let Some(created) = response
                .headers()
                .get(SESSION_HEADER)
                .and_then(|v| v.to_str().ok())
        {
            let owner = self.owner();
            reservation.opened(created, owner.clone());
            let params = message.get("params");
            self.guard.records().keep(created, &owner, params).await;
        }
        // rmcp answers a JSON body that is no JSON-RPC message with a plain-text 415.
        if declared_json && response.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE {
            let message = "Invalid Request: not a JSON-RPC 2.0 message";
            return self
                .refuse_unread(ErrorCode::INVALID_REQUEST, message)
                .await;
        }
        self.after_rmcp(response).await
    }
}

/// The middleware in front of `rmcp`.
pub async fn guard(State(guard): State<Arc<Guard>>, mut request: Request, next: Next) -> Response {
    let pipeline = &guard.app.pipeline;
    let mut ctx = crate::api::request_context(request.headers(), FrontDoor::Mcp);
    ctx.client = crate::api::client_of(request.extensions());
    ctx.endpoint = super::endpoint_of(request.uri().path());
    let token = crate::api::bearer(request.headers()).map(str::to_owned);
    let caller = match pipeline.admit_connection(&ctx, token.as_deref()).await {
        Ok(caller) => caller,
        Err(error) => return ApiError::from(error).into_response_with(&ctx.trace),
    };
    // The messages inside are attributed to this caller without checking
    // the credential again (see `handler::presented`).
    request.extensions_mut().insert(caller.clone());
    let session = request
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let checked = Checked {
        guard: &guard,
        ctx,
        caller: &caller,
        session,
    };
    // A session answers only to its agent, at its endpoint.
    if let Some(session) = &checked.session
        && guard
            .owner(session)
            .await
            .is_some_and(|owner| owner != checked.owner())
    {
        return checked.unknown_session().await;
    }
    match *request.method() {
        Method::POST => checked.post(request, next).await,
        Method::DELETE => {
            // rmcp answers a session's end with 202; the SDKs expect 200 or 204.
            let mut response = next.run(request).await;
            if response.status() == StatusCode::ACCEPTED {
                *response.status_mut() = StatusCode::NO_CONTENT;
            }
            if response.status().is_success()
                && let Some(session) = &checked.session
            {
                guard.forget(session);
                let session = session.as_str().into();
                guard
                    .records()
                    .tell_others(Event::SessionClosed { session });
            }
            checked.after_rmcp(response).await
        }
        Method::GET => {
            let Some(place) = checked.stream_place(&guard.streams) else {
                return checked.too_many_streams(Value::Null).await;
            };
            let response = until_sent(next.run(request).await, place);
            // The session's stream is here while the client keeps it open.
            let response = match &checked.session {
                Some(session) if response.status().is_success() => {
                    guard.replicas.hold_stream(session, response)
                }
                _ => response,
            };
            checked.after_rmcp(response).await
        }
        _ => {
            let response = next.run(request).await;
            checked.after_rmcp(response).await
        }
    }
}

/// Whether `message` is a JSON-RPC response (the client answering a
/// request the server sent it).
fn is_answer(message: &Value) -> bool {
    message.get("method").is_none()
        && message.get("id").is_some()
        && (message.get("result").is_some() || message.get("error").is_some())
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

/// A JSON-RPC error response to a message that was not processed, to the
/// request `id` (null when there was none to read).
fn jsonrpc_error(
    ctx: &CallContext,
    status: StatusCode,
    code: ErrorCode,
    message: &str,
    id: Value,
) -> Response {
    let body = json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": { "code": code.0, "message": message, "data": { "trace_id": ctx.trace.trace_id_hex() } },
    });
    (status, axum::Json(body)).into_response()
}
