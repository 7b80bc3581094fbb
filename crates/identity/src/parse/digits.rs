//! Digit runs as OCR reads them: letters that look like digits become digits where they stand among digits.
//!
//! `O o D Q` → 0, `l I i | !` → 1, `Z z` → 2, `S s` → 5, `G b` → 6, `B` → 8, `g q` → 9. A run of such
//! letters and digits is read as a number when it has at least one real digit, or when it is at most four
//! characters long and touches a run with a real digit across one separator (`12.OB.1961`). Elsewhere the
//! letters stay letters: `DOB` in `DOB: 12.08.1961` is not a number. Each letter read as a digit counts as a
//! repair, which lowers the confidence of whatever uses that number.

/// Separators dates and times use; `,` is what OCR often makes of `.`.
const SEPARATORS: &[char] = &['.', ',', ':', '-', '/'];

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Token {
    Number { digits: String, repairs: u32 },
    Sep(char),
    Space,
    Other,
}

fn confusable(c: char) -> Option<char> {
    Some(match c {
        'O' | 'o' | 'D' | 'Q' => '0',
        'l' | 'I' | 'i' | '|' | '!' => '1',
        'Z' | 'z' => '2',
        'S' | 's' => '5',
        'G' | 'b' => '6',
        'B' => '8',
        'g' | 'q' => '9',
        _ => return None,
    })
}

fn dash(c: char) -> char {
    match c {
        '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{fe63}' | '\u{ff0d}' => '-',
        c => c,
    }
}

enum Piece {
    Run { chars: Vec<char>, has_digit: bool },
    Sep(char),
    Space,
    Other,
}

pub(super) fn tokens(text: &str) -> Vec<Token> {
    let mut pieces: Vec<Piece> = Vec::new();
    for c in text.chars().map(dash) {
        let is_digit = c.is_ascii_digit();
        if is_digit || confusable(c).is_some() {
            if let Some(Piece::Run { chars, has_digit }) = pieces.last_mut() {
                chars.push(c);
                *has_digit |= is_digit;
            } else {
                pieces.push(Piece::Run { chars: vec![c], has_digit: is_digit });
            }
        } else if SEPARATORS.contains(&c) {
            pieces.push(Piece::Sep(c));
        } else if c.is_whitespace() {
            if !matches!(pieces.last(), Some(Piece::Space)) {
                pieces.push(Piece::Space);
            }
        } else if !matches!(pieces.last(), Some(Piece::Other)) {
            pieces.push(Piece::Other);
        }
    }
    let digit_run_at = |i: Option<usize>| matches!(i.and_then(|i| pieces.get(i)), Some(Piece::Run { has_digit: true, .. }));
    let touches_digits = |i: usize| {
        let before = matches!(i.checked_sub(1).and_then(|j| pieces.get(j)), Some(Piece::Sep(_))) && digit_run_at(i.checked_sub(2));
        let after = matches!(pieces.get(i + 1), Some(Piece::Sep(_))) && digit_run_at(Some(i + 2));
        before || after
    };
    pieces
        .iter()
        .enumerate()
        .map(|(i, p)| match p {
            Piece::Run { chars, has_digit } if *has_digit || (chars.len() <= 4 && touches_digits(i)) => {
                let mut repairs = 0;
                let digits = chars
                    .iter()
                    .map(|c| {
                        if c.is_ascii_digit() {
                            *c
                        } else {
                            repairs += 1;
                            confusable(*c).unwrap_or('0')
                        }
                    })
                    .collect();
                Token::Number { digits, repairs }
            }
            Piece::Run { .. } | Piece::Other => Token::Other,
            Piece::Sep(c) => Token::Sep(*c),
            Piece::Space => Token::Space,
        })
        .collect()
}

/// A number and the separators around it, found by [`sequence`].
#[derive(Clone, Debug)]
pub(super) struct Sequence<'a> {
    pub numbers: Vec<(&'a str, u32)>,
    pub separators: Vec<char>,
    /// Whether spaces stood around a separator (`12. 08. 1961`).
    pub spaced: bool,
    /// Token indices covered, end exclusive.
    pub start: usize,
    pub end: usize,
}

impl Sequence<'_> {
    pub fn repairs(&self) -> u32 {
        self.numbers.iter().map(|(_, r)| r).sum()
    }
}

/// The numbers from `start` on, joined by single separators (spaces allowed around them), at most `max`.
pub(super) fn sequence(tokens: &[Token], start: usize, max: usize) -> Option<Sequence<'_>> {
    let Some(Token::Number { digits, repairs }) = tokens.get(start) else { return None };
    let mut seq = Sequence { numbers: vec![(digits.as_str(), *repairs)], separators: vec![], spaced: false, start, end: start + 1 };
    let mut i = start + 1;
    while seq.numbers.len() < max {
        let mut j = i;
        let mut spaced = false;
        if matches!(tokens.get(j), Some(Token::Space)) {
            j += 1;
            spaced = true;
        }
        let Some(Token::Sep(sep)) = tokens.get(j) else { break };
        j += 1;
        if matches!(tokens.get(j), Some(Token::Space)) {
            j += 1;
            spaced = true;
        }
        let Some(Token::Number { digits, repairs }) = tokens.get(j) else { break };
        seq.numbers.push((digits.as_str(), *repairs));
        seq.separators.push(*sep);
        seq.spaced |= spaced;
        i = j + 1;
        seq.end = i;
    }
    Some(seq)
}

/// Whether the token range is continued by a separator and another number on either side: then a shorter
/// sequence inside it (`12.08` in `12.08.1961`) is only part of something else.
pub(super) fn continues(tokens: &[Token], start: usize, end: usize) -> bool {
    let number = |i: Option<usize>| matches!(i.and_then(|i| tokens.get(i)), Some(Token::Number { .. }));
    let sep = |i: Option<usize>| matches!(i.and_then(|i| tokens.get(i)), Some(Token::Sep(_)));
    (sep(start.checked_sub(1)) && number(start.checked_sub(2))) || (sep(Some(end)) && number(Some(end + 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers(text: &str) -> Vec<(String, u32)> {
        tokens(text)
            .into_iter()
            .filter_map(|t| match t {
                Token::Number { digits, repairs } => Some((digits, repairs)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn letters_among_digits_become_digits_and_words_stay_words() {
        assert_eq!(numbers("l2.O8.l96l"), [("12".into(), 1), ("08".into(), 1), ("1961".into(), 2)]);
        assert_eq!(numbers("12.OB.1961"), [("12".into(), 0), ("08".into(), 2), ("1961".into(), 0)]);
        assert_eq!(numbers("DOB: 12.08.1961"), [("12".into(), 0), ("08".into(), 0), ("1961".into(), 0)]);
        assert_eq!(numbers("Geburtsdatum"), Vec::<(String, u32)>::new());
        assert_eq!(numbers("S5"), [("55".into(), 1)]);
    }
}
