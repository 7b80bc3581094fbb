//! Keyed blind indexes: how the registry finds a patient by name or birth date without storing, or comparing
//! against, the plain values.
//!
//! An index is HMAC-SHA256, keyed with a secret of its own (not the identity salt: the salt is shared with
//! EndoregDB installations, this key never leaves ours), over the field's kind and the value's *normal form*.
//! Unlike EndoregDB's hashes it is forgiving where OCR and typing differ and the person does not:
//!
//! 1. Unicode NFC, so a decomposed `u` + combining diaeresis equals `ü`;
//! 2. dash look-alikes (U+2010–U+2015, U+2212 minus, U+FE63, U+FF0D) become `-`, apostrophe look-alikes
//!    (U+2018, U+2019, U+02BC, U+00B4 acute, U+0060 grave, U+FF07) become `'`;
//! 3. Unicode default full case folding (`ß` and `ẞ` become `ss`, so `STRASSBURGER` equals `Straßburger`),
//!    then NFC again;
//! 4. every run of whitespace becomes one space, none at the ends, none around a hyphen.
//!
//! Deliberately *not* done: transliteration (`ü` stays `ü`, not `ue`: `Müller` and `Mueller` are different
//! names until a person says otherwise), removing accents, reordering name parts.
//!
//! Like salts, index keys have a [`Generation`]: store it with each index, and recompute when rotating.

use std::fmt;
use std::path::Path;

use chrono::NaiveDate;
use endoreg_common::secret::{Secret, SecretError};
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

use crate::salt::{Weakness, check_strength, hmac_sha256};
use crate::{Digest, Generation};

#[derive(Debug, thiserror::Error)]
pub enum BlindIndexError {
    #[error("cannot read the blind-index key: {0}")]
    Read(#[from] SecretError),
    #[error("the blind-index key must be a single line of text")]
    NotOneLine,
    #[error("the blind-index key is weak ({0}); generate one with `openssl rand -hex 32`")]
    Weak(Weakness),
}

/// Which field an index is of: the same value indexes differently as a first and as a last name, so an index
/// of one cannot be matched against the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    FirstName,
    LastName,
    /// A whole name in one field ("Erika Mustermann"), as uploaders sometimes give it.
    FullName,
}

impl Field {
    fn tag(self) -> &'static str {
        match self {
            Field::FirstName => "first-name",
            Field::LastName => "last-name",
            Field::FullName => "full-name",
        }
    }
}

/// The secret of one generation of blind indexes. Zeroed on drop, never printed.
pub struct BlindIndexKey {
    generation: Generation,
    key: Zeroizing<Vec<u8>>,
}

impl BlindIndexKey {
    /// Reads the key from a credential file: one line, as strong as an identity salt must be.
    pub fn read(path: &Path, generation: Generation) -> Result<Self, BlindIndexError> {
        let secret = Secret::read(path)?;
        Self::new(secret.expose(), generation)
    }

    pub fn new(text: &str, generation: Generation) -> Result<Self, BlindIndexError> {
        if text.contains(['\n', '\r']) || text.trim().is_empty() {
            return Err(BlindIndexError::NotOneLine);
        }
        check_strength(text).map_err(BlindIndexError::Weak)?;
        Ok(BlindIndexKey { generation, key: Zeroizing::new(text.as_bytes().to_vec()) })
    }

    pub fn generation(&self) -> Generation {
        self.generation
    }

    /// The index of a name, or `None` when nothing is left of it after normalising (no index for "no name").
    pub fn name(&self, field: Field, value: &str) -> Option<Digest> {
        let normal = normalise_name(value);
        if normal.is_empty() {
            return None;
        }
        Some(self.mac(&["name", field.tag(), &normal]))
    }

    pub fn birth_date(&self, date: NaiveDate) -> Digest {
        self.mac(&["birth-date", &date.format("%Y-%m-%d").to_string()])
    }

    /// One index for a whole identity within a center: finds the patient in one lookup. `None` when a name
    /// normalises to nothing.
    pub fn person(&self, first_name: &str, last_name: &str, birth_date: NaiveDate, center_key: &str) -> Option<Digest> {
        let (first, last) = (normalise_name(first_name), normalise_name(last_name));
        if first.is_empty() || last.is_empty() {
            return None;
        }
        Some(self.mac(&["person", &first, &last, &birth_date.format("%Y-%m-%d").to_string(), center_key.trim()]))
    }

