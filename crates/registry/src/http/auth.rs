//! Authentication (bearer tokens, or the web app's session cookie) and authorisation (the route's
//! permission against the caller's role), enforced in one middleware for every protected route.
//!
//! A request with `Authorization: Bearer` is a token's; one without it but with the `endoreg_session`
//! cookie is a browser session's ([`crate::service::sessions`]), and then every method but GET and HEAD
//! must also carry the session's CSRF token in `X-CSRF-Token` (403 without): a cookie comes with every
//! request a browser makes, a header only with those our own pages make.
//!
//! Deny by default: a route whose method and path have no permission in the policy table (built from the
//! OpenAPI document, where [`guard`](super::policy::guard) records each route's permission) is refused
//! even to administrators.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use endoreg_common::access::{Permission, Role};

use super::AppState;
use super::error::{ApiError, forbidden, unauthenticated};
use crate::service::{sessions, tokens};

/// The header a browser session's changes carry their CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Who is calling: attached to the request once the token is verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    pub token_id: i64,
    pub role: Role,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Principal>().copied().ok_or_else(|| unauthenticated("no verified token on this request").into())
    }
}

/// Verified tokens, remembered for a short time so a request does not cost a database lookup. A token
/// revoked through this server is forgotten at once ([`TokenCache::forget`]); one revoked elsewhere (the
/// CLI, another server) within the cache time.
pub struct TokenCache {
    ttl: Duration,
    entries: RwLock<Entries>,
}

#[derive(Default)]
struct Entries {
    by_hash: HashMap<String, (Principal, Instant)>,
    /// Counts [`TokenCache::forget`] calls: a verification that began before one may have read the
    /// token as it was before the revocation, and is not remembered.
    forgets: u64,
}

const CACHE_LIMIT: usize = 10_000;

impl TokenCache {
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, entries: RwLock::new(Entries::default()) }
    }

    fn get(&self, hash: &str) -> Option<Principal> {
        let entries = self.entries.read().ok()?;
        entries.by_hash.get(hash).filter(|(_, at)| at.elapsed() < self.ttl).map(|(p, _)| *p)
    }

    /// Taken before a token is looked up in the database, handed to [`TokenCache::put`] after.
    fn generation(&self) -> Option<u64> {
        self.entries.read().ok().map(|e| e.forgets)
    }

    fn put(&self, hash: String, p: Principal, generation: Option<u64>) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut entries) = self.entries.write() {
            if generation != Some(entries.forgets) {
                return;
            }
            if entries.by_hash.len() >= CACHE_LIMIT {
                entries.by_hash.clear();
            }
            entries.by_hash.insert(hash, (p, Instant::now()));
        }
    }

    /// Forgets token `token_id` (just revoked): its next request is verified against the database.
    pub fn forget(&self, token_id: i64) {
        // A poisoned lock serves nothing (`get` answers None), so there is nothing to forget then.
        if let Ok(mut entries) = self.entries.write() {
            entries.by_hash.retain(|_, (p, _)| p.token_id != token_id);
            entries.forgets += 1;
        }
    }
}

/// The permission each route requires: `(method, path template)` → permission.
pub type Policy = HashMap<(Method, String), Permission>;

/// Attached to a request that came through a browser session (besides its [`Principal`]).
#[derive(Debug, Clone)]
pub struct ViaSession {
    pub session: sessions::Session,
    /// The session's CSRF token, for the app to send with its changes.
    pub csrf_token: String,
}

/// The value of cookie `name`, if the request carries it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim())
}

/// `Set-Cookie` of a session: the secret, only over HTTPS (browsers treat `http://localhost` and
/// `http://127.0.0.1` as secure), never to scripts, never with a request from another site.
pub fn session_cookie(secret: &str, max_age_secs: i64) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!("{}={secret}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={max_age_secs}", sessions::COOKIE)).ok()
}

/// `Set-Cookie` that removes the session cookie.
pub fn removed_session_cookie() -> HeaderValue {
    HeaderValue::from_static("endoreg_session=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0")
}

