//! Dates: `DD.MM.YYYY`, `D.M.YYYY`, `DD.MM.YY`, `YYYY-MM-DD` anywhere in a text (`Geb.: 12.08.1961`).
//!
//! Confidence starts at 1 for `D.M.YYYY` with dots and `YYYY-MM-DD` with dashes, and is multiplied by
//! 0.95 for another separator (`/`, `-` in a German-order date, dots in an ISO one), 0.9 for a `,`
//! (OCR's `.`), 0.85 for two different separators, 0.95 for spaces around them, 0.75 for a two-digit year,
//! 0.85 for each letter read as a digit, and 0.7 when the text holds another, different plausible date.
//!
//! Plausible means: a calendar date, not after `today`, not before 1900-01-01.
//!
//! Two-digit years take the latest century that does not put the year after `today`'s: in 2026, `26` is
//! 2026 and `27` is 1927 ([`two_digit_year`]). Right for examination dates; for birth dates it makes
//! children of the current century's first years out of old people born a hundred years earlier, which
//! is why such a date's confidence is low and a person confirms it.

use chrono::{Datelike, NaiveDate};

use super::digits;
use super::{ParseError, Parsed};

/// The century window: `yy` → the latest year ending in `yy` that is not after `today`'s year.
pub fn two_digit_year(yy: u32, today: NaiveDate) -> i32 {
    let yy = (yy % 100) as i32;
    let century = today.year() - today.year().rem_euclid(100);
    if century + yy <= today.year() { century + yy } else { century - 100 + yy }
}

fn earliest() -> NaiveDate {
    NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN)
}

