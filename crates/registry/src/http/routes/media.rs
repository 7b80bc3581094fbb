//! Media delivery: the anonymised video (ranged, so a browser's `<video>` seeks), its stored frames and
//! thumbnails as pictures, and a report's anonymised text. Permissions as for the records they belong
//! to (`read_media`); only anonymised products are ever served, to every role: a raw upload has no route.
//!
//! Caching: every answer carries a strong `ETag` (the anonymised video's SHA-256, or a hash of the bytes
//! sent) and answers `If-None-Match` with 304. A URL that pins the version it was made for (`?v=` with the
//! anonymised video's SHA-256, from the video record's `anonymised_key`) names content-addressed data and
//! is `immutable`; without `v` the answer is revalidated before each use.

use axum::body::Body;
use axum::extract::State as S;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use endoreg_common::access::Permission;
use endoreg_common::problem::Problem;
use endoreg_common::storage::StorageError;

use super::State;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{Path, Query};
use crate::http::policy::guard;
use crate::http::ranges::{self, Wanted};
use crate::service::media::{self, THUMBNAIL_WIDTHS};
use crate::service::{Checks, ServiceError};

pub fn router() -> OpenApiRouter<std::sync::Arc<crate::http::AppState>> {
    OpenApiRouter::new()
        .routes(guard(Permission::ReadMedia, routes!(anonymised_video)))
        .routes(guard(Permission::ReadMedia, routes!(video_frame)))
        .routes(guard(Permission::ReadMedia, routes!(frame_thumbnail)))
        .routes(guard(Permission::ReadMedia, routes!(video_thumbnail)))
        .routes(guard(Permission::ReadMedia, routes!(report_text)))
}

/// The bytes of a stored object: `{"type": "string", "format": "binary"}`, inlined where used.
pub struct Binary;

impl utoipa::PartialSchema for Binary {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new().schema_type(Type::String).format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary))).into()
    }
}

impl ToSchema for Binary {}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Pinned {
    /// The SHA-256 of the anonymised video this URL was made for (from the video's `anonymised_key`):
    /// the answer is then `immutable`; 404 once the video has another anonymised version.
    #[param(pattern = "^[0-9a-f]{64}$")]
    pub v: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ThumbnailQuery {
    /// As for the frame.
    #[param(pattern = "^[0-9a-f]{64}$")]
    pub v: Option<String>,
    /// Width in pixels, 16..=640 (default 160); the height keeps the frame's aspect. Never scaled up.
    #[param(minimum = 16, maximum = 640)]
    pub width: Option<u32>,
}

fn storage_error(what: String) -> impl FnOnce(StorageError) -> ApiError {
    move |e| match e {
        StorageError::NotFound { .. } => {
            log::error!("{what} is recorded but missing from storage");
            ServiceError::not_found(format!("the stored file of {what} (it is missing from storage; process the video again)")).into()
        }
        other => {
            log::error!("reading {what} from storage failed: {other}");
            Problem::new("unavailable", "Service unavailable", 503).with_detail("media storage is not available; retry later").into()
        }
    }
}

fn content_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().take(16).map(|b| format!("{b:02x}")).collect()
}

fn not_modified(etag: &str, pinned: bool) -> Response {
    let mut res = StatusCode::NOT_MODIFIED.into_response();
    ranges::cache_headers(res.headers_mut(), etag, pinned);
    res
}

fn bytes_response(bytes: Vec<u8>, content_type: &'static str, etag: &str, pinned: bool) -> Response {
    let mut res = (StatusCode::OK, bytes).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    ranges::cache_headers(h, etag, pinned);
    res
}

/// The anonymised video (MP4), whole or one byte range (`Range: bytes=…`, answered 206 with
/// `Content-Range`; `If-Range` honoured); 416 for a range beyond its end. Only once it is anonymised.
#[utoipa::path(get, path = "/api/v1/videos/{id}/anonymised", tag = "media", params(("id" = i64, Path, minimum = 1), Pinned),
    responses(
        (status = 200, description = "The whole video", content_type = "video/mp4", body = inline(Binary),
            headers(("ETag" = String), ("Accept-Ranges" = String), ("Cache-Control" = String))),
        (status = 206, description = "The requested byte range", content_type = "video/mp4", body = inline(Binary),
            headers(("Content-Range" = String), ("ETag" = String), ("Accept-Ranges" = String), ("Cache-Control" = String))),
        (status = 304, description = "The copy named by If-None-Match is current", headers(("ETag" = String))),
        (status = 416, description = "The range lies beyond the video's end; Content-Range names its size", content_type = "application/problem+json", body = Problem,
            headers(("Content-Range" = String))),
    ))]
