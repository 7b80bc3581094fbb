//! Patients and their identities.

use axum::extract::State as S;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use endoreg_common::access::Permission;
use endoreg_common::api::{Page, Paged, Patient, PatientCreate, PatientFilter, PatientIdentity, PatientIdentityIn, PatientPatch};

use super::State;
use crate::http::error::ApiResult;
use crate::http::extract::{IfMatch, Json, OptionalIfMatch, Path, Query};
use crate::http::policy::guard;
use crate::http::respond::{Created, JsonOk, Versioned};
use crate::service::patients;

pub fn router() -> OpenApiRouter<std::sync::Arc<crate::http::AppState>> {
    OpenApiRouter::new()
        .routes(guard(Permission::ReadClinical, routes!(list_patients)))
        .routes(guard(Permission::WriteClinical, routes!(create_patient)))
        .routes(guard(Permission::ReadClinical, routes!(get_patient)))
        .routes(guard(Permission::WriteClinical, routes!(update_patient)))
        .routes(guard(Permission::WriteClinical, routes!(delete_patient)))
        .routes(guard(Permission::ReadIdentity, routes!(get_identity)))
        .routes(guard(Permission::WriteIdentity, routes!(put_identity)))
}

#[utoipa::path(get, path = "/api/v1/patients", tag = "patients", params(PatientFilter),
    responses((status = 200, body = Page<Patient>)))]
pub async fn list_patients(S(state): State, Query(filter): Query<PatientFilter>) -> ApiResult<JsonOk<Page<Patient>>> {
    Ok(JsonOk(patients::list(&state.db, &filter, &filter.paging()).await?))
}

#[utoipa::path(post, path = "/api/v1/patients", tag = "patients", request_body = PatientCreate,
    responses((status = 201, body = Patient, headers(("ETag" = String), ("Location" = String)))))]
pub async fn create_patient(S(state): State, Json(input): Json<PatientCreate>) -> ApiResult<Created<Patient>> {
    let p = patients::create(&state.db, &input).await?;
    let location = format!("/api/v1/patients/{}", p.id);
    Ok(Created(p, location))
}

#[utoipa::path(get, path = "/api/v1/patients/{id}", tag = "patients", params(("id" = i64, Path, minimum = 1)),
    responses((status = 200, body = Patient, headers(("ETag" = String)))))]
pub async fn get_patient(S(state): State, Path(id): Path<i64>) -> ApiResult<Versioned<Patient>> {
    Ok(Versioned(patients::get(&state.db, id).await?))
}

#[utoipa::path(patch, path = "/api/v1/patients/{id}", tag = "patients", params(("id" = i64, Path, minimum = 1), ("If-Match" = String, Header)),
    request_body = PatientPatch, responses((status = 200, body = Patient, headers(("ETag" = String)))))]
pub async fn update_patient(
    S(state): State,
    Path(id): Path<i64>,
    IfMatch(v): IfMatch,
    Json(patch): Json<PatientPatch>,
) -> ApiResult<Versioned<Patient>> {
    Ok(Versioned(patients::update(&state.db, id, v, &patch).await?))
}

/// Deletes a patient without examinations, with their identity.
#[utoipa::path(delete, path = "/api/v1/patients/{id}", tag = "patients", params(("id" = i64, Path, minimum = 1), ("If-Match" = String, Header)),
    responses((status = 204, description = "Deleted")))]
pub async fn delete_patient(S(state): State, Path(id): Path<i64>, IfMatch(v): IfMatch) -> ApiResult<StatusCode> {
    patients::delete(&state.db, id, v).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The patient's identifying data.
#[utoipa::path(get, path = "/api/v1/patients/{id}/identity", tag = "patients", params(("id" = i64, Path, minimum = 1)),
    responses((status = 200, body = PatientIdentity, headers(("ETag" = String)))))]
pub async fn get_identity(S(state): State, Path(id): Path<i64>) -> ApiResult<Versioned<PatientIdentity>> {
    Ok(Versioned(patients::get_identity(&state.db, id).await?))
}

/// Creates the identity (without `If-Match`) or replaces it (with the version read).
#[utoipa::path(put, path = "/api/v1/patients/{id}/identity", tag = "patients", params(("id" = i64, Path, minimum = 1), ("If-Match" = Option<String>, Header)),
    request_body = PatientIdentityIn, responses((status = 200, body = PatientIdentity), (status = 201, body = PatientIdentity)))]
pub async fn put_identity(
    S(state): State,
    Path(id): Path<i64>,
    OptionalIfMatch(v): OptionalIfMatch,
    Json(input): Json<PatientIdentityIn>,
) -> ApiResult<Response> {
    let (identity, created) = patients::put_identity(&state.db, id, v, &input).await?;
    Ok(if created {
        Created(identity, format!("/api/v1/patients/{id}/identity")).into_response()
    } else {
        Versioned(identity).into_response()
    })
}
