//! Every error the API returns is an RFC 9457 problem (`application/problem+json`). Service errors map to
//! statuses here, in one place; internal errors are logged with an incident id and answered without
//! their text (which may contain identifiers).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use endoreg_common::problem::{self, Problem};

use crate::service::ServiceError;

#[derive(Debug)]
pub enum ApiError {
    Service(ServiceError),
    Problem(Box<Problem>),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        ApiError::Service(e)
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(e: crate::db::DbError) -> Self {
        ApiError::Service(ServiceError::from_db(e))
    }
}

impl From<Problem> for ApiError {
    fn from(p: Problem) -> Self {
        ApiError::Problem(Box::new(p))
    }
}

/// The problems the API itself raises (the service layer raises the rest).
pub fn bad_request(code: &str, detail: impl Into<String>) -> Problem {
    Problem::new(code, "Bad request", 400).with_detail(detail)
}

pub fn unauthenticated(detail: &str) -> Problem {
    Problem::new("unauthenticated", "Authentication required", 401).with_detail(detail)
}

pub fn forbidden(detail: impl Into<String>) -> Problem {
    Problem::new("forbidden", "Forbidden", 403).with_detail(detail)
}

/// A problem for a bare status (a status some layer produced without a body).
pub fn for_status(status: StatusCode) -> Problem {
    let (code, title, detail) = match status.as_u16() {
        404 => ("not_found", "Not found", "no such resource"),
        405 => ("method_not_allowed", "Method not allowed", "the resource does not support this method; see the Allow header"),
        408 | 503 => ("unavailable", "Service unavailable", "the request took too long or the registry is overloaded; retry later"),
        413 => ("payload_too_large", "Payload too large", "the request body exceeds the configured limit"),
        415 => ("unsupported_media_type", "Unsupported media type", "send the body as application/json"),
        500 => ("internal", "Internal error", "the registry failed to handle the request; the incident is logged"),
        _ => ("error", status.canonical_reason().unwrap_or("Error"), "the request failed"),
    };
    Problem::new(code, title, status.as_u16()).with_detail(detail)
}

impl ApiError {
    fn into_problem(self) -> Problem {
        match self {
            ApiError::Problem(p) => *p,
            ApiError::Service(e) => match e {
                ServiceError::NotFound { what } => Problem::new("not_found", "Not found", 404).with_detail(format!("{what} not found")),
                ServiceError::Invalid(errors) => {
                    let detail = errors.iter().map(|e| if e.pointer.is_empty() { e.detail.clone() } else { format!("{}: {}", e.pointer, e.detail) }).collect::<Vec<_>>().join("; ");
                    Problem::new("validation_failed", "Validation failed", 422).with_detail(detail).with_errors(errors)
                }
                ServiceError::Conflict(detail) => Problem::new("conflict", "Conflict", 409).with_detail(detail),
                ServiceError::VersionMismatch { current } => Problem::new("precondition_failed", "Precondition failed", 412).with_detail(format!(
                    "the record was changed since you read it; it is now at version {current} (ETag \"{current}\"): read it again and reapply your change"
                )),
                ServiceError::Db(e) => {
                    let incident = incident_id();
                    log::error!("request failed, incident {incident}: {e}");
                    let unavailable = matches!(e, crate::db::DbError::Sqlx(sqlx::Error::PoolTimedOut) | crate::db::DbError::Sqlx(sqlx::Error::PoolClosed));
                    if unavailable {
                        Problem::new("unavailable", "Service unavailable", 503).with_detail(format!("the database is not reachable or saturated (incident {incident}); retry later"))
                    } else {
                        Problem::new("internal", "Internal error", 500).with_detail(format!("the registry failed to handle the request (incident {incident})"))
                    }
                }
            },
        }
    }
}

fn incident_id() -> String {
    use rand::Rng;
    format!("{:016x}", rand::rng().random::<u64>())
}

pub fn problem_response(p: Problem) -> Response {
    let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_vec(&p).unwrap_or_else(|_| b"{}".to_vec());
    let mut res = (status, body).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(problem::CONTENT_TYPE));
    if status == StatusCode::UNAUTHORIZED {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"endoreg\""));
    }
    res
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        problem_response(self.into_problem())
    }
}
