//! Anonymisation: find the identity with the best-matching template, then replace every rendering
//! of it in the text with placeholders.

use std::fmt;

use chrono::{Datelike, NaiveDate};
use regex::{Captures, Regex, RegexBuilder};

use super::template::{NameOrder, ReportTemplate, Rule};

/// Placeholder for the patient's name, in any order or part.
pub const PATIENT_NAME: &str = "[PATIENT_NAME]";
/// Placeholder for the patient's birth date, in any common rendering.
pub const BIRTH_DATE: &str = "[BIRTH_DATE]";
/// Placeholder for the examination date, in any common rendering.
pub const EXAMINATION_DATE: &str = "[EXAMINATION_DATE]";
/// Placeholder for the examiner's name.
pub const EXAMINER: &str = "[EXAMINER]";
/// What the whole text becomes if the replacement could not be built: nothing identifying may
/// leave, so the text is withheld rather than passed on unredacted.
pub const WITHHELD: &str = "[TEXT WITHHELD: ANONYMISATION FAILED]";

const PLACEHOLDERS: [&str; 4] = [PATIENT_NAME, BIRTH_DATE, EXAMINATION_DATE, EXAMINER];

/// The identity the uploader supplied with the report. Every value given is replaced in the text,
/// whether a template found it or not.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct KnownIdentity {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub birth_date: Option<NaiveDate>,
    pub examination_date: Option<NaiveDate>,
    pub examiner: Option<String>,
}

/// The identity the chosen template found in the report. It belongs in the identifying tables
/// only: `Debug` shows which fields were found, never their values, so it cannot leak into a log.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct FoundIdentity {
    pub patient_first_name: Option<String>,
    pub patient_last_name: Option<String>,
    pub birth_date: Option<NaiveDate>,
    pub examination_date: Option<NaiveDate>,
    /// As written in the report, titles included ("Dr. med. Hans Beispiel").
    pub examiner: Option<String>,
}

/// The result of [`anonymise`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anonymised {
    /// The text with every occurrence of the identity replaced by placeholders.
    pub text: String,
    /// The name of the template whose rules matched best, if any matched at all.
    pub template: Option<String>,
    pub found: FoundIdentity,
}

fn redacted<T>(value: &Option<T>) -> &'static str {
    if value.is_some() { "Some(<redacted>)" } else { "None" }
}

impl fmt::Debug for FoundIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FoundIdentity")
            .field("patient_first_name", &format_args!("{}", redacted(&self.patient_first_name)))
            .field("patient_last_name", &format_args!("{}", redacted(&self.patient_last_name)))
            .field("birth_date", &format_args!("{}", redacted(&self.birth_date)))
            .field("examination_date", &format_args!("{}", redacted(&self.examination_date)))
            .field("examiner", &format_args!("{}", redacted(&self.examiner)))
            .finish()
    }
}

impl fmt::Debug for KnownIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KnownIdentity")
            .field("first_name", &format_args!("{}", redacted(&self.first_name)))
            .field("last_name", &format_args!("{}", redacted(&self.last_name)))
            .field("birth_date", &format_args!("{}", redacted(&self.birth_date)))
            .field("examination_date", &format_args!("{}", redacted(&self.examination_date)))
            .field("examiner", &format_args!("{}", redacted(&self.examiner)))
            .finish()
    }
}

