//! Browser sessions: what the web app signs in to. A session is created for a principal (today an API
//! token pasted on the sign-in page; later an OpenID Connect sign-in, see [`create`]) and named by 32
//! random bytes that live only in the browser's `HttpOnly` cookie; the database holds their SHA-256.
//!
//! A session ends when it is not used for `idle` (the sliding limit), `absolute` after sign-in whatever
//! happens, at sign-out, and at once when its token is revoked or expires: every use checks the token.
//!
//! Cross-site request forgery: a cookie is sent with every request the browser makes, so a request that
//! changes something must also carry the session's CSRF token in a header, which only a page of ours can
//! read (`GET /api/v1/sessions/current`, same origin). It is derived from the cookie's secret
//! ([`csrf_token`]), so it is bound to the session and stored nowhere.

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};

use endoreg_common::access::Role;

use crate::db::Db;
use crate::db::exec::One;
use crate::params;

use super::{Result, ServiceError, tokens};

/// The cookie that carries a session's secret.
pub const COOKIE: &str = "endoreg_session";

/// How long sessions last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Unused for this long, a session ends.
    pub idle: Duration,
    /// This long after sign-in, a session ends, used or not.
    pub absolute: Duration,
}

/// Who a session acts for. OpenID Connect (issue 14) adds its variant here (the provider's subject, role
/// and centers from the claims) and calls [`create`] with it after the authorization code flow; the
/// table takes it already (`principal_kind = 'oidc'`, `subject`), and everything downstream (cookie,
/// CSRF, expiry, sign-out) is the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionPrincipal {
    /// An API token, verified at sign-in and on every use.
    Token { token_id: i64, role: Role },
}

impl SessionPrincipal {
    pub fn role(&self) -> Role {
        match self {
            SessionPrincipal::Token { role, .. } => *role,
        }
    }
}

/// A session just created: the secret goes into the cookie and is never seen again.
pub struct Created {
    pub secret: String,
    pub session: Session,
}

/// A live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: i64,
    pub principal: SessionPrincipal,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// When it ends unless used before.
    pub idle_expires_at: DateTime<Utc>,
}

