//! The start-up check against the real libtesseract: what a correct installation reports, and the error a
//! missing or damaged language gives.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test reports failure

use std::path::{Path, PathBuf};

use endoreg_ocr::{Engine, EngineConfig, EnginePool, Language, SetupError, TessdataSource, check_installation};

/// Where Debian's tesseract-ocr-deu/-eng put their data; the tests copy from here into broken directories.
const DEBIAN_TESSDATA: &str = "/usr/share/tesseract-ocr/5/tessdata";

fn config_in(dir: &Path) -> EngineConfig {
    EngineConfig { tessdata_dir: Some(dir.to_owned()), ..EngineConfig::default() }
}

#[test]
fn the_installed_library_and_languages_pass_the_check() {
    let installation = check_installation(&EngineConfig::default()).expect("libtesseract 5 with deu and eng (.ci/setup)");
    assert!(installation.version.starts_with('5'), "{}", installation.version);
    let langs: Vec<&str> = installation.languages.iter().map(Language::as_str).collect();
    assert_eq!(langs, ["deu", "eng"]);
    assert_eq!(installation.openmp_single_threaded(), std::env::var("OMP_THREAD_LIMIT").is_ok_and(|v| v.trim() == "1"));
    // With an explicit directory the check looks there.
    let explicit = check_installation(&config_in(Path::new(DEBIAN_TESSDATA))).expect("Debian's tessdata");
    assert_eq!(explicit.tessdata, TessdataSource::Configured(PathBuf::from(DEBIAN_TESSDATA)));
}

#[test]
fn a_missing_language_names_its_package_and_tessdata_prefix() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(Path::new(DEBIAN_TESSDATA).join("eng.traineddata"), dir.path().join("eng.traineddata")).unwrap();
    let err = check_installation(&config_in(dir.path())).unwrap_err();
    assert!(matches!(&err, SetupError::LanguageMissing { language, .. } if language == "deu"), "{err:?}");
    let msg = err.to_string();
    for needle in ["tesseract-ocr-deu", "TESSDATA_PREFIX", "enableLanguages", "deu.traineddata"] {
        assert!(msg.contains(needle), "{needle} missing from: {msg}");
    }
    // Making an engine there fails too; the pool refuses to start.
    assert!(Engine::new(&config_in(dir.path())).is_err());
    assert!(EnginePool::new(config_in(dir.path()), 2).is_err());
}

#[test]
fn a_damaged_language_file_is_unusable_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(Path::new(DEBIAN_TESSDATA).join("eng.traineddata"), dir.path().join("eng.traineddata")).unwrap();
    std::fs::write(dir.path().join("deu.traineddata"), b"not a traineddata file").unwrap();
    let err = check_installation(&config_in(dir.path())).unwrap_err();
    assert!(matches!(&err, SetupError::LanguageUnusable { language, .. } if language == "deu"), "{err:?}");
    assert!(err.to_string().contains("tesseract-ocr-deu"), "{err}");
}

#[test]
fn a_missing_directory_and_bad_language_codes_are_refused() {
    let err = check_installation(&config_in(Path::new("/nonexistent/tessdata"))).unwrap_err();
    assert!(matches!(err, SetupError::TessdataDirMissing { .. }), "{err:?}");
    assert!(err.to_string().contains("tesseract-ocr-deu"), "{err}");
    let none = EngineConfig { languages: Vec::new(), ..EngineConfig::default() };
    assert_eq!(check_installation(&none).unwrap_err(), SetupError::NoLanguage);
    assert!(Language::new("../deu").is_err());
}
