//! `/admin/*`: for administrators (the catalog's `admins`), never agents.
//! `GET /admin/audit` reads the audit trail back; every read (and every
//! refused attempt) is itself recorded, as action `admin_query`.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::audit::query::FilterSpec;
use crate::identity;
use crate::pipeline::{Pipeline, PipelineError};
use crate::policy::NotPermitted;
use crate::vocabulary::{FrontDoor, Outcome};

/// `GET /admin/audit?trace_id=&agent_id=&tool=&outcome=&since=&until=&limit=&cursor=`
pub async fn audit(
    State(pipeline): State<Arc<Pipeline>>,
    headers: HeaderMap,
    RawQuery(raw_query): RawQuery,
    query: Result<Query<FilterSpec>, QueryRejection>,
) -> Response {
    let ctx = super::request_context(&headers, FrontDoor::Rest);
    let fail = |error: PipelineError| ApiError::from(error).into_response_with(&ctx.trace);
    let token = super::bearer(&headers);
    let recorded = raw_query.as_deref().unwrap_or("");
    let admin = match identity::authenticate_admin(pipeline.catalog(), token) {
        Ok(admin) => admin,
        Err(error) => {
            // An agent's valid token is no admin token: forbidden, not unknown.
            let agent = pipeline.identity().authenticate(token).await.ok();
            let refusal: PipelineError = match &agent {
                Some(_) => NotPermitted::BY_ROLE.into(),
                None => error.into(),
            };
            let reader = agent.map(|caller| caller.agent_id);
            let recorded = pipeline
                .record_admin_query(&ctx, reader, recorded, refusal.outcome())
                .await;
            return fail(recorded.err().unwrap_or(refusal));
        }
    };
    // A malformed filter or a trail with no store to read is recorded as
    // the bad request it is; a good one before any record leaves.
    let filter = query
        .map_err(|e| e.body_text())
        .and_then(|Query(spec)| spec.filter())
        .map_err(PipelineError::InvalidRequest)
        .and_then(|filter| match pipeline.audit().store() {
            Some(store) => Ok((filter, store)),
            None => Err(PipelineError::InvalidRequest(
                "no SQLite or PostgreSQL audit sink is configured".into(),
            )),
        });
    let outcome = filter
        .as_ref()
        .map_or_else(PipelineError::outcome, |_| Outcome::Ok);
    if let Err(error) = pipeline
        .record_admin_query(&ctx, Some(admin), recorded, outcome)
        .await
    {
        return fail(error);
    }
    let (filter, store) = match filter {
        Ok(found) => found,
        Err(error) => return fail(error),
    };
    match store.query(&filter).await {
        Ok(page) => Json(page).into_response(),
        Err(problem) => {
            tracing::error!(%problem, "audit query failed");
            fail(PipelineError::AuditUnavailable)
        }
    }
}
