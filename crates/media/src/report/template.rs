//! Report templates: per-layout rules that find the identifying values in a report's text.

use std::collections::HashSet;
use std::fmt;

use chrono::format::{Item, StrftimeItems};
use chrono::{Datelike, NaiveDate};
use regex::{Regex, RegexBuilder};
use serde::Deserialize;

/// Date formats tried when neither a rule nor its template names any: the German renderings and
/// ISO 8601. Day-first, because the registry's reports are European; an English (US) template
/// names its month-first formats itself.
pub const DEFAULT_DATE_FORMATS: &[&str] = &["%d.%m.%Y", "%d.%m.%y", "%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y"];

/// The templates that ship with the worker (German and English endoscopy report layouts); the
/// source is `default_templates.toml` beside this file and doubles as the format's example.
pub const DEFAULT_TEMPLATES_TOML: &str = include_str!("default_templates.toml");

/// One report layout: for each identifying field, the rules that find it, tried in order.
///
/// Deserialised from TOML (see [`parse_templates`] and `default_templates.toml`); every rule's
/// pattern is compiled and checked while deserialising, so a template that loads is usable.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawTemplate")]
pub struct ReportTemplate {
    pub name: String,
    pub patient_name: Vec<Rule>,
    pub birth_date: Vec<Rule>,
    pub examination_date: Vec<Rule>,
    pub examiner: Vec<Rule>,
}

/// How a patient name captured by a rule is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NameOrder {
    /// "Last, First" when the value has a comma, otherwise "First Last".
    #[default]
    Auto,
    /// "Mustermann, Erika" or "MUSTERMANN Erika".
    LastFirst,
    /// "Erika Mustermann".
    FirstLast,
}

/// A rule: a regular expression whose capture group `value` is the field's value.
///
/// The pattern runs over the whole extracted text in multi-line mode (`^` and `$` match at line
/// starts and ends); `.` does not cross lines, `\s` does (use `[ \t]` to stay on the line). Runs
/// on one line are separated by a space, or by a tab across a column gap. Date rules parse the
/// captured value with their formats (chrono `strftime` syntax), the first that fits wins.
#[derive(Clone)]
pub struct Rule {
    regex: Regex,
    formats: Vec<String>,
    name_order: NameOrder,
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rule")
            .field("pattern", &self.regex.as_str())
            .field("formats", &self.formats)
            .field("name_order", &self.name_order)
            .finish()
    }
}

impl Rule {
    /// The pattern as written in the template.
    pub fn pattern(&self) -> &str {
        self.regex.as_str()
    }

    /// The date formats this rule parses its value with (empty for name rules).
    pub fn formats(&self) -> &[String] {
        &self.formats
    }

    pub fn name_order(&self) -> NameOrder {
        self.name_order
    }

    /// The trimmed `value` of each match, in text order.
    pub(crate) fn values<'t>(&'t self, text: &'t str) -> impl Iterator<Item = &'t str> + 't {
        self.regex.captures_iter(text).filter_map(|c| c.name("value")).map(|m| m.as_str().trim_matches(TRIM)).filter(|v| !v.is_empty())
    }

    /// The first match whose value parses as a date with one of the rule's formats.
    pub(crate) fn find_date(&self, text: &str, birth: bool) -> Option<(NaiveDate, String)> {
        self.values(text).find_map(|v| {
            // "12. 08. 1961" and "August  12, 1961" are the dates the formats describe.
            let single: String = v.split_whitespace().collect::<Vec<_>>().join(" ");
            let none: String = v.split_whitespace().collect();
            let date =
                self.formats.iter().find_map(|f| [v, &single, &none].into_iter().find_map(|v| NaiveDate::parse_from_str(v, f).ok()))?;
            Some((if birth { fix_century(date) } else { date }, v.to_owned()))
        })
    }
}

/// Characters trimmed from a captured value: whitespace and the punctuation that separates
/// fields on a report line ("Mustermann, Erika, geb. …").
const TRIM: &[char] = &[' ', '\t', '\n', '\r', ',', ';', ':', '\u{a0}'];

