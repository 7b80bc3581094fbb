//! Text extraction: a small PDF content interpreter on top of `lopdf`.
//!
//! `lopdf` parses the file (cross-reference repair, object streams, decryption, filters, font
//! encodings) but its own text extraction only follows the order of the content stream and
//! breaks lines at `ET`. Report generators often draw a table column by column (all labels, then
//! all values), so that order splits "Patient:" from its value. Here every string shown is placed
//! on the page (text matrix × CTM), and the page is read back by position: runs are grouped into
//! lines by baseline, sorted left to right, and joined with a space or, across a column gap, a
//! tab. Templates can then match "label: value" on one line whatever order the producer drew it in.

use std::cell::Cell;
use std::collections::HashMap;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use lopdf::Encoding;
use lopdf::{Dictionary, Document, LoadOptions, Object, ObjectId};

use super::ReportError;

/// Bound on any single stream's decompressed size. Reports are a few pages; a stream beyond this
/// is a decompression bomb rather than a report.
const MAX_STREAM_BYTES: usize = 64 * 1024 * 1024;
/// Bounds on the work a hostile content stream can cause: nesting of forms, saved graphics
/// states, and the number of text runs collected over the whole document.
const MAX_FORM_DEPTH: usize = 8;
const MAX_STATE_DEPTH: usize = 256;
const MAX_RUNS: usize = 2_000_000;
/// A form may draw itself (directly or not), each level several times: the depth bound alone
/// would allow an exponential number of draws.
const MAX_FORM_DRAWS: usize = 10_000;
const MAX_OPERATIONS: usize = 20_000_000;
/// A PDF's header may follow some junk and its end marker some trailing bytes; readers accept
/// both within 1024 bytes, and so do we.
const HEADER_WINDOW: usize = 1024;
const TRAILER_WINDOW: usize = 1024;

/// Extracts the text of all pages, in reading order.
///
/// Lines are separated by `\n`; runs on one line by a space, or by a tab where the gap between
/// them is wider than two characters (a table column); a blank line marks a paragraph gap; pages
/// are separated by a line holding only a form feed (`\x0C`). Invisible text (the OCR layer of a
/// scanned-and-recognised PDF) is included.
///
/// Never panics: a panic inside the PDF library is caught and returned as
/// [`ReportError::Unreadable`], so one hostile file cannot take the worker down.
pub fn extract_text(bytes: &[u8]) -> Result<String, ReportError> {
    check_container(bytes)?;
    guarded(|| extract_checked(bytes))
}

/// Cheap checks on the raw bytes, so the common bad uploads get a precise message instead of a
/// parser error.
fn check_container(bytes: &[u8]) -> Result<(), ReportError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ReportError::Empty);
    }
    let head = &bytes[..bytes.len().min(HEADER_WINDOW)];
    if find(head, b"%PDF-").is_none() {
        return Err(ReportError::NotPdf { looks_like: sniff(bytes) });
    }
    let tail = &bytes[bytes.len().saturating_sub(TRAILER_WINDOW)..];
    if find(tail, b"%%EOF").is_none() {
        return Err(ReportError::Truncated);
    }
    Ok(())
}

/// Names what an upload that is not a PDF probably is, for the error message.
fn sniff(bytes: &[u8]) -> &'static str {
    const MAGIC: &[(&[u8], &str)] = &[
        (b"\x89PNG", "a PNG image"),
        (b"\xFF\xD8\xFF", "a JPEG image"),
        (b"GIF8", "a GIF image"),
        (b"II*\0", "a TIFF image"),
        (b"MM\0*", "a TIFF image"),
        (b"PK\x03\x04", "a ZIP archive (e.g. a Word .docx or OpenDocument file)"),
        (b"\xD0\xCF\x11\xE0", "an old Microsoft Office document (.doc)"),
        (b"{\\rtf", "an RTF document"),
        (b"\x1F\x8B", "a gzip archive"),
    ];
    if let Some((_, what)) = MAGIC.iter().find(|(magic, _)| bytes.starts_with(magic)) {
        return what;
    }
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(0);
    let head = bytes[start..bytes.len().min(start + 64)].to_ascii_lowercase();
    if head.starts_with(b"<!doctype html") || head.starts_with(b"<html") {
        "an HTML page"
    } else if head.starts_with(b"<?xml") {
        "an XML document"
    } else if is_text(&bytes[..bytes.len().min(4096)]) {
        "plain text"
    } else {
        "unknown binary data"
    }
}

