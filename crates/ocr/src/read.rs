//! Reading one overlay field: a rectangle of a luma plane, one line of text.

use std::borrow::Cow;
use std::ffi::CString;

use crate::engine::{Engine, Layout, OcrError};
use crate::plane::{LumaPlane, Rect};
use crate::prepare::{Prepared, prepare_region};
use crate::umlaut;

/// The characters Tesseract may choose from for a field. Restricting them is the cheapest accuracy gain
/// there is: a date field cannot be read as `I2.O8.196l`.
#[derive(Clone, PartialEq, Eq)]
pub struct Charset(Cow<'static, str>);

impl Charset {
    /// Any character the language data knows.
    pub const ANY: Charset = Charset(Cow::Borrowed(""));
    /// Dates as overlays print them: `12.08.1961`.
    pub const DATE: Charset = Charset(Cow::Borrowed("0123456789."));
    /// Times: `14:32:07`.
    pub const TIME: Charset = Charset(Cow::Borrowed("0123456789:"));
    /// A date and a time in one field.
    pub const DATE_TIME: Charset = Charset(Cow::Borrowed("0123456789.: "));
    /// Names: letters, German umlauts and ß, hyphen, comma, apostrophe, space.
    pub const NAME: Charset = Charset(Cow::Borrowed("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyzÄÖÜäöüß-,' "));
    /// Device types and serial numbers.
    pub const ALPHANUMERIC: Charset = Charset(Cow::Borrowed("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-./ "));

    /// Any other set of characters.
    pub fn custom(chars: &str) -> Result<Charset, OcrError> {
        if chars.contains('\0') {
            return Err(OcrError::InvalidCharset);
        }
        Ok(Charset(Cow::Owned(chars.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether Tesseract may produce `c` under this set.
    pub fn allows(&self, c: char) -> bool {
        self.0.is_empty() || self.0.contains(c)
    }

    pub(crate) fn to_cstring(&self) -> Result<CString, OcrError> {
        CString::new(self.0.as_bytes()).map_err(|_| OcrError::InvalidCharset)
    }
}

impl std::fmt::Debug for Charset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Charset({:?})", self.0)
    }
}

/// What a field says, with Tesseract's mean word confidence (0..1). Empty text with confidence 0 when the
/// region is blank or Tesseract found no word. `Debug` does not print the text: it may be a patient's name.
#[derive(Clone, PartialEq)]
pub struct Reading {
    pub text: String,
    pub confidence: f32,
}

impl Reading {
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    fn nothing() -> Reading {
        Reading { text: String::new(), confidence: 0.0 }
    }
}

impl std::fmt::Debug for Reading {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reading").field("chars", &self.text.chars().count()).field("confidence", &self.confidence).finish()
    }
}

/// One line, single spaces, no leading or trailing whitespace.
pub(crate) fn tidy(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Engine {
    /// Reads one line of text in `rect` (clipped to the plane). A rectangle that misses the plane entirely is
    /// an error ([`OcrError::RegionOutside`]); a blank one reads as empty without asking Tesseract.
    pub fn read_line(&mut self, plane: &LumaPlane<'_>, rect: Rect, charset: &Charset) -> Result<Reading, OcrError> {
        let whitelist = charset.to_cstring()?;
        match prepare_region(plane, rect, self.preprocess()) {
            Prepared::Outside => Err(OcrError::RegionOutside { rect, width: plane.width(), height: plane.height() }),
            Prepared::Blank => Ok(Reading::nothing()),
            Prepared::Ready(image) => {
                let r = self.recognise(&image, Layout::SingleLine, &whitelist)?;
                let mut text = tidy(&r.text);
                if ['Ä', 'Ö', 'Ü', 'ä', 'ö', 'ü'].iter().all(|c| charset.allows(*c)) {
                    text = umlaut::restore(&text, &image);
                }
                let confidence = if text.is_empty() { 0.0 } else { r.confidence };
                Ok(Reading { text, confidence })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tidy_makes_one_line() {
        assert_eq!(tidy("  MUSTERMANN,  ERIKA\n\n"), "MUSTERMANN, ERIKA");
        assert_eq!(tidy("\n"), "");
    }

    #[test]
    fn custom_charsets_refuse_nul_and_debug_hides_reading_text() {
        assert!(matches!(Charset::custom("ab\0"), Err(OcrError::InvalidCharset)));
        assert_eq!(Charset::custom("0-9").map(|c| c.as_str().to_owned()).ok(), Some("0-9".to_owned()));
        let r = Reading { text: "MUSTERMANN".into(), confidence: 0.9 };
        let shown = format!("{r:?}");
        assert!(!shown.contains("MUSTERMANN") && shown.contains("chars: 10"), "{shown}");
    }
}
