//! Times of day: `HH:MM` and `HH:MM:SS` (hours 0–23, one or two digits; minutes and seconds two digits).
//!
//! Confidence starts at 1 with `:` and is multiplied by 0.85 for `.` (some overlays write `14.05`), 0.95 for
//! spaces around the separator, 0.85 for each letter read as a digit and 0.7 when the text holds another,
//! different time. A `.`-separated pair that is part of a longer run (`12.08.1961`) is a date, not a time.

use chrono::NaiveTime;

use super::digits::{self, Token};
use super::{ParseError, Parsed};

pub fn parse_time(text: &str) -> Result<Parsed<NaiveTime>, ParseError> {
    if text.trim().is_empty() {
        return Err(ParseError::Empty);
    }
    let tokens = digits::tokens(text);
    let mut found: Vec<(NaiveTime, f32)> = Vec::new();
    for start in 0..tokens.len() {
        // A time starts a run: `30:15` inside `12:30:15` is not another time.
        let after_number = matches!(start.checked_sub(1).and_then(|i| tokens.get(i)), Some(Token::Sep(_)))
            && matches!(start.checked_sub(2).and_then(|i| tokens.get(i)), Some(Token::Number { .. }));
        if after_number {
            continue;
        }
        for len in [3, 2] {
            let Some(seq) = digits::sequence(&tokens, start, len) else { continue };
            if seq.numbers.len() != len || digits::continues(&tokens, seq.start, seq.end) {
                continue;
            }
            if let Some(reading) = interpret(&seq) {
                found.push(reading);
                break;
            }
        }
    }
    let Some(&(time, mut confidence)) = found.iter().fold(None, |best: Option<&(NaiveTime, f32)>, x| match best {
        Some(b) if b.1 >= x.1 => Some(b),
        _ => Some(x),
    }) else {
        return Err(ParseError::NoTime);
    };
    if found.iter().any(|(t, _)| *t != time) {
        confidence *= 0.7;
    }
    Ok(Parsed::new(time, confidence))
}

fn interpret(seq: &digits::Sequence<'_>) -> Option<(NaiveTime, f32)> {
    let sep = *seq.separators.first()?;
    if seq.separators.iter().any(|s| *s != sep) || !matches!(sep, ':' | '.') {
        return None;
    }
    let (hour, rest) = seq.numbers.split_first()?;
    if !(1..=2).contains(&hour.0.len()) || rest.iter().any(|(n, _)| n.len() != 2) {
        return None;
    }
    let num = |s: &str| s.parse::<u32>().ok();
    let (h, m, s) = match rest {
        [(m, _)] => (num(hour.0)?, num(m)?, 0),
        [(m, _), (s, _)] => (num(hour.0)?, num(m)?, num(s)?),
        _ => return None,
    };
    let time = NaiveTime::from_hms_opt(h, m, s)?;
    let mut confidence = if sep == ':' { 1.0 } else { 0.85 };
    if seq.spaced {
        confidence *= 0.95;
    }
    confidence *= 0.85f32.powi(seq.repairs().min(30) as i32);
    Some((time, confidence))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: u32, m: u32, s: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, s).unwrap()
    }

    #[test]
    fn times_read_with_and_without_seconds() {
        assert_eq!(parse_time("14:05").unwrap(), Parsed { value: t(14, 5, 0), confidence: 1.0 });
        assert_eq!(parse_time("Zeit: 9:30:15").unwrap().value, t(9, 30, 15));
        let dotted = parse_time("14.05").unwrap();
        assert_eq!(dotted.value, t(14, 5, 0));
        assert!(dotted.confidence < 1.0);
        let repaired = parse_time("l4:O5").unwrap();
        assert_eq!(repaired.value, t(14, 5, 0));
        assert!(repaired.confidence < 0.8);
    }

    #[test]
    fn dates_and_impossible_times_are_not_times() {
        assert_eq!(parse_time("12.08.1961"), Err(ParseError::NoTime));
        assert_eq!(parse_time("25:00"), Err(ParseError::NoTime));
        assert_eq!(parse_time("12:60"), Err(ParseError::NoTime));
        assert_eq!(parse_time("12:5"), Err(ParseError::NoTime));
        assert_eq!(parse_time("Mustermann"), Err(ParseError::NoTime));
        assert_eq!(parse_time(""), Err(ParseError::Empty));
    }

    #[test]
    fn a_time_inside_a_longer_run_is_not_read_twice() {
        let p = parse_time("12:30:15").unwrap();
        assert_eq!(p, Parsed { value: t(12, 30, 15), confidence: 1.0 });
        let two = parse_time("08:15 – 09:40").unwrap();
        assert_eq!(two.value, t(8, 15, 0));
        assert!(two.confidence < 1.0);
    }
}
