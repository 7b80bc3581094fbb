//! AI model versions, a video's predictions, and requests to predict.

use axum::extract::State as S;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use endoreg_common::access::Permission;
use endoreg_common::api::{AiModelVersion, AiModelVersionIn, Job, PredictRequest, Prediction, PredictionIn};

use super::State;
use crate::http::auth::Principal;
use crate::http::error::ApiResult;
use crate::http::extract::{Json, Path};
use crate::http::policy::guard;
use crate::http::respond::JsonOk;
use crate::service::{jobs, predictions};

pub fn router() -> OpenApiRouter<std::sync::Arc<crate::http::AppState>> {
    OpenApiRouter::new()
        .routes(guard(Permission::ReadTerminology, routes!(list_versions)))
        .routes(guard(Permission::ProcessJobs, routes!(register_version)))
        .routes(guard(Permission::ReadLabels, routes!(list_predictions)))
        .routes(guard(Permission::ProcessJobs, routes!(record_prediction)))
        .routes(guard(Permission::WriteMedia, routes!(request_prediction)))
}

#[utoipa::path(get, path = "/api/v1/ai-model-versions", tag = "inference", responses((status = 200, body = Vec<AiModelVersion>)))]
pub async fn list_versions(S(state): State) -> ApiResult<JsonOk<Vec<AiModelVersion>>> {
    Ok(JsonOk(predictions::versions(&state.db).await?))
}

/// Registers a model version (an inference worker does at start); the same model and version return the
/// existing record.
#[utoipa::path(post, path = "/api/v1/ai-model-versions", tag = "inference", request_body = AiModelVersionIn,
    responses((status = 200, body = AiModelVersion)))]
pub async fn register_version(S(state): State, Json(input): Json<AiModelVersionIn>) -> ApiResult<JsonOk<AiModelVersion>> {
    Ok(JsonOk(predictions::register_version(&state.db, &input).await?))
}

#[utoipa::path(get, path = "/api/v1/videos/{id}/predictions", tag = "inference", params(("id" = i64, Path, minimum = 1)),
    responses((status = 200, body = Vec<Prediction>)))]
pub async fn list_predictions(S(state): State, Path(id): Path<i64>) -> ApiResult<JsonOk<Vec<Prediction>>> {
    Ok(JsonOk(predictions::predictions(&state.db, id).await?))
}

/// Records a video's predictions by a model version; replaces that version's earlier segments.
#[utoipa::path(put, path = "/api/v1/videos/{id}/predictions/{model_version_id}", tag = "inference",
    params(("id" = i64, Path, minimum = 1), ("model_version_id" = i64, Path, minimum = 1)), request_body = PredictionIn,
    responses((status = 200, body = Prediction)))]
pub async fn record_prediction(
    S(state): State,
    Path((id, version)): Path<(i64, i64)>,
    Json(input): Json<PredictionIn>,
) -> ApiResult<JsonOk<Prediction>> {
    Ok(JsonOk(predictions::record(&state.db, id, version, &input).await?))
}

/// Queues a prediction of the video (by a registered model version, or the inference worker's model).
#[utoipa::path(post, path = "/api/v1/videos/{id}/predict", tag = "inference", params(("id" = i64, Path, minimum = 1)), request_body = PredictRequest,
    responses((status = 200, body = Job)))]
pub async fn request_prediction(
    S(state): State,
    principal: Principal,
    Path(id): Path<i64>,
    Json(input): Json<PredictRequest>,
) -> ApiResult<JsonOk<Job>> {
    let job = jobs::request_prediction(&state.db, id, input.model_version_id, state.jobs.max_attempts).await?;
    Ok(JsonOk(jobs::visible_to(principal.role, job)))
}
