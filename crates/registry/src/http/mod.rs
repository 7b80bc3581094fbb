//! The registry's HTTP API (axum): `/api/v1/...`, `/api/openapi.json`, `/healthz`, `/readyz`, and the web
//! app at `web.path` (`/`).
//!
//! - [`routes`]: thin handlers, one module per resource; each route is declared with its permission
//!   ([`policy::guard`]) and documented for OpenAPI (`#[utoipa::path]`).
//! - [`auth`]: bearer tokens and the deny-by-default permission check, for every protected route.
//! - [`extract`]: strict JSON/query/path/If-Match extractors whose errors are problems.
//! - [`error`]: service errors → RFC 9457 problems, in one place.
//! - [`multipart`]: upload bodies, their limits enforced while they arrive.
//! - [`ranges`]: conditional and ranged GET of stored media.
//! - [`web`]: the web app's embedded files and the security headers of every response.

pub mod auth;
pub mod error;
pub mod extract;
pub mod multipart;
pub mod policy;
pub mod ranges;
pub mod respond;
pub mod routes;
pub mod web;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use http_body::{Frame, SizeHint};
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;

use endoreg_common::config::ConfigError;
use endoreg_common::storage::{Recipients, Store};

use crate::config::{JobsConfig, RegistryConfig, UploadConfig};
use crate::db::Db;

/// What handlers share.
pub struct AppState {
    pub db: Db,
    pub tokens: auth::TokenCache,
    pub policy: auth::Policy,
    pub openapi_json: OnceLock<String>,
    /// Where uploads go, and whom raw uploads are encrypted to.
    pub store: Store,
    pub recipients: Recipients,
    pub upload: UploadConfig,
    pub jobs: JobsConfig,
    /// How long browser sessions last.
    pub session_limits: crate::service::sessions::Limits,
}

/// Paths served without a token: health, and signing in to the web app (which takes a token in its body).
pub const PUBLIC_PATHS: [&str; 3] = ["/healthz", "/readyz", "/api/v1/sessions"];

/// The complete application: routes, auth, limits, timeouts, problem responses. Fails when the media
/// storage or the upload keys cannot be opened.
pub fn router(db: Db, config: &RegistryConfig) -> Result<Router, ConfigError> {
    let (protected, public, doc) = parts();
    let state = Arc::new(AppState {
        db,
        tokens: auth::TokenCache::new(Duration::from_secs(config.auth.token_cache_secs)),
        policy: policy::policy(&doc),
        openapi_json: OnceLock::new(),
        store: config.open_storage()?,
        recipients: config.raw_recipients()?,
        upload: config.upload.clone(),
        jobs: config.jobs.clone(),
        session_limits: config.web.session_limits(),
    });
    let _ = state.openapi_json.set(doc.to_json().unwrap_or_else(|_| "{}".into()));
    let mut app = protected.route_layer(middleware::from_fn_with_state(state.clone(), auth::authorise)).merge(public);
    if config.web.enabled {
        app = app.merge(web::router(&config.web.base()));
    }
    Ok(app
        .fallback(|| async { error::problem_response(error::for_status(StatusCode::NOT_FOUND)) })
        .with_state(state)
        .layer(middleware::from_fn(problems_for_bare_errors))
        .layer(DefaultBodyLimit::max(config.http.max_body_bytes))
        .layer(middleware::from_fn_with_state(
            Timeouts {
                request: Duration::from_secs(config.http.request_timeout_secs),
                upload: Duration::from_secs(config.upload.timeout_secs),
                body_idle: Duration::from_secs(config.http.body_read_timeout_secs),
            },
            timeouts,
        ))
        .layer(CatchPanicLayer::custom(|_| {
            log::error!("a request handler panicked");
            error::problem_response(error::for_status(StatusCode::INTERNAL_SERVER_ERROR))
        }))
        .layer(middleware::from_fn(log_request))
        .layer(middleware::from_fn(web::common_headers)))
}

