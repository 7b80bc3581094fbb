//! The knowledge base: the terminology that findings, classifications and interventions refer to.
//!
//! - [`catalogue`]: the kinds of terminology and their fields — the one description of those tables.
//! - [`ours`]: our own knowledge-base format (TOML), compiled into the binary from `crates/registry/kb/`.
//! - [`endoreg`]: reader of EndoregDB's base-data tree, for migration from EndoregDB.
//! - [`resolve`]: validation both formats share (types, duplicates, references).
//! - [`store`]: the one-transaction upsert into the database.

pub mod catalogue;
pub mod endoreg;
pub mod entry;
pub mod ours;
pub mod resolve;
pub mod store;

use std::path::Path;

use serde::Serialize;

pub use entry::{Problem, ProblemKind};
pub use store::{Tally, Written};

use crate::db::{Db, DbError};

pub(crate) static BUILTIN: include_dir::Dir<'static> = include_dir::include_dir!("$CARGO_MANIFEST_DIR/kb");

#[derive(Debug, thiserror::Error)]
pub enum KbError {
    #[error("the knowledge base has {} problem(s); nothing was loaded:\n{}", .0.len(), .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Db(#[from] DbError),
}

#[derive(Debug, Serialize)]
pub struct LoadReport {
    pub entries: usize,
    pub written: Written,
}

/// Loads our knowledge base (the built-in one, or the files given) in one transaction. Any problem — a
/// dangling reference, a duplicate name, an unknown field — fails the whole load and is named by file and
/// entry. Loading the same files again changes nothing.
pub async fn load(db: &Db, files: &ours::Files) -> Result<LoadReport, KbError> {
    let (entries, mut problems) = ours::parse(files);
    let n = entries.len();
    let existing = store::existing(db).await?;
    let resolved = resolve::resolve(entries, Vec::new(), &existing);
    problems.extend(resolved.problems);
    if !problems.is_empty() {
        entry::sort_problems(&mut problems);
        return Err(KbError::Invalid(problems));
    }
    let written = store::store(db, &resolved.rows, &resolved.versions).await?;
    Ok(LoadReport { entries: n, written })
}

/// What became of an EndoregDB import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The sound entries were written; problems, if any, name what was left out.
    Imported,
    /// Checked only; nothing written.
    DryRun,
    /// Strict and with problems: nothing written.
    Refused,
}

/// The result of an EndoregDB import, in the shape `endoreg kb import-endoreg --json` prints.
#[derive(Debug, Serialize)]
pub struct ImportReport {
    /// Entries read per directory of the tree, in EndoregDB's load order (model metadata last).
    pub counts: serde_json::Map<String, serde_json::Value>,
    pub problems: Vec<Problem>,
    pub outcome: Outcome,
    /// What was written; `None` unless the outcome is [`Outcome::Imported`].
    pub written: Option<Written>,
}

/// Imports an EndoregDB base-data tree. Sound entries are written in one transaction; every dangling
/// reference, duplicate name, unknown field, malformed value, conflicting model version and directory
/// that is not imported is reported one by one. With `strict`, any problem refuses the import
/// ([`Outcome::Refused`]); with `dry_run`, nothing is written either way.
pub async fn import_endoreg(db: &Db, root: &Path, strict: bool, dry_run: bool) -> Result<ImportReport, KbError> {
    let tree = endoreg::read_tree(root)?;
    let existing = store::existing(db).await?;
    let resolved = resolve::resolve(tree.entries, tree.versions, &existing);
    let mut problems = tree.problems;
    problems.extend(resolved.problems);
    entry::sort_problems(&mut problems);
    let counts = tree.counts.into_iter().map(|(d, n)| (d, serde_json::Value::from(n))).collect();
    let (outcome, written) = if dry_run {
        (Outcome::DryRun, None)
    } else if strict && !problems.is_empty() {
        (Outcome::Refused, None)
    } else {
        (Outcome::Imported, Some(store::store(db, &resolved.rows, &resolved.versions).await?))
    };
    Ok(ImportReport { counts, problems, outcome, written })
}

/// The table an EndoregDB directory is imported into, if any.
pub fn endoreg_dir_table(dir: &str) -> Option<&'static str> {
    if dir == catalogue::MODEL_META_DIR {
        return Some(catalogue::MODEL_VERSION_TABLE);
    }
    catalogue::KINDS.iter().find(|k| k.endoreg_dir == Some(dir)).map(|k| k.name)
}
