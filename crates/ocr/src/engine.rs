//! The Tesseract engine: the start-up check, one engine per thread, and a small pool of engines.

use std::ffi::{CString, OsString};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, PoisonError};

use tesseract_plumbing::TessBaseApi;
use tesseract_plumbing::tesseract_sys::{
    TessOcrEngineMode_OEM_LSTM_ONLY, TessPageSegMode, TessPageSegMode_PSM_SINGLE_LINE, TessPageSegMode_PSM_SPARSE_TEXT,
};
use thiserror::Error;

use crate::plane::{LumaImage, PlaneError, Rect};
use crate::prepare::Preprocess;

/// The Debian package and the nixpkgs expression that provide a language's data, for error messages.
fn package_hint(language: &str) -> String {
    format!(
        "install the Debian package tesseract-ocr-{language} (nixpkgs: tesseract5.override {{ enableLanguages = [ \"{language}\" ... ]; }}), \
         or point TESSDATA_PREFIX (or the configured tessdata directory) at a directory holding {language}.traineddata"
    )
}

/// A Tesseract language code such as `deu` or `eng`: lower-case ASCII letters, digits and `_`, so it can
/// only ever name a file inside the tessdata directory.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Language(String);

impl Language {
    pub fn new(code: &str) -> Result<Language, SetupError> {
        let ok = !code.is_empty() && code.len() <= 32 && code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok { Ok(Language(code.to_owned())) } else { Err(SetupError::InvalidLanguage { code: code.to_owned() }) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where Tesseract looks for `<language>.traineddata`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TessdataSource {
    /// A directory named in the configuration.
    Configured(PathBuf),
    /// The `TESSDATA_PREFIX` environment variable (Tesseract reads it itself).
    Environment(PathBuf),
    /// The directory compiled into libtesseract (Debian: /usr/share/tesseract-ocr/5/tessdata; nixpkgs'
    /// `tesseract5.override { enableLanguages = ...; }`: its own share/tessdata).
    BuiltIn,
}

impl std::fmt::Display for TessdataSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TessdataSource::Configured(p) => write!(f, "the configured tessdata directory {}", p.display()),
            TessdataSource::Environment(p) => write!(f, "TESSDATA_PREFIX={}", p.display()),
            TessdataSource::BuiltIn => write!(f, "libtesseract's built-in tessdata directory (TESSDATA_PREFIX is not set)"),
        }
    }
}

/// What the engines are made from.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineConfig {
    /// The tessdata directory; `None`: `TESSDATA_PREFIX`, else libtesseract's built-in directory.
    pub tessdata_dir: Option<PathBuf>,
    /// Languages loaded together (`deu+eng`); each must be installed.
    pub languages: Vec<Language>,
    pub preprocess: Preprocess,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            tessdata_dir: None,
            languages: vec![Language("deu".to_owned()), Language("eng".to_owned())],
            preprocess: Preprocess::default(),
        }
    }
}

impl EngineConfig {
    pub fn tessdata_source(&self) -> TessdataSource {
        self.tessdata_source_with(std::env::var_os("TESSDATA_PREFIX"))
    }

    fn tessdata_source_with(&self, env: Option<OsString>) -> TessdataSource {
        match (&self.tessdata_dir, env) {
            (Some(dir), _) => TessdataSource::Configured(dir.clone()),
            (None, Some(env)) if !env.is_empty() => TessdataSource::Environment(PathBuf::from(env)),
            _ => TessdataSource::BuiltIn,
        }
    }

    fn language_arg(&self) -> String {
        self.languages.iter().map(Language::as_str).collect::<Vec<_>>().join("+")
    }
}

/// Why OCR cannot start. Each names what to install or set.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SetupError {
    #[error("invalid Tesseract language code {code:?} (expected lower-case letters, digits and _, like deu or eng)")]
    InvalidLanguage { code: String },
    #[error("no Tesseract language configured")]
    NoLanguage,
    #[error("libtesseract {found} is loaded but endoreg needs Tesseract 5 (Debian: libtesseract5; nixpkgs: tesseract5)")]
    UnsupportedVersion { found: String },
    #[error("the tessdata directory {} does not exist or is not a directory; install tesseract-ocr-deu and tesseract-ocr-eng (Debian) or tesseract5 with enableLanguages = [ \"deu\" \"eng\" ] (nixpkgs), or fix TESSDATA_PREFIX / the configured directory", path.display())]
    TessdataDirMissing { path: PathBuf },
    #[error("Tesseract language data {language:?} is missing: {language}.traineddata is not in {searched}; {}", package_hint(language))]
    LanguageMissing { language: String, searched: String },
    #[error(
        "Tesseract could not load language data {language:?} from {searched} (a damaged or incompatible {language}.traineddata, or the file is missing); {}",
        package_hint(language)
    )]
    LanguageUnusable { language: String, searched: String },
    #[error("the tessdata path {} cannot be handed to Tesseract (it contains a NUL byte)", path.display())]
    BadPath { path: PathBuf },
    #[error("libtesseract refused the setting {name}; is it Tesseract 5?")]
    Setting { name: &'static str },
}

