//! Finding known identity tokens (names, dates) in OCR text, for the check that anonymised frames show none.
//!
//! Both sides are folded the same way: lower case, diacritics removed (`Ö` → `o`), `ß` → `ss`. A token also
//! matches in its German transliteration (`Öztürk` → `oeztuerk`), since overlays that cannot draw umlauts
//! write them out. Matching ignores spaces and punctuation (OCR often drops or invents them), so
//! `12.08.1961` matches `12 08 1961` and `MUSTERMANN,ERIKA` holds `Erika`. Tokens of six characters or more
//! also match with one OCR error (one character wrong, missing or extra): in this check a false alarm costs a
//! person a look, a miss leaks a name. Tokens under four characters match whole words only, or they would
//! be found inside every other word.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Tokens shorter than this (folded, without separators) match only whole words.
const MIN_SUBSTRING_LEN: usize = 4;
/// Tokens at least this long (folded, without separators) match with one edit.
const MIN_FUZZY_LEN: usize = 6;

/// Lower case, no diacritics, `ß` → `ss`; every character that is not a letter or digit becomes a space.
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.nfkd() {
        if is_combining_mark(c) {
            continue;
        }
        for l in c.to_lowercase() {
            match l {
                'ß' => out.push_str("ss"),
                'æ' => out.push_str("ae"),
                'œ' => out.push_str("oe"),
                'ø' => out.push('o'),
                'ł' => out.push('l'),
                'đ' => out.push('d'),
                'ı' => out.push('i'),
                l if l.is_alphanumeric() => out.push(l),
                _ => out.push(' '),
            }
        }
    }
    out
}

/// German transliteration of umlauts and ß, then [`fold`].
fn fold_german(s: &str) -> String {
    let mut t = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        match c {
            'ä' => t.push_str("ae"),
            'Ä' => t.push_str("Ae"),
            'ö' => t.push_str("oe"),
            'Ö' => t.push_str("Oe"),
            'ü' => t.push_str("ue"),
            'Ü' => t.push_str("Ue"),
            c => t.push(c),
        }
    }
    fold(&t)
}

#[derive(Clone, PartialEq, Eq)]
struct Variant {
    words: Vec<String>,
    compact: Vec<char>,
}

impl Variant {
    fn new(folded: &str) -> Option<Variant> {
        let words: Vec<String> = folded.split_whitespace().map(str::to_owned).collect();
        let compact: Vec<char> = words.iter().flat_map(|w| w.chars()).collect();
        (!compact.is_empty()).then_some(Variant { words, compact })
    }
}

/// A list of tokens prepared for matching. Matches are reported by index into the list given to
/// [`TokenSet::new`], so nothing identifying needs to be copied into a result or a log line.
#[derive(Clone, Default)]
pub struct TokenSet {
    tokens: Vec<Vec<Variant>>,
}

impl TokenSet {
    /// Tokens that fold to nothing (empty, only punctuation) never match.
    pub fn new<S: AsRef<str>>(tokens: &[S]) -> TokenSet {
        let tokens = tokens
            .iter()
            .map(|t| {
                let mut variants: Vec<Variant> = Vec::new();
                for v in [fold(t.as_ref()), fold_german(t.as_ref())].iter().filter_map(|f| Variant::new(f)) {
                    if !variants.contains(&v) {
                        variants.push(v);
                    }
                }
                variants
            })
            .collect();
        TokenSet { tokens }
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Indices of the tokens found in `text`, ascending.
    pub fn find_in(&self, text: &str) -> Vec<usize> {
        let folded = fold(text);
        let words: Vec<&str> = folded.split_whitespace().collect();
        let compact: Vec<char> = words.iter().flat_map(|w| w.chars()).collect();
        self.tokens
            .iter()
            .enumerate()
            .filter(|(_, variants)| variants.iter().any(|v| matches(v, &words, &compact)))
            .map(|(i, _)| i)
            .collect()
    }
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenSet({} tokens)", self.tokens.len())
    }
}

fn matches(v: &Variant, words: &[&str], compact: &[char]) -> bool {
    if v.compact.len() < MIN_SUBSTRING_LEN {
        return words.windows(v.words.len()).any(|w| w.iter().zip(&v.words).all(|(a, b)| *a == b));
    }
    let edits = usize::from(v.compact.len() >= MIN_FUZZY_LEN);
    approx_contains(compact, &v.compact, edits)
}

/// Whether some substring of `text` is within `k` edits (Levenshtein) of `pattern` (Sellers' algorithm).
fn approx_contains(text: &[char], pattern: &[char], k: usize) -> bool {
    let m = pattern.len();
    if m == 0 {
        return true;
    }
    // col[i]: least edits turning pattern[..i] into a substring of text ending at the current position.
    let mut col: Vec<usize> = (0..=m).collect();
    if col[m] <= k {
        return true;
    }
    for &t in text {
        let mut diag = col[0];
        for i in 1..=m {
            let above = col[i];
            col[i] = (diag + usize::from(pattern[i - 1] != t)).min(col[i - 1] + 1).min(above + 1);
            diag = above;
        }
        if col[m] <= k {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_removes_case_diacritics_and_punctuation() {
        assert_eq!(fold("Straßburger-Öztürk, Jörg-Ünal"), "strassburger ozturk  jorg unal");
        assert_eq!(fold_german("Öztürk"), "oeztuerk");
        assert_eq!(fold("12.08.1961"), "12 08 1961");
    }

    #[test]
    fn tokens_are_found_case_and_diacritic_insensitively() {
        let set = TokenSet::new(&["Erika", "Mustermann", "12.08.1961", "Öztürk", "Jörg-Ünal", "Ute"]);
        assert_eq!(set.find_in("MUSTERMANN, ERIKA  12.08.1961"), vec![0, 1, 2]);
        assert_eq!(set.find_in("OZTURK JORG UNAL"), vec![3, 4]);
        assert_eq!(set.find_in("OEZTUERK"), vec![3]);
        assert_eq!(set.find_in("geb. 12 08 1961"), vec![2]);
        assert_eq!(set.find_in("Computer"), Vec::<usize>::new(), "short tokens match whole words only");
        assert_eq!(set.find_in("MUSTERMANN, UTE"), vec![1, 5]);
        assert_eq!(set.find_in("nothing here"), Vec::<usize>::new());
    }

    #[test]
    fn long_tokens_survive_one_ocr_error_short_ones_do_not() {
        let set = TokenSet::new(&["Mustermann", "Erika", "12.08.1961"]);
        assert_eq!(set.find_in("MUSTERNANN"), vec![0]);
        assert_eq!(set.find_in("MUSTRMANN"), vec![0]);
        assert_eq!(set.find_in("ERlKA"), Vec::<usize>::new());
        assert_eq!(set.find_in("12.08.1981"), vec![2]);
        assert_eq!(set.find_in("MUSTRNANN"), Vec::<usize>::new(), "two errors are too many");
    }

    #[test]
    fn empty_tokens_never_match_and_debug_shows_no_token() {
        let set = TokenSet::new(&["", "--", "Erika"]);
        assert_eq!(set.find_in("erika -- "), vec![2]);
        assert_eq!(format!("{set:?}"), "TokenSet(3 tokens)");
    }

    #[test]
    fn approximate_search_is_levenshtein() {
        let t: Vec<char> = "xxabcdefyy".chars().collect();
        let p: Vec<char> = "abXdef".chars().collect();
        assert!(approx_contains(&t, &p, 1));
        assert!(!approx_contains(&t, &p, 0));
        let p2: Vec<char> = "abcdef".chars().collect();
        assert!(approx_contains(&t, &p2, 0));
    }
}
