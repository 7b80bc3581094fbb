//! Backup and restore: `endoreg export FILE` / `endoreg import FILE`.
//!
//! The format is a stream of JSON lines, portable between SQLite and PostgreSQL (its main use is moving an
//! embedded installation onto a server):
//!
//! ```text
//! {"format":"endoreg-export","version":1,"created_at":"…","source":"sqlite","migrations":1}
//! {"table":"center","columns":["id","name",…]}
//! [1,"demo_center",…]                      one line per row, values in column order
//! {"end_table":"center","rows":1}
//! …                                        every table, parents before children
//! {"end":true,"rows":{"center":1,…},"sha256":"…"}
//! ```
//!
//! Values are canonical whatever the backend: integers, numbers, booleans, text, dates as `YYYY-MM-DD`,
//! instants as RFC 3339 UTC with microseconds, JSON documents with sorted keys. `sha256` covers every
//! byte before the trailer line, so a truncated or altered file is refused. A file whose name ends in
//! `.gz` is gzip-compressed. Export reads one consistent snapshot in batches (memory stays bounded);
//! import writes into an empty database in one transaction, so it either restores everything or nothing.

mod export;
mod format;
mod import;

pub use export::export;
pub use format::{FORMAT, VERSION};
pub use import::import;

use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("line {line}: {reason}")]
    Format { line: u64, reason: String },
    #[error("the file is incomplete or altered: {0}")]
    Integrity(String),
    #[error("{0}")]
    Refused(String),
    /// The database refused a batch of rows: which table, and the file's lines they came from.
    #[error("table {table}, lines {first} to {last}: the database refused these rows: {source}")]
    Rows { table: String, first: u64, last: u64, source: crate::db::DbError },
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
}

/// Rows per table, in export order.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    pub rows: BTreeMap<String, u64>,
}

impl Summary {
    pub fn total(&self) -> u64 {
        self.rows.values().sum()
    }
}
