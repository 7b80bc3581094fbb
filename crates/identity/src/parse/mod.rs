//! Names, dates and times as an overlay OCR or a report gives them.
//!
//! Every parser returns the value with a confidence in 0..=1 (1: read exactly as a well-formed value; each
//! repair, guess or ambiguity lowers it, as each function documents) or an error naming the problem. Errors
//! never contain the text or the value: they end up in logs, and the text is identifying.
//!
//! No parser panics on any input (a test feeds each tens of thousands of random strings).

mod date;
mod digits;
mod name;
mod time;

pub use date::{parse_date, two_digit_year};
pub use name::{NameOrder, PersonName, parse_name_field, parse_person_name};
pub use time::parse_time;

/// A parsed value and how sure the parser is of it.
#[derive(Clone, Debug, PartialEq)]
pub struct Parsed<T> {
    pub value: T,
    /// 0..=1.
    pub confidence: f32,
}

impl<T> Parsed<T> {
    fn new(value: T, confidence: f32) -> Self {
        Parsed { value, confidence: confidence.clamp(0.0, 1.0) }
    }
}

/// Why a text did not give a value. Deliberately without the text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the text is empty")]
    Empty,
    #[error("no date (DD.MM.YYYY, D.M.YYYY, DD.MM.YY or YYYY-MM-DD) was found in the text")]
    NoDate,
    #[error("the text has a date that does not exist in the calendar")]
    NotACalendarDate,
    #[error("the date is in the future")]
    InFuture,
    #[error("the date is before 1900")]
    BeforeEarliest,
    #[error("no time of day (HH:MM or HH:MM:SS) was found in the text")]
    NoTime,
    #[error("the text has no letters that could be a name")]
    NoName,
    #[error("the name has one part only, so first and last name cannot be told apart")]
    OnePart,
}

#[cfg(test)]
mod fuzz {
    use chrono::NaiveDate;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    /// Random strings from characters parsers care about and some they do not, plus arbitrary code points.
    fn random_text(rng: &mut StdRng) -> String {
        const POOL: &[char] = &[
            '0', '1', '2', '3', '5', '8', '9', 'O', 'o', 'l', 'I', 'S', 'B', 'D', 'Z', '.', ',', ':', '-', '/', ' ', '\t', '\'', 'ä', 'ß',
            'Ü', 'é', '‐', '’', '|', '_', 'A', 'z', 'x', '\u{308}', '\u{0}', '\u{feff}', '١', '٢', '𝟙', 'İ', 'ﬀ',
        ];
        let len = rng.random_range(0..40);
        (0..len)
            .map(|_| {
                if rng.random_bool(0.85) {
                    POOL[rng.random_range(0..POOL.len())]
                } else {
                    char::from_u32(rng.random_range(0..0x11_0000)).unwrap_or('?')
                }
            })
            .collect()
    }

    #[test]
    fn no_parser_panics_and_every_confidence_is_in_range() {
        let today = NaiveDate::from_ymd_opt(2026, 5, 1).unwrap();
        let mut rng = StdRng::seed_from_u64(13);
        let in_range = |c: f32| (0.0..=1.0).contains(&c);
        for _ in 0..30_000 {
            let text = random_text(&mut rng);
            if let Ok(p) = parse_date(&text, today) {
                assert!(in_range(p.confidence) && p.value <= today, "{text:?}");
            }
            if let Ok(p) = parse_time(&text) {
                assert!(in_range(p.confidence), "{text:?}");
            }
            if let Ok(p) = parse_name_field(&text) {
                assert!(in_range(p.confidence) && !p.value.is_empty(), "{text:?}");
            }
            for order in [NameOrder::Auto, NameOrder::FirstLast, NameOrder::LastFirst] {
                if let Ok(p) = parse_person_name(&text, order) {
                    assert!(in_range(p.confidence) && !p.value.first.is_empty() && !p.value.last.is_empty(), "{text:?}");
                }
            }
        }
    }
}
