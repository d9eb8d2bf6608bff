//! Operational endpoints: `GET /healthz` (the process is alive) and
//! `GET /readyz` (the catalog is loaded and every upstream has had its first
//! connection attempt; per-server state by logical name, never by address;
//! the policy version in force and why a reload was refused, if it was;
//! 503 while the audit trail cannot be written).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::pipeline::Pipeline;

pub async fn healthz() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

pub async fn readyz(State(pipeline): State<Arc<Pipeline>>) -> Response {
    let upstreams = pipeline.upstreams();
    // A replica whose audit trail cannot be written takes no traffic.
    let writable = pipeline.audit().writable();
    let settled = upstreams.settled();
    let (status, word) = match (settled, writable) {
        (true, true) => (StatusCode::OK, "ready"),
        (_, false) => (StatusCode::SERVICE_UNAVAILABLE, "audit_unavailable"),
        (false, true) => (StatusCode::SERVICE_UNAVAILABLE, "starting"),
    };
    let body = json!({
        "status": word,
        "audit": { "writable": writable },
        "catalog": { "loaded": true, "environment": &*pipeline.catalog().environment },
        "servers": upstreams.status(),
        "policy": *pipeline.policies().status(),
    });
    (status, Json(body)).into_response()
}
