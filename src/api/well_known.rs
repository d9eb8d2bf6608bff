//! Discovery documents under `/.well-known/`: the public keys upstream
//! servers verify minted credentials with.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::pipeline::Pipeline;

/// `GET /.well-known/jwks.json`: the current signing key and any replaced
/// key whose tokens may still be valid. Public, and cacheable for a minute
/// (a verifier that meets an unknown `kid` should fetch again).
pub async fn jwks(State(pipeline): State<Arc<Pipeline>>) -> Response {
    let document = pipeline.credentials().minter().jwks();
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=60"),
        ],
        document.to_string(),
    )
        .into_response()
}
