//! The provider's public keys (JWKS), parsed into what we can verify with, and a cache of them.
//!
//! The cache fetches the key set when it has none or when it is older than `max_age` (so a key the
//! provider withdrew stops being trusted), and again when a token names a key id it does not know: that
//! is how a provider's key rotation reaches us. A refresh happens at most once per `min_refresh`
//! interval, whatever asks for it, so a stream of tokens with made-up key ids costs the provider one
//! request per interval, not one per token. Concurrent callers share one refresh. When a needed
//! refresh fails, validation fails (closed): keys past their age are not used.

use std::fmt;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{self as sig, RsaPublicKeyComponents, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Url;
use serde_json::Value;

use crate::http::{FetchError, HttpClient};
use crate::jws::{JwsAlg, KeyKind};

/// One verification key from the provider's key set.
#[derive(Clone, PartialEq, Eq)]
pub struct Jwk {
    pub kid: Option<String>,
    /// The algorithm the provider bound the key to, if it did (`alg` member).
    pub alg: Option<JwsAlg>,
    material: Material,
}

#[derive(Clone, PartialEq, Eq)]
enum Material {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// An uncompressed point (0x04 ‖ x ‖ y), as the verifier takes it.
    Ec {
        kind: KeyKind,
        point: Vec<u8>,
    },
    Ed25519 {
        x: Vec<u8>,
    },
}

impl fmt::Debug for Jwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwk").field("kid", &self.kid).field("alg", &self.alg).field("kind", &self.kind()).finish()
    }
}

impl Jwk {
    pub fn kind(&self) -> KeyKind {
        match &self.material {
            Material::Rsa { .. } => KeyKind::Rsa,
            Material::Ec { kind, .. } => *kind,
            Material::Ed25519 { .. } => KeyKind::Ed25519,
        }
    }

    /// Whether a token signed with `alg` may be verified with this key: the key type must be the one the
    /// algorithm needs, and a key the provider bound to one algorithm serves only that one.
    pub fn fits(&self, alg: JwsAlg) -> bool {
        self.kind() == alg.key_kind() && self.alg.is_none_or(|bound| bound == alg)
    }

    /// Checks `signature` over `message`. The caller has checked [`Jwk::fits`].
    pub(crate) fn verify(&self, alg: JwsAlg, message: &[u8], signature: &[u8]) -> bool {
        let result = match (&self.material, alg) {
            (Material::Rsa { n, e }, _) => {
                let params: &sig::RsaParameters = match alg {
                    JwsAlg::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
                    JwsAlg::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
                    JwsAlg::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
                    JwsAlg::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
                    JwsAlg::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
                    JwsAlg::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
                    _ => return false,
                };
                RsaPublicKeyComponents { n: n.as_slice(), e: e.as_slice() }.verify(params, message, signature)
            }
            (Material::Ec { kind: KeyKind::EcP256, point }, JwsAlg::ES256) => {
                UnparsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, point).verify(message, signature)
            }
            (Material::Ec { kind: KeyKind::EcP384, point }, JwsAlg::ES384) => {
                UnparsedPublicKey::new(&sig::ECDSA_P384_SHA384_FIXED, point).verify(message, signature)
            }
            (Material::Ed25519 { x }, JwsAlg::EdDSA | JwsAlg::Ed25519) => {
                UnparsedPublicKey::new(&sig::ED25519, x).verify(message, signature)
            }
            _ => return false,
        };
        result.is_ok()
    }

    /// Reads one member of a JWKS. `Ok(None)`: a key that is not for us (encryption keys, symmetric keys,
    /// curves we do not verify with); `Err`: a signing key that is malformed.
    fn parse(v: &Value) -> Result<Option<Jwk>, &'static str> {
        let s = |name: &str| v.get(name).and_then(Value::as_str);
        if s("use").is_some_and(|u| u != "sig") {
            return Ok(None);
        }
        if let Some(ops) = v.get("key_ops")
            && !ops.as_array().is_some_and(|ops| ops.iter().any(|o| o.as_str() == Some("verify")))
        {
            return Ok(None);
        }
        let alg = match s("alg") {
            None => None,
            // A key bound to an algorithm we never verify with (HS*, RSA-OAEP, ...) is not for us.
            Some(a) => match a.parse::<JwsAlg>() {
                Ok(a) => Some(a),
                Err(_) => return Ok(None),
            },
        };
        let b64 = |name: &str| -> Result<Vec<u8>, &'static str> {
            let text = s(name).ok_or("a key member is missing")?;
            URL_SAFE_NO_PAD.decode(text).map_err(|_| "a key member is not base64url")
        };
        let material = match s("kty") {
            Some("RSA") => Material::Rsa { n: b64("n")?, e: b64("e")? },
            Some("EC") => {
                let (kind, len) = match s("crv") {
                    Some("P-256") => (KeyKind::EcP256, 32),
                    Some("P-384") => (KeyKind::EcP384, 48),
                    _ => return Ok(None),
                };
                let (x, y) = (b64("x")?, b64("y")?);
                if x.len() != len || y.len() != len {
                    return Err("an EC key's coordinates have the wrong length for its curve");
                }
                let mut point = Vec::with_capacity(1 + 2 * len);
                point.push(0x04);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                Material::Ec { kind, point }
            }
            Some("OKP") => {
                if s("crv") != Some("Ed25519") {
                    return Ok(None);
                }
                let x = b64("x")?;
                if x.len() != 32 {
                    return Err("an Ed25519 key is not 32 bytes");
                }
                Material::Ed25519 { x }
            }
            // "oct" (symmetric) keys and anything unknown: never a verification key for us.
            _ => return Ok(None),
        };
        let jwk = Jwk { kid: s("kid").map(str::to_owned), alg, material };
        // A key whose bound algorithm needs another key type is inconsistent: leave it out.
        if jwk.alg.is_some_and(|a| a.key_kind() != jwk.kind()) {
            return Ok(None);
        }
        Ok(Some(jwk))
    }
}