/// UTF-8, allowing for a character cut at the end of the window.
fn is_text(window: &[u8]) -> bool {
    std::str::from_utf8(window).map_or_else(|e| e.error_len().is_none(), |_| true)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

thread_local! {
    /// Set while this thread runs the PDF library, so the panic hook stays quiet for it.
    static QUIET_PANICS: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f`, turning a panic into [`ReportError::Unreadable`].
///
/// The default panic hook would print the panic message to stderr, that is to the journal, and a
/// library's message may quote document bytes — patient data. So the first call installs a hook
/// that stays silent on a thread inside `guarded` and defers to the previous hook everywhere else.
fn guarded<T>(f: impl FnOnce() -> Result<T, ReportError>) -> Result<T, ReportError> {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !QUIET_PANICS.with(Cell::get) {
                previous(info);
            }
        }));
    });
    let was_quiet = QUIET_PANICS.with(|q| q.replace(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    QUIET_PANICS.with(|q| q.set(was_quiet));
    result.unwrap_or(Err(ReportError::Unreadable))
}

fn extract_checked(bytes: &[u8]) -> Result<String, ReportError> {
    let options = LoadOptions { max_decompressed_size: Some(MAX_STREAM_BYTES), ..LoadOptions::default() };
    let doc = Document::load_mem_with_options(bytes, options).map_err(load_error)?;
    // lopdf opens a file whose user password is empty (permissions-only protection) by itself;
    // one that needs a real password loads without its objects and without a decryption state.
    if doc.trailer.has(b"Encrypt") && doc.encryption_state.is_none() {
        return Err(ReportError::Encrypted);
    }
    let pages = doc.get_pages();
    if pages.is_empty() {
        return Err(ReportError::NoPages);
    }
    let mut interpreter = Interpreter {
        doc: &doc,
        fonts: HashMap::new(),
        runs: Vec::new(),
        runs_left: MAX_RUNS,
        forms_left: MAX_FORM_DRAWS,
        operations_left: MAX_OPERATIONS,
    };
    let mut texts = Vec::with_capacity(pages.len());
    for page_id in pages.values() {
        interpreter.runs.clear();
        let content = doc.get_page_content_with_limit(*page_id, MAX_STREAM_BYTES).map_err(content_error)?;
        let resources = page_resources(&doc, *page_id);
        interpreter.run(&content, &resources, Matrix::IDENTITY, 0)?;
        texts.push(layout(&mut interpreter.runs));
    }
    if texts.iter().all(|t| t.trim().is_empty()) {
        return Err(ReportError::NoText);
    }
    Ok(texts.join("\x0C\n"))
}

fn load_error(error: lopdf::Error) -> ReportError {
    match error {
        lopdf::Error::Decryption(_) | lopdf::Error::InvalidPassword => ReportError::Encrypted,
        other => ReportError::Corrupt(other.to_string()),
    }
}

fn content_error(error: lopdf::Error) -> ReportError {
    match error {
        lopdf::Error::Decompress(lopdf::DecompressError::MemoryLimitExceeded { .. }) => {
            ReportError::Corrupt(format!("a content stream inflates to more than {} MiB", MAX_STREAM_BYTES >> 20))
        }
        other => ReportError::Corrupt(other.to_string()),
    }
}

/// The resource dictionaries that apply to a page, nearest first (a page inherits `/Resources`
/// from its ancestors in the page tree).
fn page_resources(doc: &Document, page_id: ObjectId) -> Vec<&Dictionary> {
    let Ok((direct, ids)) = doc.get_page_resources(page_id) else { return Vec::new() };
    direct.into_iter().chain(ids.into_iter().filter_map(|id| doc.get_dictionary(id).ok())).collect()
}

/// Looks up `name` in the `category` sub-dictionary (`Font`, `XObject`) of the first resource
/// dictionary that has it.
fn lookup<'a>(doc: &'a Document, resources: &[&'a Dictionary], category: &[u8], name: &[u8]) -> Option<(Option<ObjectId>, &'a Object)> {
    resources.iter().find_map(|res| {
        let (_, sub) = doc.dereference(res.get(category).ok()?).ok()?;
        let entry = sub.as_dict().ok()?.get(name).ok()?;
        doc.dereference(entry).ok()
    })
}

/// An affine transformation `[a b c d e f]`, as PDF writes them (row vectors: `p' = p × M`).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Matrix([f32; 6]);

impl Matrix {
    const IDENTITY: Matrix = Matrix([1.0, 0.0, 0.0, 1.0, 0.0, 0.0]);

    fn translate(tx: f32, ty: f32) -> Matrix {
        Matrix([1.0, 0.0, 0.0, 1.0, tx, ty])
    }

    /// `self × other`: first `self`, then `other`.
    fn then(&self, other: &Matrix) -> Matrix {
        let [a1, b1, c1, d1, e1, f1] = self.0;
        let [a2, b2, c2, d2, e2, f2] = other.0;
        Matrix([a1 * a2 + b1 * c2, a1 * b2 + b1 * d2, c1 * a2 + d1 * c2, c1 * b2 + d1 * d2, e1 * a2 + f1 * c2 + e2, e1 * b2 + f1 * d2 + f2])
    }

    fn apply(&self, x: f32, y: f32) -> (f32, f32) {
        let [a, b, c, d, e, f] = self.0;
        (x * a + y * c + e, x * b + y * d + f)
    }

    fn from_operands(operands: &[Object]) -> Option<Matrix> {
        let values: Vec<f32> = operands.iter().map(|o| o.as_float().ok()).collect::<Option<_>>()?;
        let m: [f32; 6] = values.try_into().ok()?;
        m.iter().all(|v| v.is_finite()).then_some(Matrix(m))
    }
}

/// The graphics and text state that `q`/`Q` save and restore.
#[derive(Clone)]
struct State {
    ctm: Matrix,
    font: Option<FontKey>,
    font_size: f32,
    char_spacing: f32,
    word_spacing: f32,
    horizontal_scale: f32,
    leading: f32,
    rise: f32,
}

impl State {
    fn new(ctm: Matrix) -> State {
        State { ctm, font: None, font_size: 0.0, char_spacing: 0.0, word_spacing: 0.0, horizontal_scale: 1.0, leading: 0.0, rise: 0.0 }
    }
}

/// Fonts are cached by object id; a font written directly into a resource dictionary has none
/// and is keyed by its name there (good enough: such fonts are rare and local to one page).
#[derive(Clone, PartialEq, Eq, Hash)]
enum FontKey {
    Object(ObjectId),
    Inline(Vec<u8>),
}

/// What the interpreter needs to know about a font: how to turn codes into text and how far each
/// code advances.
struct Font<'a> {
    encoding: Option<Encoding<'a>>,
    /// Type0 (composite) fonts use two-byte codes (all common CMaps for Western text do).
    two_byte: bool,
    widths: Widths,
    /// Glyph space to text space: 1/1000, except for Type3 fonts, which bring their own matrix.
    scale: f32,
}

enum Widths {
    Simple {
        first: i64,
        widths: Vec<f32>,
        missing: f32,
    },
    Composite {
        ranges: Vec<(u32, u32, WidthRun)>,
        default: f32,
    },
    /// No metrics in the file: one of the standard 14 fonts, approximated.
    Standard {
        monospace: bool,
    },
}

enum WidthRun {
    Each(Vec<f32>),
    Same(f32),
}

impl Widths {
    fn of(&self, code: u32) -> f32 {
        match self {
            Widths::Simple { first, widths, missing } => {
                usize::try_from(i64::from(code) - first).ok().and_then(|i| widths.get(i)).copied().unwrap_or(*missing)
            }
            Widths::Composite { ranges, default } => ranges
                .iter()
                .find(|(lo, hi, _)| (*lo..=*hi).contains(&code))
                .and_then(|(lo, _, run)| match run {
                    WidthRun::Same(w) => Some(*w),
                    WidthRun::Each(ws) => ws.get((code - lo) as usize).copied(),
                })
                .unwrap_or(*default),
            Widths::Standard { monospace: true } => 600.0,
            Widths::Standard { monospace: false } => helvetica_width(code),
        }
    }
}

/// Helvetica's advance widths (AFM, 1/1000 em) for printable ASCII; other codes get an average.
/// Only used for the spacing between runs of a font the file gives no metrics for, so the
/// approximation for Times and others is harmless.
fn helvetica_width(code: u32) -> f32 {
    const ASCII: [u16; 95] = [
        278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556, 556, 556, 556, 556, 556, 556, 556,
        278, 278, 584, 584, 584, 556, 1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, 667, 778, 722, 667,
        611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556, 333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833,
        556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
    ];
    code.checked_sub(32).and_then(|i| ASCII.get(i as usize)).map_or(556.0, |w| f32::from(*w))
}

fn number(obj: &Object) -> Option<f32> {
    obj.as_float().ok().filter(|v| v.is_finite())
}

impl<'a> Font<'a> {
    fn load(doc: &'a Document, dict: &'a Dictionary) -> Font<'a> {
        let subtype = dict.get(b"Subtype").and_then(Object::as_name).unwrap_or(b"");
        let encoding = dict.get_font_encoding_with_limit(doc, MAX_STREAM_BYTES).ok();
        let two_byte = subtype == b"Type0";
        let scale = if subtype == b"Type3" {
            dict.get_deref(b"FontMatrix", doc)
                .ok()
                .and_then(|m| m.as_array().ok())
                .and_then(|m| m.first())
                .and_then(number)
                .unwrap_or(0.001)
        } else {
            0.001
        };
        let widths = if two_byte { composite_widths(doc, dict) } else { simple_widths(doc, dict) };
        Font { encoding, two_byte, widths, scale }
    }

    fn codes<'b>(&self, bytes: &'b [u8]) -> impl Iterator<Item = u32> + 'b {
        let step = if self.two_byte { 2 } else { 1 };
        bytes.chunks(step).map(|c| c.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)))
    }

    fn decode(&self, bytes: &[u8]) -> String {
        let text = match &self.encoding {
            Some(encoding) => Document::decode_text(encoding, bytes).unwrap_or_default(),
            // An unknown encoding: Latin-1 is right for the common simple fonts and at worst
            // yields the garbage any reader would show.
            None if !self.two_byte => bytes.iter().map(|b| char::from(*b)).collect(),
            None => String::new(),
        };
        // Fonts without a usable map yield control characters and replacement characters; they
        // carry nothing and would confuse the line layout.
        text.chars().filter(|c| !c.is_control() && *c != '\u{FFFD}').collect()
    }
}