/// Why a read failed. No variant carries recognised text or pixels.
#[derive(Debug, Error)]
pub enum OcrError {
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error(transparent)]
    Plane(#[from] PlaneError),
    #[error("the region x={} y={} {}x{} lies outside the {width}x{height} frame", rect.x, rect.y, rect.width, rect.height)]
    RegionOutside { rect: Rect, width: u32, height: u32 },
    #[error("the character whitelist contains a NUL character")]
    InvalidCharset,
    #[error("the prepared image ({width}x{height}) is too large for Tesseract")]
    ImageTooLarge { width: u32, height: u32 },
    #[error("Tesseract failed: {0}")]
    Tesseract(&'static str),
}

/// What the start-up check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installation {
    /// libtesseract's version string, e.g. `5.3.0`.
    pub version: String,
    pub tessdata: TessdataSource,
    pub languages: Vec<Language>,
    /// `OMP_THREAD_LIMIT` as the process started with it. Anything but `1` lets every read start OpenMP
    /// threads that compete with the other engines: the worker should warn (docs/ocr.md).
    pub omp_thread_limit: Option<String>,
}

impl Installation {
    /// Whether libtesseract's OpenMP is limited to one thread per read, as the worker needs.
    pub fn openmp_single_threaded(&self) -> bool {
        self.omp_thread_limit.as_deref().map(str::trim) == Some("1")
    }
}

/// The start-up check: libtesseract is version 5, and every configured language loads from where the engines
/// will look. Loads each language once on its own so that the error can name the one that is missing.
pub fn check_installation(config: &EngineConfig) -> Result<Installation, SetupError> {
    if config.languages.is_empty() {
        return Err(SetupError::NoLanguage);
    }
    let version = tesseract_plumbing::version().to_string_lossy().into_owned();
    let major = version
        .trim_start_matches(|c: char| !c.is_ascii_digit())
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|m| m.parse::<u32>().ok());
    if major.is_none_or(|m| m < 5) {
        return Err(SetupError::UnsupportedVersion { found: version });
    }
    let source = check_files(config)?;
    let dir = match &source {
        TessdataSource::Configured(p) | TessdataSource::Environment(p) => Some(p.as_path()),
        TessdataSource::BuiltIn => None,
    };
    for lang in &config.languages {
        init_api(config.tessdata_dir.as_deref(), lang.as_str()).map_err(|e| match e {
            InitFailure::BadPath(path) => SetupError::BadPath { path },
            InitFailure::Load if dir.is_none() => {
                SetupError::LanguageMissing { language: lang.as_str().to_owned(), searched: source.to_string() }
            }
            InitFailure::Load => SetupError::LanguageUnusable { language: lang.as_str().to_owned(), searched: source.to_string() },
        })?;
    }
    Ok(Installation {
        version,
        tessdata: source,
        languages: config.languages.clone(),
        omp_thread_limit: std::env::var("OMP_THREAD_LIMIT").ok(),
    })
}

/// The cheap half of the check: where the data is, and, when that directory is known, that every language's
/// file is in it. Tesseract itself starts when *any* of several languages loads, so this is what stops an
/// engine from running without one.
fn check_files(config: &EngineConfig) -> Result<TessdataSource, SetupError> {
    let source = config.tessdata_source();
    let dir = match &source {
        TessdataSource::Configured(p) | TessdataSource::Environment(p) => p.as_path(),
        TessdataSource::BuiltIn => return Ok(source),
    };
    if !dir.is_dir() {
        return Err(SetupError::TessdataDirMissing { path: dir.to_owned() });
    }
    for lang in &config.languages {
        if !dir.join(format!("{}.traineddata", lang.as_str())).is_file() {
            return Err(SetupError::LanguageMissing { language: lang.as_str().to_owned(), searched: source.to_string() });
        }
    }
    Ok(source)
}

enum InitFailure {
    BadPath(PathBuf),
    Load,
}

