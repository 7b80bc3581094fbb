//! Patient identity as a pure library: what the registry, the CLI and the media worker need to turn what an
//! overlay or a report says about a patient into pseudonyms, lookups and sealed values.
//!
//! | module | job |
//! |---|---|
//! | [`salt`] | the identity salt: read from a credential file, refused when weak or a known default, never printed; generations for rotation |
//! | [`pseudonym`] | EndoregDB-compatible patient, examination and examiner hashes: the current HMAC scheme (1.6.5) and the legacy SHA-256 one |
//! | [`blind_index`] | our own keyed lookups over a documented normal form of names, so equal names find each other without the plain values |
//! | [`envelope`] | envelope encryption: data keys per generation wrapped with age, values sealed with an AEAD bound to table, column and row |

//!
//! What it is not: it stores nothing, serves nothing, reads no video and runs no OCR. Callers own persistence
//! (store every hash and sealed value *with its generation*), the choice of which salt or key file to read,
//! and the decision what to do with a field that is not decisive.

pub mod blind_index;
pub mod envelope;
pub mod parse;
pub mod pseudonym;
pub mod salt;
pub mod vote;

mod digest;

pub use digest::{Digest, DigestParseError};

use std::fmt;

/// The generation of a secret (salt, blind-index key, data key). Every stored hash and sealed value keeps the
/// generation it was made with, so values made under an older secret can still be matched or opened while a
/// rotation re-derives them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Generation(pub u32);

impl Generation {
    pub fn next(self) -> Option<Generation> {
        self.0.checked_add(1).map(Generation)
    }
}

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