fn simple_widths(doc: &Document, dict: &Dictionary) -> Widths {
    let deref = |key: &[u8]| dict.get_deref(key, doc).ok();
    let missing =
        deref(b"FontDescriptor").and_then(|d| d.as_dict().ok()).and_then(|d| d.get(b"MissingWidth").ok()).and_then(number).unwrap_or(0.0);
    match (deref(b"FirstChar").and_then(|o| o.as_i64().ok()), deref(b"Widths").and_then(|o| o.as_array().ok())) {
        (Some(first), Some(widths)) => Widths::Simple {
            first,
            widths: widths.iter().map(|w| doc.dereference(w).ok().and_then(|(_, w)| number(w)).unwrap_or(missing)).collect(),
            missing: if missing > 0.0 { missing } else { 500.0 },
        },
        _ => {
            let base = deref(b"BaseFont").and_then(|b| b.as_name().ok()).unwrap_or(b"");
            Widths::Standard { monospace: find(base, b"Courier").is_some() }
        }
    }
}

fn composite_widths(doc: &Document, dict: &Dictionary) -> Widths {
    let descendant = dict
        .get_deref(b"DescendantFonts", doc)
        .ok()
        .and_then(|d| d.as_array().ok())
        .and_then(|d| d.first())
        .and_then(|d| doc.dereference(d).ok())
        .and_then(|(_, d)| d.as_dict().ok());
    let Some(cid) = descendant else { return Widths::Composite { ranges: Vec::new(), default: 1000.0 } };
    let default = cid.get(b"DW").ok().and_then(number).unwrap_or(1000.0);
    let mut ranges = Vec::new();
    // `/W` is `c [w1 w2 …]` (consecutive codes from c) or `c_first c_last w` (a range, one width).
    if let Some(w) = cid.get_deref(b"W", doc).ok().and_then(|w| w.as_array().ok()) {
        let items: Vec<&Object> = w.iter().filter_map(|o| doc.dereference(o).ok().map(|(_, o)| o)).collect();
        let code = |o: &Object| o.as_i64().ok().and_then(|c| u32::try_from(c).ok());
        let mut i = 0;
        while i < items.len() {
            match (items.get(i).and_then(|o| code(o)), items.get(i + 1), items.get(i + 2)) {
                (Some(first), Some(Object::Array(ws)), _) => {
                    let ws: Vec<f32> = ws.iter().map(|w| number(w).unwrap_or(default)).collect();
                    let last = first.saturating_add(u32::try_from(ws.len()).unwrap_or(u32::MAX).saturating_sub(1));
                    ranges.push((first, last, WidthRun::Each(ws)));
                    i += 2;
                }
                (Some(first), Some(last), Some(width)) => {
                    if let (Some(last), Some(width)) = (code(last), number(width)) {
                        ranges.push((first, last, WidthRun::Same(width)));
                    }
                    i += 3;
                }
                _ => break,
            }
        }
    }
    Widths::Composite { ranges, default }
}

