//! Authentication (bearer tokens) and authorisation (the route's permission against the token's role),
//! enforced in one middleware for every protected route.
//!
//! Deny by default: a route whose method and path have no permission in the policy table (built from the
//! OpenAPI document, where [`guard`](super::policy::guard) records each route's permission) is refused
//! even to administrators.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use endoreg_common::access::{Permission, Role};

use super::AppState;
use super::error::{ApiError, forbidden, unauthenticated};
use crate::service::tokens;

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

pub async fn authorise(State(state): State<Arc<AppState>>, matched: Option<MatchedPath>, mut req: Request, next: Next) -> Response {
    let token = match bearer(&req) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let hash = tokens::hash(token);
    let principal = match state.tokens.get(&hash) {
        Some(p) => p,
        None => {
            let generation = state.tokens.generation();
            match tokens::verify(&state.db, token).await {
                Ok(Some((token_id, role))) => {
                    let p = Principal { token_id, role };
                    state.tokens.put(hash, p, generation);
                    p
                }
                Ok(None) => {
                    return ApiError::from(unauthenticated("the token is unknown, revoked or expired")).into_response();
                }
                Err(e) => return ApiError::from(e).into_response(),
            }
        }
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
    next.run(req).await
}

fn bearer(req: &Request) -> Result<&str, ApiError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
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
