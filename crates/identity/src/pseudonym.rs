//! Pseudonym hashes compatible with EndoregDB, so a patient, examination or examiner found here matches the
//! same record in an EndoregDB installation that shares the salt, whatever its age.
//!
//! **Current scheme** (EndoregDB 1.6.5, `endoreg_db/utils/hashs.py`: `get_patient_identity_fingerprint`,
//! `get_patient_examination_hash`, `get_examiner_hash`): HMAC-SHA256 keyed with the salt's UTF-8 bytes over a
//! compact JSON array (Python's `json.dumps(..., ensure_ascii=False, separators=(",", ":"))`: non-ASCII as raw
//! UTF-8, only `"`, `\` and control characters escaped), with no case folding and no Unicode normalisation;
//! names and the center key are stripped of surrounding whitespace as Python's `str.strip()` does:
//! - patient: `["patient-identity-v1", first, last, "YYYY-MM-DD", center_key]`
//! - examination: `["patient-examination-v1", patient_fingerprint_hex, "YYYY-MM-DD", center_key]`
//! - examiner: `["examiner-identity-v1", first, last, center_key]`
//!
//! **Legacy scheme** (EndoregDB releases before the HMAC change, e.g. 1.0.0.0:
//! `endoreg_db/models/metadata/sensitive_meta_logic.py` `calculate_patient_hash` / `calculate_examination_hash`
//! over `endoreg_db/utils/hashs.py` `get_hash_string`; 1.6.5 keeps the same encoding as `legacy_hash` in
//! `endoreg_db/services/secret_rotation/identity.py` to migrate such records): the text
//! `first + last + dob + center_name + dob + examination_date` followed by the salt, UTF-8, hashed with
//! SHA-256; the patient and examination hashes hash that hex digest once more (double SHA-256), the examiner
//! hash does not (`get_examiner_hash`, single SHA-256, no dates). Names are *not* stripped there. It uses the
//! center's display *name*, not its key. The placeholder date 1900-01-01 (and an absent date) is written as
//! the empty string, as the older releases' `_get_date_hash_string` did.
//!
//! The digests are pseudonyms of the tuple, not proof of one natural person: two people with equal names, birth
//! date and center get the same patient hash. Matching uses them; deciding uses a person.

use chrono::NaiveDate;
use sha2::{Digest as _, Sha256};

use crate::salt::{Salt, SaltRing};
use crate::{Digest, Generation};

/// Which of EndoregDB's schemes made a hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// HMAC-SHA256 over the JSON tuple (EndoregDB 1.6.5).
    HmacV1,
    /// SHA-256 of the hex SHA-256 of the concatenated fields and the salt (patients and examinations before 1.6).
    LegacyDoubleSha256,
    /// SHA-256 of the concatenated fields and the salt (examiners before 1.6).
    LegacySha256,
}

/// Who a patient is, as hashed: names as read or confirmed (case and accents matter), birth date.
#[derive(Clone, Copy, Debug)]
pub struct Person<'a> {
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub birth_date: NaiveDate,
}

/// The center as both schemes name it: the current one by its stable key, the legacy one by its display name.
#[derive(Clone, Copy, Debug)]
pub struct Center<'a> {
    pub key: &'a str,
    pub name: &'a str,
}

/// The patient's fingerprint (current scheme).
pub fn patient_fingerprint(salt: &Salt, person: &Person<'_>, center_key: &str) -> Digest {
    let date = iso_date(person.birth_date);
    salt.hmac(&[&json_array(&[
        "patient-identity-v1",
        py_strip(person.first_name),
        py_strip(person.last_name),
        &date,
        py_strip(center_key),
    ])])
}

/// The examination hash (current scheme) from the patient's fingerprint made with the same salt.
pub fn examination_hash(salt: &Salt, patient_fingerprint: &Digest, examination_date: NaiveDate, center_key: &str) -> Digest {
    let date = iso_date(examination_date);
    salt.hmac(&[&json_array(&["patient-examination-v1", &patient_fingerprint.to_hex(), &date, py_strip(center_key)])])
}

/// The examiner hash (current scheme).
pub fn examiner_hash(salt: &Salt, first_name: &str, last_name: &str, center_key: &str) -> Digest {
    salt.hmac(&[&json_array(&["examiner-identity-v1", py_strip(first_name), py_strip(last_name), py_strip(center_key)])])
}