/// One string shown on the page, placed in user space.
#[derive(Debug, Clone)]
struct Run {
    text: String,
    /// Start and end of the baseline, after rotating the page's dominant writing direction to
    /// left-to-right.
    x0: f32,
    x1: f32,
    y: f32,
    size: f32,
    /// Which way the text runs, in quarter turns (0: left to right).
    quarter: u8,
}

struct Interpreter<'a> {
    doc: &'a Document,
    fonts: HashMap<FontKey, Font<'a>>,
    runs: Vec<Run>,
    runs_left: usize,
    forms_left: usize,
    operations_left: usize,
}

/// The error for a document that exhausts one of the interpreter's budgets.
fn too_complex() -> ReportError {
    ReportError::Corrupt("the page content is implausibly complex (more text, forms or operations than any report has)".into())
}

impl<'a> Interpreter<'a> {
    /// Interprets one content stream (a page's or a form's).
    fn run(&mut self, content: &[u8], resources: &[&'a Dictionary], ctm: Matrix, depth: usize) -> Result<(), ReportError> {
        // A page whose content does not parse is damaged, but the other pages may still carry
        // the report; lopdf's lenient parser already recovers what it can.
        let Ok(content) = lopdf::content::Content::decode(content) else { return Ok(()) };
        let mut state = State::new(ctm);
        let mut saved: Vec<State> = Vec::new();
        let mut tm = Matrix::IDENTITY;
        let mut tlm = Matrix::IDENTITY;
        self.operations_left = self.operations_left.checked_sub(content.operations.len()).ok_or_else(too_complex)?;
        for op in &content.operations {
            let args = &op.operands;
            let num = |i: usize| args.get(i).and_then(number);
            match op.operator.as_str() {
                "q" if saved.len() < MAX_STATE_DEPTH => saved.push(state.clone()),
                "Q" => {
                    if let Some(s) = saved.pop() {
                        state = s;
                    }
                }
                "cm" => {
                    if let Some(m) = Matrix::from_operands(args) {
                        state.ctm = m.then(&state.ctm);
                    }
                }
                "BT" => {
                    tm = Matrix::IDENTITY;
                    tlm = Matrix::IDENTITY;
                }
                "Td" | "TD" => {
                    if let (Some(tx), Some(ty)) = (num(0), num(1)) {
                        if op.operator == "TD" {
                            state.leading = -ty;
                        }
                        tlm = Matrix::translate(tx, ty).then(&tlm);
                        tm = tlm;
                    }
                }
                "Tm" => {
                    if let Some(m) = Matrix::from_operands(args) {
                        tlm = m;
                        tm = m;
                    }
                }
                "T*" => {
                    tlm = Matrix::translate(0.0, -state.leading).then(&tlm);
                    tm = tlm;
                }
                "Tc" => state.char_spacing = num(0).unwrap_or(0.0),
                "Tw" => state.word_spacing = num(0).unwrap_or(0.0),
                "Tz" => state.horizontal_scale = num(0).unwrap_or(100.0) / 100.0,
                "TL" => state.leading = num(0).unwrap_or(0.0),
                "Ts" => state.rise = num(0).unwrap_or(0.0),
                "Tf" => {
                    state.font = args.first().and_then(|n| n.as_name().ok()).and_then(|n| self.font(resources, n));
                    state.font_size = num(1).unwrap_or(0.0);
                }
                "Tj" => {
                    if let Some(s) = args.first().and_then(|s| s.as_str().ok()) {
                        self.show(&state, &mut tm, s)?;
                    }
                }
                "'" | "\"" => {
                    if op.operator == "\"" {
                        state.word_spacing = num(0).unwrap_or(state.word_spacing);
                        state.char_spacing = num(1).unwrap_or(state.char_spacing);
                    }
                    tlm = Matrix::translate(0.0, -state.leading).then(&tlm);
                    tm = tlm;
                    if let Some(s) = args.last().and_then(|s| s.as_str().ok()) {
                        self.show(&state, &mut tm, s)?;
                    }
                }
                "TJ" => {
                    for item in args.first().and_then(|a| a.as_array().ok()).map(Vec::as_slice).unwrap_or_default() {
                        match item {
                            Object::String(s, _) => self.show(&state, &mut tm, s)?,
                            other => {
                                if let Some(n) = number(other) {
                                    let tx = -n / 1000.0 * state.font_size * state.horizontal_scale;
                                    tm = Matrix::translate(tx, 0.0).then(&tm);
                                }
                            }
                        }
                    }
                }
                "Do" if depth < MAX_FORM_DEPTH => {
                    if let Some(name) = args.first().and_then(|n| n.as_name().ok()) {
                        self.form(resources, name, &state.ctm, depth)?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Draws a form XObject: its own content, with its own resources, under its matrix. Report
    /// generators put letterheads and sometimes whole pages in forms.
    fn form(&mut self, resources: &[&'a Dictionary], name: &[u8], ctm: &Matrix, depth: usize) -> Result<(), ReportError> {
        let Some((_, Object::Stream(stream))) = lookup(self.doc, resources, b"XObject", name) else { return Ok(()) };
        if stream.dict.get(b"Subtype").and_then(Object::as_name).ok() != Some(b"Form".as_slice()) {
            return Ok(());
        }
        self.forms_left = self.forms_left.checked_sub(1).ok_or_else(too_complex)?;
        let content = match stream.get_plain_content_with_limit(MAX_STREAM_BYTES) {
            Ok(content) => content,
            Err(error @ lopdf::Error::Decompress(lopdf::DecompressError::MemoryLimitExceeded { .. })) => return Err(content_error(error)),
            // A filter lopdf lacks, or broken data: the form is lost, the page may still be read.
            Err(_) => return Ok(()),
        };
        let matrix = stream
            .dict
            .get(b"Matrix")
            .ok()
            .and_then(|m| m.as_array().ok())
            .and_then(|m| Matrix::from_operands(m))
            .unwrap_or(Matrix::IDENTITY);
        let own = stream.dict.get(b"Resources").ok().and_then(|r| self.doc.dereference(r).ok()).and_then(|(_, r)| r.as_dict().ok());
        let mut inner: Vec<&'a Dictionary> = own.into_iter().collect();
        inner.extend_from_slice(resources);
        self.run(&content, &inner, matrix.then(ctm), depth + 1)
    }

    fn font(&mut self, resources: &[&'a Dictionary], name: &[u8]) -> Option<FontKey> {
        let (id, obj) = lookup(self.doc, resources, b"Font", name)?;
        let key = id.map_or_else(|| FontKey::Inline(name.to_vec()), FontKey::Object);
        if !self.fonts.contains_key(&key) {
            let dict = obj.as_dict().ok()?;
            self.fonts.insert(key.clone(), Font::load(self.doc, dict));
        }
        Some(key)
    }

    /// Shows one string: records it as a run and advances the text matrix past it.
    fn show(&mut self, state: &State, tm: &mut Matrix, bytes: &[u8]) -> Result<(), ReportError> {
        let Some(font) = state.font.as_ref().and_then(|k| self.fonts.get(k)) else { return Ok(()) };
        let mut advance = 0.0;
        for code in font.codes(bytes) {
            let word = if code == 32 && !font.two_byte { state.word_spacing } else { 0.0 };
            advance += (font.widths.of(code) * font.scale * state.font_size + state.char_spacing + word) * state.horizontal_scale;
        }
        let text = font.decode(bytes);
        let trm = tm.then(&state.ctm);
        let start = trm.apply(0.0, state.rise);
        let end = trm.apply(advance, state.rise);
        *tm = Matrix::translate(advance, 0.0).then(tm);
        if text.is_empty() {
            return Ok(());
        }
        self.runs_left = self.runs_left.checked_sub(1).ok_or_else(too_complex)?;
        let [_, _, c, d, _, _] = trm.0;
        let size = state.font_size.abs() * (c * c + d * d).sqrt();
        let (dx, dy) = (end.0 - start.0, end.1 - start.1);
        // Zero-width runs (no metrics) take the direction of the text matrix instead.
        let (dx, dy) = if dx.abs() + dy.abs() > f32::EPSILON { (dx, dy) } else { (trm.0[0], trm.0[1]) };
        let quarter = if dx.abs() >= dy.abs() {
            if dx >= 0.0 { 0 } else { 2 }
        } else if dy > 0.0 {
            1
        } else {
            3
        };
        let (x0, y, x1, _) = rotate_back(quarter, start, end);
        self.runs.push(Run { text, x0, x1, y, size: if size.is_finite() && size > 0.0 { size } else { 1.0 }, quarter });
        Ok(())
    }
}

/// Rotates the baseline from `start` to `end` by `quarter` quarter turns clockwise, so text
/// running that way runs left to right; returns (x0, y, x1, y1).
fn rotate_back(quarter: u8, start: (f32, f32), end: (f32, f32)) -> (f32, f32, f32, f32) {
    let turn = |(x, y): (f32, f32)| match quarter {
        1 => (y, -x),
        2 => (-x, -y),
        3 => (-y, x),
        _ => (x, y),
    };
    let (s, e) = (turn(start), turn(end));
    (s.0, s.1, e.0, e.1)
}

/// Reads one page's runs back as text: lines top to bottom, runs left to right.
fn layout(runs: &mut [Run]) -> String {
    // Text at another angle (a vertical margin note) would scatter across the lines of the
    // body; it is read as lines of its own, after the body.
    let mut by_quarter: [Vec<Run>; 4] = Default::default();
    for run in runs.iter() {
        by_quarter[usize::from(run.quarter & 3)].push(run.clone());
    }
    let dominant = (0..4).max_by_key(|q| by_quarter[*q].iter().map(|r| r.text.len()).sum::<usize>()).unwrap_or(0);
    let mut out = String::new();
    for q in std::iter::once(dominant).chain((0..4).filter(|q| *q != dominant)) {
        let runs = &mut by_quarter[q];
        if runs.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        layout_lines(runs, &mut out);
    }
    out
}

fn layout_lines(runs: &mut [Run], out: &mut String) {
    // Top to bottom (PDF's y grows upwards); the stable sort keeps drawing order among equals.
    runs.sort_by(|a, b| b.y.total_cmp(&a.y));
    let mut lines: Vec<Vec<&Run>> = Vec::new();
    let mut line_y = f32::NAN;
    let mut line_size: f32 = 0.0;
    for run in runs.iter() {
        // Runs belong to one line while their baselines are closer than half a character height;
        // sub- and superscripts stay on their line.
        let tolerance = 0.5 * line_size.max(run.size);
        if lines.is_empty() || (line_y - run.y).abs() > tolerance {
            lines.push(Vec::new());
            line_y = run.y;
            line_size = run.size;
        } else {
            line_size = line_size.max(run.size);
        }
        if let Some(line) = lines.last_mut() {
            line.push(run);
        }
    }
    let mut previous: Option<(f32, f32)> = None;
    for line in &mut lines {
        line.sort_by(|a, b| a.x0.total_cmp(&b.x0));
        let y = line.first().map_or(0.0, |r| r.y);
        let size = line.iter().map(|r| r.size).fold(0.0, f32::max);
        if let Some((prev_y, prev_size)) = previous {
            // A gap of more than two lines is a paragraph break; a blank line keeps it visible.
            if prev_y - y > 2.0 * prev_size.max(size) && !out.is_empty() {
                out.push('\n');
            }
        }
        previous = Some((y, size));
        let mut text = String::new();
        let mut last: Option<&Run> = None;
        for run in line.iter() {
            if let Some(prev) = last {
                // Producers fake bold by drawing the same text twice, slightly offset.
                if prev.text == run.text && (prev.x0 - run.x0).abs() < 0.2 * run.size {
                    continue;
                }
                let gap = run.x0 - prev.x1;
                let em = prev.size.max(run.size);
                let joined = text.ends_with(char::is_whitespace) || run.text.starts_with(char::is_whitespace);
                if gap > 2.0 * em {
                    text.truncate(text.trim_end().len());
                    text.push('\t');
                } else if gap > 0.15 * em && !joined {
                    text.push(' ');
                }
            }
            if text.ends_with('\t') {
                text.push_str(run.text.trim_start());
            } else {
                text.push_str(&run.text);
            }
            last = Some(run);
        }
        let text = text.trim();
        if !text.is_empty() {
            out.push_str(text);
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_in_the_library_becomes_an_error() {
        let result: Result<(), ReportError> = guarded(|| panic!("library bug"));
        assert!(matches!(result, Err(ReportError::Unreadable)));
        // The hook only silences the guarded section; the flag is back afterwards.
        assert!(!QUIET_PANICS.with(Cell::get));
    }

    #[test]
    fn sniffs_common_uploads() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n"), "a PNG image");
        assert_eq!(sniff(b"PK\x03\x04rest"), "a ZIP archive (e.g. a Word .docx or OpenDocument file)");
        assert_eq!(sniff(b"  <!DOCTYPE html><html>"), "an HTML page");
        assert_eq!(sniff(b"Patient: text"), "plain text");
        assert_eq!(sniff(&[0xFF, 0x00, 0xFE, 0x01]), "unknown binary data");
    }

    #[test]
    fn matrices_compose_in_pdf_order() {
        let scale = Matrix([2.0, 0.0, 0.0, 2.0, 0.0, 0.0]);
        let shift = Matrix::translate(10.0, 20.0);
        // First scale, then shift.
        assert_eq!(scale.then(&shift).apply(1.0, 1.0), (12.0, 22.0));
        assert_eq!(shift.then(&scale).apply(1.0, 1.0), (22.0, 42.0));
    }

    fn run(text: &str, x0: f32, x1: f32, y: f32) -> Run {
        Run { text: text.into(), x0, x1, y, size: 10.0, quarter: 0 }
    }

    #[test]
    fn layout_orders_by_position_not_drawing_order() {
        // A table drawn column by column: labels first, then values.
        let mut runs = vec![
            run("Patient:", 50.0, 90.0, 700.0),
            run("Datum:", 50.0, 82.0, 686.0),
            run("Mustermann, Erika", 150.0, 240.0, 700.0),
            run("03.02.2024", 150.0, 200.0, 686.0),
            run("Befund", 50.0, 80.0, 600.0),
            run("Polyp", 50.0, 75.0, 586.0),
            run("6", 77.5, 82.0, 586.0),
            run("mm", 84.0, 98.0, 586.0),
        ];
        assert_eq!(layout(&mut runs), "Patient:\tMustermann, Erika\nDatum:\t03.02.2024\n\nBefund\nPolyp 6 mm\n");
    }
}
