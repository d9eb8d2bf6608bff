//! The conformance fixture's tasks (SEP-2663 Tasks extension): `greet`
//! answers at once; `slow_compute` becomes a task for a client that
//! declared the extension (and runs at once for any other); `failing_job`,
//! `protocol_error_job`, `confirm_delete` and `multi_input` need the
//! extension; `test_tool_with_task` asks for a name (SEP-2322) and then
//! starts a task. Tasks are kept in one store for every session.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ClientCapabilities, ContentBlock,
    CreateTaskResult, DetailedTask, GetTaskResult, InputRequests, InputRequiredResult,
    InputResponses, JsonObject, Task, TaskPayload, TaskStatus,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};
use serde_json::{Value, json};

use super::conformance::{from, text};

pub const TOOLS: &[&str] = &[
    "confirm_delete",
    "failing_job",
    "greet",
    "multi_input",
    "protocol_error_job",
    "slow_compute",
    "test_tool_with_task",
];

/// Whether a tool can run only as a task (`execution.taskSupport`).
pub fn task_support(tool: &str) -> &'static str {
    match tool {
        "greet" => "forbidden",
        "slow_compute" | "confirm_delete" => "optional",
        _ => "required",
    }
}

/// How long a task stays readable after it was created.
const TTL_MS: u64 = 60_000;

struct Stored {
    task: Task,
    payload: TaskPayload,
    tool: String,
}

fn store() -> &'static Mutex<HashMap<String, Stored>> {
    static STORE: OnceLock<Mutex<HashMap<String, Stored>>> = OnceLock::new();
    STORE.get_or_init(Default::default)
}

/// Now, in RFC 3339 (UTC, whole seconds).
fn now() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s) = (rest / 3600, rest / 60 % 60, rest % 60);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
}

fn elicit(message: &str, field: &str) -> Value {
    json!({ "method": "elicitation/create", "params": { "mode": "form", "message": message,
        "requestedSchema": { "type": "object", "properties": { field: { "type": "string" } }, "required": [field] } } })
}

/// What a task settles to once its work is done.
fn outcome(tool: &str, arguments: &JsonObject) -> TaskPayload {
    let completed = |result: CallToolResult| TaskPayload::Completed {
        result: serde_json::to_value(result)
            .unwrap()
            .as_object()
            .cloned()
            .unwrap_or_default(),
    };
    let argument = |name: &str| arguments.get(name).and_then(Value::as_str).unwrap_or("it");
    match tool {
        "slow_compute" => completed(text(format!("computed {}", argument("label")))),
        "test_tool_with_task" => completed(text(format!("Hello, {}!", argument("user_name")))),
        "protocol_error_job" => TaskPayload::Failed {
            error: from(json!({ "code": -32603, "message": "the job crashed" })),
        },
        "confirm_delete" | "multi_input" => completed(text("done: every input answered")),
        _ => completed(CallToolResult::error(vec![ContentBlock::text(
            "the job failed",
        )])),
    }
}

/// The input a task waits for before it works, if any.
fn parked(tool: &str) -> Option<InputRequests> {
    match tool {
        "confirm_delete" => Some(from(json!({ "confirm": elicit("Delete it?", "answer") }))),
        "multi_input" => Some(from(json!({
            "first": elicit("First?", "answer"),
            "second": elicit("Second?", "answer"),
        }))),
        _ => None,
    }
}

