//! Discovery documents under `/.well-known/`: the public keys upstream
//! servers verify minted credentials with, and the OAuth protected-resource
//! metadata agents' OAuth clients start from.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::App;
use crate::catalog::Catalog;

/// `GET /.well-known/jwks.json`: the current signing key and any replaced
/// key whose tokens may still be valid. Public, and cacheable for a minute
/// (a verifier that meets an unknown `kid` should fetch again).
pub async fn jwks(State(app): State<Arc<App>>) -> Response {
    let document = app.live.signer().minter.jwks();
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=60"),
        ],
        document.to_string(),
    )
        .into_response()
}

/// `GET /.well-known/oauth-protected-resource` (RFC 9728): which
/// authorization servers issue tokens for this control plane, so OAuth
/// clients (MCP's authorization flow) know where to get one.
pub async fn protected_resource(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let snapshot = app.live.current();
    let catalog = &snapshot.catalog;
    let issuers = snapshot.identity.issuers();
    let mut scopes: Vec<&str> = issuers
        .iter()
        .flat_map(|issuer| issuer.scopes())
        .map(String::as_str)
        .collect();
    scopes.sort_unstable();
    scopes.dedup();
    let document = json!({
        "resource": resource_id(catalog, headers.get(header::HOST)),
        "authorization_servers": issuers.iter().map(|i| i.issuer()).collect::<Vec<_>>(),
        "scopes_supported": scopes,
        "bearer_methods_supported": ["header"],
        "resource_name": "MCP Control Plane",
    });
    Json(document).into_response()
}

/// Every 401 points the client at the resource metadata
/// (`WWW-Authenticate: Bearer resource_metadata="..."`), as the MCP
/// authorization spec asks, and says `invalid_token` when one was sent.
pub async fn challenge(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let host = request.headers().get(header::HOST).cloned();
    let sent_token = request.headers().contains_key(header::AUTHORIZATION);
    let mut response = next.run(request).await;
    if response.status() == StatusCode::UNAUTHORIZED {
        let metadata = metadata_url(&app.live.current().catalog, host.as_ref());
        let mut value = format!(r#"Bearer resource_metadata="{metadata}""#);
        if sent_token {
            value.push_str(r#", error="invalid_token""#);
        }
        if let Ok(value) = HeaderValue::from_str(&value) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
    }
    response
}

/// This control plane's resource identifier: as configured, or else the
/// `/mcp` URL of the host the client addressed.
fn resource_id(catalog: &Catalog, host: Option<&HeaderValue>) -> String {
    match &catalog.identity.resource {
        Some(resource) => resource.clone(),
        None => format!("http://{}/mcp", host_name(host)),
    }
}

/// RFC 9728 §3.1: the well-known segment goes between the host and the
/// resource's path.
fn metadata_url(catalog: &Catalog, host: Option<&HeaderValue>) -> String {
    let resource = resource_id(catalog, host);
    match url::Url::parse(&resource) {
        Ok(url) => {
            let path = url.path().trim_end_matches('/');
            let origin = url.origin().ascii_serialization();
            format!("{origin}/.well-known/oauth-protected-resource{path}")
        }
        Err(_) => resource,
    }
}

/// The `Host` header if it is a plain authority, else `localhost`.
fn host_name(host: Option<&HeaderValue>) -> &str {
    host.and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost")
}