/// Two-digit years parse into 1970–2069; a birth date cannot lie in the future, so one that does
/// is a century earlier ("12.08.61" is 1961).
fn fix_century(date: NaiveDate) -> NaiveDate {
    let this_year = chrono::Utc::now().year();
    if date.year() > this_year { date.with_year(date.year() - 100).unwrap_or(date) } else { date }
}

/// Errors loading templates. The message names the template and the rule, never a report's data.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("invalid report templates: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("report template {0:?} is defined twice")]
    Duplicate(String),
}

/// Parses a templates file: a TOML array of tables `[[template]]`, each a [`ReportTemplate`].
///
/// ```toml
/// [[template]]
/// name = "de-endoskopie"
/// date_formats = ["%d.%m.%Y", "%d.%m.%y"]   # for this template's date rules
///
/// [[template.patient_name]]
/// pattern = '^Patient(?:in)?:\s*(?P<value>.+?),?\s*geb\.'
/// name_order = "last_first"
///
/// [[template.birth_date]]
/// pattern = 'geb\.\s*(?P<value>\d{1,2}\.\d{1,2}\.\d{2,4})'
/// formats = ["%d.%m.%Y"]                    # optional, overrides date_formats
/// ```
pub fn parse_templates(toml: &str) -> Result<Vec<ReportTemplate>, TemplateError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        #[serde(default)]
        template: Vec<ReportTemplate>,
    }
    let file: File = toml::from_str(toml)?;
    let mut names = HashSet::new();
    for template in &file.template {
        if !names.insert(template.name.as_str()) {
            return Err(TemplateError::Duplicate(template.name.clone()));
        }
    }
    Ok(file.template)
}

/// The templates that ship with the worker: a German ("Patient: Mustermann, Erika, geb. …",
/// "Untersuchungsdatum: …", "Untersucher: …") and an English ("Name: … DOB: …",
/// "Date of examination: …", "Endoscopist: …") endoscopy report layout.
pub fn default_templates() -> Vec<ReportTemplate> {
    // The file is part of the binary and covered by a test, so it always parses; an empty list
    // (anonymisation by the uploader's known identity alone) is the safe fallback all the same.
    parse_templates(DEFAULT_TEMPLATES_TOML).unwrap_or_default()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemplate {
    name: String,
    #[serde(default)]
    date_formats: Vec<String>,
    #[serde(default)]
    patient_name: Vec<RawRule>,
    #[serde(default)]
    birth_date: Vec<RawRule>,
    #[serde(default)]
    examination_date: Vec<RawRule>,
    #[serde(default)]
    examiner: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    pattern: String,
    formats: Option<Vec<String>>,
    name_order: Option<NameOrder>,
}

#[derive(Clone, Copy, PartialEq)]
enum Field {
    PatientName,
    BirthDate,
    ExaminationDate,
    Examiner,
}

impl Field {
    fn key(self) -> &'static str {
        match self {
            Field::PatientName => "patient_name",
            Field::BirthDate => "birth_date",
            Field::ExaminationDate => "examination_date",
            Field::Examiner => "examiner",
        }
    }

    fn is_date(self) -> bool {
        matches!(self, Field::BirthDate | Field::ExaminationDate)
    }
}

impl TryFrom<RawTemplate> for ReportTemplate {
    type Error = String;

    fn try_from(raw: RawTemplate) -> Result<Self, String> {
        let name = raw.name.trim().to_owned();
        if name.is_empty() {
            return Err("a report template has an empty name".into());
        }
        let at = |what: String| format!("report template {name:?}: {what}");
        if raw.patient_name.is_empty() && raw.birth_date.is_empty() && raw.examination_date.is_empty() && raw.examiner.is_empty() {
            return Err(at("has no rules".into()));
        }
        for format in &raw.date_formats {
            check_format(format).map_err(|e| at(format!("date format {format:?} {e}")))?;
        }
        let date_formats: Vec<String> =
            if raw.date_formats.is_empty() { DEFAULT_DATE_FORMATS.iter().map(|f| (*f).to_owned()).collect() } else { raw.date_formats };
        let rules = |field: Field, raw_rules: Vec<RawRule>| -> Result<Vec<Rule>, String> {
            raw_rules
                .into_iter()
                .enumerate()
                .map(|(i, r)| {
                    compile(field, r, &date_formats)
                        .map_err(|RuleError(what, pattern)| at(format!("{} rule {} (pattern {pattern:?}): {what}", field.key(), i + 1)))
                })
                .collect()
        };
        Ok(ReportTemplate {
            patient_name: rules(Field::PatientName, raw.patient_name)?,
            birth_date: rules(Field::BirthDate, raw.birth_date)?,
            examination_date: rules(Field::ExaminationDate, raw.examination_date)?,
            examiner: rules(Field::Examiner, raw.examiner)?,
            name,
        })
    }
}

