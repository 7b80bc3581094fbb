//! Reading the knowledge base.

use axum::extract::State as S;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use endoreg_common::access::Permission;
use endoreg_common::api::{ClassificationWithChoices, Page, Paged, TermEntry, TermFilter, TermKindSummary};

use super::{ListErrors, ReadErrors, State};
use crate::http::error::ApiResult;
use crate::http::extract::{Path, Query};
use crate::http::policy::guard;
use crate::http::respond::JsonOk;
use crate::service::terminology;

pub fn router() -> OpenApiRouter<std::sync::Arc<crate::http::AppState>> {
    OpenApiRouter::new()
        .routes(guard(Permission::ReadTerminology, routes!(list_kinds)))
        .routes(guard(Permission::ReadTerminology, routes!(list_entries)))
        .routes(guard(Permission::ReadTerminology, routes!(get_entry)))
        .routes(guard(Permission::ReadTerminology, routes!(list_classifications)))
        .routes(guard(Permission::ReadTerminology, routes!(expected_interventions)))
}

/// The terminology kinds with their number of entries.
#[utoipa::path(get, path = "/api/v1/terminology", tag = "terminology", responses((status = 200, body = Vec<TermKindSummary>), ReadErrors))]
pub async fn list_kinds(S(state): State) -> ApiResult<JsonOk<Vec<TermKindSummary>>> {
    Ok(JsonOk(terminology::kinds(&state.db).await?))
}

/// Entries of one kind, by name.
#[utoipa::path(get, path = "/api/v1/terminology/{kind}", tag = "terminology",
    params(("kind" = String, Path, description = "A kind, e.g. `finding_classification`"), TermFilter),
    responses((status = 200, body = Page<TermEntry>), ListErrors))]
pub async fn list_entries(
    S(state): State,
    Path(kind): Path<String>,
    Query(filter): Query<TermFilter>,
) -> ApiResult<JsonOk<Page<TermEntry>>> {
    Ok(JsonOk(terminology::list(&state.db, &kind, filter.q.as_deref(), &filter.paging()).await?))
}

/// One entry, with its references by name.
#[utoipa::path(get, path = "/api/v1/terminology/{kind}/{name}", tag = "terminology",
    params(("kind" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = TermEntry), ReadErrors))]
pub async fn get_entry(S(state): State, Path((kind, name)): Path<(String, String)>) -> ApiResult<JsonOk<TermEntry>> {
    Ok(JsonOk(terminology::get(&state.db, &kind, &name).await?))
}

/// All finding classifications with their choices.
#[utoipa::path(get, path = "/api/v1/classifications", tag = "terminology",
    responses((status = 200, body = Vec<ClassificationWithChoices>), ReadErrors))]
pub async fn list_classifications(S(state): State) -> ApiResult<JsonOk<Vec<ClassificationWithChoices>>> {
    Ok(JsonOk(terminology::classifications(&state.db).await?))
}

/// The interventions an examination indication expects.
#[utoipa::path(get, path = "/api/v1/examination-indications/{name}/expected-interventions", tag = "terminology",
    params(("name" = String, Path, description = "An `examination_indication` name")),
    responses((status = 200, body = Vec<TermEntry>), ReadErrors))]
pub async fn expected_interventions(S(state): State, Path(name): Path<String>) -> ApiResult<JsonOk<Vec<TermEntry>>> {
    Ok(JsonOk(terminology::expected_interventions(&state.db, &name).await?))
}
