//! The job queue: workers claim, renew and complete jobs; data managers watch and retry them; the identity
//! of a medium is available to the worker processing it and to identity-permitted roles.

use axum::extract::State as S;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use endoreg_common::access::Permission;
use endoreg_common::api::{Job, JobClaim, JobCompletion, JobFilter, JobHeartbeat, MediaIdentity, Page, Paged};

use super::{ListErrors, ReadErrors, State, WriteErrors};
use crate::http::error::ApiResult;
use crate::http::extract::{Json, Path, Query};
use crate::http::policy::guard;
use crate::http::respond::JsonOk;
use crate::service::jobs::{self, Subject};

pub fn router() -> OpenApiRouter<std::sync::Arc<crate::http::AppState>> {
    OpenApiRouter::new()
        .routes(guard(Permission::ReadMedia, routes!(list_jobs)))
        .routes(guard(Permission::ReadMedia, routes!(get_job)))
        .routes(guard(Permission::ProcessJobs, routes!(claim_job)))
        .routes(guard(Permission::ProcessJobs, routes!(heartbeat_job)))
        .routes(guard(Permission::ProcessJobs, routes!(complete_job)))
        .routes(guard(Permission::WriteMedia, routes!(retry_job)))
        .routes(guard(Permission::ProcessJobs, routes!(get_job_identity)))
        .routes(guard(Permission::ProcessJobs, routes!(put_job_identity)))
        .routes(guard(Permission::ReadIdentity, routes!(get_video_identity)))
        .routes(guard(Permission::ReadIdentity, routes!(get_report_identity)))
}

#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs", params(JobFilter), responses((status = 200, body = Page<Job>), ListErrors))]
pub async fn list_jobs(S(state): State, Query(filter): Query<JobFilter>) -> ApiResult<JsonOk<Page<Job>>> {
    Ok(JsonOk(jobs::list(&state.db, &filter, &filter.paging()).await?))
}

/// A job's state and, if it failed, why.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs", params(("id" = i64, Path)), responses((status = 200, body = Job), ReadErrors))]
pub async fn get_job(S(state): State, Path(id): Path<i64>) -> ApiResult<JsonOk<Job>> {
    Ok(JsonOk(jobs::get(&state.db, id).await?))
}

/// Claims the next job of the given kinds with a lease; 204 when there is none.
#[utoipa::path(post, path = "/api/v1/jobs/claim", tag = "jobs", request_body = JobClaim,
    responses((status = 200, body = Job), (status = 204, description = "No work"), WriteErrors))]
pub async fn claim_job(S(state): State, Json(claim): Json<JobClaim>) -> ApiResult<Response> {
    Ok(match jobs::claim(&state.db, &claim, &state.jobs).await? {
        Some(job) => JsonOk(job).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

/// Renews the lease; 409 when the worker no longer holds it.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/heartbeat", tag = "jobs", params(("id" = i64, Path)), request_body = JobHeartbeat,
    responses((status = 200, body = Job), WriteErrors))]
pub async fn heartbeat_job(S(state): State, Path(id): Path<i64>, Json(hb): Json<JobHeartbeat>) -> ApiResult<JsonOk<Job>> {
    Ok(JsonOk(jobs::heartbeat(&state.db, id, &hb, &state.jobs).await?))
}

/// Completes a job: succeeded, failed (retried with back-off if `retry` and attempts remain), or released
/// (given back unfinished by a stopping worker: queued again at once, the attempt not counted).
#[utoipa::path(post, path = "/api/v1/jobs/{id}/complete", tag = "jobs", params(("id" = i64, Path)), request_body = JobCompletion,
    responses((status = 200, body = Job), WriteErrors))]
pub async fn complete_job(S(state): State, Path(id): Path<i64>, Json(done): Json<JobCompletion>) -> ApiResult<JsonOk<Job>> {
    Ok(JsonOk(jobs::complete(&state.db, id, &done, &state.jobs).await?))
}

/// Queues a finished job again with fresh attempts.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/retry", tag = "jobs", params(("id" = i64, Path)), responses((status = 200, body = Job), WriteErrors))]
pub async fn retry_job(S(state): State, Path(id): Path<i64>) -> ApiResult<JsonOk<Job>> {
    Ok(JsonOk(jobs::retry(&state.db, id).await?))
}

/// The identifying data of the medium the job processes (names to remove from it).
#[utoipa::path(get, path = "/api/v1/jobs/{id}/identity", tag = "jobs", params(("id" = i64, Path)), responses((status = 200, body = MediaIdentity), ReadErrors))]
pub async fn get_job_identity(S(state): State, Path(id): Path<i64>) -> ApiResult<JsonOk<MediaIdentity>> {
    Ok(JsonOk(jobs::job_identity(&state.db, id).await?))
}

/// Records identifying data found while processing (it fills gaps; the uploader's values win).
#[utoipa::path(put, path = "/api/v1/jobs/{id}/identity", tag = "jobs", params(("id" = i64, Path)), request_body = MediaIdentity,
    responses((status = 200, body = MediaIdentity), WriteErrors))]
pub async fn put_job_identity(
    S(state): State,
    Path(id): Path<i64>,
    Json(identity): Json<MediaIdentity>,
) -> ApiResult<JsonOk<MediaIdentity>> {
    Ok(JsonOk(jobs::record_found_identity(&state.db, id, &identity).await?))
}

/// The identifying data that came with a video.
#[utoipa::path(get, path = "/api/v1/videos/{id}/identity", tag = "videos", params(("id" = i64, Path)), responses((status = 200, body = MediaIdentity), ReadErrors))]
pub async fn get_video_identity(S(state): State, Path(id): Path<i64>) -> ApiResult<JsonOk<MediaIdentity>> {
    crate::service::videos::get(&state.db, id).await?;
    Ok(JsonOk(jobs::media_identity(&state.db, Subject::Video(id)).await?))
}

/// The identifying data that came with, or was found in, a report.
#[utoipa::path(get, path = "/api/v1/reports/{id}/identity", tag = "reports", params(("id" = i64, Path)), responses((status = 200, body = MediaIdentity), ReadErrors))]
pub async fn get_report_identity(S(state): State, Path(id): Path<i64>) -> ApiResult<JsonOk<MediaIdentity>> {
    crate::service::reports::get(&state.db, id).await?;
    Ok(JsonOk(jobs::media_identity(&state.db, Subject::Report(id)).await?))
}
