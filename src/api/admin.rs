//! `/admin/*`: for administrators (the catalog's `admins`), never agents.
//! `GET /admin/audit` reads the audit trail back; every read (and every
//! refused attempt) is itself recorded, as action `admin_query`.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::App;
use super::error::ApiError;
use crate::audit::query::FilterSpec;
use crate::vocabulary::FrontDoor;

/// `GET /admin/audit?trace_id=&agent_id=&tool=&outcome=&since=&until=&limit=&cursor=`
pub async fn audit(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(raw_query): RawQuery,
    query: Result<Query<FilterSpec>, QueryRejection>,
) -> Response {
    let ctx = super::request_context(&headers, FrontDoor::Rest);
    let filter = query
        .map_err(|e| e.body_text())
        .and_then(|Query(spec)| spec.filter());
    let asked = raw_query.as_deref().unwrap_or("");
    let token = super::bearer(&headers);
    match app.pipeline.read_audit(&ctx, token, asked, filter).await {
        Ok(page) => Json(page).into_response(),
        Err(error) => ApiError::from(error).into_response_with(&ctx.trace),
    }
}