    fn mac(&self, parts: &[&str]) -> Digest {
        // The same unambiguous JSON array as the pseudonyms, under a domain of its own.
        let mut items = vec!["endoreg-blind-index-v1"];
        items.extend_from_slice(parts);
        hmac_sha256(&self.key, &[&crate::pseudonym::json_array(&items)])
    }
}

impl fmt::Debug for BlindIndexKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlindIndexKey").field("generation", &self.generation).finish_non_exhaustive()
    }
}

/// The normal form of a name described in the module documentation.
pub fn normalise_name(value: &str) -> String {
    let composed: String = value.nfc().map(unify_punctuation).collect();
    let folded: String = caseless::default_case_fold_str(&composed).nfc().collect();
    let mut out = String::with_capacity(folded.len());
    for word in folded.split_whitespace() {
        let joins = out.ends_with('-') || word.starts_with('-');
        if !out.is_empty() && !joins {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

pub(crate) fn unify_punctuation(c: char) -> char {
    match c {
        '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{fe63}' | '\u{ff0d}' => '-',
        '\u{2018}' | '\u{2019}' | '\u{02bc}' | '\u{00b4}' | '\u{0060}' | '\u{ff07}' => '\'',
        c => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(generation: u32) -> BlindIndexKey {
        let text = if generation == 1 {
            "3a7c1e5f9b2d4f6081a3c5e7092b4d6f8a1c3e5f7092b4d6f81a3c5e7f9b2d40"
        } else {
            "c0ffe3e1d2c3b4a5968778695a4b3c2d1e0f1a2b3c4d5e6f708192a3b4c5d6e7"
        };
        BlindIndexKey::new(text, Generation(generation)).unwrap()
    }

    #[test]
    fn the_normal_form_is_as_documented() {
        assert_eq!(normalise_name("  STRASSBURGER–Öztürk "), "strassburger-öztürk");
        assert_eq!(normalise_name("Straßburger-Öztürk"), "strassburger-öztürk");
        assert_eq!(normalise_name("Mu\u{308}ller"), normalise_name("Müller"));
        assert_eq!(normalise_name("O\u{2019}Brien"), "o'brien");
        assert_eq!(normalise_name("Müller  -  Lüdenscheidt"), "müller-lüdenscheidt");
        assert_eq!(normalise_name("Anna\t\nMaria"), "anna maria");
        assert_ne!(normalise_name("Mueller"), normalise_name("Müller"), "no transliteration");
        assert_eq!(normalise_name(" \t "), "");
    }

    #[test]
    fn equal_names_index_equally_and_nothing_else_does() {
        let k = key(1);
        let a = k.name(Field::LastName, "STRASSBURGER-ÖZTÜRK").unwrap();
        assert_eq!(Some(a), k.name(Field::LastName, "Straßburger‐Öztürk"));
        assert_ne!(Some(a), k.name(Field::FirstName, "Straßburger-Öztürk"), "fields are separated");
        assert_ne!(Some(a), key(2).name(Field::LastName, "Straßburger-Öztürk"), "keys are separated");
        assert_eq!(k.name(Field::LastName, "  "), None);
        let dob = NaiveDate::from_ymd_opt(1961, 8, 12).unwrap();
        assert_eq!(k.person("ERIKA", "Mustermann", dob, "ukw"), k.person("erika", " mustermann", dob, " ukw"));
        assert_ne!(k.person("Erika", "Mustermann", dob, "ukw"), k.person("Erika", "Mustermann", dob, "other"));
        assert_ne!(k.person("Erika", "Mustermann", dob, "ukw"), k.person("Mustermann", "Erika", dob, "ukw"));
        assert_eq!(k.person("", "Mustermann", dob, "ukw"), None);
        assert_ne!(k.birth_date(dob), k.birth_date(dob.succ_opt().unwrap()));
    }

    #[test]
    fn the_index_does_not_contain_the_value_and_the_key_is_not_printed() {
        let k = key(1);
        let d = k.name(Field::LastName, "Mustermann").unwrap().to_hex();
        assert!(!d.contains("muster"));
        assert!(!format!("{k:?}").contains("3a7c1e"));
        assert!(matches!(BlindIndexKey::new(&"ab".repeat(32), Generation(1)), Err(BlindIndexError::Weak(_))));
    }
}
