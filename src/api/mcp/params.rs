//! The shape of a JSON-RPC message's `params`, checked before `rmcp` reads
//! it: `rmcp` answers a known method with malformed params as an unknown
//! method (-32601) and never reaches our handler, so such a request would
//! get the wrong error and leave no record.

use serde_json::Value;

use crate::vocabulary::Action;

/// A request whose params do not fit its method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// What the request would have been recorded as.
    pub action: Action,
    /// The name or URI it asked for, when it sent one as a string.
    pub named: Option<String>,
    pub problem: &'static str,
}

/// The log levels of `logging/setLevel` (RFC 5424's, as MCP names them).
const LEVELS: [&str; 8] = [
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

/// Whether `params` carry the 2026-07-28 revision's per-request metadata.
fn is_stateless(params: &Value) -> bool {
    params
        .pointer("/_meta/io.modelcontextprotocol~1protocolVersion")
        .is_some()
}

/// The problem with `message`'s params, if its method is one the pipeline
/// answers and they do not have the shape the MCP schema gives them.
pub fn check(message: &Value) -> Option<Malformed> {
    let method = message.get("method")?.as_str()?;
    let params = message.get("params").unwrap_or(&Value::Null);
    // Removed in 2026-07-28 (method not found, HTTP 404, as for subscribe).
    if method == "logging/setLevel" && !is_stateless(params) {
        let level = params.get("level").and_then(Value::as_str);
        return (!level.is_some_and(|level| LEVELS.contains(&level))).then_some(Malformed {
            action: Action::Connect,
            named: None,
            problem: "`level` must be one of debug, info, notice, warning, error, critical, alert, emergency",
        });
    }
    let (action, name_field) = match method {
        "tools/call" => (Action::Call, "name"),
        "prompts/get" => (Action::GetPrompt, "name"),
        "resources/read" => (Action::ReadResource, "uri"),
        // Removed in 2026-07-28: rmcp answers that revision's requests
        // with method-not-found (HTTP 404), whatever their params.
        "resources/subscribe" | "resources/unsubscribe" if is_stateless(params) => return None,
        "resources/subscribe" => (Action::Subscribe, "uri"),
        "resources/unsubscribe" => (Action::Unsubscribe, "uri"),
        "completion/complete" => (Action::Complete, ""),
        "tasks/get" | "tasks/update" | "tasks/cancel" => (Action::Task, "taskId"),
        _ => return None,
    };
    let malformed = |named: Option<&str>, problem| {
        Some(Malformed {
            action,
            named: named.map(str::to_owned),
            problem,
        })
    };
    let Some(params) = params.as_object() else {
        return malformed(None, "`params` must be an object");
    };
    if action == Action::Complete {
        let object = |field: &str| params.get(field).is_some_and(Value::is_object);
        if !object("ref") || !object("argument") {
            return malformed(None, "`ref` and `argument` must be objects");
        }
        return None;
    }
    let named = params.get(name_field).and_then(Value::as_str);
    if named.is_none() {
        let problem = match name_field {
            "name" => "`name` must be a string",
            "uri" => "`uri` must be a string",
            _ => "`taskId` must be a string",
        };
        return malformed(None, problem);
    }
    if action == Action::Task {
        let answers = params.get("inputResponses");
        if method == "tasks/update" && !answers.is_some_and(Value::is_object) {
            return malformed(None, "`inputResponses` must be an object");
        }
        return None;
    }
    let arguments = params.get("arguments");
    if arguments.is_some_and(|a| !a.is_object() && !a.is_null()) {
        return malformed(named, "`arguments` must be an object");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn problem(message: Value) -> Option<&'static str> {
        check(&message).map(|m| m.problem)
    }

    #[test]
    fn well_formed_requests_pass() {
        for message in [
            json!({"method": "tools/call", "params": {"name": "echo", "arguments": {"a": 1}}}),
            json!({"method": "tools/call", "params": {"name": "echo"}}),
            json!({"method": "prompts/get", "params": {"name": "p", "arguments": {"d": "x"}}}),
            json!({"method": "resources/read", "params": {"uri": "research://notes/daily"}}),
            json!({"method": "completion/complete", "params": {"ref": {}, "argument": {}}}),
            json!({"method": "tasks/get", "params": {"taskId": "t"}}),
            json!({"method": "tasks/update", "params": {"taskId": "t", "inputResponses": {}}}),
            json!({"method": "tools/list"}),
            json!({"method": "initialize", "params": []}),
            json!({"result": {}}),
        ] {
            assert_eq!(problem(message.clone()), None, "{message}");
        }
    }

    #[test]
    fn methods_2026_07_28_removed_are_left_to_rmcp() {
        let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28"});
        for method in ["resources/subscribe", "resources/unsubscribe"] {
            let stateless = json!({"method": method, "params": {"_meta": meta}});
            assert_eq!(check(&stateless), None, "{method}");
            let session = json!({"method": method, "params": {}});
            assert_eq!(check(&session).unwrap().problem, "`uri` must be a string");
        }
    }

    #[test]
    fn malformed_params_are_named() {
        let cases = [
            (
                json!({"method": "tools/call"}),
                "`params` must be an object",
            ),
            (
                json!({"method": "tools/call", "params": {"name": 5}}),
                "`name` must be a string",
            ),
            (
                json!({"method": "tools/call", "params": {"name": "echo", "arguments": [1]}}),
                "`arguments` must be an object",
            ),
            (
                json!({"method": "prompts/get", "params": {"name": "p", "arguments": "x"}}),
                "`arguments` must be an object",
            ),
            (
                json!({"method": "resources/read", "params": {}}),
                "`uri` must be a string",
            ),
            (
                json!({"method": "completion/complete", "params": {"ref": 1}}),
                "`ref` and `argument` must be objects",
            ),
            (
                json!({"method": "tasks/get", "params": {"taskId": 7}}),
                "`taskId` must be a string",
            ),
            (
                json!({"method": "tasks/update", "params": {"taskId": "t"}}),
                "`inputResponses` must be an object",
            ),
        ];
        for (message, expected) in cases {
            assert_eq!(problem(message.clone()), Some(expected), "{message}");
        }
        let named =
            check(&json!({"method": "tools/call", "params": {"name": "echo", "arguments": 1}}));
        assert_eq!(named.unwrap().named.as_deref(), Some("echo"));
    }
}
