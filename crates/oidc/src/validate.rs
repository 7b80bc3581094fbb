//! Validation of the provider's JWTs: bearer access tokens (API calls) and ID tokens (browser sign-in).
//!
//! Order matters and is fixed: the size is checked before anything is decoded; the algorithm (never
//! `none`, never HMAC, only the allow-list) before any key is looked up, so such a token cannot even
//! make us fetch keys; the key must fit the algorithm; the signature before any claim is believed;
//! then `iss`, `aud` (and `azp`), `exp`, `nbf`, `iat` with a bounded clock skew.
//!
//! Errors carry a [`ValidationError::reason`] code and a message made from our configuration only,
//! never from the token, so both can be logged. Never log the token itself.

use std::sync::Arc;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use crate::jwks::{Clock, JwksCache, KeyError, RefreshError};
use crate::jws::{self, AlgError, JwsAlg};

/// The claims of a token whose signature and registered claims were checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    /// The signature algorithm it came with.
    pub alg: JwsAlg,
    map: Map<String, Value>,
}

impl Claims {
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.map
    }

    /// The value at a path of object members (`["realm_access", "roles"]`).
    pub fn at<S: AsRef<str>>(&self, path: &[S]) -> Option<&Value> {
        let (first, rest) = path.split_first()?;
        let mut value = self.map.get(first.as_ref())?;
        for segment in rest {
            value = value.as_object()?.get(segment.as_ref())?;
        }
        Some(value)
    }

    pub fn str(&self, name: &str) -> Option<&str> {
        self.map.get(name).and_then(Value::as_str)
    }

    /// `sub`: validation guarantees it is a non-empty string.
    pub fn subject(&self) -> &str {
        self.str("sub").unwrap_or_default()
    }

    /// Claims that were never verified, for unit tests of what reads them.
    #[cfg(test)]
    pub(crate) fn unverified(map: Map<String, Value>) -> Self {
        Self { alg: JwsAlg::RS256, map }
    }

    pub fn expires_at(&self) -> i64 {
        self.map.get("exp").and_then(Value::as_f64).map(|f| f as i64).unwrap_or_default()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ValidationError {
    #[error("the token is {size} bytes long, more than the {limit} accepted")]
    TooLarge { size: usize, limit: usize },
    #[error("the token is malformed: {0}")]
    Malformed(&'static str),
    #[error("{0}")]
    Alg(AlgError),
    #[error("the token's signature algorithm {0} is not in the configured allow-list")]
    AlgNotAllowed(JwsAlg),
    #[error("the token names critical header extensions; none are supported")]
    CriticalHeader,
    #[error("the token is not an access token (an ID or refresh token cannot be used as a bearer token)")]
    NotAnAccessToken,
    #[error("{0}")]
    Key(#[from] KeyError),
    #[error("the token's signature does not verify with the provider's key")]
    BadSignature,
    #[error("the token lacks the `{0}` claim")]
    MissingClaim(&'static str),
    #[error("the token's `{0}` claim has the wrong type")]
    BadClaim(&'static str),
    #[error("the token was not issued by the configured issuer {expected}")]
    WrongIssuer { expected: String },
    #[error("the token is not meant for the audience {expected}")]
    WrongAudience { expected: String },
    #[error("the token was issued to a client that is not authorized here (`azp`)")]
    UnauthorizedParty,
    #[error("the token expired {0} s ago (beyond the allowed clock skew)")]
    Expired(i64),
    #[error("the token is not valid yet (`nbf` is {0} s ahead, beyond the allowed clock skew)")]
    NotYetValid(i64),
    #[error("the token claims to be issued {0} s in the future (beyond the allowed clock skew)")]
    IssuedInFuture(i64),
    #[error("the ID token's nonce is not the one this sign-in sent")]
    NonceMismatch,
    #[error("the ID token's `at_hash` does not match the access token")]
    AccessTokenHashMismatch,
}

impl ValidationError {
    /// A short, stable code for logs, metrics and problem responses.
    pub fn reason(&self) -> &'static str {
        match self {
            ValidationError::TooLarge { .. } => "token_too_large",
            ValidationError::Malformed(_) => "malformed",
            ValidationError::Alg(AlgError::None) => "alg_none",
            ValidationError::Alg(AlgError::Hmac) => "alg_hmac",
            ValidationError::Alg(AlgError::Unsupported) => "alg_unsupported",
            ValidationError::AlgNotAllowed(_) => "alg_not_allowed",
            ValidationError::CriticalHeader => "crit_header",
            ValidationError::NotAnAccessToken => "not_access_token",
            ValidationError::Key(KeyError::Unknown) => "unknown_key",
            ValidationError::Key(KeyError::Mismatch) => "key_mismatch",
            ValidationError::Key(KeyError::Unavailable(_)) => "keys_unavailable",
            ValidationError::BadSignature => "bad_signature",
            ValidationError::MissingClaim(_) => "missing_claim",
            ValidationError::BadClaim(_) => "bad_claim",
            ValidationError::WrongIssuer { .. } => "wrong_issuer",
            ValidationError::WrongAudience { .. } => "wrong_audience",
            ValidationError::UnauthorizedParty => "unauthorized_party",
            ValidationError::Expired(_) => "expired",
            ValidationError::NotYetValid(_) => "not_yet_valid",
            ValidationError::IssuedInFuture(_) => "issued_in_future",
            ValidationError::NonceMismatch => "nonce_mismatch",
            ValidationError::AccessTokenHashMismatch => "at_hash_mismatch",
        }
    }

    /// The provider could not be asked for its keys: the token may be fine; the service is at fault,
    /// not the caller (a registry answers 503, not 401).
    pub fn is_provider_unavailable(&self) -> bool {
        matches!(self, ValidationError::Key(KeyError::Unavailable(_)))
    }

    pub fn refresh_error(&self) -> Option<&Arc<RefreshError>> {
        match self {
            ValidationError::Key(KeyError::Unavailable(e)) => Some(e),
            _ => None,
        }
    }
}

/// What the validator checks against; built from [`crate::OidcConfig`] and the discovery document.
#[derive(Debug, Clone)]
pub struct Expectations {
    pub issuer: String,
    /// The audience of bearer tokens.
    pub audience: String,
    /// The audience of ID tokens, and the only acceptable `azp` in them.
    pub client_id: String,
    pub authorized_parties: Vec<String>,
    pub allowed_algorithms: Vec<JwsAlg>,
    pub clock_skew_secs: i64,
    pub max_token_bytes: usize,
}

#[derive(Debug)]
pub struct Validator {
    expect: Expectations,
    jwks: Arc<JwksCache>,
    clock: Arc<dyn Clock>,
}

/// Which kind of token, and what only that kind needs.
enum Kind<'a> {
    Access,
    Id { nonce: &'a str, access_token: Option<&'a str> },
}

impl Validator {
    pub fn new(expect: Expectations, jwks: Arc<JwksCache>, clock: Arc<dyn Clock>) -> Self {
        Self { expect, jwks, clock }
    }

    pub fn jwks(&self) -> &JwksCache {
        &self.jwks
    }

    /// Validates a bearer access token.
    pub async fn access_token(&self, token: &str) -> Result<Claims, ValidationError> {
        self.validate(token, Kind::Access).await
    }

    /// Validates an ID token from the token endpoint: as an access token, but for our client as
    /// audience (OpenID Connect Core 3.1.3.7), with the nonce this sign-in sent, and `at_hash` when the
    /// provider included one.
    pub async fn id_token(&self, token: &str, nonce: &str, access_token: Option<&str>) -> Result<Claims, ValidationError> {
        self.validate(token, Kind::Id { nonce, access_token }).await
    }

    async fn validate(&self, token: &str, kind: Kind<'_>) -> Result<Claims, ValidationError> {
        let e = &self.expect;
        if token.len() > e.max_token_bytes {
            return Err(ValidationError::TooLarge { size: token.len(), limit: e.max_token_bytes });
        }
        let compact = jws::split(token).map_err(|m| ValidationError::Malformed(m.describe()))?;
        let alg: JwsAlg = compact.header.alg.parse().map_err(ValidationError::Alg)?;
        if !e.allowed_algorithms.contains(&alg) {
            return Err(ValidationError::AlgNotAllowed(alg));
        }
        if compact.header.crit.is_some() {
            return Err(ValidationError::CriticalHeader);
        }
        if matches!(kind, Kind::Access) && !access_token_typ(compact.header.typ.as_deref()) {
            return Err(ValidationError::NotAnAccessToken);
        }

        let keys = self.jwks.keys_for(compact.header.kid.as_deref(), alg).await?;
        if !keys.iter().any(|k| k.verify(alg, compact.signing_input, &compact.signature)) {
            return Err(ValidationError::BadSignature);
        }

        let map: Map<String, Value> =
            serde_json::from_slice(&compact.payload).map_err(|_| ValidationError::Malformed(jws::Malformed::PayloadJson.describe()))?;
        let claims = Claims { alg, map };
        self.check_claims(&claims, &kind)?;
        Ok(claims)
    }

    fn check_claims(&self, claims: &Claims, kind: &Kind<'_>) -> Result<(), ValidationError> {
        let e = &self.expect;
        let iss = required_str(claims, "iss")?;
        if iss != e.issuer {
            return Err(ValidationError::WrongIssuer { expected: e.issuer.clone() });
        }
        if required_str(claims, "sub")?.is_empty() {
            return Err(ValidationError::MissingClaim("sub"));
        }

        let audiences = audiences(claims)?;
        let azp = match claims.as_map().get("azp") {
            None => None,
            Some(Value::String(s)) => Some(s.as_str()),
            Some(_) => return Err(ValidationError::BadClaim("azp")),
        };
        match kind {
            Kind::Access => {
                if !audiences.contains(&e.audience.as_str()) {
                    return Err(ValidationError::WrongAudience { expected: e.audience.clone() });
                }
                // RFC 9068 names the client in `client_id`, Keycloak in `azp`.
                let client = azp.or_else(|| claims.str("client_id"));
                if audiences.len() > 1 && client.is_none() {
                    return Err(ValidationError::UnauthorizedParty);
                }
                if !e.authorized_parties.is_empty() && !client.is_some_and(|c| e.authorized_parties.iter().any(|a| a == c)) {
                    return Err(ValidationError::UnauthorizedParty);
                }
                // Keycloak marks its token kinds in `typ`; only its access tokens are "Bearer".
                if let Some(typ) = claims.as_map().get("typ")
                    && !typ.as_str().is_some_and(|t| t.eq_ignore_ascii_case("Bearer"))
                {
                    return Err(ValidationError::NotAnAccessToken);
                }
            }
            Kind::Id { .. } => {
                if !audiences.contains(&e.client_id.as_str()) {
                    return Err(ValidationError::WrongAudience { expected: e.client_id.clone() });
                }
                // OpenID Connect Core 3.1.3.7, steps 4 and 5.
                if audiences.len() > 1 && azp.is_none() {
                    return Err(ValidationError::UnauthorizedParty);
                }
                if azp.is_some_and(|a| a != e.client_id) {
                    return Err(ValidationError::UnauthorizedParty);
                }
            }
        }

        let now = self.clock.unix_now();
        let skew = e.clock_skew_secs;
        let exp = required_time(claims, "exp")?;
        if now > exp + skew {
            return Err(ValidationError::Expired(now - exp));
        }
        if let Some(nbf) = optional_time(claims, "nbf")?
            && nbf > now + skew
        {
            return Err(ValidationError::NotYetValid(nbf - now));
        }
        let iat = required_time(claims, "iat")?;
        if iat > now + skew {
            return Err(ValidationError::IssuedInFuture(iat - now));
        }

        if let Kind::Id { nonce, access_token } = kind {
            let found = claims.as_map().get("nonce").and_then(Value::as_str).ok_or(ValidationError::NonceMismatch)?;
            if verify_slices_are_equal(found.as_bytes(), nonce.as_bytes()).is_err() {
                return Err(ValidationError::NonceMismatch);
            }
            if let (Some(at_hash), Some(access_token)) = (claims.as_map().get("at_hash"), access_token) {
                let at_hash = at_hash.as_str().ok_or(ValidationError::BadClaim("at_hash"))?;
                if verify_slices_are_equal(at_hash.as_bytes(), token_hash(claims.alg, access_token).as_bytes()).is_err() {
                    return Err(ValidationError::AccessTokenHashMismatch);
                }
            }
        }
        Ok(())
    }
}

/// The left half of the token's hash, base64url (`at_hash`, OpenID Connect Core 3.1.3.6).
pub fn token_hash(alg: JwsAlg, token: &str) -> String {
    let d = digest::digest(alg.token_hash(), token.as_bytes());
    let bytes = d.as_ref();
    URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() / 2])
}

/// A header `typ` an access token may carry: none, `JWT`, or RFC 9068's `at+jwt`.
fn access_token_typ(typ: Option<&str>) -> bool {
    let Some(typ) = typ else { return true };
    let typ = typ.strip_prefix("application/").unwrap_or(typ);
    typ.eq_ignore_ascii_case("JWT") || typ.eq_ignore_ascii_case("at+jwt")
}

fn required_str<'c>(claims: &'c Claims, name: &'static str) -> Result<&'c str, ValidationError> {
    match claims.as_map().get(name) {
        None => Err(ValidationError::MissingClaim(name)),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ValidationError::BadClaim(name)),
    }
}

