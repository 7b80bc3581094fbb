//! Videos, their processing state and frames, and their label segments.

use axum::extract::State as S;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use endoreg_common::access::Permission;
use endoreg_common::api::{
    FrameSet, LabelSegment, LabelSegmentIn, Page, Paged, SegmentFilter, StateChange, StateEvent, Video, VideoCreate, VideoFilter,
    VideoPatch,
};

use super::State;
use crate::http::error::ApiResult;
use crate::http::extract::{IfMatch, Json, Path, Query};
use crate::http::policy::guard;
use crate::http::respond::{Created, JsonOk, Versioned};
use crate::service::ServiceError;
use crate::service::{segments, videos};

pub fn router() -> OpenApiRouter<std::sync::Arc<crate::http::AppState>> {
    OpenApiRouter::new()
        .routes(guard(Permission::ReadMedia, routes!(list_videos)))
        .routes(guard(Permission::WriteMedia, routes!(create_video)))
        .routes(guard(Permission::ReadMedia, routes!(get_video)))
        .routes(guard(Permission::WriteMedia, routes!(update_video)))
        .routes(guard(Permission::WriteMedia, routes!(change_video_state)))
        .routes(guard(Permission::ReadMedia, routes!(video_events)))
        .routes(guard(Permission::WriteMedia, routes!(put_frame_set)))
        .routes(guard(Permission::ReadLabels, routes!(list_segments)))
        .routes(guard(Permission::WriteLabels, routes!(create_segment)))
        .routes(guard(Permission::ReadLabels, routes!(get_segment)))
        .routes(guard(Permission::WriteLabels, routes!(replace_segment)))
        .routes(guard(Permission::WriteLabels, routes!(delete_segment)))
}

#[utoipa::path(get, path = "/api/v1/videos", tag = "videos", params(VideoFilter), responses((status = 200, body = Page<Video>)))]
pub async fn list_videos(S(state): State, Query(filter): Query<VideoFilter>) -> ApiResult<JsonOk<Page<Video>>> {
    Ok(JsonOk(videos::list(&state.db, &filter, &filter.paging()).await?))
}

/// Registers a video (its file is stored by the media service); a video already registered (same SHA-256)
/// is a 409 naming it.
#[utoipa::path(post, path = "/api/v1/videos", tag = "videos", request_body = VideoCreate,
    responses((status = 201, body = Video, headers(("ETag" = String), ("Location" = String)))))]
pub async fn create_video(S(state): State, Json(input): Json<VideoCreate>) -> ApiResult<Created<Video>> {
    let v = videos::create(&state.db, &input).await?;
    let location = format!("/api/v1/videos/{}", v.id);
    Ok(Created(v, location))
}

#[utoipa::path(get, path = "/api/v1/videos/{id}", tag = "videos", params(("id" = i64, Path, minimum = 1)),
    responses((status = 200, body = Video, headers(("ETag" = String)))))]
pub async fn get_video(S(state): State, Path(id): Path<i64>) -> ApiResult<Versioned<Video>> {
    Ok(Versioned(videos::get(&state.db, id).await?))
}

#[utoipa::path(patch, path = "/api/v1/videos/{id}", tag = "videos", params(("id" = i64, Path, minimum = 1), ("If-Match" = String, Header)),
    request_body = VideoPatch, responses((status = 200, body = Video)))]
pub async fn update_video(
    S(state): State,
    Path(id): Path<i64>,
    IfMatch(v): IfMatch,
    Json(patch): Json<VideoPatch>,
) -> ApiResult<Versioned<Video>> {
    Ok(Versioned(videos::update(&state.db, id, v, &patch).await?))
}

/// Moves a video to another processing state; transitions outside the state machine are a 409.
#[utoipa::path(post, path = "/api/v1/videos/{id}/state", tag = "videos", params(("id" = i64, Path, minimum = 1), ("If-Match" = String, Header)),
    request_body = StateChange, responses((status = 200, body = Video)))]