fn hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The CSRF token of the session named by `secret`: a hash of the secret in its own domain (never the
/// stored hash, which a database reader could see).
pub fn csrf_token(secret: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"endoreg web session csrf v1\0");
    h.update(secret.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(h.finalize())
}

/// Whether `sent` is the CSRF token of `secret`, compared in constant time.
pub fn csrf_matches(secret: &str, sent: &str) -> bool {
    let expected = csrf_token(secret);
    let (a, b) = (expected.as_bytes(), sent.trim().as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether `secret` has the form of a session secret (43 characters of URL-safe base64); anything else
/// is not looked up.
fn well_formed(secret: &str) -> bool {
    secret.len() == 43 && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Signs in with an API token: a session for it, or `None` when the token is unknown, revoked or
/// expired.
pub async fn sign_in_with_token(db: &Db, token: &str, limits: Limits) -> Result<Option<Created>> {
    let Some((token_id, role)) = tokens::verify(db, token.trim()).await? else {
        return Ok(None);
    };
    create(db, SessionPrincipal::Token { token_id, role }, limits).await.map(Some)
}

/// Creates a session for a verified principal. Sessions that have ended are removed on the way.
pub async fn create(db: &Db, principal: SessionPrincipal, limits: Limits) -> Result<Created> {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let now = super::now();
    let expires_at =
        now.checked_add_signed(limits.absolute).ok_or_else(|| ServiceError::invalid("", "the session lifetime is too long"))?;
    let idle_cutoff = now.checked_sub_signed(limits.idle).unwrap_or(now);
    db.execute("DELETE FROM web_session WHERE expires_at <= $1 OR last_seen_at <= $2", params![now, idle_cutoff]).await?;
    let SessionPrincipal::Token { token_id, role } = principal;
    let One(id): One<i64> = db
        .fetch_one(
            "INSERT INTO web_session (session_hash, principal_kind, token_id, subject, role, created_at, last_seen_at, expires_at) \
             VALUES ($1, 'token', $2, NULL, $3, $4, $4, $5) RETURNING id",
            params![hash(&secret), token_id, role.as_str(), now, expires_at],
        )
        .await?;
    let idle_expires_at = now.checked_add_signed(limits.idle).unwrap_or(expires_at).min(expires_at);
    Ok(Created { secret, session: Session { id, principal, created_at: now, expires_at, idle_expires_at } })
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    principal_kind: String,
    token_id: Option<i64>,
    role: String,
    created_at: DateTime<Utc>,
    last_seen_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    token_expires_at: Option<DateTime<Utc>>,
    token_revoked_at: Option<DateTime<Utc>>,
    token_found: Option<i64>,
}

/// The live session named by `secret`, its use recorded; `None` when there is none (unknown, ended,
/// or its token revoked or expired: such a session is removed).
pub async fn verify(db: &Db, secret: &str, limits: Limits) -> Result<Option<Session>> {
    if !well_formed(secret) {
        return Ok(None);
    }
    let session_hash = hash(secret);
    let row: Option<Row> = db
        .fetch_optional(
            "SELECT s.id, s.principal_kind, s.token_id, s.role, s.created_at, s.last_seen_at, s.expires_at, \
             t.expires_at AS token_expires_at, t.revoked_at AS token_revoked_at, t.id AS token_found \
             FROM web_session s LEFT JOIN api_token t ON t.id = s.token_id WHERE s.session_hash = $1",
            params![&session_hash],
        )
        .await?;
    let Some(Row {
        id,
        principal_kind,
        token_id,
        role,
        created_at,
        last_seen_at,
        expires_at,
        token_expires_at,
        token_revoked_at,
        token_found,
    }) = row
    else {
        return Ok(None);
    };
    let now = super::now();
    let idle_end = last_seen_at.checked_add_signed(limits.idle).unwrap_or(expires_at);
    let token_live = token_found.is_some() && token_revoked_at.is_none() && token_expires_at.is_none_or(|e| e > now);
    let principal = match (principal_kind.as_str(), token_id, role.parse::<Role>()) {
        ("token", Some(token_id), Ok(role)) if token_live => Some(SessionPrincipal::Token { token_id, role }),
        // Another kind of principal is the OpenID Connect sign-in's, which this build cannot verify.
        _ => None,
    };
    let Some(principal) = principal.filter(|_| now < expires_at && now < idle_end) else {
        db.execute("DELETE FROM web_session WHERE id = $1", params![id]).await?;
        return Ok(None);
    };
    // Recorded at most once a minute (and at least every twentieth of the idle time): a use is a read,
    // not a write per request.
    let granularity = Duration::seconds(60).min(limits.idle / 20);
    let last_seen_at = if now - last_seen_at >= granularity {
        db.execute("UPDATE web_session SET last_seen_at = $1 WHERE id = $2", params![now, id]).await?;
        now
    } else {
        last_seen_at
    };
    let idle_expires_at = last_seen_at.checked_add_signed(limits.idle).unwrap_or(expires_at).min(expires_at);
    Ok(Some(Session { id, principal, created_at, expires_at, idle_expires_at }))
}

/// Ends the session named by `secret` (sign-out); ending an unknown or ended one is not an error.
pub async fn end(db: &Db, secret: &str) -> Result<()> {
    if well_formed(secret) {
        db.execute("DELETE FROM web_session WHERE session_hash = $1", params![hash(secret)]).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csrf_token_is_bound_to_the_secret_and_is_not_its_stored_hash() {
        let a = "A".repeat(43);
        let b = "B".repeat(43);
        assert_ne!(csrf_token(&a), csrf_token(&b));
        assert_ne!(csrf_token(&a), hash(&a));
        assert!(csrf_matches(&a, &csrf_token(&a)));
        assert!(!csrf_matches(&a, &csrf_token(&b)));
        assert!(!csrf_matches(&a, ""));
        assert!(!csrf_matches(&a, &csrf_token(&a)[1..]));
    }

    #[test]
    fn only_well_formed_secrets_are_looked_up() {
        assert!(well_formed(&"x".repeat(43)));
        assert!(!well_formed(&"x".repeat(42)));
        assert!(!well_formed(&format!("{}=", "x".repeat(42))));
        assert!(!well_formed(""));
    }
}
