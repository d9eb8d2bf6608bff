//! `/admin/*`: for administrators (the catalog's `admins`), never agents.
//! `GET /admin/audit` reads the audit trail back.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::audit::FrontDoor;
use crate::audit::query::FilterSpec;
use crate::identity;
use crate::pipeline::{Pipeline, PipelineError};
use crate::policy::NotPermitted;

/// `GET /admin/audit?trace_id=&agent_id=&tool=&outcome=&since=&until=&limit=&cursor=`
pub async fn audit(
    State(pipeline): State<Arc<Pipeline>>,
    headers: HeaderMap,
    query: Result<Query<FilterSpec>, QueryRejection>,
) -> Response {
    let ctx = super::request_context(&headers, FrontDoor::Rest);
    let fail = |error: PipelineError| ApiError::from(error).into_response_with(&ctx.trace);
    let token = super::bearer(&headers);
    if let Err(error) = identity::authenticate_admin(pipeline.catalog(), token) {
        // An agent's valid token is no admin token: forbidden, not unknown.
        let agent = pipeline.identity().authenticate(token).await.is_ok();
        return fail(if agent {
            NotPermitted::BY_ROLE.into()
        } else {
            error.into()
        });
    }
    let filter = match query
        .map_err(|e| e.body_text())
        .and_then(|Query(spec)| spec.filter())
    {
        Ok(filter) => filter,
        Err(problem) => return fail(PipelineError::InvalidRequest(problem)),
    };
    let Some(store) = pipeline.audit().store() else {
        return fail(PipelineError::InvalidRequest(
            "no SQLite or PostgreSQL audit sink is configured".into(),
        ));
    };
    match store.query(&filter).await {
        Ok(page) => Json(page).into_response(),
        Err(problem) => {
            tracing::error!(%problem, "audit query failed");
            fail(PipelineError::AuditUnavailable)
        }
    }
}