/// A parsed key set: the keys we can verify with, and how many members were left out.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    pub keys: Vec<Jwk>,
    pub ignored: usize,
    pub malformed: usize,
}

impl KeySet {
    pub fn parse(doc: &Value) -> Result<KeySet, &'static str> {
        let members = doc.get("keys").and_then(Value::as_array).ok_or("the key set has no `keys` array")?;
        let mut set = KeySet::default();
        for m in members {
            match Jwk::parse(m) {
                Ok(Some(k)) => set.keys.push(k),
                Ok(None) => set.ignored += 1,
                Err(_) => set.malformed += 1,
            }
        }
        Ok(set)
    }

    /// The keys that may verify a token with `kid` and `alg`. A token without a key id may only use a key
    /// when exactly one key fits its algorithm: we never try keys in turn.
    fn candidates(&self, kid: Option<&str>, alg: JwsAlg) -> Vec<Jwk> {
        let fitting = self.keys.iter().filter(|k| k.fits(alg));
        match kid {
            Some(kid) => fitting.filter(|k| k.kid.as_deref() == Some(kid)).cloned().collect(),
            None => {
                let all: Vec<Jwk> = fitting.cloned().collect();
                if all.len() == 1 { all } else { Vec::new() }
            }
        }
    }

    fn knows(&self, kid: Option<&str>) -> bool {
        match kid {
            Some(kid) => self.keys.iter().any(|k| k.kid.as_deref() == Some(kid)),
            None => !self.keys.is_empty(),
        }
    }
}

/// Time, as the cache and the validator see it. [`SystemClock`] in service; [`ManualClock`] lets tests
/// step over refresh intervals and key ages without sleeping.
pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> Instant;
    /// Seconds since the Unix epoch, for `exp`, `nbf` and `iat`.
    fn unix_now(&self) -> i64;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn unix_now(&self) -> i64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
    }
}

/// A clock that moves only when told to (both its monotonic and its wall-clock reading), for tests.
#[derive(Debug)]
pub struct ManualClock {
    base: Instant,
    base_unix: i64,
    offset: Mutex<Duration>,
}

impl ManualClock {
    pub fn new() -> Self {
        Self { base: Instant::now(), base_unix: SystemClock.unix_now(), offset: Mutex::new(Duration::ZERO) }
    }

    pub fn advance(&self, by: Duration) {
        let mut offset = self.offset.lock().unwrap_or_else(|p| p.into_inner());
        *offset += by;
    }

    fn offset(&self) -> Duration {
        *self.offset.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.base + self.offset()
    }

    fn unix_now(&self) -> i64 {
        self.base_unix + self.offset().as_secs() as i64
    }
}

