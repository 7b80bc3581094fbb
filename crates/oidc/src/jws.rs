//! The signature side of a JWT (JWS compact serialisation): the algorithms we verify, the header, and
//! the split into signing input and signature. Keys come only from the provider's JWKS, never from the
//! token (`jwk`, `jku`, `x5u`, `x5c` headers are ignored), so a token cannot bring its own key.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A JWS algorithm we verify. Only asymmetric ones exist here: `none` and the HMAC family (`HS*`) are not
/// representable, so neither a configuration nor a token can select them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JwsAlg {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    /// Ed25519 under its polymorphic name (RFC 8037), as Keycloak and most providers publish it.
    EdDSA,
    /// Ed25519 under its fully-specified name (RFC 9864).
    Ed25519,
}

/// The key type an algorithm needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa,
    EcP256,
    EcP384,
    Ed25519,
}

impl JwsAlg {
    pub const ALL: [JwsAlg; 10] = [
        JwsAlg::RS256,
        JwsAlg::RS384,
        JwsAlg::RS512,
        JwsAlg::PS256,
        JwsAlg::PS384,
        JwsAlg::PS512,
        JwsAlg::ES256,
        JwsAlg::ES384,
        JwsAlg::EdDSA,
        JwsAlg::Ed25519,
    ];

    /// What we accept when the configuration does not say: what Keycloak and the common providers sign with.
    pub const DEFAULT_ALLOWED: [JwsAlg; 4] = [JwsAlg::RS256, JwsAlg::ES256, JwsAlg::PS256, JwsAlg::EdDSA];

    pub fn as_str(self) -> &'static str {
        match self {
            JwsAlg::RS256 => "RS256",
            JwsAlg::RS384 => "RS384",
            JwsAlg::RS512 => "RS512",
            JwsAlg::PS256 => "PS256",
            JwsAlg::PS384 => "PS384",
            JwsAlg::PS512 => "PS512",
            JwsAlg::ES256 => "ES256",
            JwsAlg::ES384 => "ES384",
            JwsAlg::EdDSA => "EdDSA",
            JwsAlg::Ed25519 => "Ed25519",
        }
    }

    pub fn key_kind(self) -> KeyKind {
        match self {
            JwsAlg::RS256 | JwsAlg::RS384 | JwsAlg::RS512 | JwsAlg::PS256 | JwsAlg::PS384 | JwsAlg::PS512 => KeyKind::Rsa,
            JwsAlg::ES256 => KeyKind::EcP256,
            JwsAlg::ES384 => KeyKind::EcP384,
            JwsAlg::EdDSA | JwsAlg::Ed25519 => KeyKind::Ed25519,
        }
    }

    /// The hash an ID token's `at_hash` is computed with (OpenID Connect Core 3.1.3.6: the hash of the
    /// signature algorithm; SHA-512 for Ed25519).
    pub(crate) fn token_hash(self) -> &'static aws_lc_rs::digest::Algorithm {
        use aws_lc_rs::digest::{SHA256, SHA384, SHA512};
        match self {
            JwsAlg::RS256 | JwsAlg::PS256 | JwsAlg::ES256 => &SHA256,
            JwsAlg::RS384 | JwsAlg::PS384 | JwsAlg::ES384 => &SHA384,
            JwsAlg::RS512 | JwsAlg::PS512 | JwsAlg::EdDSA | JwsAlg::Ed25519 => &SHA512,
        }
    }
}

impl fmt::Display for JwsAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an algorithm name is not one we verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlgError {
    #[error("the JWS algorithm `none` (an unsigned token) is never accepted")]
    None,
    #[error("HMAC algorithms (HS256, HS384, HS512) are never accepted: a shared secret cannot be checked against a provider's public keys")]
    Hmac,
    #[error("unsupported JWS algorithm; supported are RS256/384/512, PS256/384/512, ES256, ES384, EdDSA, Ed25519")]
    Unsupported,
}

impl FromStr for JwsAlg {
    type Err = AlgError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(alg) = JwsAlg::ALL.into_iter().find(|a| a.as_str() == s) {
            return Ok(alg);
        }
        // Names are case-sensitive (RFC 7515 4.1.1), but "NONE" or "hs256" must not slip through as
        // merely "unsupported" in a log: say what they are.
        if s.eq_ignore_ascii_case("none") {
            Err(AlgError::None)
        } else if s.as_bytes().get(..2).is_some_and(|p| p.eq_ignore_ascii_case(b"HS")) {
            Err(AlgError::Hmac)
        } else {
            Err(AlgError::Unsupported)
        }
    }
}

