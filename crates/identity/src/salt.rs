//! The identity salt: the secret that keys every pseudonym hash.
//!
//! It is read from a credential file (one line; a relative path is looked up in systemd's
//! `$CREDENTIALS_DIRECTORY`), and its key material is the line's UTF-8 bytes exactly as EndoregDB uses them,
//! so the same file gives the same hashes in both systems. A weak salt is refused by the rules EndoregDB
//! 1.6.5 applies (`endoreg_db/utils/verify_salt.py`), restated here: the line is decoded as hex (≥ 64 hex
//! digits) or base64 (≥ 44 characters) where it is one, else taken as UTF-8 bytes, and that decoded form must
//! have at least 32 bytes, at least 16 distinct byte values and a Shannon entropy of at least 3.5 bits per
//! byte; a line containing a placeholder word (`default`, `change`, `secret`, `example`, …) is refused
//! whatever its length. The decoding is only for judging strength: the key stays the line's bytes.
//!
//! Rotation: every salt has a [`Generation`]. A [`SaltRing`] holds the active salt, which makes new hashes,
//! and retired ones, which only match hashes stored under them (store each hash with its generation, and
//! re-hash when a record is next seen with its identity). EndoregDB's built-in `default_salt` of older
//! releases can be enrolled as a retired generation ([`Salt::endoreg_default`]) so records of an installation
//! that never set a salt can still be found, but it is never accepted as the active salt.
//!
//! The material is zeroed when dropped and never printed: `Debug` shows the generation and the public
//! fingerprint only.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use base64::Engine as _;
use endoreg_common::secret::{Secret, SecretError};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::{Digest, Generation};

/// The shortest salt, in decoded bytes (256 bits), EndoregDB's `MIN_KEY_BYTES`.
pub const MIN_BYTES: usize = 32;
const MIN_DISTINCT_BYTES: usize = 16;
const MIN_ENTROPY_BITS_PER_BYTE: f64 = 3.5;

/// Words that mark a salt as a placeholder someone forgot to replace: EndoregDB's `BLOCKED_PATTERNS` plus
/// a few of our own. Matched case-insensitively anywhere in the line.
const PLACEHOLDERS: &[&str] =
    &["default", "change", "secret", "password", "django-insecure", "endoreg", "test", "sample", "placeholder", "example", "dummy"];

/// The fallback older EndoregDB releases used when `DJANGO_SALT` was not set
/// (`os.getenv("DJANGO_SALT", "default_salt")` in `endoreg_db/utils/hashs.py`, e.g. release 1.0.0.0).
const ENDOREG_DEFAULT: &str = "default_salt";

#[derive(Debug, thiserror::Error)]
pub enum SaltError {
    #[error("cannot read the identity salt: {0}")]
    Read(#[from] SecretError),
    #[error("the identity salt must be a single line of text")]
    NotOneLine,
    #[error("the identity salt is weak ({0}); generate one with `openssl rand -hex 32`")]
    Weak(Weakness),
    #[error(
        "EndoregDB's built-in salt `default_salt` can only be enrolled as a retired generation, to match old hashes, never as the active salt"
    )]
    DefaultActive,
    #[error("salt generation {0} is given twice")]
    DuplicateGeneration(Generation),
    #[error("salt generations {0} and {1} are the same secret; a rotation needs a new one")]
    DuplicateMaterial(Generation, Generation),
}

/// Why a salt is weak. Never contains the salt itself.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Weakness {
    #[error("{bytes} bytes of key material, at least {MIN_BYTES} are needed")]
    TooShort { bytes: usize },
    #[error("it contains the placeholder word `{0}`")]
    Placeholder(&'static str),
    #[error("only {0} distinct byte values, at least {MIN_DISTINCT_BYTES} are needed")]
    FewDistinctBytes(usize),
    #[error("{0:.2} bits of entropy per byte, at least {MIN_ENTROPY_BITS_PER_BYTE} are needed")]
    LowEntropy(f64),
}

/// One generation of the identity salt.
pub struct Salt {
    generation: Generation,
    material: Zeroizing<Vec<u8>>,
    fingerprint: Digest,
    endoreg_default: bool,
}

