//! The job queue: workers claim, renew and complete jobs; data managers watch and retry them; the identity
//! of a medium is available to the worker holding its processing job's lease and to identity-permitted
//! roles. A lease belongs to the caller's token and the worker name it claimed with; every lease route
//! refuses anyone else with 409.

use axum::extract::State as S;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use endoreg_common::access::Permission;
use endoreg_common::api::{Job, JobClaim, JobCompletion, JobFilter, JobHeartbeat, JobWorker, MediaIdentity, Page, Paged};
use endoreg_common::problem::Problem;

use super::{ListErrors, ReadErrors, State, WriteErrors};
use crate::http::auth::Principal;
use crate::http::error::ApiResult;
use crate::http::extract::{Json, Path, Query};
use crate::http::policy::guard;
use crate::http::respond::JsonOk;
use crate::service::jobs::{self, Holder, Subject};

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

/// Jobs; `lease_owner` only for roles that process jobs.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs", params(JobFilter), responses((status = 200, body = Page<Job>), ListErrors))]
pub async fn list_jobs(S(state): State, principal: Principal, Query(filter): Query<JobFilter>) -> ApiResult<JsonOk<Page<Job>>> {
    let mut page = jobs::list(&state.db, &filter, &filter.paging()).await?;
    page.items = page.items.into_iter().map(|j| jobs::visible_to(principal.role, j)).collect();
    Ok(JsonOk(page))
}

/// A job's state and, if it failed, why; `lease_owner` only for roles that process jobs.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs", params(("id" = i64, Path)), responses((status = 200, body = Job), ReadErrors))]
pub async fn get_job(S(state): State, principal: Principal, Path(id): Path<i64>) -> ApiResult<JsonOk<Job>> {
    Ok(JsonOk(jobs::visible_to(principal.role, jobs::get(&state.db, id).await?)))
}

/// Claims the next job of the given kinds with a lease, held by this token and `worker`; 204 when there is
/// none.
#[utoipa::path(post, path = "/api/v1/jobs/claim", tag = "jobs", request_body = JobClaim,
    responses((status = 200, body = Job), (status = 204, description = "No work"), WriteErrors))]
pub async fn claim_job(S(state): State, principal: Principal, Json(claim): Json<JobClaim>) -> ApiResult<Response> {
    Ok(match jobs::claim(&state.db, principal.token_id, &claim, &state.jobs).await? {
        Some(job) => JsonOk(job).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

/// Renews the lease; 409 unless this token and `worker` hold it.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/heartbeat", tag = "jobs", params(("id" = i64, Path)), request_body = JobHeartbeat,
    responses((status = 200, body = Job), WriteErrors))]
pub async fn heartbeat_job(
    S(state): State,
    principal: Principal,
    Path(id): Path<i64>,
    Json(hb): Json<JobHeartbeat>,
) -> ApiResult<JsonOk<Job>> {
    Ok(JsonOk(jobs::heartbeat(&state.db, id, principal.token_id, &hb, &state.jobs).await?))
}

/// Completes a job: succeeded, failed (retried with back-off if `retry` and attempts remain), or released
/// (given back unfinished by a stopping worker: queued again at once, the attempt not counted); 409 unless
/// this token and `worker` hold the lease.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/complete", tag = "jobs", params(("id" = i64, Path)), request_body = JobCompletion,
    responses((status = 200, body = Job), WriteErrors))]
pub async fn complete_job(
    S(state): State,
    principal: Principal,
    Path(id): Path<i64>,
    Json(done): Json<JobCompletion>,
) -> ApiResult<JsonOk<Job>> {
    Ok(JsonOk(jobs::complete(&state.db, id, principal.token_id, &done, &state.jobs).await?))
}

/// Queues a finished job again with fresh attempts.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/retry", tag = "jobs", params(("id" = i64, Path)), responses((status = 200, body = Job), WriteErrors))]
pub async fn retry_job(S(state): State, Path(id): Path<i64>) -> ApiResult<JsonOk<Job>> {
    Ok(JsonOk(jobs::retry(&state.db, id).await?))
}

/// The identifying data of the medium a processing job anonymises (names to remove from it), for the
/// worker holding the job's lease only: this token and `worker`, while the job runs; 409 for anyone else.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/identity", tag = "jobs", params(("id" = i64, Path), JobWorker),
    responses((status = 200, body = MediaIdentity), ListErrors,
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job is not running, not a processing job, or leased to another worker name or token",
            body = Problem, content_type = "application/problem+json")))]
pub async fn get_job_identity(
    S(state): State,
    principal: Principal,
    Path(id): Path<i64>,
    Query(w): Query<JobWorker>,
) -> ApiResult<JsonOk<MediaIdentity>> {
    Ok(JsonOk(jobs::job_identity(&state.db, id, Holder { token_id: principal.token_id, worker: &w.worker }).await?))
}

/// Records identifying data found while processing (it fills gaps; the uploader's values win), for the
/// worker holding the job's lease only, like reading it.
#[utoipa::path(put, path = "/api/v1/jobs/{id}/identity", tag = "jobs", params(("id" = i64, Path), JobWorker), request_body = MediaIdentity,
    responses((status = 200, body = MediaIdentity), WriteErrors))]
pub async fn put_job_identity(
    S(state): State,
    principal: Principal,
    Path(id): Path<i64>,
    Query(w): Query<JobWorker>,
    Json(identity): Json<MediaIdentity>,
) -> ApiResult<JsonOk<MediaIdentity>> {
    Ok(JsonOk(jobs::record_found_identity(&state.db, id, Holder { token_id: principal.token_id, worker: &w.worker }, &identity).await?))
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