fn init_api(tessdata_dir: Option<&Path>, languages: &str) -> Result<TessBaseApi, InitFailure> {
    let datapath = match tessdata_dir {
        Some(p) => Some(CString::new(p.as_os_str().as_encoded_bytes()).map_err(|_| InitFailure::BadPath(p.to_owned()))?),
        None => None,
    };
    let lang = CString::new(languages).map_err(|_| InitFailure::Load)?;
    let mut api = TessBaseApi::create();
    api.init_4(datapath.as_deref(), Some(&lang), TessOcrEngineMode_OEM_LSTM_ONLY).map_err(|_| InitFailure::Load)?;
    Ok(api)
}

/// How Tesseract segments the prepared image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Layout {
    /// One line of text (PSM 7): an overlay field.
    SingleLine,
    /// Text anywhere, in no particular order (PSM 11): a whole area.
    Sparse,
}

impl Layout {
    fn psm(self) -> TessPageSegMode {
        match self {
            Layout::SingleLine => TessPageSegMode_PSM_SINGLE_LINE,
            Layout::Sparse => TessPageSegMode_PSM_SPARSE_TEXT,
        }
    }
}

/// Text and confidence exactly as Tesseract returned them, before the caller tidies them.
pub(crate) struct Recognised {
    pub text: String,
    /// Mean of the word confidences, 0..1; 0 when no word was found.
    pub confidence: f32,
}

/// One Tesseract instance. `Send` but not `Sync`: a handle must not be used by two threads at once, so each
/// worker thread owns one ([`EnginePool`] hands them out). Loading `deu+eng` takes about 0.3 s and 22 MB;
/// reuse engines.
pub struct Engine {
    api: TessBaseApi,
    preprocess: Preprocess,
    layout: Option<Layout>,
    whitelist: Option<CString>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("preprocess", &self.preprocess).finish_non_exhaustive()
    }
}

impl Engine {
    /// Loads the configured languages. Refuses a tessdata directory (configured or `TESSDATA_PREFIX`) that
    /// lacks one of them; with libtesseract's built-in directory only [`check_installation`] (which
    /// [`EnginePool::new`] runs) can tell, because Tesseract starts when any one of the languages loads.
    pub fn new(config: &EngineConfig) -> Result<Engine, SetupError> {
        if config.languages.is_empty() {
            return Err(SetupError::NoLanguage);
        }
        let source = check_files(config)?;
        let api = init_api(config.tessdata_dir.as_deref(), &config.language_arg()).map_err(|e| match e {
            InitFailure::BadPath(path) => SetupError::BadPath { path },
            InitFailure::Load => SetupError::LanguageUnusable { language: config.language_arg(), searched: source.to_string() },
        })?;
        let mut engine = Engine { api, preprocess: config.preprocess, layout: None, whitelist: None };
        // Tesseract guesses a resolution from the image otherwise and warns on stderr about each guess.
        engine.api.set_variable(c"user_defined_dpi", c"300").map_err(|_| SetupError::Setting { name: "user_defined_dpi" })?;
        Ok(engine)
    }

    pub fn preprocess(&self) -> &Preprocess {
        &self.preprocess
    }

    pub fn set_preprocess(&mut self, preprocess: Preprocess) {
        self.preprocess = preprocess;
    }

    /// Runs Tesseract on a prepared (binary, dark-on-light) image.
    pub(crate) fn recognise(&mut self, image: &LumaImage, layout: Layout, whitelist: &CString) -> Result<Recognised, OcrError> {
        if self.layout != Some(layout) {
            self.api.set_page_seg_mode(layout.psm());
            self.layout = Some(layout);
        }
        if self.whitelist.as_ref() != Some(whitelist) {
            self.api
                .set_variable(c"tessedit_char_whitelist", whitelist)
                .map_err(|_| OcrError::Tesseract("setting the character whitelist"))?;
            self.whitelist = Some(whitelist.clone());
        }
        let too_large = || OcrError::ImageTooLarge { width: image.width(), height: image.height() };
        let w = i32::try_from(image.width()).map_err(|_| too_large())?;
        let h = i32::try_from(image.height()).map_err(|_| too_large())?;
        if w.checked_mul(h).is_none() {
            return Err(too_large());
        }
        self.api.set_image(image.as_bytes(), w, h, 1, w).map_err(|_| OcrError::Tesseract("handing over the image"))?;
        self.api.recognize().map_err(|_| OcrError::Tesseract("recognising"))?;
        let text = self.api.get_utf8_text().map_err(|_| OcrError::Tesseract("reading the text"))?;
        let text = text.as_ref().to_string_lossy().into_owned();
        let confidences = self.api.all_word_confidences().map_err(|_| OcrError::Tesseract("reading the confidences"))?;
        let confidence = if confidences.is_empty() {
            0.0
        } else {
            let sum: i64 = confidences.iter().map(|&c| i64::from(c.clamp(0, 100))).sum();
            sum as f32 / confidences.len() as f32 / 100.0
        };
        Ok(Recognised { text, confidence })
    }
}

