//! Our knowledge-base format: TOML files, each an array of tables per kind.
//!
//! ```toml
//! [[finding_classification]]
//! name = "paris"
//! name_en = "Paris classification"
//! findings = ["colon_polyp"]
//! choices = ["paris_0_ip", "paris_0_is"]
//! ```
//!
//! Field names are the catalogue's; references name entries of the target kind. A directory's `*.toml`
//! files are read in path order, recursively. See `docs/knowledge-base.md`.

use std::path::Path;

use serde_json::Value;

use super::catalogue;
use super::entry::{Entry, Origin, Problem, ProblemKind};

/// A knowledge base as a set of files: `(path relative to its root, contents)`, sorted by path.
#[derive(Debug, Clone, Default)]
pub struct Files(pub Vec<(String, String)>);

impl Files {
    /// The knowledge base compiled into this binary (`crates/registry/kb/`).
    pub fn builtin() -> Self {
        let mut files = Vec::new();
        collect_embedded(&super::BUILTIN, &mut files);
        files.sort();
        Files(files)
    }

    /// Every `*.toml` file under `dir`.
    pub fn from_dir(dir: &Path) -> std::io::Result<Self> {
        let mut files = Vec::new();
        walk(dir, dir, &mut files)?;
        files.sort();
        Ok(Files(files))
    }
}

fn collect_embedded(dir: &include_dir::Dir<'_>, out: &mut Vec<(String, String)>) {
    for f in dir.files() {
        if f.path().extension().is_some_and(|e| e == "toml")
            && let Some(text) = f.contents_utf8()
        {
            out.push((f.path().to_string_lossy().replace('\\', "/"), text.to_owned()));
        }
    }
    for d in dir.dirs() {
        collect_embedded(d, out);
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) -> std::io::Result<()> {
    let rd = std::fs::read_dir(dir).map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
    for item in rd {
        let path = item?.path();
        if path.is_dir() {
            walk(root, &path, out)?;
        } else if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
            let rel = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
            out.push((rel, text));
        }
    }
    Ok(())
}

/// Parses every file into entries; structural problems (bad TOML, unknown kinds, entries without a
/// name) are returned beside them.
pub fn parse(files: &Files) -> (Vec<Entry>, Vec<Problem>) {
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    for (path, text) in &files.0 {
        let table: toml::Table = match toml::from_str(text) {
            Ok(t) => t,
            Err(e) => {
                problems.push(Problem::for_file(path, ProblemKind::InvalidFile, format!("not valid TOML: {}", e.message())));
                continue;
            }
        };
        for (key, value) in table {
            let Some(kind) = catalogue::kind(&key) else {
                problems.push(Problem::for_file(path, ProblemKind::InvalidFile, format!("`{key}` is not a knowledge-base kind")));
                continue;
            };
            let Some(items) = value.as_array() else {
                problems.push(Problem::for_file(path, ProblemKind::InvalidFile, format!("`{key}` must be an array of tables ([[{key}]])")));
                continue;
            };
            for (index, item) in items.iter().enumerate() {
                let json = serde_json::to_value(item).unwrap_or(Value::Null);
                let Value::Object(mut fields) = json else {
                    problems.push(Problem {
                        file: path.clone(),
                        entry: format!("{key} #{index}"),
                        kind: ProblemKind::InvalidFile,
                        detail: "an entry must be a table".into(),
                        index,
                    });
                    continue;
                };
                match fields.remove("name") {
                    Some(Value::String(name)) if !name.trim().is_empty() => {
                        entries.push(Entry { origin: Origin::Ours, kind, file: path.clone(), index, name, fields });
                    }
                    _ => problems.push(Problem {
                        file: path.clone(),
                        entry: format!("{key} #{index}"),
                        kind: ProblemKind::MissingName,
                        detail: "every entry needs a non-empty `name`".into(),
                        index,
                    }),
                }
            }
        }
    }
    (entries, problems)
}