/// The legacy patient hash (double SHA-256).
pub fn legacy_patient_hash(salt: &Salt, person: &Person<'_>, center_name: &str) -> Digest {
    double_sha256(&legacy_text(salt, person.first_name, person.last_name, Some(person.birth_date), center_name, None))
}

/// The legacy examination hash (double SHA-256).
pub fn legacy_examination_hash(salt: &Salt, person: &Person<'_>, center_name: &str, examination_date: NaiveDate) -> Digest {
    double_sha256(&legacy_text(salt, person.first_name, person.last_name, Some(person.birth_date), center_name, Some(examination_date)))
}

/// The legacy examiner hash (single SHA-256).
pub fn legacy_examiner_hash(salt: &Salt, first_name: &str, last_name: &str, center_name: &str) -> Digest {
    Digest(Sha256::digest(legacy_text(salt, first_name, last_name, None, center_name, None)).into())
}

/// Every hash to store for a patient and an examination under one salt, with that salt's generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hashes {
    pub generation: Generation,
    pub patient: Digest,
    pub legacy_patient: Digest,
    pub examination: Option<Digest>,
    pub legacy_examination: Option<Digest>,
}

/// The hashes of `person` (and of the examination on `examination_date`, if given) under `salt`.
pub fn hashes(salt: &Salt, person: &Person<'_>, center: &Center<'_>, examination_date: Option<NaiveDate>) -> Hashes {
    let patient = patient_fingerprint(salt, person, center.key);
    Hashes {
        generation: salt.generation(),
        patient,
        legacy_patient: legacy_patient_hash(salt, person, center.name),
        examination: examination_date.map(|d| examination_hash(salt, &patient, d, center.key)),
        legacy_examination: examination_date.map(|d| legacy_examination_hash(salt, person, center.name, d)),
    }
}

/// One hash a stored patient may carry: which salt generation and scheme would have made it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub generation: Generation,
    pub scheme: Scheme,
    pub digest: Digest,
}

/// Every patient hash `person` could be stored under in any generation and either scheme, the active
/// generation first: look all of them up, and re-hash a match found under an old generation or scheme.
pub fn patient_candidates(ring: &SaltRing, person: &Person<'_>, center: &Center<'_>) -> Vec<Candidate> {
    ring.all()
        .flat_map(|salt| {
            [
                Candidate { generation: salt.generation(), scheme: Scheme::HmacV1, digest: patient_fingerprint(salt, person, center.key) },
                Candidate {
                    generation: salt.generation(),
                    scheme: Scheme::LegacyDoubleSha256,
                    digest: legacy_patient_hash(salt, person, center.name),
                },
            ]
        })
        .collect()
}

/// Every examiner hash, likewise.
pub fn examiner_candidates(ring: &SaltRing, first_name: &str, last_name: &str, center: &Center<'_>) -> Vec<Candidate> {
    ring.all()
        .flat_map(|salt| {
            [
                Candidate {
                    generation: salt.generation(),
                    scheme: Scheme::HmacV1,
                    digest: examiner_hash(salt, first_name, last_name, center.key),
                },
                Candidate {
                    generation: salt.generation(),
                    scheme: Scheme::LegacySha256,
                    digest: legacy_examiner_hash(salt, first_name, last_name, center.name),
                },
            ]
        })
        .collect()
}

fn iso_date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// Python's `str.strip()`: Unicode whitespace, and also the separators U+001C–U+001F, which Python counts
/// as whitespace and Rust's `trim` does not.
fn py_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

/// Python's `json.dumps(items, ensure_ascii=False, separators=(",", ":"))` for a list of strings.
pub(crate) fn json_array(items: &[&str]) -> Vec<u8> {
    let mut out = String::from("[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        for c in item.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{08}' => out.push_str("\\b"),
                '\u{0c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push(']');
    out.into_bytes()
}

fn legacy_date(d: Option<NaiveDate>) -> String {
    match d {
        Some(d) if d != NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN) => iso_date(d),
        _ => String::new(),
    }
}

fn legacy_text(salt: &Salt, first: &str, last: &str, dob: Option<NaiveDate>, center_name: &str, exam: Option<NaiveDate>) -> Vec<u8> {
    let dob = legacy_date(dob);
    let exam = legacy_date(exam);
    let mut text = format!("{first}{last}{dob}{center_name}{dob}{exam}").into_bytes();
    text.extend_from_slice(salt.material());
    text
}

