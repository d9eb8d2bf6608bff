//! Operational endpoints: `GET /healthz` (the process is alive) and
//! `GET /readyz` (the catalog is loaded and every upstream has had its first
//! connection attempt; per-server state by logical name, never by address;
//! the policy version in force and why a reload was refused, if it was).

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
    let ready = upstreams.settled();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ready { "ready" } else { "starting" },
        "catalog": { "loaded": true, "environment": &*pipeline.catalog().environment },
        "servers": upstreams.status(),
        "policy": *pipeline.policies().status(),
    });
    (status, Json(body)).into_response()
}
