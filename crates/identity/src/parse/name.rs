//! Names: one name field (`patient_first_name`), or a whole name in one field in a given or guessed order.
//!
//! Cleaning keeps what German (and most European) names are made of: letters of any script (umlauts, `ß`,
//! accents; combining marks after NFC), hyphens, apostrophes (look-alikes unified as in
//! [`crate::blind_index`]), spaces, and a dot after a letter (`Hans-J.`). Letter case is kept: EndoregDB's
//! hashes are case-sensitive, so whether `MUSTERMANN` is `Mustermann` is for the person verifying to say.
//!
//! Confidence starts at 1 and is multiplied by 0.8 for each digit read as a letter (`MU5TERMANN`: a digit
//! between letters becomes the letter it looks like, in the neighbours' case), 0.9 for each other character
//! dropped inside the name, 0.97 for each one dropped at its ends, 0.6 for a one-letter name, and 0.8 when
//! the order of a whole name had to be guessed.
//!
//! Orders: a comma always means `LAST, FIRST` (the overlay's `MUSTERMANN, ERIKA`). Without one, the field
//! layout says `FIRST LAST` or `LAST FIRST`; [`NameOrder::Auto`] assumes `FIRST LAST`. Name particles
//! (`von`, `van`, `de`, `zu`, …) belong to the last name: `Johann Wolfgang von Goethe`.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use super::{ParseError, Parsed};
use crate::blind_index::unify_punctuation;

/// How a whole name without a comma is ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameOrder {
    /// Unknown: read as `FIRST LAST`, with less confidence.
    Auto,
    FirstLast,
    LastFirst,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PersonName {
    pub first: String,
    pub last: String,
}

const PARTICLES: &[&str] = &[
    "von", "vom", "van", "de", "der", "den", "del", "della", "di", "da", "du", "dos", "das", "zu", "zum", "zur", "ten", "ter", "le", "la",
];

fn is_particle(word: &str) -> bool {
    PARTICLES.contains(&word.to_lowercase().as_str())
}

/// One name field.
pub fn parse_name_field(text: &str) -> Result<Parsed<String>, ParseError> {
    if text.trim().is_empty() {
        return Err(ParseError::Empty);
    }
    let (name, confidence) = clean(text);
    if name.is_empty() {
        return Err(ParseError::NoName);
    }
    Ok(Parsed::new(name, confidence))
}

/// A whole name in one field.
pub fn parse_person_name(text: &str, order: NameOrder) -> Result<Parsed<PersonName>, ParseError> {
    if text.trim().is_empty() {
        return Err(ParseError::Empty);
    }
    let text: String = text.nfc().map(unify_punctuation).collect();
    if let Some((last, first)) = text.split_once(',') {
        let (last, c_last) = clean(last);
        let (first, c_first) = clean(first);
        return match (first.is_empty(), last.is_empty()) {
            (true, true) => Err(ParseError::NoName),
            (false, false) => Ok(Parsed::new(PersonName { first, last }, c_first * c_last)),
            _ => Err(ParseError::OnePart),
        };
    }
    let (whole, mut confidence) = clean(&text);
    if whole.is_empty() {
        return Err(ParseError::NoName);
    }
    let words: Vec<&str> = whole.split(' ').collect();
    if words.len() < 2 {
        return Err(ParseError::OnePart);
    }
    let split = match order {
        NameOrder::Auto | NameOrder::FirstLast => {
            let mut k = words.len() - 1;
            while k > 1 && is_particle(words[k - 1]) {
                k -= 1;
            }
            k
        }
        NameOrder::LastFirst => {
            let mut e = 1;
            while e < words.len() - 1 && is_particle(words[e - 1]) {
                e += 1;
            }
            e
        }
    };
    let (head, tail) = (words[..split].join(" "), words[split..].join(" "));
    let (first, last) = if order == NameOrder::LastFirst { (tail, head) } else { (head, tail) };
    if order == NameOrder::Auto {
        confidence *= 0.8;
    }
    Ok(Parsed::new(PersonName { first, last }, confidence))
}

/// The letter a digit between letters stands for, in the case of its neighbours.
fn digit_as_letter(d: char, upper: bool) -> Option<char> {
    Some(match (d, upper) {
        ('0', true) => 'O',
        ('0', false) => 'o',
        ('1', true) => 'I',
        ('1', false) => 'l',
        ('5', true) => 'S',
        ('5', false) => 's',
        ('6', true) => 'G',
        ('6', false) => 'b',
        ('8', true) => 'B',
        _ => return None,
    })
}

