//! The JSON error body every HTTP front door returns, and the one mapping
//! from pipeline errors to HTTP statuses:
//! `{"error": {"code": "...", "message": "..."}, "trace_id": "..."}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::pipeline::PipelineError;
use crate::trace_context::TraceContext;
use crate::upstream::UpstreamError;

/// An error as an HTTP front door sends it.
#[derive(Debug)]
pub enum ApiError {
    Pipeline(PipelineError),
    NotFound,
    MethodNotAllowed,
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Pipeline(error) => match error {
                PipelineError::InvalidRequest(_)
                | PipelineError::MalformedHead(_)
                | PipelineError::InvalidArguments(_) => StatusCode::BAD_REQUEST,
                PipelineError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
                PipelineError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                PipelineError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
                PipelineError::Impersonation(_)
                | PipelineError::Forbidden(_)
                | PipelineError::PolicyDenied(_)
                | PipelineError::ResultDenied(_)
                | PipelineError::ToolQuarantined => StatusCode::FORBIDDEN,
                PipelineError::AuditUnavailable(_)
                | PipelineError::CircuitOpen
                | PipelineError::UpstreamBusy => StatusCode::SERVICE_UNAVAILABLE,
                PipelineError::TooManySessions(_)
                | PipelineError::TooManyStreams
                | PipelineError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
                PipelineError::Upstream(UpstreamError::Timeout) => StatusCode::GATEWAY_TIMEOUT,
                PipelineError::Upstream(_)
                | PipelineError::CredentialUnavailable
                | PipelineError::ResultTooLarge(_) => StatusCode::BAD_GATEWAY,
            },
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Pipeline(error) => error.code(),
        }
    }

    fn message(&self) -> String {
        match self {
            Self::NotFound => "no such route".to_string(),
            Self::MethodNotAllowed => "method not allowed on this route".to_string(),
            Self::Pipeline(error) => error.to_string(),
        }
    }

    /// The response, carrying the request's trace id in the body and in a
    /// `traceparent` header.
    pub fn into_response_with(self, trace: &TraceContext) -> Response {
        let status = self.status();
        let mut body = json!({
            "error": {"code": self.code(), "message": self.message()},
            "trace_id": trace.trace_id_hex(),
        });
        if let Self::Pipeline(
            PipelineError::PolicyDenied(reasons) | PipelineError::ResultDenied(reasons),
        ) = &self
        {
            body["error"]["reasons"] = json!(reasons);
        }
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if let Ok(value) = HeaderValue::from_str(&trace.traceparent()) {
            headers.insert("traceparent", value);
        }
        if let Self::Pipeline(PipelineError::RateLimited(refusal)) = &self {
            let seconds = crate::router::limits::retry_after_seconds(refusal.retry_after);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if status == StatusCode::UNAUTHORIZED {
            // `well_known::challenge` adds the resource metadata.
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<PipelineError> for ApiError {
    fn from(error: PipelineError) -> Self {
        Self::Pipeline(error)
    }
}
