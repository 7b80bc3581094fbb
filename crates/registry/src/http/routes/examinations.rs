//! Patient examinations and their findings.

use axum::extract::State as S;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use endoreg_common::access::Permission;
use endoreg_common::api::{
    ExaminationFilter, ExaminationSummary, Page, Paged, PatientExamination, PatientExaminationCreate, PatientExaminationPatch,
    PatientFinding, PatientFindingIn,
};

use super::State;
use crate::http::error::ApiResult;
use crate::http::extract::{IfMatch, Json, Path, Query};
use crate::http::policy::guard;
use crate::http::respond::{Created, JsonOk, Versioned};
use crate::service::{examinations, findings};

pub fn router() -> OpenApiRouter<std::sync::Arc<crate::http::AppState>> {
    OpenApiRouter::new()
        .routes(guard(Permission::ReadClinical, routes!(list_examinations)))
        .routes(guard(Permission::WriteClinical, routes!(create_examination)))
        .routes(guard(Permission::ReadClinical, routes!(get_examination)))
        .routes(guard(Permission::WriteClinical, routes!(update_examination)))
        .routes(guard(Permission::WriteClinical, routes!(delete_examination)))
        .routes(guard(Permission::WriteClinical, routes!(create_finding)))
        .routes(guard(Permission::ReadClinical, routes!(get_finding)))
        .routes(guard(Permission::WriteClinical, routes!(replace_finding)))
        .routes(guard(Permission::WriteClinical, routes!(delete_finding)))
}

/// Examinations, filtered by center, examination, patient and date range.
#[utoipa::path(get, path = "/api/v1/patient-examinations", tag = "examinations", params(ExaminationFilter),
    responses((status = 200, body = Page<ExaminationSummary>)))]
pub async fn list_examinations(S(state): State, Query(filter): Query<ExaminationFilter>) -> ApiResult<JsonOk<Page<ExaminationSummary>>> {
    Ok(JsonOk(examinations::list(&state.db, &filter, &filter.paging()).await?))
}

/// Records an examination, optionally with its findings, in one transaction.
#[utoipa::path(post, path = "/api/v1/patient-examinations", tag = "examinations", request_body = PatientExaminationCreate,
    responses((status = 201, body = PatientExamination, headers(("ETag" = String), ("Location" = String)))))]
pub async fn create_examination(S(state): State, Json(input): Json<PatientExaminationCreate>) -> ApiResult<Created<PatientExamination>> {
    let e = examinations::create(&state.db, &input).await?;
    let location = format!("/api/v1/patient-examinations/{}", e.id);
    Ok(Created(e, location))
}

/// An examination with its indications and findings (classifications, interventions).
#[utoipa::path(get, path = "/api/v1/patient-examinations/{id}", tag = "examinations", params(("id" = i64, Path, minimum = 1)),
    responses((status = 200, body = PatientExamination, headers(("ETag" = String)))))]
pub async fn get_examination(S(state): State, Path(id): Path<i64>) -> ApiResult<Versioned<PatientExamination>> {
    Ok(Versioned(examinations::get(&state.db, id).await?))
}

#[utoipa::path(patch, path = "/api/v1/patient-examinations/{id}", tag = "examinations", params(("id" = i64, Path, minimum = 1), ("If-Match" = String, Header)),
    request_body = PatientExaminationPatch, responses((status = 200, body = PatientExamination)))]
pub async fn update_examination(
    S(state): State,
    Path(id): Path<i64>,
    IfMatch(v): IfMatch,
    Json(patch): Json<PatientExaminationPatch>,
) -> ApiResult<Versioned<PatientExamination>> {
    Ok(Versioned(examinations::update(&state.db, id, v, &patch).await?))
}

/// Deletes an examination with its findings (not while videos or reports belong to it).
#[utoipa::path(delete, path = "/api/v1/patient-examinations/{id}", tag = "examinations", params(("id" = i64, Path, minimum = 1), ("If-Match" = String, Header)),
    responses((status = 204, description = "Deleted")))]
pub async fn delete_examination(S(state): State, Path(id): Path<i64>, IfMatch(v): IfMatch) -> ApiResult<StatusCode> {
    examinations::delete(&state.db, id, v).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Adds a finding to an examination. An unknown classification choice, or one that is not a choice of its
/// classification, is a 422 naming it.
#[utoipa::path(post, path = "/api/v1/patient-examinations/{id}/findings", tag = "examinations", params(("id" = i64, Path, minimum = 1)),
    request_body = PatientFindingIn, responses((status = 201, body = PatientFinding, headers(("ETag" = String), ("Location" = String)))))]
pub async fn create_finding(
    S(state): State,
    Path(id): Path<i64>,
    Json(input): Json<PatientFindingIn>,
) -> ApiResult<Created<PatientFinding>> {
    let f = findings::create(&state.db, id, &input).await?;
    let location = format!("/api/v1/patient-findings/{}", f.id);
    Ok(Created(f, location))
}

#[utoipa::path(get, path = "/api/v1/patient-findings/{id}", tag = "examinations", params(("id" = i64, Path, minimum = 1)),
    responses((status = 200, body = PatientFinding, headers(("ETag" = String)))))]
pub async fn get_finding(S(state): State, Path(id): Path<i64>) -> ApiResult<Versioned<PatientFinding>> {
    Ok(Versioned(findings::get(&state.db, id).await?))
}

/// Replaces a finding with its classification choices and interventions.
#[utoipa::path(put, path = "/api/v1/patient-findings/{id}", tag = "examinations", params(("id" = i64, Path, minimum = 1), ("If-Match" = String, Header)),
    request_body = PatientFindingIn, responses((status = 200, body = PatientFinding)))]
pub async fn replace_finding(
    S(state): State,
    Path(id): Path<i64>,
    IfMatch(v): IfMatch,
    Json(input): Json<PatientFindingIn>,
) -> ApiResult<Versioned<PatientFinding>> {
    Ok(Versioned(findings::replace(&state.db, id, v, &input).await?))
}

#[utoipa::path(delete, path = "/api/v1/patient-findings/{id}", tag = "examinations", params(("id" = i64, Path, minimum = 1), ("If-Match" = String, Header)),
    responses((status = 204, description = "Deleted")))]
pub async fn delete_finding(S(state): State, Path(id): Path<i64>, IfMatch(v): IfMatch) -> ApiResult<StatusCode> {
    findings::delete(&state.db, id, v).await?;
    Ok(StatusCode::NO_CONTENT)
}