impl Salt {
    /// Reads and checks the salt of `generation` from a credential file.
    pub fn read(path: &Path, generation: Generation) -> Result<Salt, SaltError> {
        let secret = Secret::read(path)?;
        Salt::new(secret.expose(), generation)
    }

    /// Checks `text` (one line, surrounding whitespace already removed) and makes it the salt of `generation`.
    pub fn new(text: &str, generation: Generation) -> Result<Salt, SaltError> {
        if text.contains(['\n', '\r']) || text.trim().is_empty() {
            return Err(SaltError::NotOneLine);
        }
        if text == ENDOREG_DEFAULT {
            return Err(SaltError::DefaultActive);
        }
        check_strength(text).map_err(SaltError::Weak)?;
        Ok(Salt::from_material(text.as_bytes(), generation, false))
    }

    /// EndoregDB's built-in `default_salt`, for matching hashes an installation made without a configured
    /// salt. A [`SaltRing`] accepts it only as a retired generation.
    pub fn endoreg_default(generation: Generation) -> Salt {
        Salt::from_material(ENDOREG_DEFAULT.as_bytes(), generation, true)
    }

    fn from_material(material: &[u8], generation: Generation, endoreg_default: bool) -> Salt {
        let fingerprint = hmac_sha256(material, &[b"endoreg-identity-salt-v1"]);
        Salt { generation, material: Zeroizing::new(material.to_vec()), fingerprint, endoreg_default }
    }

    pub fn generation(&self) -> Generation {
        self.generation
    }

    /// A public fingerprint of the salt, equal to EndoregDB's `get_identity_salt_fingerprint` (HMAC-SHA256
    /// keyed with the salt over `endoreg-identity-salt-v1`): EndoregDB stores it with each record, so it tells
    /// which generation made a hash there, and two installations can check they share a salt without showing it.
    pub fn fingerprint(&self) -> Digest {
        self.fingerprint
    }

    /// HMAC-SHA256 keyed with the salt's bytes over the concatenation of `parts`.
    pub(crate) fn hmac(&self, parts: &[&[u8]]) -> Digest {
        hmac_sha256(&self.material, parts)
    }

    /// The raw key material, for the legacy scheme that appends it to the hashed text.
    pub(crate) fn material(&self) -> &[u8] {
        &self.material
    }
}

impl fmt::Debug for Salt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Salt").field("generation", &self.generation).field("fingerprint", &self.fingerprint.to_hex()).finish()
    }
}

pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Digest {
    // HMAC accepts keys of any length; the error type only exists for fixed-size-key MACs.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else { unreachable!("HMAC takes keys of any length") };
    for p in parts {
        mac.update(p);
    }
    Digest(mac.finalize().into_bytes().into())
}

pub(crate) fn check_strength(text: &str) -> Result<(), Weakness> {
    let lower = text.to_lowercase();
    if let Some(word) = PLACEHOLDERS.iter().find(|w| lower.contains(*w)) {
        return Err(Weakness::Placeholder(word));
    }
    let decoded = decode_for_judging(text);
    if decoded.len() < MIN_BYTES {
        return Err(Weakness::TooShort { bytes: decoded.len() });
    }
    let mut counts = [0usize; 256];
    for b in decoded.iter() {
        counts[usize::from(*b)] += 1;
    }
    let distinct = counts.iter().filter(|c| **c > 0).count();
    if distinct < MIN_DISTINCT_BYTES {
        return Err(Weakness::FewDistinctBytes(distinct));
    }
    let n = decoded.len() as f64;
    let entropy: f64 = counts.iter().filter(|c| **c > 0).map(|c| *c as f64 / n).map(|p| -p * p.log2()).sum();
    if entropy < MIN_ENTROPY_BITS_PER_BYTE {
        return Err(Weakness::LowEntropy(entropy));
    }
    Ok(())
}