/// Why no key could be found for a token.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// No key with the token's key id fits its algorithm, after a refresh if one was allowed.
    #[error("the provider publishes no key with the token's key id that fits its algorithm")]
    Unknown,
    /// The key id is known but bound to another algorithm or of another type.
    #[error("the provider's key with the token's key id does not fit the token's algorithm")]
    Mismatch,
    #[error("the provider's keys could not be fetched: {0}")]
    Unavailable(#[source] Arc<RefreshError>),
}

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("the key set at {url} is unusable: {reason}")]
    Invalid { url: String, reason: &'static str },
}

#[derive(Debug, Default)]
struct State {
    keys: Arc<KeySet>,
    fetched_at: Option<Instant>,
    last_attempt: Option<Instant>,
    last_error: Option<Arc<RefreshError>>,
    generation: u64,
}

/// Counters, for tests and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    pub refreshes: u64,
    pub failed_refreshes: u64,
}

#[derive(Debug)]
pub struct JwksCache {
    http: HttpClient,
    uri: Url,
    min_refresh: Duration,
    max_age: Duration,
    clock: Arc<dyn Clock>,
    state: RwLock<State>,
    stats: Mutex<CacheStats>,
    refresh: tokio::sync::Mutex<()>,
}

impl JwksCache {
    pub fn new(http: HttpClient, uri: Url, min_refresh: Duration, max_age: Duration, clock: Arc<dyn Clock>) -> Self {
        Self {
            http,
            uri,
            min_refresh,
            max_age,
            clock,
            state: RwLock::new(State::default()),
            stats: Mutex::new(CacheStats::default()),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    pub fn stats(&self) -> CacheStats {
        *self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The keys that may verify a token with key id `kid` signed with `alg`, refreshing the set when it
    /// is missing, too old, or does not know `kid` (within the refresh interval).
    pub async fn keys_for(&self, kid: Option<&str>, alg: JwsAlg) -> Result<Vec<Jwk>, KeyError> {
        let (generation, keys, fresh) = self.snapshot();
        if fresh && keys.knows(kid) {
            return lookup(&keys, kid, alg);
        }

        let _single_flight = self.refresh.lock().await;
        let (now_generation, keys, fresh) = self.snapshot();
        if now_generation != generation && fresh && keys.knows(kid) {
            // Someone else refreshed while we waited.
            return lookup(&keys, kid, alg);
        }
        let now = self.clock.now();
        let throttled = {
            let state = self.state.read().unwrap_or_else(|p| p.into_inner());
            state.last_attempt.is_some_and(|t| now.saturating_duration_since(t) < self.min_refresh)
        };
        if throttled {
            if fresh {
                return lookup(&keys, kid, alg);
            }
            let state = self.state.read().unwrap_or_else(|p| p.into_inner());
            return Err(match &state.last_error {
                Some(e) => KeyError::Unavailable(e.clone()),
                None => KeyError::Unknown,
            });
        }
        match self.fetch().await {
            Ok(set) => {
                let set = Arc::new(set);
                {
                    let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
                    state.keys = set.clone();
                    state.fetched_at = Some(now);
                    state.last_attempt = Some(now);
                    state.last_error = None;
                    state.generation += 1;
                }
                self.stats.lock().unwrap_or_else(|p| p.into_inner()).refreshes += 1;
                lookup(&set, kid, alg)
            }
            Err(e) => {
                let e = Arc::new(e);
                log::warn!("OIDC: cannot refresh the provider's keys: {e}");
                {
                    let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
                    state.last_attempt = Some(now);
                    state.last_error = Some(e.clone());
                }
                self.stats.lock().unwrap_or_else(|p| p.into_inner()).failed_refreshes += 1;
                Err(KeyError::Unavailable(e))
            }
        }
    }

    fn snapshot(&self) -> (u64, Arc<KeySet>, bool) {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        let now = self.clock.now();
        let fresh = state.fetched_at.is_some_and(|t| now.saturating_duration_since(t) < self.max_age);
        (state.generation, state.keys.clone(), fresh)
    }

    async fn fetch(&self) -> Result<KeySet, RefreshError> {
        let doc: Value = self.http.json(&self.uri, self.http.get(&self.uri)).await?;
        let set = KeySet::parse(&doc).map_err(|reason| RefreshError::Invalid { url: self.uri.to_string(), reason })?;
        if set.malformed > 0 {
            log::warn!("OIDC: {} malformed signing key(s) in {} left out", set.malformed, self.uri);
        }
        if set.keys.is_empty() {
            return Err(RefreshError::Invalid { url: self.uri.to_string(), reason: "it holds no signing key we can verify with" });
        }
        log::debug!("OIDC: fetched {} signing key(s) from {}", set.keys.len(), self.uri);
        Ok(set)
    }
}

fn lookup(keys: &KeySet, kid: Option<&str>, alg: JwsAlg) -> Result<Vec<Jwk>, KeyError> {
    let found = keys.candidates(kid, alg);
    if !found.is_empty() {
        Ok(found)
    } else if kid.is_some() && keys.knows(kid) {
        Err(KeyError::Mismatch)
    } else {
        Err(KeyError::Unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    #[test]
    fn keys_that_are_not_signing_keys_we_verify_with_are_left_out() {
        let doc = json!({"keys": [
            {"kty": "RSA", "kid": "r", "n": b64(&[1; 256]), "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": b64(&[1; 256]), "e": "AQAB"},
            {"kty": "oct", "kid": "sym", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "oaep", "alg": "RSA-OAEP", "n": b64(&[1; 256]), "e": "AQAB"},
            {"kty": "RSA", "kid": "hs", "alg": "HS256", "n": b64(&[1; 256]), "e": "AQAB"},
            {"kty": "EC", "kid": "k1", "crv": "secp256k1", "x": b64(&[1; 32]), "y": b64(&[1; 32])},
            {"kty": "EC", "kid": "e", "crv": "P-256", "x": b64(&[1; 32]), "y": b64(&[2; 32])},
            {"kty": "EC", "kid": "short", "crv": "P-256", "x": b64(&[1; 31]), "y": b64(&[2; 32])},
            {"kty": "OKP", "kid": "x", "crv": "X25519", "x": b64(&[1; 32])},
            {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": b64(&[1; 32]), "key_ops": ["verify"]},
            {"kty": "OKP", "kid": "ed-sign-only", "crv": "Ed25519", "x": b64(&[1; 32]), "key_ops": ["sign"]},
            {"kty": "EC", "kid": "wrong-alg", "alg": "RS256", "crv": "P-256", "x": b64(&[1; 32]), "y": b64(&[2; 32])},
        ]});
        let set = KeySet::parse(&doc).unwrap();
        let kids: Vec<_> = set.keys.iter().map(|k| k.kid.clone().unwrap()).collect();
        assert_eq!(kids, ["r", "e", "ed"]);
        assert_eq!(set.malformed, 1);
        assert_eq!(set.ignored, 8);
    }

    #[test]
    fn a_key_fits_only_the_algorithms_of_its_type_and_binding() {
        let doc = json!({"keys": [
            {"kty": "RSA", "kid": "any-rsa", "n": b64(&[1; 256]), "e": "AQAB"},
            {"kty": "RSA", "kid": "ps-only", "alg": "PS256", "n": b64(&[1; 256]), "e": "AQAB"},
            {"kty": "EC", "kid": "p256", "crv": "P-256", "x": b64(&[1; 32]), "y": b64(&[2; 32])},
        ]});
        let set = KeySet::parse(&doc).unwrap();
        let key = |kid: &str| set.keys.iter().find(|k| k.kid.as_deref() == Some(kid)).unwrap().clone();
        assert!(key("any-rsa").fits(JwsAlg::RS256) && key("any-rsa").fits(JwsAlg::PS256));
        assert!(!key("any-rsa").fits(JwsAlg::ES256) && !key("any-rsa").fits(JwsAlg::EdDSA));
        assert!(key("ps-only").fits(JwsAlg::PS256) && !key("ps-only").fits(JwsAlg::RS256));
        assert!(key("p256").fits(JwsAlg::ES256) && !key("p256").fits(JwsAlg::ES384) && !key("p256").fits(JwsAlg::RS256));
        assert!(matches!(lookup(&set, Some("p256"), JwsAlg::RS256), Err(KeyError::Mismatch)));
        assert!(matches!(lookup(&set, Some("nope"), JwsAlg::RS256), Err(KeyError::Unknown)));
        // Without a key id: only when exactly one key fits.
        assert!(matches!(lookup(&set, None, JwsAlg::PS256), Err(KeyError::Unknown)), "two RSA keys fit PS256");
        assert_eq!(lookup(&set, None, JwsAlg::RS256).unwrap().len(), 1);
        assert_eq!(lookup(&set, None, JwsAlg::ES256).unwrap().len(), 1);
    }
}
