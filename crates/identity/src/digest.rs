//! A 32-byte keyed hash as stored: lowercase hex, like EndoregDB's `hexdigest()`.

use std::fmt;
use std::str::FromStr;

/// A SHA-256-sized digest (pseudonym hash, blind index). Compared in constant time, because a lookup that
/// compares a candidate against stored values must not tell by its timing how much of it matched.
#[derive(Clone, Copy, Eq)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    pub fn to_hex(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(64);
        for b in self.0 {
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xf)] as char);
        }
        out
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for Digest {
    fn eq(&self, other: &Self) -> bool {
        self.0.iter().zip(other.0.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

// Equal digests have equal bytes, so hashing the bytes agrees with the constant-time equality.
impl std::hash::Hash for Digest {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DigestParseError {
    #[error("a digest has 64 hex digits, this has {0} characters")]
    Length(usize),
    #[error("a digest has only the hex digits 0-9 and a-f, found `{0}`")]
    NotHex(char),
}

impl FromStr for Digest {
    type Err = DigestParseError;

    /// Accepts upper- and lowercase hex (stored hashes from other tools may be either).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 64 {
            return Err(DigestParseError::Length(s.chars().count()));
        }
        let mut out = [0u8; 32];
        let digits: Vec<u8> =
            s.chars().map(|c| c.to_digit(16).map(|d| d as u8).ok_or(DigestParseError::NotHex(c))).collect::<Result<_, _>>()?;
        for (o, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
            *o = (pair[0] << 4) | pair[1];
        }
        Ok(Digest(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_bad_text_is_named() {
        let d: Digest = "DDF34EEAF14794A31982B517CBA9079D9F86995B2E6795E253FC7D4950AD690C".parse().unwrap();
        assert_eq!(d.to_hex(), "ddf34eeaf14794a31982b517cba9079d9f86995b2e6795e253fc7d4950ad690c");
        assert_eq!(d.to_hex().parse::<Digest>().unwrap(), d);
        assert_eq!("abc".parse::<Digest>().unwrap_err(), DigestParseError::Length(3));
        let bad = format!("{}g", "0".repeat(63));
        assert_eq!(bad.parse::<Digest>().unwrap_err(), DigestParseError::NotHex('g'));
        // Multi-byte characters must not be mistaken for a valid length or panic on slicing.
        assert!("ä".repeat(32).parse::<Digest>().is_err());
    }

    #[test]
    fn equality_looks_at_every_byte() {
        let a = Digest([7; 32]);
        let mut b = a;
        b.0[31] ^= 1;
        assert_ne!(a, b);
        b.0[31] ^= 1;
        assert_eq!(a, b);
    }
}