struct PoolState {
    idle: Vec<Engine>,
    live: usize,
}

/// A bounded set of engines for worker threads (`spawn_blocking` or a thread of its own): [`EnginePool::get`]
/// hands out an idle engine, makes a new one while fewer than `capacity` exist, and otherwise waits for one
/// to come back. Engines return when the guard drops.
pub struct EnginePool {
    config: EngineConfig,
    capacity: usize,
    state: Mutex<PoolState>,
    returned: Condvar,
}

impl std::fmt::Debug for EnginePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnginePool").field("capacity", &self.capacity).finish_non_exhaustive()
    }
}

impl EnginePool {
    /// Runs the start-up check and makes the first engine, so that a missing library or language fails here
    /// and not at the first video.
    pub fn new(config: EngineConfig, capacity: usize) -> Result<(EnginePool, Installation), SetupError> {
        let installation = check_installation(&config)?;
        let first = Engine::new(&config)?;
        let pool = EnginePool {
            config,
            capacity: capacity.max(1),
            state: Mutex::new(PoolState { idle: vec![first], live: 1 }),
            returned: Condvar::new(),
        };
        Ok((pool, installation))
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Engines made so far (at most `capacity`).
    pub fn engines(&self) -> usize {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).live
    }

    /// An engine for the calling thread; blocks while all `capacity` engines are in use.
    pub fn get(&self) -> Result<PooledEngine<'_>, SetupError> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(engine) = state.idle.pop() {
                return Ok(PooledEngine { pool: self, engine: Some(engine) });
            }
            if state.live < self.capacity {
                state.live += 1;
                drop(state);
                return match Engine::new(&self.config) {
                    Ok(engine) => Ok(PooledEngine { pool: self, engine: Some(engine) }),
                    Err(e) => {
                        self.state.lock().unwrap_or_else(PoisonError::into_inner).live -= 1;
                        self.returned.notify_one();
                        Err(e)
                    }
                };
            }
            state = self.returned.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// An engine borrowed from an [`EnginePool`]; goes back when dropped.
pub struct PooledEngine<'a> {
    pool: &'a EnginePool,
    engine: Option<Engine>,
}

impl std::ops::Deref for PooledEngine<'_> {
    type Target = Engine;
    fn deref(&self) -> &Engine {
        match &self.engine {
            Some(e) => e,
            None => unreachable!("the engine is only taken out in drop"),
        }
    }
}

impl std::ops::DerefMut for PooledEngine<'_> {
    fn deref_mut(&mut self) -> &mut Engine {
        match &mut self.engine {
            Some(e) => e,
            None => unreachable!("the engine is only taken out in drop"),
        }
    }
}

impl Drop for PooledEngine<'_> {
    fn drop(&mut self) {
        if let Some(engine) = self.engine.take() {
            self.pool.state.lock().unwrap_or_else(PoisonError::into_inner).idle.push(engine);
            self.pool.returned.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_codes_cannot_name_other_files() {
        assert!(Language::new("deu").is_ok());
        assert!(Language::new("deu_frak").is_ok());
        for bad in ["", "../etc/passwd", "DEU", "deu+eng", "de u"] {
            assert!(matches!(Language::new(bad), Err(SetupError::InvalidLanguage { .. })), "{bad}");
        }
    }

    #[test]
    fn tessdata_source_prefers_configuration_then_environment() {
        let mut c = EngineConfig::default();
        assert_eq!(c.tessdata_source_with(None), TessdataSource::BuiltIn);
        assert_eq!(c.tessdata_source_with(Some(OsString::new())), TessdataSource::BuiltIn);
        assert_eq!(c.tessdata_source_with(Some(OsString::from("/env"))), TessdataSource::Environment(PathBuf::from("/env")));
        c.tessdata_dir = Some(PathBuf::from("/conf"));
        assert_eq!(c.tessdata_source_with(Some(OsString::from("/env"))), TessdataSource::Configured(PathBuf::from("/conf")));
        assert_eq!(c.language_arg(), "deu+eng");
    }
}
