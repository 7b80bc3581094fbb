//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use endoreg_common::access::Permission;

use super::State;
use crate::http::policy::guard;

pub fn router() -> OpenApiRouter<std::sync::Arc<crate::http::AppState>> {
    OpenApiRouter::new().routes(guard(Permission::ReadTerminology, routes!(openapi_json)))
}

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "meta", responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn openapi_json(axum::extract::State(state): State) -> Response {
    let body = state.openapi_json.get().cloned().unwrap_or_else(|| "{}".into());
    let mut res = body.into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}