/// What the salt's text encodes, to judge its strength: a hex or base64 line is as strong as its bytes, not
/// as its characters (64 hex digits are 32 bytes, not 64).
fn decode_for_judging(text: &str) -> Zeroizing<Vec<u8>> {
    let is_b64_char = |c: char| c.is_ascii_alphanumeric() || "+/=_-".contains(c);
    if text.len() >= 64 && text.len().is_multiple_of(2) && text.chars().all(|c| c.is_ascii_hexdigit()) {
        let bytes = text.as_bytes();
        let decoded: Vec<u8> = bytes
            .chunks_exact(2)
            .map(|p| {
                let hi = (p[0] as char).to_digit(16).unwrap_or(0) as u8;
                let lo = (p[1] as char).to_digit(16).unwrap_or(0) as u8;
                (hi << 4) | lo
            })
            .collect();
        return Zeroizing::new(decoded);
    }
    if text.len() >= 44 && text.chars().all(is_b64_char) {
        let standard: String = text
            .chars()
            .map(|c| {
                if c == '-' {
                    '+'
                } else if c == '_' {
                    '/'
                } else {
                    c
                }
            })
            .collect();
        let standard = Zeroizing::new(standard);
        let lenient = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new().with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
        );
        if let Ok(decoded) = lenient.decode(standard.as_bytes()) {
            return Zeroizing::new(decoded);
        }
    }
    Zeroizing::new(text.as_bytes().to_vec())
}

/// The salts an installation knows: the active one and the retired ones whose hashes may still be stored.
#[derive(Debug)]
pub struct SaltRing {
    active: Salt,
    retired: Vec<Salt>,
}

impl SaltRing {
    pub fn new(active: Salt, retired: Vec<Salt>) -> Result<SaltRing, SaltError> {
        if active.endoreg_default {
            return Err(SaltError::DefaultActive);
        }
        let mut generations = BTreeSet::new();
        let all: Vec<&Salt> = std::iter::once(&active).chain(retired.iter()).collect();
        for s in &all {
            if !generations.insert(s.generation) {
                return Err(SaltError::DuplicateGeneration(s.generation));
            }
        }
        for (i, a) in all.iter().enumerate() {
            if let Some(b) = all[i + 1..].iter().find(|b| b.fingerprint == a.fingerprint) {
                return Err(SaltError::DuplicateMaterial(a.generation, b.generation));
            }
        }
        Ok(SaltRing { active, retired })
    }

    /// The salt new hashes are made with.
    pub fn active(&self) -> &Salt {
        &self.active
    }

    /// Every salt, the active one first: the order in which to try them when matching.
    pub fn all(&self) -> impl Iterator<Item = &Salt> {
        std::iter::once(&self.active).chain(self.retired.iter())
    }

    pub fn get(&self, generation: Generation) -> Option<&Salt> {
        self.all().find(|s| s.generation == generation)
    }

