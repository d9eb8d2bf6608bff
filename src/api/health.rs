//! Operational endpoints: `GET /healthz` (the process is alive) and
//! `GET /readyz` (the catalog is loaded and every upstream has had its first
//! connection attempt; 503 while the audit trail cannot be written).
//!
//! The agents' address answers `/readyz` with the word only: server names,
//! routes and held-back names are what discovery hides from agents. The
//! admin listener's `/readyz` adds the details: per-server state by logical
//! name (never by address), the catalog version in force and why a reload
//! was refused, each circuit breaker's state, the tools routed to more than
//! one server, and how.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::App;
use crate::catalog::{Catalog, Routing};

pub async fn healthz() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

/// Whether this replica takes traffic, and the word for why not.
fn readiness(app: &App) -> (StatusCode, &'static str) {
    // A replica whose audit trail cannot be written takes no traffic.
    let writable = app.audit.writable();
    let settled = app.live.current().upstreams.settled();
    match (settled, writable) {
        (true, true) => (StatusCode::OK, "ready"),
        (_, false) => (StatusCode::SERVICE_UNAVAILABLE, "audit_unavailable"),
        (false, true) => (StatusCode::SERVICE_UNAVAILABLE, "starting"),
    }
}

/// `/readyz` on the agents' address: ready or not, nothing else.
pub async fn readyz(State(app): State<Arc<App>>) -> Response {
    let (status, _) = readiness(&app);
    let word = if status.is_success() {
        "ready"
    } else {
        "not_ready"
    };
    (status, Json(json!({ "status": word }))).into_response()
}

/// `/readyz` on the admin listener: why, server by server.
pub async fn readyz_detail(State(app): State<Arc<App>>) -> Response {
    let (status, word) = readiness(&app);
    let snapshot = app.live.current();
    let upstreams = &snapshot.upstreams;
    let writable = word != "audit_unavailable";
    let mut servers = json!(upstreams.status());
    for server in servers.as_array_mut().into_iter().flatten() {
        let name = server["name"].as_str().unwrap_or_default();
        if let Some(breaker) = snapshot.breakers.of(name) {
            server["circuit"] = json!(breaker.state().as_str());
        }
    }
    let body = json!({
        "status": word,
        "audit": {
            "writable": writable,
            // A sink that failed or did not answer in time spools its
            // records until it takes them again.
            "sinks": app.audit.metrics().sinks.iter().map(|sink| json!({
                "name": sink.name,
                "spooled": sink.backlog.load(std::sync::atomic::Ordering::Relaxed),
            })).collect::<Vec<_>>(),
        },
        "catalog": app.live.status(),
        "servers": servers,
        "routes": routes(&snapshot.catalog),
        "redis": snapshot.shared.as_ref().map(|shared| json!({
            "state": if shared.is_up() { "up" } else { "down" },
        })),
        "policy": snapshot.policies.status(),
    });
    let mut body = body;
    if let Some(pinning) = snapshot.catalog.pinning() {
        let quarantined = crate::discovery::quarantine::all(&snapshot.catalog, upstreams);
        body["pinning"] = json!({"mode": pinning.mode, "quarantined": quarantined});
    }
    (status, Json(body)).into_response()
}

/// The tools with weighted targets or a fan-out, by public name: where
/// their calls go, by logical server name.
fn routes(catalog: &Catalog) -> Value {
    let server = |id| &*catalog.server(id).name;
    let mut routes: Vec<_> = catalog
        .tools()
        .filter_map(|route| {
            let how = match &route.routing {
                Routing::One => return None,
                Routing::Split(split) => json!({
                    "targets": split.weighted().map(|(leg, weight)| json!({
                        "server": server(leg.server), "upstream_name": &*leg.upstream_name, "weight": weight,
                    })).collect::<Vec<_>>(),
                    "sticky": split.sticky(),
                }),
                Routing::FanOut(mode) => json!({
                    "servers": route.legs.iter().map(|leg| json!({
                        "server": server(leg.server), "upstream_name": &*leg.upstream_name,
                    })).collect::<Vec<_>>(),
                    "mode": mode,
                }),
            };
            Some((route.public_name.clone(), how))
        })
        .collect();
    routes.sort_by(|a, b| a.0.cmp(&b.0));
    Value::Object(
        routes
            .into_iter()
            .map(|(name, how)| (name.to_string(), how))
            .collect(),
    )
}