/// Anonymises a report's text.
///
/// Every template is tried; the one whose rules find the most fields wins (the first on a tie),
/// and its findings are returned in [`Anonymised::found`]. Then every occurrence of the found
/// values and of the values in `known` is replaced, anywhere in the text and case-insensitively:
/// names in "Last, First", "First Last", "F. Last" order and each name part on its own (so the
/// patient is also caught where the letter addresses her as "Frau Mustermann"), German
/// transliterations (ü → ue), and dates in every common rendering (12.08.1961, 12.8.61,
/// 1961-08-12, 08/12/1961, 12. August 1961, Aug 12, 1961, 19610812).
///
/// Name parts shorter than two letters, academic titles and name particles ("von", "van") are not
/// replaced on their own: they would blank out ordinary words; nor is the examiner's given name
/// (a report names its examiner by surname, and given names are common words in German). Over-replacement is otherwise
/// preferred to a leak: a patient called "Weiss" also loses the colour from the findings.
pub fn anonymise(text: &str, templates: &[ReportTemplate], known: &KnownIdentity) -> Anonymised {
    let (template, found, raw) = best_match(text, templates);
    let mut alternatives = Alternatives::default();

    alternatives.person(Kind::PatientName, found.patient_first_name.as_deref(), found.patient_last_name.as_deref(), true);
    alternatives.person(Kind::PatientName, known.first_name.as_deref(), known.last_name.as_deref(), true);
    if let Some(examiner) = &found.examiner {
        let (first, last) = split_name(examiner, NameOrder::Auto);
        alternatives.person(Kind::Examiner, first.as_deref(), last.as_deref(), false);
    }
    if let Some(examiner) = &known.examiner {
        let (first, last) = split_name(examiner, NameOrder::Auto);
        alternatives.person(Kind::Examiner, first.as_deref(), last.as_deref(), false);
    }
    for date in [found.birth_date, known.birth_date].into_iter().flatten() {
        alternatives.date(Kind::BirthDate, date);
    }
    for date in [found.examination_date, known.examination_date].into_iter().flatten() {
        alternatives.date(Kind::ExaminationDate, date);
    }
    // The values exactly as the rules captured them, in case their parsing missed a rendering.
    for (kind, value) in raw {
        alternatives.literal(kind, &value);
    }

    let text = match alternatives.build() {
        Ok(None) => text.to_owned(),
        Ok(Some(regex)) => regex
            .replace_all(text, |caps: &Captures<'_>| {
                let group = caps.iter().skip(1).position(|m| m.is_some()).unwrap_or(0);
                alternatives.kinds.get(group).map_or(PATIENT_NAME, |k| PLACEHOLDERS[*k as usize])
            })
            .into_owned(),
        Err(_) => WITHHELD.to_owned(),
    };
    Anonymised { text, template, found }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    PatientName = 0,
    BirthDate = 1,
    ExaminationDate = 2,
    Examiner = 3,
}

/// The values as a rule captured them, by kind.
type Captured = Vec<(Kind, String)>;

/// Runs every template and keeps the best one's findings, with the raw captured strings.
fn best_match(text: &str, templates: &[ReportTemplate]) -> (Option<String>, FoundIdentity, Captured) {
    let mut best: Option<(usize, &ReportTemplate, FoundIdentity, Captured)> = None;
    for template in templates {
        let (found, raw) = apply(text, template);
        let score = raw.len();
        if score > 0 && best.as_ref().is_none_or(|(s, ..)| score > *s) {
            best = Some((score, template, found, raw));
        }
    }
    match best {
        Some((_, template, found, raw)) => (Some(template.name.clone()), found, raw),
        None => (None, FoundIdentity::default(), Vec::new()),
    }
}

fn apply(text: &str, template: &ReportTemplate) -> (FoundIdentity, Captured) {
    let mut found = FoundIdentity::default();
    let mut raw = Vec::new();
    // The first value, by rule order then text order, that holds a name once titles are gone.
    let name = |rules: &[Rule]| {
        rules.iter().find_map(|r| {
            r.values(text).find_map(|v| {
                let (first, last) = split_name(v, r.name_order());
                last.map(|last| (first, last, v.to_owned()))
            })
        })
    };
    if let Some((first, last, value)) = name(&template.patient_name) {
        found.patient_first_name = first;
        found.patient_last_name = Some(last);
        raw.push((Kind::PatientName, value));
    }
    if let Some((date, value)) = template.birth_date.iter().find_map(|r| r.find_date(text, true)) {
        found.birth_date = Some(date);
        raw.push((Kind::BirthDate, value));
    }
    if let Some((date, value)) = template.examination_date.iter().find_map(|r| r.find_date(text, false)) {
        found.examination_date = Some(date);
        raw.push((Kind::ExaminationDate, value));
    }
    if let Some((_, _, value)) = name(&template.examiner) {
        found.examiner = Some(value.clone());
        raw.push((Kind::Examiner, value));
    }
    (found, raw)
}

