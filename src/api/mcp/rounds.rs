//! Multi round-trip requests (SEP-2322) across eras.
//!
//! An upstream on the 2026-07-28 revision asks for input (sampling,
//! elicitation, roots) by answering `input_required`; the client answers and
//! retries with the server's request state. A client on that revision does
//! this itself: its `input_required` passes through (its state sealed by the
//! pipeline's request_state stage). A client on an initialize-era session
//! cannot take that result, so here the control plane asks it the way an
//! initialize-era server would (a request on the call's stream) and retries
//! for it. Every retry is a request of its own through the pipeline:
//! authorized, recorded and sealed like the first.

use rmcp::model::{
    DEFAULT_MRTR_MAX_ROUNDS, GetPromptRequestParams, InputRequest, InputRequiredResult,
    InputResponses, JsonObject, ProtocolVersion, ServerRequest, ServerResult,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};

use super::handler::McpFrontDoor;
use super::relay::relay_to;
use crate::upstream::{Continuation, Relay};

/// Whether the session's client takes `input_required` results itself.
pub fn takes_input_required(context: &RequestContext<RoleServer>) -> bool {
    (context.protocol_version())
        .is_some_and(|version| version.as_str() >= ProtocolVersion::V_2026_07_28.as_str())
}

/// A request that may be answered `input_required`, as retried.
#[derive(Clone)]
pub enum Retried {
    /// A tool call; `via` names the built-in tool it came through
    /// (`call_tool`), if any.
    Tool {
        name: String,
        arguments: JsonObject,
        via: Option<&'static str>,
    },
    Prompt(GetPromptRequestParams),
    Resource {
        uri: String,
    },
}

/// Send `request` until it is not answered `input_required`, answering the
/// server's input requests through the client's session when the client
/// cannot take them; at most as many rounds as rmcp's own clients drive.
pub async fn drive(
    door: &McpFrontDoor,
    context: &RequestContext<RoleServer>,
    request: Retried,
    first: Continuation,
) -> Result<ServerResult, ErrorData> {
    if takes_input_required(context) {
        return door.attempt(request, first, context).await;
    }
    let relay = relay_to(context);
    let mut continuation = first;
    for _ in 0..DEFAULT_MRTR_MAX_ROUNDS {
        match door.attempt(request.clone(), continuation, context).await? {
            ServerResult::InputRequiredResult(asked) => {
                continuation = fulfil(&relay, asked).await?;
            }
            answer => return Ok(answer),
        }
    }
    Err(ErrorData::internal_error(
        format!("the server asked for input more than {DEFAULT_MRTR_MAX_ROUNDS} times"),
        None,
    ))
}

/// Ask the client each of the server's input requests; the answers, with
/// the server's state, continue the request.
async fn fulfil(relay: &Relay, asked: InputRequiredResult) -> Result<Continuation, ErrorData> {
    let mut responses = InputResponses::new();
    for (key, request) in asked.input_requests.unwrap_or_default() {
        let request = match request {
            InputRequest::CreateMessage(request) => ServerRequest::CreateMessageRequest(request),
            InputRequest::Elicitation(request) => ServerRequest::ElicitRequest(request),
            InputRequest::ListRoots(request) => ServerRequest::ListRootsRequest(request),
            _ => {
                return Err(ErrorData::internal_error(
                    "the server asked for a kind of input this client cannot give",
                    None,
                ));
            }
        };
        let answer = relay(request).await?;
        let answer = serde_json::to_value(answer)
            .map_err(|_| ErrorData::internal_error("the client's answer is not JSON", None))?;
        responses.insert(key, answer);
    }
    Ok(Continuation {
        input_responses: Some(responses),
        request_state: asked.request_state,
    })
}
