//! Browser sessions of the web app: sign in with an API token (the session cookie is set), see the
//! current session (and its CSRF token), sign out. Scripts and services use bearer tokens instead.

use axum::extract::{Extension, State as S};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use endoreg_common::access::{Permission, Role};
use endoreg_common::problem::Problem;

use super::State;
use crate::http::auth::{self, Principal, ViaSession};
use crate::http::error::{ApiResult, unauthenticated};
use crate::http::extract::Json;
use crate::http::policy::{self, guard};
use crate::http::respond::JsonOk;
use crate::service::sessions::{self, Session};

/// The routes that need a session or token.
pub fn router() -> OpenApiRouter<std::sync::Arc<crate::http::AppState>> {
    OpenApiRouter::new().routes(guard(Permission::ReadTerminology, routes!(current_session, sign_out)))
}

/// Signing in, which needs neither.
pub fn public_router() -> OpenApiRouter<std::sync::Arc<crate::http::AppState>> {
    OpenApiRouter::new().routes(policy::public(routes!(sign_in)))
}

/// Sign-in with an API token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// An API token (`endoreg_…`), as `endoreg token create` printed it.
    #[schema(max_length = 200)]
    pub token: String,
}

/// Who is signed in, and how.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionInfo {
    pub role: Role,
    /// Every permission of the role: what the app offers.
    pub permissions: Vec<Permission>,
    /// The API token the caller signed in with (or sent).
    pub token_id: i64,
    /// `session` (the web app's cookie) or `bearer` (a token sent with the request).
    pub via: String,
    /// Send this in `X-CSRF-Token` with every change made through the session. Absent for bearer tokens.
    pub csrf_token: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    /// The session ends then, used or not.
    pub expires_at: Option<DateTime<Utc>>,
    /// The session ends then unless used before.
    pub idle_expires_at: Option<DateTime<Utc>>,
}

fn info(principal: Principal, via: Option<(&Session, &str)>) -> SessionInfo {
    let permissions = Permission::ALL.into_iter().filter(|p| principal.role.allows(*p)).collect();
    SessionInfo {
        role: principal.role,
        permissions,
        token_id: principal.token_id,
        via: if via.is_some() { "session" } else { "bearer" }.into(),
        csrf_token: via.map(|(_, csrf)| csrf.to_owned()),
        created_at: via.map(|(s, _)| s.created_at),
        expires_at: via.map(|(s, _)| s.expires_at),
        idle_expires_at: via.map(|(s, _)| s.idle_expires_at),
    }
}

/// Signs in with an API token: 201 with the session and its CSRF token; the session's secret is set as
/// the `endoreg_session` cookie (`HttpOnly; Secure; SameSite=Strict`), never shown to scripts. 401 for a
/// token that is unknown, revoked or expired.
#[utoipa::path(post, path = "/api/v1/sessions", tag = "sessions", request_body = SignIn,
    responses((status = 201, body = SessionInfo, headers(("Set-Cookie" = String))), (status = 401, description = "The token is unknown, revoked or expired.",
        content_type = "application/problem+json", body = Problem)))]
pub async fn sign_in(S(state): State, Json(input): Json<SignIn>) -> ApiResult<Response> {
    if input.token.chars().count() > 200 {
        return Err(crate::service::ServiceError::invalid("/token", "is longer than any API token (200 characters at most)").into());
    }
    let Some(created) = sessions::sign_in_with_token(&state.db, &input.token, state.session_limits).await? else {
        return Err(unauthenticated("the token is unknown, revoked or expired").into());
    };
    let sessions::SessionPrincipal::Token { token_id, role } = created.session.principal;
    let csrf = sessions::csrf_token(&created.secret);
    let body = info(Principal { token_id, role }, Some((&created.session, &csrf)));
    let mut res = (StatusCode::CREATED, axum::Json(body)).into_response();
    let max_age = (created.session.expires_at - created.session.created_at).num_seconds();
    if let Some(cookie) = auth::session_cookie(&created.secret, max_age) {
        res.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    Ok(res)
}

/// The caller: role, permissions, and for a browser session its CSRF token and when it ends. How the web
/// app learns, after a reload, who is signed in (the CSRF token lives only in the page's memory).
#[utoipa::path(get, path = "/api/v1/sessions/current", tag = "sessions", responses((status = 200, body = SessionInfo)))]
pub async fn current_session(principal: Principal, via: Option<Extension<ViaSession>>) -> ApiResult<JsonOk<SessionInfo>> {
    Ok(JsonOk(info(principal, via.as_ref().map(|Extension(v)| (&v.session, v.csrf_token.as_str())))))
}

/// Signs out: the browser session ends and its cookie is removed. With a bearer token there is no session
/// to end (revoke the token to end it); the answer is the same.
#[utoipa::path(delete, path = "/api/v1/sessions/current", tag = "sessions",
    responses((status = 204, description = "Signed out", headers(("Set-Cookie" = String)))))]
pub async fn sign_out(S(state): State, headers: axum::http::HeaderMap, via: Option<Extension<ViaSession>>) -> ApiResult<Response> {
    if via.is_some()
        && let Some(secret) = auth::cookie(&headers, sessions::COOKIE)
    {
        sessions::end(&state.db, secret).await?;
    }
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut().insert(header::SET_COOKIE, auth::removed_session_cookie());
    Ok(res)
}
