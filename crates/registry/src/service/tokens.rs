//! API tokens. A token is 32 random bytes shown once at creation; the registry stores only its SHA-256, so
//! a database leak yields no usable token. Tokens carry one role, may expire, and can be revoked.

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};

use endoreg_common::access::Role;
use endoreg_common::api::{MAX_TOKEN_DAYS, Token, TokenCreate, TokenCreated};

use crate::db::Db;
use crate::db::exec::One;
use crate::params;

use super::{Checks, Result, ServiceError};

/// Every token starts with this, so secret scanners and humans recognise one.
pub const PREFIX: &str = "endoreg_";

pub fn hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    id: i64,
    name: String,
    role: String,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl TokenRow {
    fn into_api(self) -> Result<Token> {
        let role = self.role.parse::<Role>().map_err(|e| ServiceError::Conflict(format!("token {} has an invalid role: {e}", self.id)))?;
        Ok(Token {
            id: self.id,
            name: self.name,
            role,
            created_at: self.created_at,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
        })
    }
}

const SELECT: &str = "SELECT id, name, role, created_at, expires_at, revoked_at FROM api_token";

pub async fn create(db: &Db, input: &TokenCreate) -> Result<TokenCreated> {
    let mut checks = Checks::default();
    if input.name.trim().is_empty() || input.name.len() > 200 {
        checks.add("/name", "must be 1 to 200 characters");
    }
    let now = super::now();
    let expires_at = match input.expires_in_days {
        None => None,
        Some(days) => {
            let at = (1..=MAX_TOKEN_DAYS)
                .contains(&days)
                .then(|| Duration::try_days(i64::from(days)).and_then(|d| now.checked_add_signed(d)))
                .flatten();
            if at.is_none() {
                checks.add(
                    "/expires_in_days",
                    format!("must be between 1 and {MAX_TOKEN_DAYS} (leave it out for a token that does not expire)"),
                );
            }
            at
        }
    };
    checks.finish()?;
    let token = generate();
    let One(id): One<i64> = db
        .fetch_one(
            "INSERT INTO api_token (name, role, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            params![input.name.trim(), input.role.as_str(), hash(&token), now, expires_at],
        )
        .await?;
    let info = get(db, id).await?;
    Ok(TokenCreated { token, info })
}

/// Registers a token provisioned outside the registry (a deployment secret), idempotently: the same token
/// registered again keeps its row. Provisioned tokens are named `provisioned: <name>`; when the secret
/// behind a name changes (key rotation), the tokens it replaces are revoked.
pub async fn register(db: &Db, name: &str, role: Role, token: &str) -> Result<Token> {
    if !token.starts_with(PREFIX) || token.len() < PREFIX.len() + 32 {
        return Err(ServiceError::invalid(
            "/token",
            format!("a provisioned token must start with `{PREFIX}` and carry at least 32 random characters"),
        ));
    }
    let name = format!("provisioned: {name}");
    let hash = hash(token);
    let now = super::now();
    let mut tx = db.begin().await?;
    let One(id): One<i64> = tx
        .fetch_one(
            "INSERT INTO api_token (name, role, token_hash, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (token_hash) DO UPDATE SET name = excluded.name, role = excluded.role RETURNING id",
            params![&name, role.as_str(), &hash, now],
        )
        .await?;
    tx.execute(
        "UPDATE api_token SET revoked_at = $1 WHERE name = $2 AND token_hash <> $3 AND revoked_at IS NULL",
        params![now, &name, &hash],
    )
    .await?;
    tx.commit().await?;
    get(db, id).await
}

pub async fn get(db: &Db, id: i64) -> Result<Token> {
    let row: Option<TokenRow> = db.fetch_optional(&format!("{SELECT} WHERE id = $1"), params![id]).await?;
    row.ok_or_else(|| ServiceError::not_found(format!("token {id}")))?.into_api()
}

pub async fn list(db: &Db) -> Result<Vec<Token>> {
    let rows: Vec<TokenRow> = db.fetch_all(&format!("{SELECT} ORDER BY id"), vec![]).await?;
    rows.into_iter().map(TokenRow::into_api).collect()
}

/// Revokes a token; revoking a revoked token is not an error.
pub async fn revoke(db: &Db, id: i64) -> Result<Token> {
    let n = db.execute("UPDATE api_token SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2", params![super::now(), id]).await?;
    if n == 0 {
        return Err(ServiceError::not_found(format!("token {id}")));
    }
    get(db, id).await
}

/// The token's id and role if it is known, not revoked and not expired.
pub async fn verify(db: &Db, token: &str) -> Result<Option<(i64, Role)>> {
    if !token.starts_with(PREFIX) {
        return Ok(None);
    }
    type Row = (i64, String, Option<DateTime<Utc>>, Option<DateTime<Utc>>);
    let row: Option<Row> =
        db.fetch_optional("SELECT id, role, expires_at, revoked_at FROM api_token WHERE token_hash = $1", params![hash(token)]).await?;
    Ok(row.and_then(|(id, role, expires_at, revoked_at)| {
        let now = super::now();
        let live = revoked_at.is_none() && expires_at.is_none_or(|e| e > now);
        live.then(|| role.parse::<Role>().ok().map(|r| (id, r))).flatten()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_prefixed() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert!(a.starts_with(PREFIX));
        assert_eq!(a.len(), PREFIX.len() + 43);
    }

    #[test]
    fn the_hash_is_hex_sha256() {
        assert_eq!(hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