/// The answer of one of [`TOOLS`].
pub fn call(
    request: &CallToolRequestParams,
    context: &RequestContext<RoleServer>,
) -> Result<CallToolResponse, ErrorData> {
    let mut arguments = request.arguments.clone().unwrap_or_default();
    let tool = request.name.to_string();
    if tool == "greet" {
        let name = arguments
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("you");
        return Ok(text(format!("Hello, {name}!")).into());
    }
    let tasks = (context.client_capabilities()).is_some_and(|c| c.supports_tasks());
    if !tasks && task_support(&tool) == "required" {
        let needed = ClientCapabilities::builder().enable_tasks().build();
        return Err(ErrorData::missing_required_client_capability(needed));
    }
    if !tasks && let Some(requests) = parked(&tool) {
        // Without tasks, the input is asked for in the call (SEP-2322).
        if request.input_responses.is_none() {
            return Ok(InputRequiredResult::new(Some(requests), None).into());
        }
    }
    if !tasks {
        return match outcome(&tool, &arguments) {
            TaskPayload::Completed { result } => {
                Ok(from::<CallToolResult>(Value::Object(result)).into())
            }
            _ => Err(ErrorData::internal_error("the job crashed", None)),
        };
    }
    if tool == "test_tool_with_task" {
        // Round 1 asks for the name; the round that has it starts the task.
        let answered = (request.input_responses.as_ref())
            .and_then(|responses| responses.get("user_name"))
            .and_then(|answer| answer["content"]["name"].as_str());
        let Some(name) = answered else {
            let ask = from(json!({ "user_name": elicit("Your name?", "name") }));
            return Ok(InputRequiredResult::new(Some(ask), None).into());
        };
        arguments.insert("user_name".into(), name.into());
    }
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let id = format!("task-{}", NEXT.fetch_add(1, Ordering::Relaxed));
    let task = Task::new(&id, TaskStatus::Working, now(), now())
        .with_ttl_ms(TTL_MS)
        .with_poll_interval_ms(100);
    let waiting = parked(&tool);
    let payload = match &waiting {
        Some(requests) => TaskPayload::InputRequired {
            input_requests: requests.clone(),
        },
        None => TaskPayload::Working,
    };
    let mut stored = Stored {
        task: task.clone(),
        payload,
        tool: tool.clone(),
    };
    stored.task.status = stored.payload.status();
    store().lock().unwrap().insert(id.clone(), stored);
    if waiting.is_none() {
        let seconds = arguments
            .get("seconds")
            .and_then(Value::as_f64)
            .unwrap_or(0.2);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs_f64(seconds.clamp(0.0, 30.0))).await;
            finish(&id, |payload| match payload {
                TaskPayload::Working => outcome(&tool, &arguments),
                settled => settled,
            });
        });
    }
    Ok(CallToolResponse::Task(CreateTaskResult::new(task)))
}

/// `tasks/update`: the answered requests are no longer pending; once none
/// is, the task completes.
pub fn update(task_id: &str, answers: &InputResponses) -> Result<(), ErrorData> {
    let tool = {
        let store = store().lock().unwrap();
        store.get(task_id).ok_or_else(unknown)?.tool.clone()
    };
    finish(task_id, |payload| match payload {
        TaskPayload::InputRequired { mut input_requests } => {
            input_requests.retain(|key, _| !answers.contains_key(key));
            if input_requests.is_empty() {
                outcome(&tool, &JsonObject::new())
            } else {
                TaskPayload::InputRequired { input_requests }
            }
        }
        other => other,
    });
    Ok(())
}

/// Move a task on, unless it already ended.
fn finish(id: &str, next: impl FnOnce(TaskPayload) -> TaskPayload) {
    let mut store = store().lock().unwrap();
    if let Some(stored) = store.get_mut(id) {
        let payload = std::mem::replace(&mut stored.payload, TaskPayload::Cancelled);
        stored.payload = next(payload);
        stored.task.status = stored.payload.status();
        stored.task.last_updated_at = now();
    }
}

fn unknown() -> ErrorData {
    ErrorData::invalid_params("unknown task", Some(json!({})))
}

pub fn get(task_id: &str) -> Result<GetTaskResult, ErrorData> {
    let store = store().lock().unwrap();
    let stored = store.get(task_id).ok_or_else(unknown)?;
    let task = DetailedTask::new(stored.task.clone(), stored.payload.clone());
    Ok(GetTaskResult::new(task))
}

pub fn cancel(task_id: &str) -> Result<(), ErrorData> {
    if !store().lock().unwrap().contains_key(task_id) {
        return Err(unknown());
    }
    finish(task_id, |payload| match payload {
        TaskPayload::Working | TaskPayload::InputRequired { .. } => TaskPayload::Cancelled,
        settled => settled,
    });
    Ok(())
}