/// The cleaned name and its confidence, as the module documentation says. Empty when nothing is left.
fn clean(text: &str) -> (String, f32) {
    let chars: Vec<char> = text.nfc().map(unify_punctuation).collect();
    let letter_at = |i: usize| chars.get(i).copied().filter(|c| c.is_alphabetic());
    let first_letter = chars.iter().position(|c| c.is_alphabetic());
    let last_letter = chars.iter().rposition(|c| c.is_alphabetic());
    let inside = |i: usize| matches!((first_letter, last_letter), (Some(a), Some(b)) if a < i && i < b);
    let mut confidence = 1.0f32;
    let mut kept = String::with_capacity(text.len());
    let drop = |i: usize, confidence: &mut f32| *confidence *= if inside(i) { 0.9 } else { 0.97 };
    for (i, &c) in chars.iter().enumerate() {
        if c.is_alphabetic() || c == '-' || c == '\'' {
            kept.push(c);
        } else if c.is_whitespace() {
            kept.push(' ');
        } else if (is_combining_mark(c) || c == '.') && kept.chars().last().is_some_and(char::is_alphabetic) {
            kept.push(c);
        } else if c.is_ascii_digit() {
            let neighbour = i.checked_sub(1).and_then(letter_at).or_else(|| letter_at(i + 1));
            match neighbour.and_then(|n| digit_as_letter(c, n.is_uppercase())) {
                Some(letter) => {
                    kept.push(letter);
                    confidence *= 0.8;
                }
                None => drop(i, &mut confidence),
            }
        } else {
            drop(i, &mut confidence);
        }
    }
    // Words without a letter are debris; hyphens join, with no spaces around them and never twice.
    let mut out = String::with_capacity(kept.len());
    for word in kept.split_whitespace() {
        let word = collapse_hyphens(word);
        if word == "-" {
            if !out.is_empty() && !out.ends_with('-') {
                out.push('-');
            }
            continue;
        }
        if !word.chars().any(char::is_alphabetic) {
            confidence *= 0.97;
            continue;
        }
        let joins = out.ends_with('-') || word.starts_with('-');
        if !out.is_empty() && !joins {
            out.push(' ');
        }
        out.push_str(&word);
    }
    let trimmed = out.trim_matches(|c| c == '-' || c == '\'' || c == ' ').trim_start_matches('.');
    if trimmed.len() != out.len() {
        confidence *= 0.97;
    }
    let name = trimmed.to_owned();
    if name.chars().filter(|c| c.is_alphabetic()).count() == 1 {
        confidence *= 0.6;
    }
    (name, confidence)
}

fn collapse_hyphens(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    for c in word.chars() {
        if c == '-' && out.ends_with('-') {
            continue;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(text: &str, order: NameOrder) -> Parsed<PersonName> {
        parse_person_name(text, order).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn name(first: &str, last: &str) -> PersonName {
        PersonName { first: first.into(), last: last.into() }
    }

    #[test]
    fn the_orders() {
        assert_eq!(person("MUSTERMANN, ERIKA", NameOrder::Auto), Parsed { value: name("ERIKA", "MUSTERMANN"), confidence: 1.0 });
        assert_eq!(person("Straßburger-Öztürk, Jörg-Ünal", NameOrder::FirstLast).value, name("Jörg-Ünal", "Straßburger-Öztürk"));
        assert_eq!(
            person("Jörg-Ünal Straßburger-Öztürk", NameOrder::FirstLast),
            Parsed { value: name("Jörg-Ünal", "Straßburger-Öztürk"), confidence: 1.0 }
        );
        let guessed = person("Erika Mustermann", NameOrder::Auto);
        assert_eq!(guessed.value, name("Erika", "Mustermann"));
        assert!(guessed.confidence < 1.0);
        assert_eq!(person("Mustermann Erika Maria", NameOrder::LastFirst).value, name("Erika Maria", "Mustermann"));
        assert_eq!(person("Johann Wolfgang von Goethe", NameOrder::FirstLast).value, name("Johann Wolfgang", "von Goethe"));
        assert_eq!(person("von Goethe Johann", NameOrder::LastFirst).value, name("Johann", "von Goethe"));
        assert_eq!(person("O’Brien, Seán", NameOrder::Auto).value, name("Seán", "O'Brien"));
    }

    #[test]
    fn ocr_debris_and_confusions_are_repaired_with_less_confidence() {
        let p = parse_name_field("MU5TERMANN").unwrap();
        assert_eq!(p.value, "MUSTERMANN");
        assert!(p.confidence <= 0.8);
        assert_eq!(parse_name_field("Mü11er").unwrap().value, "Müller");
        let junk = parse_name_field("|MUSTERMANN_ ").unwrap();
        assert_eq!(junk.value, "MUSTERMANN");
        assert!(junk.confidence < 1.0 && junk.confidence > 0.9);
        let inside = parse_name_field("MUSTER*MANN").unwrap();
        assert_eq!(inside.value, "MUSTERMANN");
        assert!(inside.confidence < junk.confidence);
        assert_eq!(parse_name_field("Mu\u{308}ller").unwrap(), Parsed { value: "Müller".into(), confidence: 1.0 });
        assert_eq!(parse_name_field("Müller - Lüdenscheidt").unwrap().value, "Müller-Lüdenscheidt");
        assert_eq!(parse_name_field("Hans-J.").unwrap().value, "Hans-J.");
        assert_eq!(parse_name_field("  Anna   Maria ").unwrap(), Parsed { value: "Anna Maria".into(), confidence: 1.0 });
        assert!(parse_name_field("E").unwrap().confidence <= 0.6);
    }

    #[test]
    fn no_name_is_an_error_naming_why() {
        assert_eq!(parse_name_field(""), Err(ParseError::Empty));
        assert_eq!(parse_name_field("12.08.1961"), Err(ParseError::NoName));
        assert_eq!(parse_name_field("---"), Err(ParseError::NoName));
        assert_eq!(parse_person_name("ERIKA", NameOrder::Auto), Err(ParseError::OnePart));
        assert_eq!(parse_person_name("MUSTERMANN,", NameOrder::Auto), Err(ParseError::OnePart));
        assert_eq!(parse_person_name(" , ", NameOrder::Auto), Err(ParseError::NoName));
    }
}