/// Titles, salutations and degrees around a name ("Dr. med.", "Frau", "MD"), lower case and
/// without dots. A token made only of these is not part of the name.
const TITLES: &[&str] = &[
    "dr",
    "med",
    "dent",
    "vet",
    "univ",
    "rer",
    "nat",
    "phil",
    "habil",
    "prof",
    "pd",
    "priv",
    "doz",
    "dipl",
    "herr",
    "frau",
    "hr",
    "fr",
    "mr",
    "mrs",
    "ms",
    "miss",
    "md",
    "phd",
    "mba",
    "msc",
    "bsc",
    "mph",
    "frcp",
    "facg",
    "facp",
    "oa",
    "oä",
    "ca",
    "fa",
    "oberarzt",
    "oberärztin",
    "chefarzt",
    "chefärztin",
    "facharzt",
    "fachärztin",
    "assistenzarzt",
    "assistenzärztin",
];

/// Name particles: part of a surname ("von Bergen"), never replaced on their own.
const PARTICLES: &[&str] =
    &["von", "vom", "van", "de", "der", "den", "del", "della", "di", "da", "du", "dos", "das", "le", "la", "zu", "zur", "ten", "ter", "op"];

fn is_title(token: &str) -> bool {
    let lower = token.to_lowercase();
    let parts: Vec<&str> = lower.split(['.', '-']).filter(|p| !p.is_empty()).collect();
    !parts.is_empty() && parts.iter().all(|p| TITLES.contains(p))
}

fn is_particle(token: &str) -> bool {
    PARTICLES.contains(&token.to_lowercase().as_str())
}

/// Splits a written name into (first names, last name), dropping titles.
fn split_name(value: &str, order: NameOrder) -> (Option<String>, Option<String>) {
    let words = |s: &str| -> Vec<String> {
        s.split_whitespace()
            .map(|w| w.trim_matches(|c: char| c == ',' || c == ';'))
            .filter(|w| !w.is_empty() && !is_title(w))
            .map(str::to_owned)
            .collect()
    };
    let segments: Vec<Vec<String>> = value.split(',').map(words).filter(|w| !w.is_empty()).collect();
    let join = |w: &[String]| (!w.is_empty()).then(|| w.join(" "));
    let (first, last): (Vec<String>, Vec<String>) = match (order, segments.as_slice()) {
        (_, []) => return (None, None),
        (NameOrder::Auto | NameOrder::LastFirst, [last, first, ..]) => (first.clone(), last.clone()),
        (NameOrder::FirstLast, [words, ..]) | (NameOrder::Auto, [words]) => {
            // The surname is the last word and the particles before it.
            let mut split = words.len().saturating_sub(1);
            while split > 0 && words.get(split - 1).is_some_and(|w| is_particle(w)) {
                split -= 1;
            }
            (words[..split].to_vec(), words[split..].to_vec())
        }
        (NameOrder::LastFirst, [words]) => {
            // "MUSTERMANN Erika", "von Bergen Hans": particles, then the surname, then the rest.
            let mut split = 0;
            while split + 1 < words.len() && words.get(split).is_some_and(|w| is_particle(w)) {
                split += 1;
            }
            ((words[split + 1..]).to_vec(), words[..=split].to_vec())
        }
    };
    (join(&first), join(&last))
}

/// Longest name value taken as a replacement pattern: longer is not a name but a runaway capture.
const MAX_LITERAL: usize = 200;

/// The alternatives of the one replacement regex, each in its own capture group, with the kind
/// of placeholder it stands for and a rank: leftmost-first alternation takes the first
/// alternative that matches at a position, so the longest renderings must come first.
#[derive(Default)]
struct Alternatives {
    entries: Vec<(u8, usize, String, Kind)>,
    kinds: Vec<Kind>,
}

/// Separator between name parts: spaces, line breaks, a comma.
const NAME_SEP: &str = r"(?:\s*,\s*|\s+)";

impl Alternatives {
    fn push(&mut self, rank: u8, pattern: String, kind: Kind) {
        let len = pattern.len();
        if !self.entries.iter().any(|(_, _, p, k)| *p == pattern && *k == kind) {
            self.entries.push((rank, len, pattern, kind));
        }
    }

