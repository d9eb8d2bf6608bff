//! `connect --listen`: a local HTTP endpoint for MCP clients that speak
//! Streamable HTTP but cannot send an `Authorization` header. Every request
//! to `/mcp` is forwarded unchanged to the control plane with the agent's
//! token added; responses (JSON or SSE streams) come back unchanged.
//!
//! It listens on loopback only and accepts only loopback `Host` values, so a
//! web page elsewhere cannot use it (DNS rebinding); `Origin` is passed on
//! for the control plane to judge.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, bail};
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;

/// Largest request body forwarded.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Headers that belong to one hop, not to the message.
const HOP_BY_HOP: &[HeaderName] = &[
    header::HOST,
    header::AUTHORIZATION,
    header::CONNECTION,
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
];

struct Proxy {
    client: reqwest::Client,
    url: reqwest::Url,
    authorization: HeaderValue,
}

/// Serve on `listen` until the process ends.
pub async fn run(listen: SocketAddr, url: &str, token: &str) -> anyhow::Result<()> {
    if !listen.ip().is_loopback() {
        bail!("--listen must be a loopback address: the endpoint carries the agent's credential");
    }
    let url = reqwest::Url::parse(url).with_context(|| format!("invalid --url {url}"))?;
    let mut authorization = HeaderValue::from_str(&format!("Bearer {token}"))
        .context("the token is not a valid header value")?;
    authorization.set_sensitive(true);
    let proxy = Arc::new(Proxy {
        client: crate::outbound::client().build()?,
        url,
        authorization,
    });
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("listening on {}", listener.local_addr()?);
    let app = Router::new().route("/mcp", any(forward)).with_state(proxy);
    axum::serve(listener, app).await?;
    Ok(())
}

async fn forward(State(proxy): State<Arc<Proxy>>, request: Request) -> Response {
    if !loopback_host(request.headers().get(header::HOST)) {
        return (
            StatusCode::FORBIDDEN,
            "only loopback Host values are accepted",
        )
            .into_response();
    }
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let mut outbound = proxy.client.request(parts.method, proxy.url.clone());
    for (name, value) in &parts.headers {
        if !HOP_BY_HOP.contains(name) {
            outbound = outbound.header(name, value);
        }
    }
    let sent = outbound
        .header(header::AUTHORIZATION, proxy.authorization.clone())
        .body(body)
        .send()
        .await;
    let upstream = match sent {
        Ok(upstream) => upstream,
        Err(error) => {
            tracing::warn!(%error, "cannot reach the control plane");
            return (StatusCode::BAD_GATEWAY, "cannot reach the control plane").into_response();
        }
    };
    let mut response = Response::builder().status(upstream.status());
    for (name, value) in upstream.headers() {
        if !HOP_BY_HOP.contains(name) {
            response = response.header(name, value);
        }
    }
    response
        .body(Body::from_stream(upstream.bytes_stream()))
        .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}

fn loopback_host(host: Option<&HeaderValue>) -> bool {
    let Some(host) = host.and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