pub async fn anonymised_video(S(state): State, Path(id): Path<i64>, Query(q): Query<Pinned>, headers: HeaderMap) -> ApiResult<Response> {
    let video = media::anonymised_video(&state.db, id).await?;
    let pinned = media::check_pin(q.v.as_deref(), &video, id)?;
    let etag = format!("\"{}\"", video.sha256);
    if ranges::not_modified(&headers, &etag) {
        let mut res = not_modified(&etag, pinned);
        res.headers_mut().insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        return Ok(res);
    }
    let what = format!("the anonymised video {id}");
    let size = state.store.size(&video.key).await.map_err(storage_error(what.clone()))?;
    let (status, range) = match ranges::wanted_from(&headers, &etag, size) {
        Wanted::Whole => (StatusCode::OK, 0..size),
        Wanted::Part(r) => (StatusCode::PARTIAL_CONTENT, r),
        Wanted::Unsatisfiable => {
            let problem = Problem::new("range_not_satisfiable", "Range not satisfiable", 416)
                .with_detail(format!("the requested range lies beyond the end of the video, which has {size} bytes"));
            let mut res = ApiError::from(problem).into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                res.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(res);
        }
    };
    let body = if range.is_empty() {
        Body::empty()
    } else {
        let stream = state.store.read_range(&video.key, range.clone()).await.map_err(storage_error(what))?;
        Body::from_stream(stream.map_err(std::io::Error::other))
    };
    let mut res = (status, body).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp4"));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&(range.end - range.start).to_string()) {
        h.insert(header::CONTENT_LENGTH, v);
    }
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{size}", range.start, range.end - 1))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    ranges::cache_headers(h, &etag, pinned);
    Ok(res)
}

/// Reads stored frame `frame` of video `id`: its key's bytes and the pin state.
async fn stored_frame(
    state: &crate::http::AppState,
    id: i64,
    frame: Option<i64>,
    pin: Option<&str>,
) -> ApiResult<(Vec<u8>, bool, media::StoredFrame)> {
    let frames = media::anonymised_frames(&state.db, id).await?;
    let pinned = media::check_pin(pin, &frames.video, id)?;
    let n = match frame {
        Some(n) => n,
        None => frames.poster().ok_or_else(|| ServiceError::not_found(format!("a frame of video {id} (none is stored)")))?,
    };
    let stored = frames.frame(id, n)?;
    let bytes = state.store.get_bytes(&stored.key).await.map_err(storage_error(format!("frame {n} of video {id}")))?;
    Ok((bytes, pinned, stored))
}

fn check_width(width: Option<u32>) -> ApiResult<u32> {
    let width = width.unwrap_or(160);
    let mut checks = Checks::default();
    if !THUMBNAIL_WIDTHS.contains(&width) {
        checks.add("/width", format!("must be between {} and {} pixels", THUMBNAIL_WIDTHS.start(), THUMBNAIL_WIDTHS.end()));
    }
    checks.finish()?;
    Ok(width)
}

async fn thumbnail_response(
    state: &crate::http::AppState,
    id: i64,
    frame: Option<i64>,
    q: ThumbnailQuery,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let width = check_width(q.width)?;
    let (bytes, pinned, stored) = stored_frame(state, id, frame, q.v.as_deref()).await?;
    let etag = format!("\"t{width}-{}-{}\"", stored.number, content_hash(&bytes));
    if ranges::not_modified(headers, &etag) {
        return Ok(not_modified(&etag, pinned));
    }
    let n = stored.number;
    let small = tokio::task::spawn_blocking(move || media::thumbnail(&bytes, width))
        .await
        .map_err(|e| ApiError::from(Problem::new("internal", "Internal error", 500).with_detail(format!("scaling stopped: {e}"))))?
        .map_err(|e| {
            log::error!("frame {n} of video {id} cannot be scaled: {e}");
            ApiError::from(
                Problem::new("internal", "Internal error", 500)
                    .with_detail(format!("the stored frame {n} of video {id} cannot be read as a picture")),
            )
        })?;
    Ok(bytes_response(small, "image/jpeg", &etag, pinned))
}

