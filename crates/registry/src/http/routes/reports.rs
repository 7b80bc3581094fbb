//! Report documents.

use axum::extract::State as S;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use endoreg_common::access::Permission;
use endoreg_common::api::{Page, Paged, Report, ReportCreate, ReportFilter, ReportPatch, StateChange};

use super::State;
use crate::http::error::ApiResult;
use crate::http::extract::{IfMatch, Json, Path, Query};
use crate::http::policy::guard;
use crate::http::respond::{Created, JsonOk, Versioned};
use crate::service::reports;

pub fn router() -> OpenApiRouter<std::sync::Arc<crate::http::AppState>> {
    OpenApiRouter::new()
        .routes(guard(Permission::ReadMedia, routes!(list_reports)))
        .routes(guard(Permission::WriteMedia, routes!(create_report)))
        .routes(guard(Permission::ReadMedia, routes!(get_report)))
        .routes(guard(Permission::WriteMedia, routes!(update_report)))
        .routes(guard(Permission::WriteMedia, routes!(change_report_state)))
}

#[utoipa::path(get, path = "/api/v1/reports", tag = "reports", params(ReportFilter), responses((status = 200, body = Page<Report>)))]
pub async fn list_reports(S(state): State, Query(filter): Query<ReportFilter>) -> ApiResult<JsonOk<Page<Report>>> {
    Ok(JsonOk(reports::list(&state.db, &filter, &filter.paging()).await?))
}

#[utoipa::path(post, path = "/api/v1/reports", tag = "reports", request_body = ReportCreate,
    responses((status = 201, body = Report, headers(("ETag" = String), ("Location" = String)))))]
pub async fn create_report(S(state): State, Json(input): Json<ReportCreate>) -> ApiResult<Created<Report>> {
    let r = reports::create(&state.db, &input).await?;
    let location = format!("/api/v1/reports/{}", r.id);
    Ok(Created(r, location))
}

#[utoipa::path(get, path = "/api/v1/reports/{id}", tag = "reports", params(("id" = i64, Path, minimum = 1)),
    responses((status = 200, body = Report, headers(("ETag" = String)))))]
pub async fn get_report(S(state): State, Path(id): Path<i64>) -> ApiResult<Versioned<Report>> {
    Ok(Versioned(reports::get(&state.db, id).await?))
}

#[utoipa::path(patch, path = "/api/v1/reports/{id}", tag = "reports", params(("id" = i64, Path, minimum = 1), ("If-Match" = String, Header)),
    request_body = ReportPatch, responses((status = 200, body = Report)))]
pub async fn update_report(
    S(state): State,
    Path(id): Path<i64>,
    IfMatch(v): IfMatch,
    Json(patch): Json<ReportPatch>,
) -> ApiResult<Versioned<Report>> {
    Ok(Versioned(reports::update(&state.db, id, v, &patch).await?))
}

#[utoipa::path(post, path = "/api/v1/reports/{id}/state", tag = "reports", params(("id" = i64, Path, minimum = 1), ("If-Match" = String, Header)),
    request_body = StateChange, responses((status = 200, body = Report)))]
pub async fn change_report_state(
    S(state): State,
    Path(id): Path<i64>,
    IfMatch(v): IfMatch,
    Json(change): Json<StateChange>,
) -> ApiResult<Versioned<Report>> {
    Ok(Versioned(reports::change_state(&state.db, id, v, &change).await?))
}
