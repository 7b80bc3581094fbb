//! The inference service's HTTP side: `/healthz`, `/metrics` (Prometheus; no clinical data, no token), and
//! for annotation tools `POST /api/v1/predict` (one image) and `GET /api/v1/model`. Those two need a
//! registry token with the `read_media` permission: the registry is asked who a token is, and the answer
//! is remembered for a few seconds, as the registry itself does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use endoreg_common::access::{Permission, Role};
use endoreg_common::problem::{self, Problem};
use endoreg_common::secret::Secret;
use endoreg_media::client::Client;

use crate::service::{ImageError, Service};

/// How long a verified token is trusted without asking the registry again (a revocation takes effect
/// within this time).
const TOKEN_TTL: Duration = Duration::from_secs(10);

/// How long an image upload may take: a client trickling bytes does not hold a connection forever.
const BODY_TIMEOUT: Duration = Duration::from_secs(60);

pub struct HttpState {
    pub service: Arc<Service>,
    /// The registry, to verify callers' tokens and read processor layouts; none for a local run.
    pub registry: Option<Client>,
    tokens: Mutex<HashMap<String, (Role, Instant)>>,
    /// Single-image predictions in flight (`http.max_concurrent_images`): each holds a decoded image.
    images: Arc<tokio::sync::Semaphore>,
}

impl HttpState {
    pub fn new(service: Arc<Service>, registry: Option<Client>) -> Self {
        let images = Arc::new(tokio::sync::Semaphore::new(service.cfg.http.max_concurrent_images));
        HttpState { service, registry, tokens: Mutex::new(HashMap::new()), images }
    }
}

type S = State<Arc<HttpState>>;

pub fn router(state: Arc<HttpState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/v1/model", get(model))
        .route("/api/v1/predict", post(predict))
        // The image is read by the handler, after the caller is known, up to http.max_image_bytes.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

struct ApiError(Problem);

fn problem(status: StatusCode, code: &str, title: &str, detail: impl Into<String>) -> ApiError {
    ApiError(Problem::new(code, title, status.as_u16()).with_detail(detail))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut res = (status, serde_json::to_vec(&self.0).unwrap_or_default()).into_response();
        res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(problem::CONTENT_TYPE));
        if status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"endoreg\""));
        }
        res
    }
}

async fn healthz() -> &'static str {
    "ok"
}

async fn metrics(State(state): S) -> Response {
    let service = state.service.clone();
    let text = tokio::task::spawn_blocking(move || crate::telemetry::render(&service.counters, &service.info, &service.gpus.sample()))
        .await
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// The caller's role, from their bearer token, when it allows `permission`.
async fn authorize(state: &HttpState, headers: &HeaderMap, permission: Permission) -> Result<Role, ApiError> {
    let unauthenticated = |d: &str| problem(StatusCode::UNAUTHORIZED, "unauthenticated", "Unauthenticated", d);
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| unauthenticated("send `Authorization: Bearer <token>` with a registry token"))?;
    let Some(registry) = &state.registry else {
        return Err(problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
            "this service has no registry to check tokens",
        ));
    };
    let hash = format!("{:x}", Sha256::digest(token.as_bytes()));
    let cached = state.tokens.lock().ok().and_then(|m| m.get(&hash).copied()).filter(|(_, at)| at.elapsed() < TOKEN_TTL).map(|(r, _)| r);
    let role = match cached {
        Some(r) => r,
        None => {
            let me = registry.with_token(Secret::new(token.to_owned())).whoami().await.map_err(|e| match e.status() {
                Some(401) => unauthenticated("the registry does not know this token (unknown, expired or revoked)"),
                Some(403) => problem(StatusCode::FORBIDDEN, "forbidden", "Forbidden", "the registry refused this token"),
                _ => {
                    problem(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Service unavailable", format!("cannot verify the token: {e}"))
                }
            })?;
            if let Ok(mut m) = state.tokens.lock() {
                m.retain(|_, (_, at)| at.elapsed() < TOKEN_TTL);
                m.insert(hash, (me.role, Instant::now()));
            }
            me.role
        }
    };
    if !role.allows(permission) {
        return Err(problem(StatusCode::FORBIDDEN, "forbidden", "Forbidden", format!("role {role} lacks {}", permission.as_str())));
    }
    Ok(role)
}

