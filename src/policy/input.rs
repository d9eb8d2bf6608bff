//! The input document a policy decides on. Everything in it comes from the
//! verified identity, the catalog and the deployment, except `arguments`,
//! which are the caller's own. Documented in the README ("Policy").

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use humantime_serde::re::humantime;
use rmcp::model::JsonObject;
use serde_json::{Value, json};

use crate::config::Annotations;
use crate::guardrails::detect::Finding;
use crate::identity::Caller;
use crate::vocabulary::{Action, FrontDoor};

/// What the policy is told about the target of a request.
pub struct TargetFacts<'a> {
    /// `tool`, `prompt` or `resource`.
    pub kind: &'static str,
    /// The public name (a resource's URI).
    pub name: &'a str,
    /// Its name on its server (a resource's URI).
    pub upstream_name: &'a str,
    /// The server's logical name.
    pub server: &'a str,
    /// The catalog's tags of a tool.
    pub tags: &'a [Arc<str>],
    /// The catalog's hints of a tool (never the server's, which are
    /// untrusted).
    pub annotations: Annotations,
}

/// What the policy is told about the request itself.
pub struct RequestFacts<'a> {
    pub trace_id: &'a str,
    pub front_door: FrontDoor,
    pub action: Action,
    /// What the detectors found in the arguments (kind, part and path).
    pub findings: &'a [Finding],
}

/// The input document: `agent`, `tool`, `arguments` (absent at discovery),
/// `findings`, `environment` and `request`.
pub fn document(
    caller: &Caller,
    target: &TargetFacts<'_>,
    arguments: Option<&JsonObject>,
    environment: &str,
    request: &RequestFacts<'_>,
) -> regorus::Value {
    let now = SystemTime::now();
    let claims = caller.claims.as_deref().map_or_else(
        || Value::Object(Default::default()),
        |c| Value::Object(c.clone()),
    );
    let mut input = json!({
        "agent": { "id": &*caller.agent_id, "role": &*caller.role, "claims": claims },
        "tool": {
            "kind": target.kind,
            "name": target.name,
            "upstream_name": target.upstream_name,
            "server": target.server,
            "tags": target.tags.iter().map(|t| &**t).collect::<Vec<&str>>(),
            "annotations": target.annotations,
        },
        "findings": request.findings,
        "environment": environment,
        "request": {
            "trace_id": request.trace_id,
            "time": humantime::format_rfc3339_seconds(now).to_string(),
            "timestamp": now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs(),
            "front_door": request.front_door.as_str(),
            "action": request.action.as_str(),
        },
    });
    if let Some(arguments) = arguments {
        input["arguments"] = Value::Object(arguments.clone());
    }
    regorus::Value::from(input)
}
