//! Rules for text the registry is given. PostgreSQL cannot store U+0000 at all (SQLite can, and then an
//! export of it cannot move to PostgreSQL), and no control character belongs in clinical text, so:
//!
//! - every text that arrives — JSON strings and object keys, query and path parameters — is refused at the
//!   HTTP edge if it holds a control character other than tab, line feed and carriage return
//!   ([`forbidden_anywhere`]), the same on both backends;
//! - single-line fields (names, codes, identifiers) refuse those three as well, and must not be blank;
//!   free text (notes, failure reasons, report text) may keep them ([`Kind`]);
//! - each field has a length limit, counted in characters.

use super::Checks;

/// A control character no text may hold: C0 controls except tab, line feed and carriage return; DEL; C1
/// controls.
pub fn forbidden_anywhere(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r')
}

/// The first character of `text` that `forbidden` refuses, with its position in characters (from 1).
pub fn first_forbidden(text: &str, forbidden: impl Fn(char) -> bool) -> Option<(usize, char)> {
    text.chars().enumerate().find(|(_, c)| forbidden(*c)).map(|(i, c)| (i + 1, c))
}

/// What a refused character is called in an error message: `U+0000`.
pub fn describe(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

/// The kind of a text field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A name, code or identifier: one line, no control character at all, not blank.
    SingleLine,
    /// Free text: tab, line feed and carriage return allowed.
    FreeText,
}

/// Checks `value` as a field of `kind` with at most `max_chars` characters; problems at `pointer`.
pub fn check(checks: &mut Checks, pointer: &str, value: &str, kind: Kind, max_chars: usize) {
    let forbidden: fn(char) -> bool = match kind {
        Kind::SingleLine => char::is_control,
        Kind::FreeText => forbidden_anywhere,
    };
    if let Some((at, c)) = first_forbidden(value, forbidden) {
        let what = if kind == Kind::SingleLine { "a single line of text" } else { "text" };
        checks.add(pointer, format!("must be {what} without control characters; found {} at character {at}", describe(c)));
    } else if kind == Kind::SingleLine && value.trim().is_empty() {
        checks.add(pointer, "must not be blank (send null for an unknown value)");
    }
    let n = value.chars().count();
    if n > max_chars {
        checks.add(pointer, format!("must be at most {max_chars} characters long (it has {n})"));
    }
}

/// Like [`check`], for an optional field.
pub fn check_opt(checks: &mut Checks, pointer: &str, value: Option<&str>, kind: Kind, max_chars: usize) {
    if let Some(v) = value {
        check(checks, pointer, v, kind, max_chars);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_lines_refuse_every_control_character_and_free_text_keeps_line_breaks() {
        let mut checks = Checks::default();
        check(&mut checks, "/a", "Erika", Kind::SingleLine, 10);
        check(&mut checks, "/b", "line 1\r\nline\t2", Kind::FreeText, 100);
        assert!(checks.is_empty());
        check(&mut checks, "/c", "Eri\nka", Kind::SingleLine, 10);
        check(&mut checks, "/d", "a\u{0}b", Kind::FreeText, 10);
        check(&mut checks, "/e", "a\u{85}b", Kind::FreeText, 10);
        check(&mut checks, "/f", "  ", Kind::SingleLine, 10);
        check(&mut checks, "/g", "äöüäöüäöüäö", Kind::SingleLine, 10);
        let err = checks.finish().unwrap_err().to_string();
        for needle in [
            "/c: must be a single line",
            "U+000A at character 4",
            "/d: must be text",
            "U+0000",
            "U+0085",
            "/f: must not be blank",
            "/g: must be at most 10 characters long (it has 11)",
        ] {
            assert!(err.contains(needle), "{needle} not in {err}");
        }
    }
}
