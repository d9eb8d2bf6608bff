//! The one mapping from pipeline errors to JSON-RPC errors. Like the REST
//! mapping it carries only our own fixed text: never upstream text, URLs,
//! commands or credentials.

use rmcp::ErrorData;
use rmcp::model::{CallToolResult, ContentBlock, ErrorCode, ServerResult};
use serde_json::json;

use crate::pipeline::PipelineError;
use crate::trace_context::TraceContext;
use crate::upstream::UpstreamError;

/// Server-defined JSON-RPC codes (the spec reserves -32000..-32099 for them).
pub const UPSTREAM_UNAVAILABLE: ErrorCode = ErrorCode(-32010);
pub const UPSTREAM_TIMEOUT: ErrorCode = ErrorCode(-32011);
pub const UPSTREAM_REJECTED: ErrorCode = ErrorCode(-32012);
pub const FORBIDDEN: ErrorCode = ErrorCode(-32013);
pub const AUDIT_UNAVAILABLE: ErrorCode = ErrorCode(-32014);
pub const TOO_MANY_SESSIONS: ErrorCode = ErrorCode(-32015);
pub const RATE_LIMITED: ErrorCode = ErrorCode(-32016);
/// (-32015, which the router's design named for this, was already
/// `too_many_sessions`.)
pub const UPSTREAM_CIRCUIT_OPEN: ErrorCode = ErrorCode(-32017);
pub const UPSTREAM_BUSY: ErrorCode = ErrorCode(-32018);
pub const RESULT_TOO_LARGE: ErrorCode = ErrorCode(-32019);
pub const TOOL_QUARANTINED: ErrorCode = ErrorCode(-32020);

/// Codes an upstream's refusal keeps, because the protocol gives them a
/// meaning a client acts on (invalid params, also for an unknown resource
/// under SEP-2164; no such method; the older resource-not-found; a client
/// capability the request needs). Any other becomes [`UPSTREAM_REJECTED`].
/// The message and data stay ours either way.
const PASSED_THROUGH: [ErrorCode; 4] = [
    ErrorCode::INVALID_PARAMS,
    ErrorCode::METHOD_NOT_FOUND,
    ErrorCode::RESOURCE_NOT_FOUND,
    ErrorCode(-32021),
];

/// The JSON-RPC error for `error`, with our error code and the trace id in `data`.
pub fn to_error_data(error: &PipelineError, trace: &TraceContext) -> ErrorData {
    let code = match error {
        // Unknown and forbidden tools get the same answer: an agent cannot
        // tell them apart. Invalid params is what MCP uses for unknown tools.
        PipelineError::Forbidden(_)
        | PipelineError::InvalidRequest(_)
        | PipelineError::InvalidArguments(_) => ErrorCode::INVALID_PARAMS,
        PipelineError::ResultTooLarge(_) => RESULT_TOO_LARGE,
        PipelineError::ToolQuarantined => TOOL_QUARANTINED,
        PipelineError::Impersonation(_)
        | PipelineError::Unauthenticated(_)
        | PipelineError::PolicyDenied(_)
        | PipelineError::ResultDenied(_) => FORBIDDEN,
        PipelineError::PayloadTooLarge(_)
        | PipelineError::UnsupportedMediaType
        | PipelineError::MalformedHead(_) => ErrorCode::INVALID_REQUEST,
        PipelineError::AuditUnavailable(_) => AUDIT_UNAVAILABLE,
        PipelineError::TooManySessions(_) | PipelineError::TooManyStreams => TOO_MANY_SESSIONS,
        PipelineError::RateLimited(_) => RATE_LIMITED,
        PipelineError::CircuitOpen => UPSTREAM_CIRCUIT_OPEN,
        PipelineError::UpstreamBusy => UPSTREAM_BUSY,
        PipelineError::Upstream(UpstreamError::Timeout) => UPSTREAM_TIMEOUT,
        PipelineError::Upstream(UpstreamError::Rejected { code, .. }) => PASSED_THROUGH
            .into_iter()
            .find(|kept| kept.0 == *code)
            .unwrap_or(UPSTREAM_REJECTED),
        PipelineError::Upstream(_) | PipelineError::CredentialUnavailable => UPSTREAM_UNAVAILABLE,
    };
    let mut data = json!({ "code": error.code(), "trace_id": trace.trace_id_hex() });
    if let PipelineError::PolicyDenied(reasons) | PipelineError::ResultDenied(reasons) = error {
        data["reasons"] = json!(reasons);
    }
    if let PipelineError::InvalidArguments(invalid) = error {
        data["path"] = json!(invalid.path);
    }
    if let PipelineError::RateLimited(refusal) = error {
        data["retry_after_seconds"] = json!(crate::router::limits::retry_after_seconds(
            refusal.retry_after
        ));
    }
    if let PipelineError::Upstream(UpstreamError::Rejected {
        required: Some(required),
        ..
    }) = error
    {
        data["requiredCapabilities"] = json!(required);
    }
    ErrorData::new(code, error.to_string(), Some(data))
}

/// Arguments that do not fit the tool's input schema are, on MCP, a tool
/// execution error (a result with `isError`, 2025-11-25 on): the model
/// reads what is wrong and can try again, where a protocol error would end
/// an agent's run. The upstream was not contacted; the record says
/// `invalid_arguments`. Every other refusal stays a JSON-RPC error.
pub fn invalid_arguments_as_result(error: PipelineError) -> Result<ServerResult, PipelineError> {
    let PipelineError::InvalidArguments(invalid) = error else {
        return Err(error);
    };
    let text = ContentBlock::text(invalid.to_string());
    let mut result = CallToolResult::error(vec![text]);
    let detail = serde_json::json!({ "code": "invalid_arguments", "path": invalid.path });
    let meta = result.meta.get_or_insert_with(Default::default);
    meta.insert("mcp-control-plane/error".into(), detail);
    Ok(ServerResult::CallToolResult(result))
}
