//! Secrets live in files (systemd credentials, agenix paths), never in config files, the environment or logs.
//!
//! Config structs hold the *path* of a secret; [`Secret::read`] loads the value into a type whose `Debug` and
//! `Display` print a placeholder, so a secret cannot end up in a log line by accident.

use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read secret file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("secret file {path} is empty")]
    Empty { path: PathBuf },
    #[error("secret file {path} is not UTF-8 text")]
    NotText { path: PathBuf },
}

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Reads a secret from `path`. A relative path is resolved against `$CREDENTIALS_DIRECTORY` when systemd
    /// passed credentials (`LoadCredential=`), so a unit can name a credential by its id. Surrounding
    /// whitespace (the trailing newline editors add) is removed.
    pub fn read(path: &Path) -> Result<Self, SecretError> {
        let resolved = resolve(path);
        let bytes = std::fs::read(&resolved).map_err(|source| SecretError::Read { path: resolved.clone(), source })?;
        let text = String::from_utf8(bytes).map_err(|_| SecretError::NotText { path: resolved.clone() })?;
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(SecretError::Empty { path: resolved });
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The secret's value. Call sites are few and easy to audit by searching for `expose`.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

fn resolve(path: &Path) -> PathBuf {
    if path.is_relative()
        && let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY")
    {
        let candidate = Path::new(&dir).join(path);
        if candidate.exists() {
            return candidate;
        }
    }
    path.to_owned()
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints_its_value() {
        let s = Secret::new("hunter2".into());
        assert!(!format!("{s:?} {s}").contains("hunter2"));
    }

    #[test]
    fn reading_trims_the_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("token");
        std::fs::write(&p, "abc\n").unwrap();
        assert_eq!(Secret::read(&p).unwrap().expose(), "abc");
    }

    #[test]
    fn an_empty_or_missing_file_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("empty");
        std::fs::write(&p, "\n").unwrap();
        assert!(Secret::read(&p).unwrap_err().to_string().contains("empty"));
        let missing = dir.path().join("missing");
        assert!(Secret::read(&missing).unwrap_err().to_string().contains("missing"));
    }
}