/// The most plausible date in `text`, judged against `today`.
pub fn parse_date(text: &str, today: NaiveDate) -> Result<Parsed<NaiveDate>, ParseError> {
    if text.trim().is_empty() {
        return Err(ParseError::Empty);
    }
    let tokens = digits::tokens(text);
    let mut found: Vec<(NaiveDate, f32, usize, usize)> = Vec::new();
    let mut first_error: Option<ParseError> = None;
    for start in 0..tokens.len() {
        let Some(seq) = digits::sequence(&tokens, start, 3) else { continue };
        if seq.numbers.len() < 3 || seq.separators.contains(&':') {
            continue;
        }
        let Some((date, confidence)) = interpret(&seq, today) else { continue };
        match date {
            Ok(date) => found.push((date, confidence, seq.start, seq.end)),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    // The most confident reading; of equals, the first in the text.
    let best = found.iter().copied().fold(None, |best: Option<(NaiveDate, f32, usize, usize)>, x| match best {
        Some(b) if b.1 >= x.1 => Some(b),
        _ => Some(x),
    });
    let Some((date, mut confidence, start, end)) = best else {
        return Err(first_error.unwrap_or(ParseError::NoDate));
    };
    let other = found.iter().any(|(d, _, s, e)| *d != date && (*e <= start || *s >= end));
    if other {
        confidence *= 0.7;
    }
    Ok(Parsed::new(date, confidence))
}

/// A sequence of three numbers as a date: `None` when its shape is no date format, else the date (or why it
/// is implausible) and the confidence.
fn interpret(seq: &digits::Sequence<'_>, today: NaiveDate) -> Option<(Result<NaiveDate, ParseError>, f32)> {
    let [(a, _), (b, _), (c, _)] = seq.numbers.as_slice() else { return None };
    let short = |s: &str| (1..=2).contains(&s.len());
    let num = |s: &str| s.parse::<u32>().ok();
    let (s1, s2) = (seq.separators.first().copied()?, seq.separators.get(1).copied()?);
    let mut confidence = 1.0f32;
    let (year, month, day, natural_sep) = if a.len() == 4 && short(b) && short(c) {
        if b.len() == 1 || c.len() == 1 {
            confidence *= 0.95;
        }
        (num(a)? as i32, num(b)?, num(c)?, '-')
    } else if short(a) && short(b) && c.len() == 4 {
        (num(c)? as i32, num(b)?, num(a)?, '.')
    } else if short(a) && short(b) && c.len() == 2 {
        confidence *= 0.75;
        (two_digit_year(num(c)?, today), num(b)?, num(a)?, '.')
    } else {
        return None;
    };
    for sep in [s1, s2] {
        confidence *= match sep {
            s if s == natural_sep => 1.0,
            ',' => 0.9,
            _ => 0.95,
        };
    }
    if s1 != s2 {
        confidence *= 0.85;
    }
    if seq.spaced {
        confidence *= 0.95;
    }
    confidence *= 0.85f32.powi(seq.repairs().min(30) as i32);
    let date = match NaiveDate::from_ymd_opt(year, month, day) {
        None => Err(ParseError::NotACalendarDate),
        Some(d) if d > today => Err(ParseError::InFuture),
        Some(d) if d < earliest() => Err(ParseError::BeforeEarliest),
        Some(d) => Ok(d),
    };
    Some((date, confidence))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 5, 1).unwrap()
    }

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn parse(text: &str) -> Parsed<NaiveDate> {
        parse_date(text, today()).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    #[test]
    fn the_documented_formats_read_exactly() {
        for text in ["12.08.1961", "1961-08-12", "Geb.: 12.08.1961", "12.8.1961", " 12.08.1961\n"] {
            let p = parse(text);
            assert_eq!(p.value, d(1961, 8, 12), "{text}");
            assert!(p.confidence >= 0.95, "{text}: {}", p.confidence);
        }
        assert_eq!(parse("1.2.1948").value, d(1948, 2, 1));
        assert_eq!(parse("29.02.1948").value, d(1948, 2, 29));
    }

    #[test]
    fn ocr_confusions_are_repaired_with_less_confidence() {
        let exact = parse("12.08.1961").confidence;
        for text in ["l2.O8.1961", "12.08.l96l", "I2.08.196I", "12.OB.1961", "12,08.1961", "12. 08. 1961", "1S.08.1961"] {
            let p = parse(text);
            assert!(p.value == d(1961, 8, 12) || p.value == d(1961, 8, 15), "{text}");
            assert!(p.confidence < exact, "{text}: {}", p.confidence);
        }
        assert_eq!(parse("DOB: O3.O2.2O24").value, d(2024, 2, 3));
    }

    #[test]
    fn two_digit_years_use_the_documented_window() {
        assert_eq!(two_digit_year(26, today()), 2026);
        assert_eq!(two_digit_year(27, today()), 1927);
        assert_eq!(two_digit_year(0, today()), 2000);
        assert_eq!(two_digit_year(61, today()), 1961);
        let p = parse("12.08.61");
        assert_eq!(p.value, d(1961, 8, 12));
        assert!(p.confidence <= 0.75);
        // 2026 but after today: a two-digit year does not go back a century to make it plausible.
        assert_eq!(parse_date("12.08.26", today()), Err(ParseError::InFuture));
    }

    #[test]
    fn implausible_and_missing_dates_are_errors_naming_why() {
        assert_eq!(parse_date("31.02.1961", today()), Err(ParseError::NotACalendarDate));
        assert_eq!(parse_date("29.02.1961", today()), Err(ParseError::NotACalendarDate));
        assert_eq!(parse_date("12.08.2031", today()), Err(ParseError::InFuture));
        assert_eq!(parse_date("12.08.1899", today()), Err(ParseError::BeforeEarliest));
        assert_eq!(parse_date("Mustermann", today()), Err(ParseError::NoDate));
        assert_eq!(parse_date("12:30:15", today()), Err(ParseError::NoDate));
        assert_eq!(parse_date("123.08.1961", today()), Err(ParseError::NoDate));
        assert_eq!(parse_date("  ", today()), Err(ParseError::Empty));
        assert!(!ParseError::InFuture.to_string().contains("2031"));
    }

    #[test]
    fn a_second_different_date_lowers_the_confidence() {
        let one = parse("12.08.1961").confidence;
        let two = parse("12.08.1961 03.02.2024");
        assert_eq!(two.value, d(1961, 8, 12), "the first of equally good dates");
        assert!(two.confidence < one);
        // A stray digit before the date makes an overlapping, worse reading, not a rival.
        assert_eq!(parse("b.12.08.1961").value, d(1961, 8, 12));
    }
}
