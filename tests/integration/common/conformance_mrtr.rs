//! The conformance fixture's multi round-trip tools and prompt (SEP-2322,
//! the 2026-07-28 `input-required-result-*` scenarios): each asks for input
//! by answering `input_required`, and completes once the retry carries the
//! answers. States are signed, so a tampered one is refused, as the
//! scenarios require of a server.

use std::sync::OnceLock;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, GetPromptRequestParams, GetPromptResponse,
    GetPromptResult, InputRequests, InputRequiredResult, InputResponses, JsonObject,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};
use serde_json::{Value, json};

use super::conformance::{from, text};

/// The multi round-trip tools (none takes arguments).
pub const TOOLS: &[&str] = &[
    "test_input_required_result_capabilities",
    "test_input_required_result_elicitation",
    "test_input_required_result_list_roots",
    "test_input_required_result_multi_round",
    "test_input_required_result_multiple_inputs",
    "test_input_required_result_request_state",
    "test_input_required_result_sampling",
    "test_input_required_result_tampered_state",
];

pub const PROMPT: &str = "test_input_required_result_prompt";

fn elicit(message: &str, field: &str, kind: &str) -> Value {
    json!({ "method": "elicitation/create", "params": { "mode": "form", "message": message,
        "requestedSchema": { "type": "object", "properties": { field: { "type": kind } }, "required": [field] } } })
}

fn sample(question: &str, max_tokens: u32) -> Value {
    json!({ "method": "sampling/createMessage", "params": { "maxTokens": max_tokens,
        "messages": [{ "role": "user", "content": { "type": "text", "text": question } }] } })
}

fn roots() -> Value {
    json!({ "method": "roots/list", "params": {} })
}

fn asking(requests: Value, state: Option<String>) -> InputRequiredResult {
    let requests: InputRequests = from(requests);
    InputRequiredResult::new(Some(requests), state)
}

/// The fixture's key for signing states, random per process.
fn key() -> &'static ring::hmac::Key {
    static KEY: OnceLock<ring::hmac::Key> = OnceLock::new();
    KEY.get_or_init(|| {
        let rng = ring::rand::SystemRandom::new();
        ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &rng).unwrap()
    })
}

fn sign(payload: &str) -> String {
    let tag = ring::hmac::sign(key(), payload.as_bytes());
    format!("{payload}.{}", hex::encode(tag.as_ref()))
}

/// The payload of a state this fixture signed, or an error for any other.
fn verify(state: Option<&str>) -> Result<Option<&str>, ErrorData> {
    let Some(state) = state else { return Ok(None) };
    let bad = || ErrorData::invalid_params("requestState failed its integrity check", None);
    let (payload, tag) = state.rsplit_once('.').ok_or_else(bad)?;
    let tag = hex::decode(tag).map_err(|_| bad())?;
    ring::hmac::verify(key(), payload.as_bytes(), &tag).map_err(|_| bad())?;
    Ok(Some(payload))
}

/// The accepted content of the elicitation answered under `key`.
fn accepted<'a>(responses: &'a InputResponses, key: &str) -> Option<&'a JsonObject> {
    let answer = responses.get(key)?.as_object()?;
    (answer.get("action")? == "accept")
        .then(|| answer.get("content")?.as_object())
        .flatten()
}

fn field<'a>(content: &'a JsonObject, name: &str) -> &'a str {
    content
        .get(name)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The answer of one of [`TOOLS`].