fn double_sha256(text: &[u8]) -> Digest {
    let inner = Digest(Sha256::digest(text).into()).to_hex();
    Digest(Sha256::digest(inner.as_bytes()).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::salt::tests::vector_salt;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    const CENTER_NAME: &str = "Universitätsklinikum Würzburg";
    const EXAM: (i32, u32, u32) = (2024, 2, 3);

    /// (first, last, birth date, patient, examination, examiner, legacy patient, legacy examination, legacy examiner)
    /// The current-scheme values were produced by EndoregDB 1.6.5's own functions (`get_patient_identity_fingerprint`,
    /// `get_patient_examination_hash`, `get_examiner_hash`); the first two rows' patient and examination values are
    /// also the issue's. The legacy values were produced by EndoregDB 1.0.0.0's own `calculate_patient_hash`,
    /// `calculate_examination_hash` and `get_examiner_hash` and equal 1.6.5's `legacy_hash`. Salt, center key `ukw`,
    /// center name `Universitätsklinikum Würzburg`, examination 2024-02-03.
    #[allow(clippy::type_complexity)]
    const VECTORS: &[(&str, &str, (i32, u32, u32), [&str; 6])] = &[
        (
            "Erika",
            "Mustermann",
            (1961, 8, 12),
            [
                "ddf34eeaf14794a31982b517cba9079d9f86995b2e6795e253fc7d4950ad690c",
                "b737d1d8fca1feade8fe601e794f2440a7b8511dbbd17adac65f08c1871171ae",
                "4ef457d50d6ae1369f3fbb125f42149bbce316caf7d79aee3cef3c9b987fa9b3",
                "0aef3d30a2f7dbf56a56891f162e3d1e555d737834b757a18730a719485a4145",
                "d2c7d829f68ad6cedee6e0baa0cbbbbc449dc1c2d34af66cc27906fcbdf51492",
                "176914a7ea8f95f140d6ee2ce452576236de78c242a8e775744e363514c67491",
            ],
        ),
        (
            "Jörg-Ünal",
            "Straßburger-Öztürk",
            (1948, 2, 29),
            [
                "c2c2481b058fe944dba748c5af06c3f0365666d14955ca1348e5247a7f4159b8",
                "7e81b2a1fc11771773cfe82f42a7dbc0acdfa14487ef274069516d2f8255a351",
                "dd158f14947d12e4576bafee067405882d735d068416fda37cbff133c6b0b842",
                "83ee8ad9d737c35bde3e9b6fcefeaead4cc0243447b9409ea11985cb00875897",
                "3946e2e361e465efc8e0bc398eb9d4e756354a1dcaa250d41faa9eccdfa813e9",
                "c8c5fb4add53971594ba5c644e40728192da5dad35ee8afa2341b6f30c335e57",
            ],
        ),
        (
            // Surrounding whitespace: stripped by the current scheme, kept by the legacy one.
            "  Anna ",
            " Müller\t",
            (2000, 1, 1),
            [
                "f73b3f48cb06d9b05360c711fdca4954889c0115749f1bf4e5d8549ae2bcf8da",
                "d4c0f59b3556514057ea686736809163ca60516632894046afe9bce7960a979d",
                "694e8e61721bcfb269d8ab35a0bcadf6e52ba8e0a161c679bc491bdd846e159b",
                "4927a48f4b254c65824448b3c503c80e072cdf432f6ab42f14761d15d0fc5515",
                "f78901843262042bdab298e52c3850e7a751219d8943e9133e04a5d8fdf1082a",
                "fef2b1094f51dc3cfbf0242b52f900bcc693c8539ab1a80121e6ee8235bdb995",
            ],
        ),
    ];

    #[test]
    fn endoreg_db_vectors_of_both_schemes() {
        let salt = vector_salt();
        let center = Center { key: "ukw", name: CENTER_NAME };
        let exam = date(EXAM.0, EXAM.1, EXAM.2);
        for (first, last, (y, m, d), expected) in VECTORS {
            let person = Person { first_name: first, last_name: last, birth_date: date(*y, *m, *d) };
            let h = hashes(&salt, &person, &center, Some(exam));
            let got = [
                h.patient,
                h.examination.unwrap(),
                examiner_hash(&salt, first, last, "ukw"),
                h.legacy_patient,
                h.legacy_examination.unwrap(),
                legacy_examiner_hash(&salt, first, last, CENTER_NAME),
            ];
            for (what, (got, want)) in ["patient", "examination", "examiner", "legacy patient", "legacy examination", "legacy examiner"]
                .iter()
                .zip(got.iter().zip(expected))
            {
                assert_eq!(got.to_hex(), *want, "{what} of {first} {last}");
            }
            assert_eq!(h.generation, Generation(1));
        }
    }

    #[test]
    fn json_escapes_and_python_strip_match_endoreg_db() {
        // EndoregDB 1.6.5's own functions on names with a quote, a tab, a backslash, a control character, DEL
        // and U+2028 inside, and a center key with spaces around it.
        let salt = vector_salt();
        let person =
            Person { first_name: "Anna \"Anni\"\tMaria", last_name: "Mül\\ler\u{1}\u{7f}\u{2028}x", birth_date: date(1999, 12, 31) };
        let fp = patient_fingerprint(&salt, &person, " ukw ");
        assert_eq!(fp.to_hex(), "395ab775a2adb4c152c54e81e2352e0ff601c29398dfdcfaabf32a043e1bc3ec");
        assert_eq!(
            examination_hash(&salt, &fp, date(2024, 2, 3), " ukw ").to_hex(),
            "b9a5d0a1f859c58a8e3d80797788794d6a40b639b10760471020f938a98fce20"
        );
        assert_eq!(
            examiner_hash(&salt, person.first_name, person.last_name, "ukw").to_hex(),
            "3d1b8693f243905d4776991eed40daf9b079a39ce78f0dd931a0fcaa8bda7e1e"
        );
        assert_eq!(legacy_patient_hash(&salt, &person, "UKW").to_hex(), "7f6348b98d23905ac88aadef956646eb757be932636c3cf31744eba5175ca344");
        // Control characters with hex letters are escaped in lowercase (`\u001b`), as Python does.
        assert_eq!(
            examiner_hash(&salt, "Anna\u{1b}Maria", "X\u{0b}Y", "ukw").to_hex(),
            "c531fb84ae5bfeae9c97f1e3ec96bfada23510ff6cd95b7f26ff70d71138ad50"
        );
        // Python strips U+001C..U+001F, U+3000, U+00A0 too (EndoregDB 1.6.5 gives Erika's fingerprint for these).
        let padded = Person { first_name: "\u{1f}Erika\u{3000}", last_name: "\u{a0}Mustermann\u{1c}\n", birth_date: date(1961, 8, 12) };
        assert_eq!(patient_fingerprint(&salt, &padded, "\tukw\u{1d}").to_hex(), VECTORS[0].3[0]);
    }

    #[test]
    fn case_and_accents_make_a_different_hash() {
        let salt = vector_salt();
        let a = Person { first_name: "Erika", last_name: "Mustermann", birth_date: date(1961, 8, 12) };
        let b = Person { last_name: "MUSTERMANN", ..a };
        assert_ne!(patient_fingerprint(&salt, &a, "ukw"), patient_fingerprint(&salt, &b, "ukw"));
    }

    #[test]
    fn candidates_cover_every_generation_and_scheme_active_first() {
        let active = Salt::new(&"0f1e2d3c4b5a69788796a5b4c3d2e1f0".repeat(2), Generation(2)).unwrap();
        let ring = SaltRing::new(active, vec![vector_salt()]).unwrap();
        let person = Person { first_name: "Erika", last_name: "Mustermann", birth_date: date(1961, 8, 12) };
        let center = Center { key: "ukw", name: CENTER_NAME };
        let c = patient_candidates(&ring, &person, &center);
        assert_eq!(c.len(), 4);
        assert_eq!((c[0].generation, c[0].scheme), (Generation(2), Scheme::HmacV1));
        let old = c.iter().find(|c| c.generation == Generation(1) && c.scheme == Scheme::HmacV1).unwrap();
        assert_eq!(old.digest.to_hex(), VECTORS[0].3[0]);
        let legacy = c.iter().find(|c| c.generation == Generation(1) && c.scheme == Scheme::LegacyDoubleSha256).unwrap();
        assert_eq!(legacy.digest.to_hex(), VECTORS[0].3[3]);
        let e = examiner_candidates(&ring, "Erika", "Mustermann", &center);
        assert!(e.iter().any(|c| c.scheme == Scheme::LegacySha256 && c.digest.to_hex() == VECTORS[0].3[5]));
    }

    #[test]
    fn the_placeholder_birth_date_is_empty_in_the_legacy_text() {
        let salt = vector_salt();
        let text = legacy_text(&salt, "A", "B", Some(date(1900, 1, 1)), "C", Some(date(2024, 2, 3)));
        assert!(text.starts_with(b"ABC2024-02-03"));
        assert!(text.ends_with(salt.material()));
    }
}
