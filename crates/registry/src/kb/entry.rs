//! Knowledge-base entries as read from files, before validation, and the problems found in them.

use serde::Serialize;
use serde_json::{Map, Value};

use super::catalogue::Kind;

/// Which format an entry was read from; it decides how problems name other kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Our knowledge base: kinds are named by their catalogue name.
    Ours,
    /// An EndoregDB base-data tree: kinds are named by their directory in the tree.
    Endoreg,
}

/// One definition of a terminology entry, as a file gave it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub origin: Origin,
    pub kind: &'static Kind,
    /// The file it came from, relative to the tree, `/`-separated.
    pub file: String,
    /// Its position in that file (0-based).
    pub index: usize,
    pub name: String,
    /// Every field except `name`.
    pub fields: Map<String, Value>,
}

impl Entry {
    pub fn label(&self) -> String {
        self.name.clone()
    }

    /// How problems of this entry name a kind.
    pub fn kind_label(&self, kind: &'static Kind) -> &'static str {
        match self.origin {
            Origin::Ours => kind.name,
            Origin::Endoreg => kind.endoreg_dir.unwrap_or(kind.name),
        }
    }
}

/// One of EndoregDB's model metadata (`ai_model_meta`): a version of an AI model and the label set it
/// predicts. Keyed by model and version rather than by name, so it is not a catalogue kind.
#[derive(Debug, Clone)]
pub struct VersionEntry {
    pub file: String,
    pub index: usize,
    /// EndoregDB's name of the metadata set; it also names the model when no `model` field does.
    pub name: String,
    /// Every field except `name`.
    pub fields: Map<String, Value>,
}

/// What is wrong with an entry or a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A reference names an entry that exists nowhere (neither in the files nor in the database).
    DanglingReference,
    /// A name is defined more than once within one kind.
    DuplicateName,
    /// A field the kind does not have.
    UnknownField,
    /// A field whose value has the wrong type or shape.
    InvalidValue,
    /// An entry without a usable `name`.
    MissingName,
    /// A file that cannot be read or parsed, or does not have the expected structure.
    InvalidFile,
    /// A directory the format expects is absent.
    MissingDirectory,
    /// A directory of the tree holds data that the registry does not import.
    SkippedDirectory,
    /// An entry contradicts what the database holds and may not replace it (a model version is immutable).
    Conflict,
}

impl ProblemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::DanglingReference => "dangling_reference",
            ProblemKind::DuplicateName => "duplicate_name",
            ProblemKind::UnknownField => "unknown_field",
            ProblemKind::InvalidValue => "invalid_value",
            ProblemKind::MissingName => "missing_name",
            ProblemKind::InvalidFile => "invalid_file",
            ProblemKind::MissingDirectory => "missing_directory",
            ProblemKind::SkippedDirectory => "skipped_directory",
            ProblemKind::Conflict => "conflict",
        }
    }
}

/// A problem, located by file and entry. `index` orders problems within a file and is not printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub file: String,
    pub entry: String,
    pub kind: ProblemKind,
    pub detail: String,
    #[serde(skip)]
    pub index: usize,
}

impl Problem {
    pub fn for_entry(entry: &Entry, kind: ProblemKind, detail: impl Into<String>) -> Self {
        Problem { file: entry.file.clone(), entry: entry.label(), kind, detail: detail.into(), index: entry.index }
    }

    pub fn for_version(entry: &VersionEntry, kind: ProblemKind, detail: impl Into<String>) -> Self {
        Problem { file: entry.file.clone(), entry: entry.name.clone(), kind, detail: detail.into(), index: entry.index }
    }

    pub fn for_file(file: &str, kind: ProblemKind, detail: impl Into<String>) -> Self {
        Problem { file: file.to_owned(), entry: String::new(), kind, detail: detail.into(), index: 0 }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.entry.is_empty() {
            write!(f, "{}: {}: {}", self.file, self.kind.as_str(), self.detail)
        } else {
            write!(f, "{} [{}]: {}: {}", self.file, self.entry, self.kind.as_str(), self.detail)
        }
    }
}

/// Sorts problems by file, position in the file, kind and detail: the order reports print them in.
pub fn sort_problems(problems: &mut [Problem]) {
    problems.sort_by(|a, b| {
        (a.file.as_str(), a.index, a.kind.as_str(), a.detail.as_str()).cmp(&(b.file.as_str(), b.index, b.kind.as_str(), b.detail.as_str()))
    });
}
