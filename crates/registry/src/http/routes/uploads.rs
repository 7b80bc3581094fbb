//! `POST /api/v1/uploads`: a video or report PDF, streamed (never held in memory), hashed, encrypted and
//! stored atomically; the answer is the created (or, for content seen before, the existing) video or
//! report and its processing job.

use axum::extract::multipart::{Multipart, MultipartError, MultipartRejection};
use axum::extract::{DefaultBodyLimit, State as S};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa::ToSchema;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use endoreg_common::access::Permission;
use endoreg_common::api::{UploadMetadata, UploadResult};
use endoreg_common::problem::Problem;
use endoreg_common::storage::{Ingest, Ingested, StorageError, keys};

use super::{State, WriteErrors};
use crate::http::error::{ApiError, ApiResult, bad_request};
use crate::http::extract::parse_json;
use crate::http::policy::guard;
use crate::http::respond::JsonCreated;
use crate::service::uploads::{self, MediaKind, SNIFF_BYTES};

pub fn router() -> OpenApiRouter<std::sync::Arc<crate::http::AppState>> {
    // The JSON body limit does not apply: uploads are streamed and limited by `upload.max_bytes`.
    OpenApiRouter::new().routes(guard(Permission::WriteMedia, routes!(upload)).layer(DefaultBodyLimit::disable()))
}

/// The form of an upload: the `metadata` part (JSON) first, then the `file` part.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    metadata: UploadMetadata,
    #[schema(format = Binary, value_type = String)]
    file: Vec<u8>,
}

const MAX_METADATA_BYTES: usize = 64 * 1024;

fn multipart_error(e: MultipartError) -> ApiError {
    bad_request("invalid_multipart", format!("the upload was interrupted or is not valid multipart/form-data: {}", e.body_text())).into()
}

fn storage_error(e: StorageError) -> ApiError {
    match e {
        StorageError::TooLarge { limit } => Problem::new("payload_too_large", "Payload too large", 413)
            .with_detail(format!("the upload exceeds the limit of {limit} bytes (upload.max_bytes)"))
            .into(),
        other => {
            log::error!("upload storage failed: {other}");
            Problem::new("unavailable", "Service unavailable", 503).with_detail("media storage is not available; retry later").into()
        }
    }
}

/// Uploads a video (MP4/MOV, MKV/WebM, AVI, MPEG-TS) or a report PDF, recognised by its content. 201 with
/// the new record and its job; 200 with the existing ones when the same content was uploaded before.
#[utoipa::path(post, path = "/api/v1/uploads", tag = "uploads",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 201, body = UploadResult), (status = 200, body = UploadResult, description = "Seen before"), WriteErrors))]
pub async fn upload(S(state): State, multipart: Result<Multipart, MultipartRejection>) -> ApiResult<Response> {
    let mut multipart =
        multipart.map_err(|e| ApiError::from(bad_request("invalid_multipart", format!("send multipart/form-data: {}", e.body_text()))))?;

    let Some(meta_field) = multipart.next_field().await.map_err(multipart_error)? else {
        return Err(bad_request("invalid_multipart", "the upload has no parts; send `metadata` (JSON) and then `file`").into());
    };
    if meta_field.name() != Some("metadata") {
        return Err(bad_request("invalid_multipart", "the first part must be `metadata` (JSON), the second `file`").into());
    }
    let meta_bytes = meta_field.bytes().await.map_err(multipart_error)?;
    if meta_bytes.len() > MAX_METADATA_BYTES {
        return Err(bad_request("invalid_multipart", "the metadata part is larger than 64 KiB").into());
    }
    let meta: UploadMetadata = parse_json(&meta_bytes)?;
    uploads::check_metadata(&state.db, &meta).await?;

    let Some(mut file) = multipart.next_field().await.map_err(multipart_error)? else {
        return Err(bad_request("invalid_multipart", "the upload has no `file` part").into());
    };
    if file.name() != Some("file") {
        return Err(bad_request("invalid_multipart", "the second part must be `file`").into());
    }

    let mut ingest = state.store.ingest(Some(&state.recipients), state.upload.max_bytes).await.map_err(storage_error)?;
    // Either the whole file is stored or nothing is: any error below aborts the ingest.
    let kind = match stream_file(&meta, &mut file, &mut ingest).await {
        Ok(kind) => kind,
        Err(e) => {
            ingest.abort().await;
            return Err(e);
        }
    };
    let stored: Ingested = ingest.finish(keys::raw).await.map_err(storage_error)?;
    match uploads::register(&state.db, &meta, kind, &stored, state.jobs.max_attempts).await {
        Ok(result) => {
            let status = if result.duplicate { StatusCode::OK } else { StatusCode::CREATED };
            Ok((status, JsonCreated(result)).into_response())
        }
        Err(e) => {
            if !stored.existed {
                let _ = state.store.delete(&stored.key).await;
            }
            Err(e.into())
        }
    }
}

/// Streams the `file` part into `ingest`, recognising the content from its first bytes.
async fn stream_file(meta: &UploadMetadata, file: &mut axum::extract::multipart::Field<'_>, ingest: &mut Ingest) -> ApiResult<MediaKind> {
    let mut head: Vec<u8> = Vec::with_capacity(SNIFF_BYTES);
    let mut kind = None;
    while let Some(chunk) = file.chunk().await.map_err(multipart_error)? {
        match kind {
            Some(_) => ingest.write(&chunk).await.map_err(storage_error)?,
            None => {
                head.extend_from_slice(&chunk);
                if head.len() >= SNIFF_BYTES {
                    kind = Some(recognise(meta, &head)?);
                    ingest.write(&head).await.map_err(storage_error)?;
                }
            }
        }
    }
    match kind {
        Some(k) => Ok(k),
        None => {
            let k = recognise(meta, &head)?;
            ingest.write(&head).await.map_err(storage_error)?;
            Ok(k)
        }
    }
}

fn recognise(meta: &UploadMetadata, head: &[u8]) -> ApiResult<MediaKind> {
    let kind = uploads::sniff(head)
        .map_err(|detail| ApiError::from(Problem::new("unsupported_media_type", "Unsupported media type", 415).with_detail(detail)))?;
    uploads::check_kind(meta, kind)?;
    Ok(kind)
}
