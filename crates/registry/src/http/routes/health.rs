//! Liveness and readiness, the only routes served without a token.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use endoreg_common::api::Readiness;
use endoreg_common::problem::Problem;

use super::State;
use crate::http::respond::JsonOk;

pub fn router() -> OpenApiRouter<std::sync::Arc<crate::http::AppState>> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz))
}

/// The process runs.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "Alive", body = String, content_type = "text/plain"),
    (status = 500, description = "An internal error", body = Problem, content_type = "application/problem+json"),
    (status = 503, description = "The request took too long", body = Problem, content_type = "application/problem+json")))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// The database answers and its schema is the one this binary expects.
#[utoipa::path(get, path = "/readyz", tag = "health", responses(
    (status = 200, description = "Ready", body = Readiness),
    (status = 503, description = "Not ready", body = Readiness)))]
pub async fn readyz(axum::extract::State(state): State) -> Response {
    let ping = state.db.ping().await;
    let applied = state.db.applied_migrations().await.unwrap_or(0);
    let known = state.db.known_migrations();
    let ready = ping.is_ok() && applied == known;
    let body = Readiness { ready, database: state.db.backend().as_str().into(), migrations_applied: applied, migrations_known: known };
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, JsonOk(body)).into_response()
}