/// The caller of `req`: a bearer token (remembered for a short time, see [`TokenCache`]) or a live
/// browser session, whose changes must carry its CSRF token.
async fn authenticate(state: &AppState, method: &Method, headers: &HeaderMap) -> Result<(Principal, Option<ViaSession>), Response> {
    if headers.contains_key(header::AUTHORIZATION) {
        let token = bearer(headers).map_err(IntoResponse::into_response)?;
        return bearer_principal(state, token).await.map(|p| (p, None)).map_err(IntoResponse::into_response);
    }
    let Some(secret) = cookie(headers, sessions::COOKIE) else {
        return Err(
            ApiError::from(unauthenticated("send an API token (Authorization: Bearer <token>), or sign in to the web app")).into_response()
        );
    };
    let session = match sessions::verify(&state.db, secret, state.session_limits).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            let mut res = ApiError::from(unauthenticated(
                "the session has ended (signed out, unused for too long, or its token was revoked): sign in again",
            ))
            .into_response();
            res.headers_mut().insert(header::SET_COOKIE, removed_session_cookie());
            return Err(res);
        }
        Err(e) => return Err(ApiError::from(e).into_response()),
    };
    if !matches!(*method, Method::GET | Method::HEAD) {
        let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !sessions::csrf_matches(secret, sent) {
            return Err(ApiError::from(
                endoreg_common::problem::Problem::new("csrf_token_missing", "Forbidden", 403).with_detail(
                    "a change through a browser session must carry the session's token in the X-CSRF-Token header (from GET /api/v1/sessions/current)",
                ),
            )
            .into_response());
        }
    }
    let sessions::SessionPrincipal::Token { token_id, role } = session.principal;
    let csrf_token = sessions::csrf_token(secret);
    Ok((Principal { token_id, role }, Some(ViaSession { session, csrf_token })))
}

async fn bearer_principal(state: &AppState, token: &str) -> Result<Principal, ApiError> {
    let hash = tokens::hash(token);
    if let Some(p) = state.tokens.get(&hash) {
        return Ok(p);
    }
    let generation = state.tokens.generation();
    match tokens::verify(&state.db, token).await? {
        Some((token_id, role)) => {
            let p = Principal { token_id, role };
            state.tokens.put(hash, p, generation);
            Ok(p)
        }
        None => Err(unauthenticated("the token is unknown, revoked or expired").into()),
    }
}

pub async fn authorise(State(state): State<Arc<AppState>>, matched: Option<MatchedPath>, mut req: Request, next: Next) -> Response {
    let (principal, via_session) = match authenticate(&state, req.method(), req.headers()).await {
        Ok(p) => p,
        Err(res) => return res,
    };
    let Some(path) = matched.as_ref().map(MatchedPath::as_str) else {
        return ApiError::from(forbidden("this route has no access policy")).into_response();
    };
    // HEAD is answered by the GET handler, so it needs what GET needs.
    let method = if req.method() == Method::HEAD { Method::GET } else { req.method().clone() };
    let Some(&permission) = state.policy.get(&(method.clone(), path.to_owned())) else {
        let allowed: Vec<&str> = state.policy.keys().filter(|(_, p)| p == path).map(|(m, _)| m.as_str()).collect();
        if !allowed.is_empty() {
            let mut res = super::error::problem_response(super::error::for_status(axum::http::StatusCode::METHOD_NOT_ALLOWED));
            if let Ok(v) = axum::http::HeaderValue::from_str(&allowed.join(", ")) {
                res.headers_mut().insert(header::ALLOW, v);
            }
            return res;
        }
        log::error!("route {method} {path} has no access policy; refused");
        return ApiError::from(forbidden("this route has no access policy")).into_response();
    };
    if !principal.role.allows(permission) {
        return ApiError::from(forbidden(format!("role {} may not {}", principal.role, permission.as_str().replace('_', " "))))
            .into_response();
    }
    req.extensions_mut().insert(principal);
    if let Some(via) = via_session {
        req.extensions_mut().insert(via);
    }
    next.run(req).await
}

fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(unauthenticated("send an API token: Authorization: Bearer <token>").into());
    };
    let text = value.to_str().map_err(|_| ApiError::from(unauthenticated("the Authorization header is not valid text")))?;
    let (scheme, token) =
        text.split_once(' ').ok_or_else(|| ApiError::from(unauthenticated("the Authorization header must be `Bearer <token>`")))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(unauthenticated("the Authorization header must be `Bearer <token>`").into());
    }
    Ok(token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revoked_token_is_forgotten_and_a_lookup_that_raced_the_revocation_is_not_remembered() {
        let cache = TokenCache::new(Duration::from_secs(3600));
        let p = Principal { token_id: 7, role: Role::Researcher };
        cache.put("a".into(), p, cache.generation());
        assert_eq!(cache.get("a"), Some(p));
        cache.forget(8);
        assert_eq!(cache.get("a"), Some(p), "another token's revocation leaves it");
        cache.forget(7);
        assert_eq!(cache.get("a"), None);
        // Looked up before the revocation, stored after it: the lookup may have seen the token live.
        let before = cache.generation();
        cache.forget(7);
        cache.put("a".into(), p, before);
        assert_eq!(cache.get("a"), None);
    }
}