async fn model(State(state): S, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize(&state, &headers, Permission::ReadMedia).await?;
    let s = &state.service;
    Ok(axum::Json(serde_json::json!({
        "model": s.contract.name,
        "version": s.contract.version,
        "provider": s.info.provider,
        "labels": s.contract.labels,
        "input": s.contract.input,
        "preprocessing": s.contract.preprocessing,
        "postprocessing": s.contract.postprocessing,
    }))
    .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PredictQuery {
    /// The processor that recorded the picture: crop to its endoscope image. Without it the picture is
    /// taken as the endoscope image already.
    processor: Option<String>,
}

async fn predict(
    State(state): S,
    headers: HeaderMap,
    query: Result<Query<PredictQuery>, axum::extract::rejection::QueryRejection>,
    body: Body,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, Permission::ReadMedia).await?;
    let limit = state.service.cfg.http.max_image_bytes;
    let read = tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, limit)).await.map_err(|_| {
        problem(StatusCode::REQUEST_TIMEOUT, "timeout", "Request timeout", format!("the image did not arrive within {BODY_TIMEOUT:?}"))
    })?;
    let body = read.map_err(|e| {
        if e.into_inner().is::<http_body_util::LengthLimitError>() {
            let detail = format!("the image is larger than {limit} bytes (http.max_image_bytes)");
            problem(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "Payload too large", detail)
        } else {
            problem(StatusCode::BAD_REQUEST, "bad_request", "Bad request", "the request body could not be read")
        }
    })?;
    let Query(q) = query.map_err(|e| problem(StatusCode::BAD_REQUEST, "bad_request", "Bad request", e.body_text()))?;
    if body.is_empty() {
        return Err(problem(StatusCode::BAD_REQUEST, "bad_request", "Bad request", "send the image (PNG or JPEG) as the request body"));
    }
    if let Some(p) = &q.processor {
        // A processor's name goes into a registry URL and a cache key: plain names only.
        let plain =
            !p.is_empty() && p.len() <= 100 && p.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)) && !p.starts_with('.');
        if !plain {
            return Err(problem(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "Bad request",
                "processor must be a processor's name (letters, digits, `_`, `-`, `.`; at most 100)",
            ));
        }
    }
    let layout = match (&q.processor, &state.registry) {
        (None, _) => None,
        (Some(p), Some(registry)) => Some(state.service.layout(registry, p).await.map_err(|e| match e.status() {
            Some(404) => problem(StatusCode::NOT_FOUND, "not_found", "Not found", format!("no endoscopy processor `{p}`")),
            _ => {
                problem(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Service unavailable", format!("cannot read processor `{p}`: {e}"))
            }
        })?),
        (Some(_), None) => {
            return Err(problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
                "no registry to read the processor from",
            ));
        }
    };
    // Taken for the decoding and the model only (a slow upload holds none), and moved into the blocking
    // task: a client that goes away does not free it while its image is still being worked on.
    let Ok(permit) = state.images.clone().try_acquire_owned() else {
        return Err(problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "Service unavailable",
            format!("{} images are being predicted (http.max_concurrent_images); try again", state.service.cfg.http.max_concurrent_images),
        ));
    };
    let service = state.service.clone();
    let answer = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        service.predict_image(&body, layout.as_ref())
    })
    .await
    .map_err(|e| problem(StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error", e.to_string()))?;
    match answer {
        Ok(p) => Ok(axum::Json(p).into_response()),
        Err(e @ (ImageError::Preprocess(_) | ImageError::Region(_))) => {
            Err(problem(StatusCode::UNPROCESSABLE_ENTITY, "unprocessable", "Unprocessable image", e.to_string()))
        }
        Err(e @ ImageError::Model(_)) => {
            log::warn!("single-image prediction failed: {e}");
            Err(problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
                "the model failed on this image; the incident is logged",
            ))
        }
    }
}
