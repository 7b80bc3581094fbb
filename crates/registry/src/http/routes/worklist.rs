//! The worklist: videos and reports by state, for the web app's start page.

use axum::extract::State as S;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use endoreg_common::access::Permission;

use super::State;
use crate::http::error::ApiResult;
use crate::http::extract::Query;
use crate::http::policy::guard;
use crate::http::respond::JsonOk;
use crate::service::worklist::{self, Worklist, WorklistQuery};

pub fn router() -> OpenApiRouter<std::sync::Arc<crate::http::AppState>> {
    OpenApiRouter::new().routes(guard(Permission::ReadMedia, routes!(get_worklist)))
}

/// Videos and reports, newest first, filtered by kind, center, state and the day they arrived; with the
/// number of items in each state and each item's latest processing job.
#[utoipa::path(get, path = "/api/v1/worklist", tag = "media", params(WorklistQuery), responses((status = 200, body = Worklist)))]
pub async fn get_worklist(S(state): State, Query(query): Query<WorklistQuery>) -> ApiResult<JsonOk<Worklist>> {
    Ok(JsonOk(worklist::list(&state.db, &query).await?))
}