/// A stored frame of the anonymised video (JPEG, or PNG where frames were stored so), by its frame number
/// in the video; 404 naming the nearest stored frame when this one is not stored (frames are stored every
/// `step` frames: see the video's `frame_sets`).
#[utoipa::path(get, path = "/api/v1/videos/{id}/frames/{frame}", tag = "media",
    params(("id" = i64, Path, minimum = 1), ("frame" = i64, Path, minimum = 0), Pinned),
    responses(
        (status = 200, description = "The frame", content((inline(Binary) = "image/jpeg"), (inline(Binary) = "image/png")),
            headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "The copy named by If-None-Match is current", headers(("ETag" = String))),
    ))]
pub async fn video_frame(
    S(state): State,
    Path((id, frame)): Path<(i64, i64)>,
    Query(q): Query<Pinned>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (bytes, pinned, stored) = stored_frame(&state, id, Some(frame), q.v.as_deref()).await?;
    let etag = format!("\"f{}-{}\"", stored.number, content_hash(&bytes));
    if ranges::not_modified(&headers, &etag) {
        return Ok(not_modified(&etag, pinned));
    }
    Ok(bytes_response(bytes, stored.content_type, &etag, pinned))
}

/// A stored frame scaled down to `width` pixels (JPEG).
#[utoipa::path(get, path = "/api/v1/videos/{id}/frames/{frame}/thumbnail", tag = "media",
    params(("id" = i64, Path, minimum = 1), ("frame" = i64, Path, minimum = 0), ThumbnailQuery),
    responses(
        (status = 200, description = "The thumbnail", content_type = "image/jpeg", body = inline(Binary), headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "The copy named by If-None-Match is current", headers(("ETag" = String))),
    ))]
pub async fn frame_thumbnail(
    S(state): State,
    Path((id, frame)): Path<(i64, i64)>,
    Query(q): Query<ThumbnailQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    thumbnail_response(&state, id, Some(frame), q, &headers).await
}

/// The video's picture in lists: a thumbnail of the stored frame 40 % into the video.
#[utoipa::path(get, path = "/api/v1/videos/{id}/thumbnail", tag = "media", params(("id" = i64, Path, minimum = 1), ThumbnailQuery),
    responses(
        (status = 200, description = "The thumbnail", content_type = "image/jpeg", body = inline(Binary), headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "The copy named by If-None-Match is current", headers(("ETag" = String))),
    ))]
pub async fn video_thumbnail(
    S(state): State,
    Path(id): Path<i64>,
    Query(q): Query<ThumbnailQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    thumbnail_response(&state, id, None, q, &headers).await
}

/// The report's anonymised text (UTF-8), what was replaced standing as placeholders (`[PATIENT_NAME]`,
/// `[BIRTH_DATE]`, `[EXAMINATION_DATE]`, `[EXAMINER]`). Only once it is anonymised. No PDF is produced
/// of the anonymised report: the text is the anonymised product.
#[utoipa::path(get, path = "/api/v1/reports/{id}/text", tag = "media", params(("id" = i64, Path, minimum = 1)),
    responses(
        (status = 200, description = "The anonymised text", content_type = "text/plain", body = String,
            headers(("ETag" = String), ("Cache-Control" = String), ("Content-Disposition" = String))),
        (status = 304, description = "The copy named by If-None-Match is current", headers(("ETag" = String))),
    ))]
pub async fn report_text(S(state): State, Path(id): Path<i64>, headers: HeaderMap) -> ApiResult<Response> {
    let text = media::report_text(&state.db, id).await?;
    let etag = format!("\"{}\"", content_hash(text.as_bytes()));
    if ranges::not_modified(&headers, &etag) {
        return Ok(not_modified(&etag, false));
    }
    let mut res = bytes_response(text.into_bytes(), "text/plain; charset=utf-8", &etag, false);
    if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"report-{id}-anonymised.txt\"")) {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}