    fn person(&mut self, kind: Kind, first: Option<&str>, last: Option<&str>, first_alone: bool) {
        let words = |s: Option<&str>| -> Vec<String> {
            s.map(|s| s.split_whitespace().filter(|w| !is_title(w)).map(str::to_owned).collect()).unwrap_or_default()
        };
        let (first, last) = (words(first), words(last));
        if first.iter().chain(&last).any(|w| w.chars().count() > MAX_LITERAL) {
            return;
        }
        let seq = |ws: &[String]| bounded(&ws.join(" "), &ws.iter().map(|w| word(w)).collect::<Vec<_>>().join(NAME_SEP));
        if !first.is_empty() && !last.is_empty() {
            let both: Vec<String> = first.iter().chain(&last).cloned().collect();
            let reversed: Vec<String> = last.iter().chain(&first).cloned().collect();
            self.push(0, seq(&both), kind);
            self.push(0, seq(&reversed), kind);
            // "E. Mustermann", "Mustermann, E.", "E. M. Mustermann"; the initial ends at its dot
            // or at a word boundary.
            let initials: Vec<String> =
                first.iter().filter_map(|w| w.chars().next()).map(|c| format!(r"{}(?:\.|\b)", regex::escape(&c.to_string()))).collect();
            let initials = initials.join(r"\s*");
            if first.iter().all(|w| w.starts_with(char::is_alphanumeric)) {
                self.push(1, format!(r"\b{initials}\s*{}", seq(&last)), kind);
                self.push(1, format!(r"{}{NAME_SEP}{initials}", seq(&last)), kind);
            }
            // Only the first given name with the surname: "Anna Mustermann" for "Anna Maria".
            if first.len() > 1 {
                let short: Vec<String> = first.iter().take(1).chain(&last).cloned().collect();
                self.push(1, seq(&short), kind);
            }
        }
        if !last.is_empty() && !last.iter().all(|w| is_particle(w)) {
            self.push(2, seq(&last), kind);
        }
        if first_alone && !first.is_empty() {
            self.push(2, seq(&first), kind);
        }
        // Each part on its own, hyphenated parts too ("Müller-Lüdenscheidt").
        let singles = last.iter().chain(if first_alone { first.as_slice() } else { &[] });
        for w in singles {
            for part in std::iter::once(w.as_str()).chain(w.split('-')) {
                if part.chars().filter(|c| c.is_alphabetic()).count() >= 2 && !is_particle(part) && !is_title(part) {
                    self.push(3, bounded(part, &word(part)), kind);
                }
            }
        }
    }

    fn date(&mut self, kind: Kind, date: NaiveDate) {
        let (d, m, y) = (date.day(), date.month(), date.year());
        let day = if d < 10 { format!("0?{d}") } else { d.to_string() };
        let month = if m < 10 { format!("0?{m}") } else { m.to_string() };
        let year = format!("(?:{y}|{:02})", y.rem_euclid(100));
        let names = MONTHS.get(m as usize - 1).copied().unwrap_or("");
        let month_name = format!(r"(?:{names})\.?");
        let ordinal = format!(r"{day}(?:\.|st|nd|rd|th)?");
        let sep = r"\s*[./-]\s*";
        for pattern in [
            format!(r"{day}{sep}{month}{sep}{year}"),
            format!(r"{y}{sep}{month}{sep}{day}"),
            format!(r"{month}\s*/\s*{day}\s*/\s*{year}"),
            format!(r"{ordinal}\s*{month_name}\s*,?\s*{year}"),
            format!(r"{month_name}\s*{ordinal}\s*,?\s*{year}"),
            format!("{y:04}{m:02}{d:02}"),
            format!("{d:02}{m:02}{y:04}"),
        ] {
            self.push(0, format!(r"\b(?:{pattern})\b"), kind);
        }
    }

    /// A captured value as written, with flexible whitespace.
    fn literal(&mut self, kind: Kind, value: &str) {
        if value.chars().count() > MAX_LITERAL {
            return;
        }
        let words: Vec<String> = value.split_whitespace().map(regex::escape).collect();
        if !words.is_empty() {
            self.push(0, bounded(value.trim(), &words.join(r"\s+")), kind);
        }
    }

    /// The combined regex, `None` when there is nothing to replace.
    fn build(&mut self) -> Result<Option<Regex>, regex::Error> {
        if self.entries.is_empty() {
            return Ok(None);
        }
        self.entries.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        self.kinds = self.entries.iter().map(|e| e.3).collect();
        let pattern = self.entries.iter().map(|(_, _, p, _)| format!("({p})")).collect::<Vec<_>>().join("|");
        RegexBuilder::new(&pattern).case_insensitive(true).size_limit(1 << 26).build().map(Some)
    }
}

