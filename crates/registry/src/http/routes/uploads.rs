//! `POST /api/v1/uploads`: a video or report PDF, streamed (never held in memory), hashed, encrypted and
//! stored atomically; the answer is the created (or, for content seen before, the existing) video or
//! report and its processing job.

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State as S};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use utoipa::ToSchema;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use endoreg_common::access::Permission;
use endoreg_common::api::{UploadMetadata, UploadResult};
use endoreg_common::problem::Problem;
use endoreg_common::storage::{Ingest, Ingested, StorageError, keys};

use super::{State, WriteErrors};
use crate::http::auth::Principal;
use crate::http::error::{ApiError, ApiResult, bad_request};
use crate::http::extract::parse_json;
use crate::http::multipart::{Form, Part};
use crate::http::policy::guard;
use crate::http::respond::JsonCreated;
use crate::service::jobs;
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
/// Exactly two parts: `metadata` (JSON, at most 64 KiB), then `file` (at most `upload.max_bytes`).
#[utoipa::path(post, path = "/api/v1/uploads", tag = "uploads",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 201, body = UploadResult), (status = 200, body = UploadResult, description = "Seen before"), WriteErrors))]
pub async fn upload(S(state): State, principal: Principal, headers: HeaderMap, body: Body) -> ApiResult<Response> {
    let mut form = Form::new(&headers, body)?;

    let meta_bytes = {
        let Some(mut part) = form.next_part().await? else {
            return Err(bad_request("invalid_multipart", "the upload has no parts; send `metadata` (JSON) and then `file`").into());
        };
        if part.name() != Some("metadata") {
            return Err(bad_request("invalid_multipart", "the first part must be `metadata` (JSON), the second `file`").into());
        }
        form.read_small(&mut part, MAX_METADATA_BYTES).await?
    };
    let meta: UploadMetadata = parse_json(&meta_bytes)?;
    uploads::check_metadata(&state.db, &meta).await?;

    let Some(mut file) = form.next_part().await? else {
        return Err(bad_request("invalid_multipart", "the upload has no `file` part").into());
    };
    if file.name() != Some("file") {
        return Err(bad_request("invalid_multipart", "the second part must be `file`").into());
    }

    let mut ingest = state.store.ingest(Some(&state.recipients), state.upload.max_bytes).await.map_err(storage_error)?;
    // Either the whole file is stored or nothing is: any error below aborts the ingest.
    let streamed = stream_file(&meta, &form, &mut file, &mut ingest).await;
    drop(file);
    let checked = match streamed {
        Ok(kind) => nothing_after_the_file(&mut form).await.map(|()| kind),
        Err(e) => Err(e),
    };
    let kind = match checked {
        Ok(kind) => kind,
        Err(e) => {
            ingest.abort().await;
            return Err(e);
        }
    };
    let stored: Ingested = ingest.finish(keys::raw).await.map_err(storage_error)?;
    let registered = match uploads::register(&state.db, &meta, kind, &stored, state.jobs.max_attempts).await {
        Ok(r) => r,
        Err(e) => {
            // Nothing was written; the object goes unless an earlier upload stored the same content.
            if !stored.existed {
                let _ = state.store.delete(&stored.key).await;
            }
            return Err(e.into());
        }
    };
    let mut result = uploads::result(&state.db, registered).await?;
    result.job = jobs::visible_to(principal.role, result.job);
    let status = if result.duplicate { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, JsonCreated(result)).into_response())
}

/// The closing boundary must follow the file: a third part is refused rather than ignored.
async fn nothing_after_the_file(form: &mut Form) -> ApiResult<()> {
    match form.next_part().await? {
        None => Ok(()),
        Some(extra) => Err(bad_request(
            "invalid_multipart",
            format!(
                "unexpected part `{}` after `file`: an upload has exactly two parts, `metadata` and `file`",
                extra.name().unwrap_or("unnamed")
            ),
        )
        .into()),
    }
}

/// Streams the `file` part into `ingest`, recognising the content from its first bytes.
async fn stream_file(meta: &UploadMetadata, form: &Form, file: &mut Part, ingest: &mut Ingest) -> ApiResult<MediaKind> {
    let mut head: Vec<u8> = Vec::with_capacity(SNIFF_BYTES);
    let mut kind = None;
    while let Some(chunk) = form.chunk(file).await? {
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