/// A rule's problem and its pattern, for the message.
struct RuleError(String, String);

fn compile(field: Field, raw: RawRule, template_formats: &[String]) -> Result<Rule, RuleError> {
    let fail = |what: String| RuleError(what, raw.pattern.clone());
    let regex = RegexBuilder::new(&raw.pattern)
        .multi_line(true)
        .build()
        // The regex error is multi-line with a caret under the position; keep it on one line.
        .map_err(|e| fail(format!("invalid regular expression: {}", e.to_string().split_whitespace().collect::<Vec<_>>().join(" "))))?;
    if !regex.capture_names().any(|n| n == Some("value")) {
        return Err(fail("the pattern has no capture group named `value`, write it as (?P<value>…)".into()));
    }
    if raw.name_order.is_some() && field != Field::PatientName {
        return Err(fail("`name_order` only applies to patient_name rules".into()));
    }
    let formats = match (field.is_date(), raw.formats) {
        (false, Some(_)) => return Err(fail("`formats` only applies to birth_date and examination_date rules".into())),
        (false, None) => Vec::new(),
        (true, None) => template_formats.to_vec(),
        (true, Some(formats)) if formats.is_empty() => return Err(fail("`formats` is empty".into())),
        (true, Some(formats)) => {
            for format in &formats {
                check_format(format).map_err(|e| fail(format!("date format {format:?} {e}")))?;
            }
            formats
        }
    };
    Ok(Rule { regex, formats, name_order: raw.name_order.unwrap_or_default() })
}

/// A date format must be valid `strftime` and pin down a whole date: formatting a date and
/// parsing it back must give that date.
fn check_format(format: &str) -> Result<(), &'static str> {
    if StrftimeItems::new(format).any(|item| matches!(item, Item::Error)) {
        return Err("is not a valid strftime format");
    }
    let probe = NaiveDate::from_ymd_opt(1987, 11, 23).ok_or("cannot be checked")?;
    // `%y` maps 87 to 1987, so the probe round-trips through two-digit years too.
    match NaiveDate::parse_from_str(&probe.format(format).to_string(), format) {
        Ok(date) if date == probe => Ok(()),
        _ => Err("does not give a whole date (it needs a day, a month and a year)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_checked() {
        assert!(check_format("%d.%m.%Y").is_ok());
        assert!(check_format("%B %d, %Y").is_ok());
        assert!(check_format("%d.%m.%y").is_ok());
        assert!(check_format("%d.%m").is_err());
        assert!(check_format("%Q").is_err());
    }

    #[test]
    fn two_digit_birth_years_are_last_century() {
        let date = NaiveDate::from_ymd_opt(2061, 8, 12);
        assert_eq!(date.map(fix_century), NaiveDate::from_ymd_opt(1961, 8, 12));
    }

    #[test]
    fn dates_with_spaces_parse() {
        let templates = default_templates();
        let Some(german) = templates.first() else { panic!("no templates") };
        let found = german.birth_date.iter().find_map(|r| r.find_date("Patient: X, geb. 12. 08. 1961", true));
        assert_eq!(found.map(|f| f.0), NaiveDate::from_ymd_opt(1961, 8, 12));
        let Some(english) = templates.get(1) else { panic!("no templates") };
        let found = english.birth_date.iter().find_map(|r| r.find_date("DOB: August  12, 1961", true));
        assert_eq!(found.map(|f| f.0), NaiveDate::from_ymd_opt(1961, 8, 12));
    }
}