impl Serialize for JwsAlg {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for JwsAlg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(|e: AlgError| serde::de::Error::custom(format!("`{s}`: {e}")))
    }
}

/// The protected header, as far as we read it.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Header {
    pub alg: String,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default)]
    pub typ: Option<String>,
    /// Extensions the producer says must be understood; we understand none (RFC 7515 4.1.11).
    #[serde(default)]
    pub crit: Option<serde_json::Value>,
}

/// A compact JWS split into its parts, nothing verified yet.
pub(crate) struct Compact<'a> {
    pub header: Header,
    pub signing_input: &'a [u8],
    pub payload: Vec<u8>,
    pub signature: Vec<u8>,
}

/// Why a token's shape is wrong (before any key is looked at).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Malformed {
    Parts,
    Encrypted,
    Base64,
    HeaderJson,
    PayloadJson,
}

impl Malformed {
    pub fn describe(self) -> &'static str {
        match self {
            Malformed::Parts => "not a JWS in compact form (header.payload.signature)",
            Malformed::Encrypted => "an encrypted token (JWE); only signed tokens are accepted",
            Malformed::Base64 => "a part is not unpadded base64url",
            Malformed::HeaderJson => "the header is not a JSON object with a string `alg`",
            Malformed::PayloadJson => "the payload is not a JSON object",
        }
    }
}

pub(crate) fn split(token: &str) -> Result<Compact<'_>, Malformed> {
    let parts: Vec<&str> = token.split('.').collect();
    match parts.len() {
        3 => {}
        5 => return Err(Malformed::Encrypted),
        _ => return Err(Malformed::Parts),
    }
    let decode = |s: &str| URL_SAFE_NO_PAD.decode(s).map_err(|_| Malformed::Base64);
    let header_bytes = decode(parts[0])?;
    let header: Header = serde_json::from_slice(&header_bytes).map_err(|_| Malformed::HeaderJson)?;
    let payload = decode(parts[1])?;
    let signature = decode(parts[2])?;
    let signing_input_len = parts[0].len() + 1 + parts[1].len();
    Ok(Compact { header, signing_input: &token.as_bytes()[..signing_input_len], payload, signature })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_and_hmac_are_not_algorithms_we_know() {
        assert_eq!("none".parse::<JwsAlg>(), Err(AlgError::None));
        assert_eq!("None".parse::<JwsAlg>(), Err(AlgError::None));
        for hs in ["HS256", "HS384", "HS512", "hs256"] {
            assert_eq!(hs.parse::<JwsAlg>(), Err(AlgError::Hmac), "{hs}");
        }
        assert_eq!("RS1".parse::<JwsAlg>(), Err(AlgError::Unsupported));
        // Case matters for the algorithms we do accept.
        assert_eq!("rs256".parse::<JwsAlg>(), Err(AlgError::Unsupported));
        assert_eq!("é".parse::<JwsAlg>(), Err(AlgError::Unsupported));
        for a in JwsAlg::ALL {
            assert_eq!(a.as_str().parse::<JwsAlg>(), Ok(a));
        }
    }

    #[test]
    fn a_configuration_naming_hmac_is_refused_with_the_reason() {
        let err = serde_json::from_str::<Vec<JwsAlg>>(r#"["RS256","HS256"]"#).unwrap_err().to_string();
        assert!(err.contains("HS256") && err.contains("HMAC"), "{err}");
        let err = serde_json::from_str::<Vec<JwsAlg>>(r#"["none"]"#).unwrap_err().to_string();
        assert!(err.contains("never accepted"), "{err}");
    }

    #[test]
    fn split_refuses_wrong_shapes() {
        assert_eq!(split("a.b").err(), Some(Malformed::Parts));
        assert_eq!(split("a.b.c.d.e").err(), Some(Malformed::Encrypted));
        assert_eq!(split("eyJhbGciOiJSUzI1NiJ9.e30=.AA").err(), Some(Malformed::Base64));
        assert_eq!(split("bm90IGpzb24.e30.AA").err(), Some(Malformed::HeaderJson));
        let c = split("eyJhbGciOiJSUzI1NiJ9.e30.AA").unwrap();
        assert_eq!(c.header.alg, "RS256");
        assert_eq!(c.signing_input, b"eyJhbGciOiJSUzI1NiJ9.e30");
        assert_eq!(c.payload, b"{}");
    }
}