fn audiences(claims: &Claims) -> Result<Vec<&str>, ValidationError> {
    match claims.as_map().get("aud") {
        None => Err(ValidationError::MissingClaim("aud")),
        Some(Value::String(s)) => Ok(vec![s.as_str()]),
        Some(Value::Array(items)) => items.iter().map(|v| v.as_str().ok_or(ValidationError::BadClaim("aud"))).collect(),
        Some(_) => Err(ValidationError::BadClaim("aud")),
    }
}

/// A NumericDate (seconds, possibly fractional), rounded down.
fn optional_time(claims: &Claims, name: &'static str) -> Result<Option<i64>, ValidationError> {
    match claims.as_map().get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(i) = n.as_i64() {
                return Ok(Some(i));
            }
            match n.as_f64() {
                Some(f) if f.is_finite() && f.abs() < 1e15 => Ok(Some(f.floor() as i64)),
                _ => Err(ValidationError::BadClaim(name)),
            }
        }
        Some(_) => Err(ValidationError::BadClaim(name)),
    }
}

fn required_time(claims: &Claims, name: &'static str) -> Result<i64, ValidationError> {
    optional_time(claims, name)?.ok_or(ValidationError::MissingClaim(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_is_the_left_half_of_the_algorithms_hash() {
        // OpenID Connect Core, appendix A.3/A.4 example: access token and its at_hash (RS256).
        assert_eq!(token_hash(JwsAlg::RS256, "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"), "77QmUPtjPfzWtF2AnpK9RQ");
        assert_eq!(token_hash(JwsAlg::EdDSA, "x").len(), 43, "SHA-512: 32 bytes");
    }

    #[test]
    fn access_tokens_may_be_typed_jwt_or_at_jwt() {
        for ok in [None, Some("JWT"), Some("at+jwt"), Some("application/at+jwt"), Some("jwt")] {
            assert!(access_token_typ(ok), "{ok:?}");
        }
        for bad in [Some("logout+jwt"), Some("dpop+jwt"), Some("")] {
            assert!(!access_token_typ(bad), "{bad:?}");
        }
    }

    #[test]
    fn every_reason_code_is_distinct() {
        let errors = [
            ValidationError::TooLarge { size: 1, limit: 0 },
            ValidationError::Malformed("x"),
            ValidationError::Alg(AlgError::None),
            ValidationError::Alg(AlgError::Hmac),
            ValidationError::Alg(AlgError::Unsupported),
            ValidationError::AlgNotAllowed(JwsAlg::RS256),
            ValidationError::CriticalHeader,
            ValidationError::NotAnAccessToken,
            ValidationError::Key(KeyError::Unknown),
            ValidationError::Key(KeyError::Mismatch),
            ValidationError::BadSignature,
            ValidationError::MissingClaim("exp"),
            ValidationError::BadClaim("exp"),
            ValidationError::WrongIssuer { expected: "i".into() },
            ValidationError::WrongAudience { expected: "a".into() },
            ValidationError::UnauthorizedParty,
            ValidationError::Expired(1),
            ValidationError::NotYetValid(1),
            ValidationError::IssuedInFuture(1),
            ValidationError::NonceMismatch,
            ValidationError::AccessTokenHashMismatch,
        ];
        let mut reasons: Vec<_> = errors.iter().map(ValidationError::reason).collect();
        reasons.sort();
        let before = reasons.len();
        reasons.dedup();
        assert_eq!(reasons.len(), before);
    }
}