/// The protected routes, the public routes and the document of both.
pub fn parts() -> (Router<Arc<AppState>>, Router<Arc<AppState>>, OpenApi) {
    let protected = OpenApiRouter::<Arc<AppState>>::new()
        .merge(routes::terminology::router())
        .merge(routes::patients::router())
        .merge(routes::examinations::router())
        .merge(routes::videos::router())
        .merge(routes::reports::router())
        .merge(routes::tokens::router())
        .merge(routes::jobs::router())
        .merge(routes::predictions::router())
        .merge(routes::uploads::router())
        .merge(routes::media::router())
        .merge(routes::sessions::router())
        .merge(routes::worklist::router())
        .merge(routes::openapi::router());
    let (protected, mut doc) = protected.split_for_parts();
    let (public, public_doc) =
        OpenApiRouter::<Arc<AppState>>::new().merge(routes::health::router()).merge(routes::sessions::public_router()).split_for_parts();
    doc.merge(public_doc);
    doc.info.title = "endoreg registry API".into();
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    doc.info.description = Some(
        "Clinical endoscopy registry. Every route except /healthz, /readyz and signing in (POST /api/v1/sessions) needs \
         `Authorization: Bearer <token>` or the web app's session cookie (whose changes also carry `X-CSRF-Token`); \
         each operation's `x-endoreg-permission` names the permission it requires (see docs/access.md). \
         Errors are RFC 9457 problems. Changes to versioned records need `If-Match: \"<version>\"`."
            .into(),
    );
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
    (protected, public, doc)
}

#[derive(Clone, Copy)]
struct Timeouts {
    request: Duration,
    upload: Duration,
    /// The longest a request body may stop arriving.
    body_idle: Duration,
}

/// Answers 503 when a request takes too long (uploads of large videos get their own, longer limit), and
/// 408 when its body stops arriving: whatever the handler made of the broken body (a 400 for a body it
/// could not read), the client is told that it was too slow.
async fn timeouts(axum::extract::State(t): axum::extract::State<Timeouts>, req: Request, next: Next) -> Response {
    let limit = if req.uri().path() == "/api/v1/uploads" { t.upload } else { t.request };
    let stalled = Arc::new(AtomicBool::new(false));
    let req = req.map(|body| Body::new(IdleTimeout { inner: body, idle: t.body_idle, sleep: None, stalled: stalled.clone() }));
    let res = tokio::time::timeout(limit, next.run(req)).await;
    if stalled.load(Ordering::Relaxed) {
        let problem = endoreg_common::problem::Problem::new("request_timeout", "Request timeout", 408).with_detail(format!(
            "the request body stopped arriving: nothing came for {} s (http.body_read_timeout_secs); send the whole body the request announces",
            t.body_idle.as_secs()
        ));
        let mut res = error::problem_response(problem);
        // The rest of the body may still come; the connection is not reused.
        res.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
        return res;
    }
    match res {
        Ok(res) => res,
        Err(_) => error::problem_response(error::for_status(StatusCode::SERVICE_UNAVAILABLE)),
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the request body stopped arriving for {0:?}")]
struct BodyStalled(Duration);

/// A request body that fails when no data arrives for `idle` while it is being read.
struct IdleTimeout {
    inner: Body,
    idle: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    stalled: Arc<AtomicBool>,
}

impl HttpBody for IdleTimeout {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.sleep = None;
            return Poll::Ready(frame);
        }
        let idle = this.idle;
        let sleep = this.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
        if sleep.as_mut().poll(cx).is_ready() {
            this.stalled.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(axum::Error::new(BodyStalled(idle)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Gives error responses that some layer produced without a body (405 from routing, 413 from the body
/// limit, 503 from the timeout) a problem body, so clients see one error format.
async fn problems_for_bare_errors(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    // Bodies the handlers wrote as JSON (problems, and /readyz's readiness document on 503) are the answer;
    // only the framework's bare text errors are replaced.
    let is_json = res.headers().get(header::CONTENT_TYPE).is_some_and(|v| {
        let v = v.as_bytes();
        v.starts_with(b"application/problem+json") || v.starts_with(b"application/json")
    });
    if (status.is_client_error() || status.is_server_error()) && !is_json {
        let mut replaced = error::problem_response(error::for_status(status));
        for name in [header::ALLOW, header::RETRY_AFTER] {
            if let Some(v) = res.headers().get(&name) {
                replaced.headers_mut().insert(name, v.clone());
            }
        }
        return replaced;
    }
    res
}

/// One line per request: method, route template, status, duration. Never bodies or query strings, which
/// may carry clinical data.
async fn log_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let route = req.extensions().get::<axum::extract::MatchedPath>().map(|p| p.as_str().to_owned());
    let path = route.unwrap_or_else(|| req.uri().path().to_owned());
    let started = std::time::Instant::now();
    let res = next.run(req).await;
    let status = res.status();
    let level = if status.is_server_error() { log::Level::Warn } else { log::Level::Debug };
    log::log!(level, "{method} {path} -> {} in {:.1} ms", status.as_u16(), started.elapsed().as_secs_f64() * 1000.0);
    res
}