/// German and English month names and abbreviations, longest first.
const MONTHS: [&str; 12] = [
    "januar[y]?|jänner|jaenner|jan",
    "februar[y]?|feber|feb",
    "märz|maerz|march|mär|mrz|mar",
    "april|apr",
    "mai|may",
    "juni|june|jun",
    "juli|july|jul",
    "august|aug",
    "september|sept|sep",
    "oktober|october|okt|oct",
    "november|nov",
    "dezember|december|dez|dec",
];

/// One name word as a pattern: its German transliteration too (Müller, Mueller), hyphens with
/// optional spaces or a line break around them, either apostrophe.
fn word(w: &str) -> String {
    // Producers turn "O'Brien" into "O’Brien" and back.
    let escape = |s: &str| regex::escape(s).replace(['\'', '’'], "['’]");
    let variant = |s: &str| {
        let plain = transliterate(s);
        if plain == s { escape(s) } else { format!("(?:{}|{})", escape(s), escape(&plain)) }
    };
    w.split('-').map(variant).collect::<Vec<_>>().join(r"\s*-\s*")
}

fn transliterate(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            'ä' => out.push_str("ae"),
            'ö' => out.push_str("oe"),
            'ü' => out.push_str("ue"),
            'Ä' => out.push_str("Ae"),
            'Ö' => out.push_str("Oe"),
            'Ü' => out.push_str("Ue"),
            'ß' => out.push_str("ss"),
            c => out.push(c),
        }
    }
    out
}

/// Word boundaries around `pattern` where `raw`, the text it stands for, has a word character at
/// that end: a `\b` next to a "." would demand a letter on the other side.
fn bounded(raw: &str, pattern: &str) -> String {
    let start = if raw.starts_with(char::is_alphanumeric) { r"\b" } else { "" };
    let end = if raw.ends_with(char::is_alphanumeric) { r"\b" } else { "" };
    format!("{start}(?:{pattern}){end}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(value: &str, order: NameOrder) -> (Option<String>, Option<String>) {
        split_name(value, order)
    }

    fn some(s: &str) -> Option<String> {
        Some(s.to_owned())
    }

    #[test]
    fn names_split_by_order_and_titles() {
        assert_eq!(split("Mustermann, Erika", NameOrder::Auto), (some("Erika"), some("Mustermann")));
        assert_eq!(split("Erika Maria Mustermann", NameOrder::Auto), (some("Erika Maria"), some("Mustermann")));
        assert_eq!(split("Dr. med. Hans von Beispiel", NameOrder::Auto), (some("Hans"), some("von Beispiel")));
        assert_eq!(split("Jane Smith, MD", NameOrder::Auto), (some("Jane"), some("Smith")));
        assert_eq!(split("MUSTERMANN Erika", NameOrder::LastFirst), (some("Erika"), some("MUSTERMANN")));
        assert_eq!(split("Frau Mustermann", NameOrder::Auto), (None, some("Mustermann")));
        assert_eq!(split("Dr. med.", NameOrder::Auto), (None, None));
    }

    #[test]
    fn dates_are_replaced_in_every_rendering() {
        let Some(date) = NaiveDate::from_ymd_opt(1961, 8, 2) else { return };
        let mut alternatives = Alternatives::default();
        alternatives.date(Kind::BirthDate, date);
        let regex = alternatives.build().ok().flatten();
        let Some(regex) = regex else { panic!("no regex") };
        for rendering in [
            "02.08.1961",
            "2.8.1961",
            "2.8.61",
            "1961-08-02",
            "08/02/1961",
            "2. August 1961",
            "Aug 2nd, 1961",
            "19610802",
            "02 . 08 . 1961",
        ] {
            assert_eq!(regex.replace_all(rendering, "X"), "X", "{rendering}");
        }
        for other in ["12.08.1961", "02.08.1962", "102.08.1961", "1961"] {
            assert_eq!(regex.replace_all(other, "X"), other, "{other}");
        }
    }

    #[test]
    fn names_are_replaced_in_any_order_and_spelling() {
        let known = KnownIdentity { first_name: some("Seán"), last_name: some("O'Brien"), ..Default::default() };
        let text = "Mr O’Brien; O'BRIEN, SEÁN; S. O'Brien; Seán; Obrien ward; Sean";
        // Without the accent it is another spelling, which is not guessed.
        assert_eq!(
            anonymise(text, &[], &known).text,
            "Mr [PATIENT_NAME]; [PATIENT_NAME]; [PATIENT_NAME]; [PATIENT_NAME]; Obrien ward; Sean"
        );
    }
}