pub async fn change_video_state(
    S(state): State,
    Path(id): Path<i64>,
    IfMatch(v): IfMatch,
    Json(change): Json<StateChange>,
) -> ApiResult<Versioned<Video>> {
    Ok(Versioned(videos::change_state(&state.db, id, v, &change).await?))
}

/// The video's state history.
#[utoipa::path(get, path = "/api/v1/videos/{id}/events", tag = "videos", params(("id" = i64, Path, minimum = 1)),
    responses((status = 200, body = Vec<StateEvent>)))]
pub async fn video_events(S(state): State, Path(id): Path<i64>) -> ApiResult<JsonOk<Vec<StateEvent>>> {
    Ok(JsonOk(videos::events(&state.db, id).await?))
}

/// Records the frames extracted from one source (`raw` or `anonymised`) of a video.
#[utoipa::path(put, path = "/api/v1/videos/{id}/frame-sets/{source}", tag = "videos", params(("id" = i64, Path, minimum = 1), ("source" = String, Path, pattern = "^(raw|anonymised)$")),
    request_body = FrameSet, responses((status = 200, body = Video)))]
pub async fn put_frame_set(
    S(state): State,
    Path((id, source)): Path<(i64, String)>,
    Json(set): Json<FrameSet>,
) -> ApiResult<Versioned<Video>> {
    if set.source != source {
        return Err(
            ServiceError::invalid("/source", format!("the body's source `{}` differs from the path's `{source}`", set.source)).into()
        );
    }
    Ok(Versioned(videos::put_frame_set(&state.db, id, &set).await?))
}

/// A video's label segments, optionally of one label and one source.
#[utoipa::path(get, path = "/api/v1/videos/{id}/segments", tag = "segments", params(("id" = i64, Path, minimum = 1), SegmentFilter),
    responses((status = 200, body = Vec<LabelSegment>)))]
pub async fn list_segments(
    S(state): State,
    Path(id): Path<i64>,
    Query(filter): Query<SegmentFilter>,
) -> ApiResult<JsonOk<Vec<LabelSegment>>> {
    Ok(JsonOk(segments::list(&state.db, id, &filter).await?))
}

#[utoipa::path(post, path = "/api/v1/videos/{id}/segments", tag = "segments", params(("id" = i64, Path, minimum = 1)), request_body = LabelSegmentIn,
    responses((status = 201, body = LabelSegment, headers(("ETag" = String), ("Location" = String)))))]
pub async fn create_segment(S(state): State, Path(id): Path<i64>, Json(input): Json<LabelSegmentIn>) -> ApiResult<Created<LabelSegment>> {
    let s = segments::create(&state.db, id, &input).await?;
    let location = format!("/api/v1/segments/{}", s.id);
    Ok(Created(s, location))
}

#[utoipa::path(get, path = "/api/v1/segments/{id}", tag = "segments", params(("id" = i64, Path, minimum = 1)),
    responses((status = 200, body = LabelSegment, headers(("ETag" = String)))))]
pub async fn get_segment(S(state): State, Path(id): Path<i64>) -> ApiResult<Versioned<LabelSegment>> {
    Ok(Versioned(segments::get(&state.db, id).await?))
}

#[utoipa::path(put, path = "/api/v1/segments/{id}", tag = "segments", params(("id" = i64, Path, minimum = 1), ("If-Match" = String, Header)),
    request_body = LabelSegmentIn, responses((status = 200, body = LabelSegment)))]
pub async fn replace_segment(
    S(state): State,
    Path(id): Path<i64>,
    IfMatch(v): IfMatch,
    Json(input): Json<LabelSegmentIn>,
) -> ApiResult<Versioned<LabelSegment>> {
    Ok(Versioned(segments::replace(&state.db, id, v, &input).await?))
}

#[utoipa::path(delete, path = "/api/v1/segments/{id}", tag = "segments", params(("id" = i64, Path, minimum = 1), ("If-Match" = String, Header)),
    responses((status = 204, description = "Deleted")))]
pub async fn delete_segment(S(state): State, Path(id): Path<i64>, IfMatch(v): IfMatch) -> ApiResult<StatusCode> {
    segments::delete(&state.db, id, v).await?;
    Ok(StatusCode::NO_CONTENT)
}
