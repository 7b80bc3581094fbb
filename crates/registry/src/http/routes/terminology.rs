//! Reading the knowledge base.

use axum::extract::State as S;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use utoipa_axum::routes;

use endoreg_common::access::Permission;
use endoreg_common::api::{ClassificationWithChoices, Page, Paged, TermEntry, TermFilter, TermKindSummary};

use super::State;
use crate::http::error::ApiResult;
use crate::http::extract::{Path, Query};
use crate::http::policy::guard;
use crate::http::respond::JsonOk;
use crate::kb::catalogue::KINDS;
use crate::service::terminology;

pub fn router() -> OpenApiRouter<std::sync::Arc<crate::http::AppState>> {
    OpenApiRouter::new()
        .routes(guard(Permission::ReadTerminology, routes!(list_kinds)))
        .routes(kinds_listed(guard(Permission::ReadTerminology, routes!(list_entries))))
        .routes(kinds_listed(guard(Permission::ReadTerminology, routes!(get_entry))))
        .routes(guard(Permission::ReadTerminology, routes!(list_classifications)))
        .routes(guard(Permission::ReadTerminology, routes!(expected_interventions)))
}

/// Documents the `kind` path parameter as one of the catalogue's kinds (an unknown kind is a 404).
fn kinds_listed<S>(routes: UtoipaMethodRouter<S>) -> UtoipaMethodRouter<S> {
    let (schemas, mut paths, router) = routes;
    let kinds = ObjectBuilder::new().schema_type(Type::String).enum_values(Some(KINDS.iter().map(|k| k.name))).build();
    for item in paths.paths.values_mut() {
        for op in [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete].into_iter().flatten() {
            for p in op.parameters.iter_mut().flatten() {
                if let RefOr::T(p) = p
                    && p.name == "kind"
                {
                    p.schema = Some(RefOr::T(Schema::Object(kinds.clone())));
                }
            }
        }
    }
    (schemas, paths, router)
}

/// The terminology kinds with their number of entries.
#[utoipa::path(get, path = "/api/v1/terminology", tag = "terminology", responses((status = 200, body = Vec<TermKindSummary>)))]
pub async fn list_kinds(S(state): State) -> ApiResult<JsonOk<Vec<TermKindSummary>>> {
    Ok(JsonOk(terminology::kinds(&state.db).await?))
}

/// Entries of one kind, by name.
#[utoipa::path(get, path = "/api/v1/terminology/{kind}", tag = "terminology",
    params(("kind" = String, Path, description = "A kind, e.g. `finding_classification`"), TermFilter),
    responses((status = 200, body = Page<TermEntry>)))]
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
    responses((status = 200, body = TermEntry)))]
pub async fn get_entry(S(state): State, Path((kind, name)): Path<(String, String)>) -> ApiResult<JsonOk<TermEntry>> {
    Ok(JsonOk(terminology::get(&state.db, &kind, &name).await?))
}

/// All finding classifications with their choices.
#[utoipa::path(get, path = "/api/v1/classifications", tag = "terminology",
    responses((status = 200, body = Vec<ClassificationWithChoices>)))]
pub async fn list_classifications(S(state): State) -> ApiResult<JsonOk<Vec<ClassificationWithChoices>>> {
    Ok(JsonOk(terminology::classifications(&state.db).await?))
}

/// The interventions an examination indication expects.
#[utoipa::path(get, path = "/api/v1/examination-indications/{name}/expected-interventions", tag = "terminology",
    params(("name" = String, Path, description = "An `examination_indication` name")),
    responses((status = 200, body = Vec<TermEntry>)))]
pub async fn expected_interventions(S(state): State, Path(name): Path<String>) -> ApiResult<JsonOk<Vec<TermEntry>>> {
    Ok(JsonOk(terminology::expected_interventions(&state.db, &name).await?))
}
