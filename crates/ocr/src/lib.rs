//! Reading the text a video processor burns into its output (patient name, birth date, examination date
//! and time, endoscope type and serial number) and checking that anonymised frames show none of it.
//!
//! | module | job |
//! |---|---|
//! | [`engine`] | the start-up check (libtesseract 5, language data `deu` and `eng`), engines, a bounded pool |
//! | [`plane`] | 8-bit grey planes with a stride, as FFmpeg hands them over, and rectangles on them |
//! | [`prepare`] | crop, polarity (overlays are light on black), contrast stretch, enlarging, border; grey by default (Otsu binarisation measured worse) |
//! | [`read`] | one field, one line (Tesseract page segmentation mode 7), with a per-field character whitelist; umlaut dots the model dropped are put back from the image |
//! | [`inspect`] | "is there any text here?": a pixel check first, OCR only when a region is not black |
//! | [`tokens`] | finding an identity's names and dates in OCR text, case- and diacritic-insensitively |
//! | `render` (feature `render`) | drawing text with a TrueType font into a luma plane, for tests and the synthetic corpus |
//!
//! The engine is Tesseract 5 from the system (Debian `libtesseract-dev` to build, `libtesseract5`,
//! `tesseract-ocr-deu` and `tesseract-ocr-eng` to run; nixpkgs `tesseract5.override { enableLanguages =
//! [ "deu" "eng" ]; }`), through `tesseract-plumbing`, the thin safe layer over the bindgen-generated
//! `tesseract-sys` by the maintainer of both (and of `tesseract`, which is built on it). We use the plumbing
//! directly: it hands Tesseract an 8-bit buffer with its bytes per line, returns the word confidences, and
//! keeps the handle usable when a call fails, where `tesseract`'s builder consumes the engine on every
//! call; `leptess` pins an older plumbing whose `tesseract-sys` conflicts (`links`) with the current one.
//! The workspace forbids `unsafe` in our crates, so the FFI stays in those crates. docs/ocr.md has the
//! measurements behind the preprocessing defaults, and why the worker must run with `OMP_THREAD_LIMIT=1`.
//!
//! What it is not: it does not pick frames, scale processor layouts to a recording's size, vote across
//! frames, parse names or dates (endoreg-identity does), store anything, or decide whether a job fails.
//! It never logs: recognised text only ever goes back to the caller, and errors carry sizes, never text.
//!
//! Threads: a Tesseract handle may not be used by two threads at once. [`Engine`] is `Send` but not `Sync`;
//! run reads on blocking threads (`spawn_blocking` or a worker thread) with an engine from an
//! [`EnginePool`], which makes at most `capacity` engines and lends each to one thread at a time.

pub mod engine;
pub mod inspect;
pub mod plane;
pub mod prepare;
pub mod read;
#[cfg(feature = "render")]
pub mod render;
pub mod tokens;
mod umlaut;

pub use engine::{
    Engine, EngineConfig, EnginePool, Installation, Language, OcrError, PooledEngine, SetupError, TessdataSource, check_installation,
};
pub use inspect::{Finding, InspectOptions, Inspection, count_bright};
pub use plane::{LumaImage, LumaPlane, LumaPlaneMut, PlaneError, Rect};
pub use prepare::{Preprocess, ResizeFilter};
pub use read::{Charset, Reading};
pub use tokens::TokenSet;
