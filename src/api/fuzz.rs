//! Entry points for the fuzzing harness (`fuzz/`, `cargo fuzz`): each takes
//! arbitrary bytes the way a hostile client sends them, and panics only
//! where an invariant of ours is broken.

use axum::http::{HeaderMap, HeaderValue, header};
use serde_json::Value;

/// A `/mcp` POST body: parsed as the guard does, its params checked, then
/// read as `rmcp` reads a client message.
pub fn jsonrpc_message(bytes: &[u8]) {
    let Ok(message) = serde_json::from_slice::<Value>(bytes) else {
        return;
    };
    if let Some(malformed) = super::mcp::params_check(&message) {
        assert!(!malformed.problem.is_empty());
        return;
    }
    let _ = serde_json::from_value::<rmcp::model::ClientJsonRpcMessage>(message);
}

/// A REST body for `/invoke` and `/tools`: an error never names a Rust type.
pub fn rest_body(bytes: &[u8]) {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Err(error) = super::rest::parse_body::<super::rest::RestBody>(&headers, bytes, true) {
        let message = error.to_string();
        assert!(!message.contains("RestBody"), "{message}");
    }
}
