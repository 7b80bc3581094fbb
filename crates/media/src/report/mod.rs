//! Report PDFs: text extraction, template rules that find the identifying values, and the
//! anonymised text.
//!
//! A report job runs three steps; storing the original PDF encrypted is done elsewhere.
//!
//! 1. [`extract_text`] turns the PDF into text, in pure Rust (`lopdf` parses the file; the
//!    module's own small content interpreter places every string on the page and reads the page
//!    back line by line, so a table drawn column by column still comes out as "label: value"
//!    lines). Bad input gets a [`ReportError`] that names the problem — empty file, not a PDF,
//!    truncated, corrupt, encrypted, no text layer (scanned: OCR is not supported) — and a panic
//!    in the PDF library is caught and reported the same way, so a hostile file cannot take the
//!    worker down.
//! 2. [`ReportTemplate`]s, loaded from TOML ([`parse_templates`], [`default_templates`]), hold
//!    per-layout rules: regular expressions with a `value` group that find the patient's name,
//!    birth date, the examination date and the examiner. Patterns are compiled and checked at
//!    load; an error names the template and the rule.
//! 3. [`anonymise`] picks the template whose rules find the most, and replaces every occurrence
//!    of the values found and of those the uploader supplied ([`KnownIdentity`]) — every name
//!    order and part, every common date rendering, anywhere in the text — with the placeholders
//!    [`PATIENT_NAME`], [`BIRTH_DATE`], [`EXAMINATION_DATE`], [`EXAMINER`]. The values found come
//!    back separately ([`FoundIdentity`]) for the identifying tables.
//!
//! Nothing in this module logs, and no error message carries a value from a report: the text is
//! patient data until it has been anonymised, and the found identity stays patient data. The
//! identity types' `Debug` shows only which fields are set.
//!
//! ```
//! use endoreg_media::report::{anonymise, default_templates, KnownIdentity};
//!
//! let text = "Patient: Mustermann, Erika, geb. 12.08.1961\nUntersuchungsdatum: 03.02.2024\n\
//!             Untersucher: Dr. med. Hans Beispiel\nBefund: Polyp 6 mm, Paris 0-Is. Frau Mustermann wurde aufgeklärt.";
//! let result = anonymise(text, &default_templates(), &KnownIdentity::default());
//! assert_eq!(result.template.as_deref(), Some("de-endoskopie"));
//! assert_eq!(result.found.patient_last_name.as_deref(), Some("Mustermann"));
//! assert_eq!(
//!     result.text,
//!     "Patient: [PATIENT_NAME], geb. [BIRTH_DATE]\nUntersuchungsdatum: [EXAMINATION_DATE]\n\
//!      Untersucher: [EXAMINER]\nBefund: Polyp 6 mm, Paris 0-Is. Frau [PATIENT_NAME] wurde aufgeklärt."
//! );
//! ```

mod anonymise;
mod extract;
mod template;

pub use anonymise::{Anonymised, BIRTH_DATE, EXAMINATION_DATE, EXAMINER, FoundIdentity, KnownIdentity, PATIENT_NAME, WITHHELD, anonymise};
pub use extract::extract_text;
pub use template::{
    DEFAULT_DATE_FORMATS, DEFAULT_TEMPLATES_TOML, NameOrder, ReportTemplate, Rule, TemplateError, default_templates, parse_templates,
};

/// Why a report's text could not be extracted. Each message says what is wrong with the file
/// and, where there is one, what the uploader can do; none quotes the file's content.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    #[error("the report file is empty")]
    Empty,
    #[error("the report file is not a PDF (it looks like {looks_like}; a PDF starts with \"%PDF-\")")]
    NotPdf { looks_like: &'static str },
    #[error("the PDF is truncated (its end marker \"%%EOF\" is missing); the upload is probably incomplete")]
    Truncated,
    #[error("the PDF is corrupt and cannot be read: {0}")]
    Corrupt(String),
    #[error("the PDF is encrypted with a password; upload an unprotected copy")]
    Encrypted,
    #[error("the PDF has no pages")]
    NoPages,
    #[error("the PDF contains no text, probably a scanned image; OCR is not supported, upload a PDF with a text layer")]
    NoText,
    #[error("the PDF could not be read: the PDF library failed on it (a corrupt or hostile file)")]
    Unreadable,
}
