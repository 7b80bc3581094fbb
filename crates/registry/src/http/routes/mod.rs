//! Route handlers, one module per resource. Handlers only extract, call the service layer and respond;
//! each module's `router()` declares its routes with their permissions.

pub mod examinations;
pub mod health;
pub mod jobs;
pub mod media;
pub mod openapi;
pub mod patients;
pub mod predictions;
pub mod reports;
pub mod sessions;
pub mod terminology;
pub mod tokens;
pub mod uploads;
pub mod videos;
pub mod worklist;

use std::sync::Arc;

use endoreg_common::problem::Problem;

use super::AppState;

pub type State = axum::extract::State<Arc<AppState>>;

// These three sets are what handlers named before `policy::guard` documented each operation's errors from
// what it takes (precisely, and with 400/404/422/500/503 where they apply). Handlers need not name them.

/// Errors of reading one record.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum ReadErrors {
    /// No valid token.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthenticated(Problem),
    /// The token's role lacks the route's permission.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// No such record.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
}

/// Errors of listing.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum ListErrors {
    /// Malformed query string.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// No valid token.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthenticated(Problem),
    /// The token's role lacks the route's permission.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// A filter or paging value is out of range.
    #[response(status = 422, content_type = "application/problem+json")]
    Invalid(Problem),
}

/// Errors of changing data.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum WriteErrors {
    /// Malformed JSON, not UTF-8, or a malformed `If-Match`.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// No valid token.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthenticated(Problem),
    /// The token's role lacks the route's permission.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// No such record.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
    /// The change conflicts with stored data (duplicate, still referenced, state machine).
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(Problem),
    /// The record changed since the version in `If-Match`.
    #[response(status = 412, content_type = "application/problem+json")]
    PreconditionFailed(Problem),
    /// The body exceeds the size limit.
    #[response(status = 413, content_type = "application/problem+json")]
    TooLarge(Problem),
    /// The body is not `application/json`.
    #[response(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Problem),
    /// Unknown fields, wrong types, unknown names, broken rules; `errors` lists each with its pointer.
    #[response(status = 422, content_type = "application/problem+json")]
    Invalid(Problem),
    /// `If-Match` is missing.
    #[response(status = 428, content_type = "application/problem+json")]
    PreconditionRequired(Problem),
}
