//! HTTP front doors. Each is an adapter over the [`Pipeline`]; this module
//! only wires routes, limits and the catch-all errors.

mod error;
mod health;
mod rest;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use tokio::net::TcpListener;

use crate::audit::FrontDoor;
use crate::pipeline::{CallContext, Pipeline};
use error::ApiError;

/// Every route of the control plane.
pub fn router(pipeline: Arc<Pipeline>) -> Router {
    let body_limit = pipeline.catalog().max_body_bytes;
    Router::new()
        .route("/tools", get(rest::tools).post(rest::tools))
        .route("/invoke", post(rest::invoke))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(pipeline)
}

/// Serve until `shutdown` resolves, then finish in-flight requests.
pub async fn serve(
    listener: TcpListener,
    pipeline: Arc<Pipeline>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(pipeline))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn not_found(headers: HeaderMap) -> Response {
    ApiError::NotFound.into_response_with(&request_context(&headers).trace)
}

async fn method_not_allowed(headers: HeaderMap) -> Response {
    ApiError::MethodNotAllowed.into_response_with(&request_context(&headers).trace)
}

/// A new request context, continuing the caller's `traceparent` if valid.
fn request_context(headers: &HeaderMap) -> CallContext {
    let traceparent = headers.get("traceparent").and_then(|v| v.to_str().ok());
    CallContext::new(FrontDoor::Rest, traceparent)
}
