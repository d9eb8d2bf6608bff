//! The REST front door: `GET|POST /tools` and `POST /invoke`.
//!
//! A thin adapter: it reads the wire format, hands one call to the
//! [`Pipeline`], and writes the answer back. Every rule (who may see or call
//! what, what gets recorded) lives in the pipeline.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use rmcp::model::{InputResponses, JsonObject, Tool};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::App;
use super::ClientAddr;
use super::error::ApiError;
use crate::discovery;
use crate::identity::Presented;
use crate::pipeline::{Assertions, CallContext, PipelineError, ToolCall};
use crate::upstream::Continuation;
use crate::vocabulary::{Action, FrontDoor};

/// The JSON body of both routes. `action` and `payload` belong to `/invoke`;
/// the seed clients' `agent_id`, `agent_role` and `environment` are accepted
/// on both and must match the verified caller and the deployment.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RestBody {
    /// The public tool name.
    action: Option<String>,
    /// The tool's arguments.
    payload: Option<JsonObject>,
    /// A retry of a call the server answered `input_required`: the answers
    /// to its `inputRequests`, by key...
    input_responses: Option<InputResponses>,
    /// ...and its `requestState`, as the answer carried it.
    request_state: Option<String>,
    agent_id: Option<String>,
    agent_role: Option<String>,
    environment: Option<String>,
}

impl RestBody {
    fn assertions(&self) -> Assertions<'_> {
        Assertions {
            agent_id: self.agent_id.as_deref(),
            role: self.agent_role.as_deref(),
            environment: self.environment.as_deref(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolsQuery {
    #[serde(default)]
    detail: bool,
    /// The virtual endpoint to list (as `/endpoints/<endpoint>/tools`).
    endpoint: Option<String>,
}

/// `GET|POST /tools[?detail=true][&endpoint=E]`: the caller's view of the
/// catalog (through endpoint `E`).
pub async fn tools(
    State(app): State<Arc<App>>,
    ClientAddr(client): ClientAddr,
    query: Result<Query<ToolsQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let asked = Asked {
        endpoint: None,
        client,
    };
    list_tools(app, asked, query, headers, body).await
}

/// `GET|POST /endpoints/<endpoint>/tools[?detail=true]`: the caller's view
/// through a virtual endpoint.
pub async fn endpoint_tools(
    State(app): State<Arc<App>>,
    ClientAddr(client): ClientAddr,
    Path(endpoint): Path<String>,
    query: Result<Query<ToolsQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let asked = Asked {
        endpoint: Some(endpoint),
        client,
    };
    list_tools(app, asked, query, headers, body).await
}

/// Where a listing was asked: through which endpoint, from which address.
struct Asked {
    endpoint: Option<String>,
    client: Option<std::net::IpAddr>,
}

async fn list_tools(
    app: Arc<App>,
    asked: Asked,
    query: Result<Query<ToolsQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let pipeline = &app.pipeline;
    let mut ctx = super::request_context(&headers, FrontDoor::Rest);
    ctx.client = asked.client;
    let who = Presented::Bearer(super::bearer(&headers));
    let parsed = query
        .map_err(|e| PipelineError::InvalidRequest(e.body_text()))
        .and_then(|Query(query)| {
            let body = read_json(&app, &headers, body, false)?.unwrap_or_default();
            match body {
                RestBody {
                    action: None,
                    payload: None,
                    ..
                } => Ok((query, body)),
                _ => Err(PipelineError::InvalidRequest(
                    "`action` and `payload` belong to /invoke".into(),
                )),
            }
        });
    let (query, body) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            return failure(
                &ctx,
                pipeline.reject(&ctx, Action::Discovery, who, None, e).await,
            );
        }
    };
    ctx.endpoint = asked.endpoint.or(query.endpoint).map(Arc::from);
    let listed = pipeline
        .discover(&ctx, who, body.assertions(), |view| {
            let mut body = json!({ "tools": discovery::visible_tools(view) });
            if query.detail {
                let definitions = discovery::definitions(view);
                body["definitions"] = definitions.iter().map(definition).collect();
            }
            body
        })
        .await;
    match listed {
        Ok(body) => success(&ctx, body),
        Err(e) => failure(&ctx, e),
    }
}

/// `POST /invoke`: call one tool.
pub async fn invoke(
    State(app): State<Arc<App>>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let pipeline = &app.pipeline;
    let mut ctx = super::request_context(&headers, FrontDoor::Rest);
    ctx.client = client;
    let who = Presented::Bearer(super::bearer(&headers));
    let parsed = read_json::<RestBody>(&app, &headers, body, true).and_then(|body| {
        let mut body = body.unwrap_or_default();
        let action = body.action.take().ok_or_else(|| {
            PipelineError::InvalidRequest("missing field `action` (the tool to call)".into())
        })?;
        Ok((action, body))
    });
    let (action, mut body) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            return failure(
                &ctx,
                pipeline.reject(&ctx, Action::Call, who, None, e).await,
            );
        }
    };
    let mut call = ToolCall::new(&action, body.payload.take().unwrap_or_default());
    call.continuation = Continuation {
        input_responses: body.input_responses.take(),
        request_state: body.request_state.take(),
    };
    match pipeline.call(&ctx, who, body.assertions(), call).await {
        Ok(result) => success(
            &ctx,
            json!({ "trace_id": ctx.trace.trace_id_hex(), "result": result }),
        ),
        Err(e) => failure(&ctx, e),
    }
}

/// The REST shape of a tool definition (`title` and `annotations` when
/// there are any).
fn definition(tool: &Tool) -> Value {
    let mut definition = json!({
        "name": tool.name,
        "description": tool.description,
        "input_schema": tool.input_schema,
    });
    if let Some(title) = &tool.title {
        definition["title"] = json!(title);
    }
    if let Some(annotations) = &tool.annotations {
        definition["annotations"] = json!(annotations);
    }
    definition
}

/// Parse a JSON body. `None` when the body is empty and not `required`.
fn read_json<T: DeserializeOwned>(
    app: &App,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    required: bool,
) -> Result<Option<T>, PipelineError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            PipelineError::PayloadTooLarge(app.http.max_body_bytes)
        } else {
            PipelineError::InvalidRequest(rejection.body_text())
        }
    })?;
    parse_body(headers, &body, required)
}

/// A JSON body of the declared type (`None` when it is empty and not
/// `required`); malformed bodies get a precise error.
pub(super) fn parse_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
    required: bool,
) -> Result<Option<T>, PipelineError> {
    if body.is_empty() {
        return if required {
            Err(PipelineError::InvalidRequest(
                "a JSON body is required".into(),
            ))
        } else {
            Ok(None)
        };
    }
    if !is_json(headers) {
        return Err(PipelineError::UnsupportedMediaType);
    }
    let value: Value = super::strict_json::parse(body)
        .map_err(|e| PipelineError::InvalidRequest(format!("invalid JSON body: {e}")))?;
    // Checked here so that no message names one of our Rust types.
    if !value.is_object() {
        return Err(PipelineError::InvalidRequest(
            "the body must be a JSON object".into(),
        ));
    }
    serde_json::from_value(value)
        .map(Some)
        .map_err(|e| PipelineError::InvalidRequest(format!("invalid body: {e}")))
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

fn success(ctx: &CallContext, body: Value) -> Response {
    let mut response = Json(body).into_response();
    if let Ok(value) = HeaderValue::from_str(&ctx.trace.traceparent()) {
        response.headers_mut().insert("traceparent", value);
    }
    response
}

fn failure(ctx: &CallContext, error: PipelineError) -> Response {
    ApiError::from(error).into_response_with(&ctx.trace)
}