    /// The salt whose EndoregDB fingerprint this is (records imported from EndoregDB carry it).
    pub fn by_fingerprint(&self, fingerprint: &Digest) -> Option<&Salt> {
        self.all().find(|s| s.fingerprint == *fingerprint)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The salt of the EndoregDB 1.6.5 test vectors.
    pub(crate) const VECTOR_SALT: &str = "9f2c4e7a1b3d5f60718293a4b5c6d7e8f90a1b2c3d4e5f6a7b8c9d0e1f2a3b4c";

    pub(crate) fn vector_salt() -> Salt {
        Salt::new(VECTOR_SALT, Generation(1)).unwrap()
    }

    fn weakness(text: &str) -> Weakness {
        match Salt::new(text, Generation(1)) {
            Err(SaltError::Weak(w)) => w,
            other => panic!("expected a weak salt for {text:?}, got {other:?}"),
        }
    }

    #[test]
    fn fingerprint_matches_endoreg_db() {
        // Computed by EndoregDB 1.6.5's own get_identity_salt_fingerprint with this salt.
        assert_eq!(vector_salt().fingerprint().to_hex(), "cd7e5d7644e8bb10de42e5ad17c1d784a49f3a3307983cb303c68d5c44cf3ab0");
    }

    #[test]
    fn weak_and_default_salts_are_refused_with_the_reason() {
        assert_eq!(weakness(&"a".repeat(64)), Weakness::FewDistinctBytes(1));
        assert_eq!(weakness(&"x".repeat(10)), Weakness::TooShort { bytes: 10 });
        assert_eq!(weakness("change-me-change-me-change-me-change-me"), Weakness::Placeholder("change"));
        assert_eq!(weakness("SuperSecretHospitalSalt2024!!!!!!!!!!"), Weakness::Placeholder("secret"));
        // 64 hex digits are 32 bytes, not 64: judged by what they encode, not by their characters.
        assert_eq!(weakness(&"0123456789abcdef".repeat(4)), Weakness::FewDistinctBytes(8));
        assert_eq!(weakness("a!b!c!d!".repeat(5).as_str()), Weakness::FewDistinctBytes(5));
        // Enough distinct bytes, but one of them nearly everywhere: too predictable.
        assert!(matches!(weakness(&format!("!bcdefghijklmnop{}", "a".repeat(100))), Weakness::LowEntropy(e) if e < 3.5));
        assert!(matches!(Salt::new("default_salt", Generation(1)), Err(SaltError::DefaultActive)));
        assert!(matches!(Salt::new("line one\nline two and more text for the length", Generation(1)), Err(SaltError::NotOneLine)));
    }

    #[test]
    fn a_random_salt_in_any_usual_encoding_is_accepted() {
        let bytes: [u8; 32] = rand::random();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        for text in [hex, b64, b64url] {
            // A random line may by chance contain a placeholder word; that is refused by design, so skip it.
            if PLACEHOLDERS.iter().any(|w| text.to_lowercase().contains(w)) {
                continue;
            }
            Salt::new(&text, Generation(1)).unwrap();
        }
    }

    #[test]
    fn the_salt_is_never_printed() {
        let s = vector_salt();
        let shown = format!("{s:?}");
        assert!(!shown.contains(VECTOR_SALT) && !shown.contains(&VECTOR_SALT[..16]), "{shown}");
        assert!(shown.contains("generation"));
        let e = weakness(&"a".repeat(64)).to_string();
        assert!(!e.contains("aaaa"), "{e}");
    }

    #[test]
    fn read_from_a_credential_file_trims_the_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("salt");
        std::fs::write(&path, format!("{VECTOR_SALT}\n")).unwrap();
        let s = Salt::read(&path, Generation(3)).unwrap();
        assert_eq!(s.fingerprint(), vector_salt().fingerprint());
        assert_eq!(s.generation(), Generation(3));
        let err = Salt::read(&dir.path().join("missing"), Generation(1)).unwrap_err().to_string();
        assert!(err.contains("missing"), "{err}");
    }

    #[test]
    fn a_ring_refuses_the_default_as_active_duplicates_and_finds_generations() {
        let other = Salt::new(&"0f1e2d3c4b5a69788796a5b4c3d2e1f0".repeat(2), Generation(2)).unwrap();
        let ring = SaltRing::new(other, vec![vector_salt(), Salt::endoreg_default(Generation(0))]).unwrap();
        assert_eq!(ring.active().generation(), Generation(2));
        assert_eq!(ring.all().map(|s| s.generation().0).collect::<Vec<_>>(), [2, 1, 0]);
        assert_eq!(ring.by_fingerprint(&vector_salt().fingerprint()).map(Salt::generation), Some(Generation(1)));
        assert!(ring.get(Generation(9)).is_none());

        assert!(matches!(SaltRing::new(Salt::endoreg_default(Generation(1)), vec![]), Err(SaltError::DefaultActive)));
        let dup_gen = SaltRing::new(vector_salt(), vec![Salt::endoreg_default(Generation(1))]);
        assert!(matches!(dup_gen, Err(SaltError::DuplicateGeneration(Generation(1)))));
        let same = Salt::new(VECTOR_SALT, Generation(2)).unwrap();
        assert!(matches!(SaltRing::new(same, vec![vector_salt()]), Err(SaltError::DuplicateMaterial(Generation(2), Generation(1)))));
    }
}
