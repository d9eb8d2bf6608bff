//! The conformance fixture's diagnostic tools for the `server-stateless`
//! scenario (SEP-2575): a tool that needs a capability the client may not
//! have declared, one that asks for input while it streams, one that logs,
//! and hooks that change the fixture's tool and prompt lists (told on the
//! session that asked, and on every `subscriptions/listen` stream).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use rmcp::model::ServerNotification;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ClientCapabilities, InputRequiredResult, LoggingLevel,
    LoggingMessageNotificationParam,
};
use rmcp::service::{RequestContext, SubscriptionContext, SubscriptionSink};
use rmcp::{ErrorData, RoleServer};
use serde_json::json;

use super::conformance::{from, text};

/// Reached on the fixture's 2026-07-28 session: per-request capabilities,
/// input asked for in results.
pub const STATELESS_TOOLS: &[&str] = &["test_missing_capability", "test_streaming_elicitation"];

/// Reached on its initialize session: they send the control plane what it
/// must not pass on (a log message for a request without a log level) or
/// must (list changes).
pub const SESSION_TOOLS: &[&str] = &[
    "test_logging_tool",
    "test_trigger_prompt_change",
    "test_trigger_tool_change",
];

/// The tool and the prompt that the change hooks add and remove.
pub const DYNAMIC_TOOL: &str = "test_dynamic_tool";
pub const DYNAMIC_PROMPT: &str = "test_dynamic_prompt";

/// The fixture's open `subscriptions/listen` streams (2026-07-28 clients).
static LISTENERS: Mutex<Vec<SubscriptionSink>> = Mutex::new(Vec::new());

/// Hold a listen stream open until it is cancelled; list changes reach it.
pub async fn listen(context: SubscriptionContext) -> Result<(), ErrorData> {
    LISTENERS.lock().unwrap().push(context.sink().clone());
    context.cancelled().await;
    Ok(())
}

/// Tell every listen stream that a list changed, and the session that
/// asked, if it is one (a 2026-07-28 server tells only listen streams).
async fn changed(context: &RequestContext<RoleServer>, notification: ServerNotification) {
    let stateless =
        (context.protocol_version()).is_some_and(|version| version.as_str() >= "2026-07-28");
    if !stateless {
        let _ = context.peer.send_notification(notification.clone()).await;
    }
    let sinks = LISTENERS.lock().unwrap().clone();
    for sink in sinks {
        let _ = sink.send(notification.clone()).await;
    }
}

static TOOL_ADDED: AtomicBool = AtomicBool::new(false);
static PROMPT_ADDED: AtomicBool = AtomicBool::new(false);

/// Whether the change hooks have added [`DYNAMIC_TOOL`] / [`DYNAMIC_PROMPT`].
pub fn dynamic_tool() -> bool {
    TOOL_ADDED.load(Ordering::Relaxed)
}

pub fn dynamic_prompt() -> bool {
    PROMPT_ADDED.load(Ordering::Relaxed)
}

pub async fn call(
    request: &CallToolRequestParams,
    context: &RequestContext<RoleServer>,
) -> Result<CallToolResponse, ErrorData> {
    match &*request.name {
        "test_missing_capability" => {
            let declared = context.client_capabilities().unwrap_or_default();
            if declared.sampling.is_none() {
                let needed = ClientCapabilities::builder().enable_sampling().build();
                return Err(ErrorData::missing_required_client_capability(needed));
            }
            Ok(text("This tool ran with the sampling capability it needs.").into())
        }
        "test_streaming_elicitation" => {
            let answered =
                (request.input_responses.as_ref()).is_some_and(|r| r.contains_key("ask"));
            if answered {
                return Ok(text("Elicitation answered.").into());
            }
            let ask = from(json!({ "ask": { "method": "elicitation/create", "params": {
                "mode": "form", "message": "Anything to add?",
                "requestedSchema": { "type": "object", "properties": { "note": { "type": "string" } } } } } }));
            Ok(InputRequiredResult::new(Some(ask), None).into())
        }
        "test_logging_tool" => {
            let message =
                LoggingMessageNotificationParam::new(LoggingLevel::Info, json!("the tool ran"));
            let _ = context.peer.notify_logging_message(message).await;
            Ok(text("Logged one message.").into())
        }
        "test_trigger_tool_change" => {
            TOOL_ADDED.fetch_xor(true, Ordering::Relaxed);
            let change = ServerNotification::ToolListChangedNotification(Default::default());
            changed(context, change).await;
            Ok(text("The tool list changed.").into())
        }
        "test_trigger_prompt_change" => {
            PROMPT_ADDED.fetch_xor(true, Ordering::Relaxed);
            let change = ServerNotification::PromptListChangedNotification(Default::default());
            changed(context, change).await;
            Ok(text("The prompt list changed.").into())
        }
        _ => Err(ErrorData::invalid_params("unknown tool", None)),
    }
}