pub fn call(
    request: &CallToolRequestParams,
    context: &RequestContext<RoleServer>,
) -> Result<CallToolResponse, ErrorData> {
    let responses = request.input_responses.clone().unwrap_or_default();
    let state = verify(request.request_state.as_deref())?;
    let done = |message: String| Ok(text(message).into());
    let ask = |requests: Value, state: Option<&str>| Ok(asking(requests, state.map(sign)).into());
    match &*request.name {
        "test_input_required_result_elicitation" => match accepted(&responses, "user_name") {
            Some(content) if content.get("name").is_some_and(Value::is_string) => {
                done(format!("Hello, {}!", field(content, "name")))
            }
            _ => ask(
                json!({ "user_name": elicit("What is your name?", "name", "string") }),
                None,
            ),
        },
        "test_input_required_result_sampling" => match responses.get("capital_question") {
            Some(answer) => done(format!(
                "The model answered: {}",
                answer["content"]["text"].as_str().unwrap_or_default()
            )),
            None => ask(
                json!({ "capital_question": sample("What is the capital of France?", 100) }),
                None,
            ),
        },
        "test_input_required_result_list_roots" => match responses.get("client_roots") {
            Some(answer) => {
                let uris: Vec<&str> = (answer["roots"].as_array().into_iter().flatten())
                    .filter_map(|root| root["uri"].as_str())
                    .collect();
                done(format!("The client's roots: {}", uris.join(", ")))
            }
            None => ask(json!({ "client_roots": roots() }), None),
        },
        "test_input_required_result_request_state"
        | "test_input_required_result_tampered_state" => {
            match (state, accepted(&responses, "confirm")) {
                (Some("confirm"), Some(_)) => done("state-ok: the request state verified".into()),
                _ => ask(
                    json!({ "confirm": elicit("Please confirm", "ok", "boolean") }),
                    Some("confirm"),
                ),
            }
        }
        "test_input_required_result_multiple_inputs" => {
            let all = ["user_name", "greeting", "client_roots"];
            match state {
                Some("all") if all.iter().all(|key| responses.contains_key(*key)) => {
                    done("Every input answered; the call is complete.".into())
                }
                _ => ask(
                    json!({
                        "user_name": elicit("What is your name?", "name", "string"),
                        "greeting": sample("Generate a greeting", 50),
                        "client_roots": roots(),
                    }),
                    Some("all"),
                ),
            }
        }
        "test_input_required_result_multi_round" => {
            match (
                state,
                accepted(&responses, "step1"),
                accepted(&responses, "step2"),
            ) {
                (Some(name), _, Some(color)) if name.starts_with("round-2:") => done(format!(
                    "{} likes {}",
                    &name["round-2:".len()..],
                    field(color, "color")
                )),
                (Some("round-1"), Some(step1), _) => ask(
                    json!({ "step2": elicit("Step 2: What is your favorite color?", "color", "string") }),
                    Some(&format!("round-2:{}", field(step1, "name"))),
                ),
                _ => ask(
                    json!({ "step1": elicit("Step 1: What is your name?", "name", "string") }),
                    Some("round-1"),
                ),
            }
        }
        "test_input_required_result_capabilities" => {
            // Only what the client said, per request, it can answer.
            let declared = context.client_capabilities().unwrap_or_default();
            let mut requests = serde_json::Map::new();
            if declared.sampling.is_some() {
                requests.insert("question".into(), sample("Say hello", 20));
            }
            if declared.elicitation.is_some() {
                requests.insert("name".into(), elicit("Your name?", "name", "string"));
            }
            if requests.is_empty() || !responses.is_empty() {
                return done("Declared-capability input answered.".into());
            }
            ask(Value::Object(requests), None)
        }
        _ => Err(ErrorData::invalid_params("unknown tool", None)),
    }
}

/// [`PROMPT`]: asks for its context first.
pub fn prompt(request: &GetPromptRequestParams) -> GetPromptResponse {
    let responses = request.input_responses.clone().unwrap_or_default();
    match accepted(&responses, "user_context") {
        Some(content) => {
            let result: GetPromptResult = from(json!({ "messages": [{ "role": "user",
                "content": { "type": "text", "text": format!("Use this context: {}", field(content, "context")) } }] }));
            result.into()
        }
        None => asking(
            json!({ "user_context": elicit("What context should the prompt use?", "context", "string") }),
            None,
        )
        .into(),
    }
}
