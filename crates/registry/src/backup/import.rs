//! Reading an export into an empty database, in one transaction: every line is checked against the
//! current schema, and nothing is committed unless the trailer's counts and checksum match.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::format::{self, Header, TableEnd, TableStart, Trailer};
use super::{BackupError, Summary};
use crate::db::exec::{One, Param, Tx};
use crate::db::schema::{self, Table};
use crate::db::{Backend, Db};

/// Bound parameters per INSERT, under SQLite's limit.
const MAX_PARAMS: usize = 900;

struct Section {
    table: Table,
    /// For each column of the file, its position in the table's columns.
    order: Vec<usize>,
    rows: u64,
    pending: Vec<Vec<Param>>,
    /// The file's line of the first pending row (the rest follow it line by line).
    pending_from: u64,
}

/// How a row is named in an error: its table and primary key (`patient_identity patient_id=3`).
fn record(table: &Table, row: &[Value], order: &[usize]) -> String {
    let key: Vec<String> = table
        .primary_key
        .iter()
        .filter_map(|k| {
            let i = order.iter().position(|&i| table.columns[i].name == *k)?;
            Some(format!("{k}={}", row.get(i)?))
        })
        .collect();
    format!("{} {}", table.name, key.join(" "))
}

/// Whether `v` (a text value, or a JSON document's strings and member names) holds U+0000, which
/// PostgreSQL cannot store.
fn holds_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(members) => members.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        _ => false,
    }
}

pub async fn import(db: &Db, path: &Path) -> Result<Summary, BackupError> {
    let io = |source: std::io::Error| BackupError::Io { path: path.display().to_string(), source };
    db.check_migrated().await?;
    ensure_empty(db).await?;

    let file = std::fs::File::open(path).map_err(io)?;
    let gz = path.extension().is_some_and(|e| e == "gz");
    let source: Box<dyn Read> = if gz { Box::new(flate2::read::GzDecoder::new(file)) } else { Box::new(file) };
    let mut reader = BufReader::with_capacity(1 << 20, source);

    let tables: HashMap<String, Table> = schema::tables().into_iter().map(|t| (t.name.clone(), t)).collect();
    let mut hash = Sha256::new();
    let mut line = String::new();
    let mut n: u64 = 0;
    let mut summary = Summary::default();
    let mut section: Option<Section> = None;
    let mut tx = db.begin().await?;
    let known = db.known_migrations();

    let fail = |line: u64, reason: String| BackupError::Format { line, reason };
    loop {
        line.clear();
        let read = reader.read_line(&mut line).map_err(io)?;
        if read == 0 {
            return Err(BackupError::Integrity(format!("the file ends after line {n} without its trailer (truncated?)")));
        }
        n += 1;
        if !line.ends_with('\n') {
            return Err(BackupError::Integrity(format!("line {n} is cut off (truncated file?)")));
        }
        let text = line.trim_end();
        if n == 1 {
            let header: Header = serde_json::from_str(text).map_err(|e| fail(n, format!("not an endoreg export header: {e}")))?;
            if header.format != format::FORMAT {
                return Err(fail(n, format!("format `{}` is not `{}`", header.format, format::FORMAT)));
            }
            if header.version > format::VERSION {
                return Err(BackupError::Refused(format!(
                    "the export has format version {}, this endoreg reads up to {}: upgrade endoreg",
                    header.version,
                    format::VERSION
                )));
            }
            if header.migrations > known {
                return Err(BackupError::Refused(format!(
                    "the export comes from a schema with {} migrations, this endoreg knows {known}: upgrade endoreg",
                    header.migrations
                )));
            }
            hash.update(line.as_bytes());
            continue;
        }
        if text.starts_with('[') {
            let Some(s) = section.as_mut() else {
                return Err(fail(n, "a row outside a table section".into()));
            };
            let values: Vec<Value> = serde_json::from_str(text).map_err(|e| fail(n, format!("not a JSON row: {e}")))?;
            if values.len() != s.order.len() {
                return Err(fail(n, format!("{} has {} columns, the row has {} values", s.table.name, s.order.len(), values.len())));
            }
            let mut row = vec![Param::Int(None); s.table.columns.len()];
            for (value, &i) in values.iter().zip(&s.order) {
                let c = &s.table.columns[i];
                if value.is_null() && !c.nullable {
                    return Err(fail(n, format!("{}.{} must not be null", s.table.name, c.name)));
                }
                // Older registries on SQLite stored text with U+0000; PostgreSQL cannot hold it. The record is
                // named so that it can be corrected where it came from.
                if db.backend() == Backend::Postgres && holds_nul(value) {
                    return Err(fail(
                        n,
                        format!(
                            "{}, column {}: the value holds the character U+0000, which PostgreSQL cannot store; restore the \
                             export into SQLite, correct the value there and export again",
                            record(&s.table, &values, &s.order),
                            c.name
                        ),
                    ));
                }
                row[i] = format::param(c.ty, value).map_err(|e| fail(n, format!("{}.{}: {e}", s.table.name, c.name)))?;
            }
            if s.pending.is_empty() {
                s.pending_from = n;
            }
            s.pending.push(row);
            s.rows += 1;
            if (s.pending.len() + 1) * s.table.columns.len() > MAX_PARAMS {
                flush(&mut tx, s).await?;
            }
            hash.update(line.as_bytes());
            continue;
        }
        let value: Value = serde_json::from_str(text).map_err(|e| fail(n, format!("not JSON: {e}")))?;
        if value.get("table").is_some() {
            if section.is_some() {
                return Err(fail(n, "a table section starts before the previous one ended".into()));
            }
            let start: TableStart = serde_json::from_value(value).map_err(|e| fail(n, e.to_string()))?;
            let table = tables.get(&start.table).cloned().ok_or_else(|| fail(n, format!("unknown table `{}`", start.table)))?;
            let mut order = Vec::new();
            for c in &start.columns {
                order.push(
                    table
                        .columns
                        .iter()
                        .position(|tc| &tc.name == c)
                        .ok_or_else(|| fail(n, format!("{} has no column `{c}`", table.name)))?,
                );
            }
            let missing: Vec<&str> = table.columns.iter().filter(|c| !start.columns.contains(&c.name)).map(|c| c.name.as_str()).collect();
            if !missing.is_empty() {
                return Err(fail(n, format!("{} lacks columns {}", table.name, missing.join(", "))));
            }
            if summary.rows.contains_key(&table.name) {
                return Err(fail(n, format!("table {} appears twice", table.name)));
            }
            section = Some(Section { table, order, rows: 0, pending: Vec::new(), pending_from: 0 });
        } else if value.get("end_table").is_some() {
            let end: TableEnd = serde_json::from_value(value).map_err(|e| fail(n, e.to_string()))?;
            let Some(mut s) = section.take() else {
                return Err(fail(n, "a table end without its start".into()));
            };
            if end.end_table != s.table.name || end.rows != s.rows {
                return Err(BackupError::Integrity(format!(
                    "line {n}: {} ends with {} rows announced but {} read",
                    s.table.name, end.rows, s.rows
                )));
            }
            flush(&mut tx, &mut s).await?;
            summary.rows.insert(s.table.name.clone(), s.rows);
        } else if value.get("end").is_some() {
            let trailer: Trailer = serde_json::from_value(value).map_err(|e| fail(n, e.to_string()))?;
            let digest: String = hash.clone().finalize().iter().map(|b| format!("{b:02x}")).collect();
            if digest != trailer.sha256 {
                return Err(BackupError::Integrity("the checksum does not match the content".into()));
            }
            if trailer.rows != summary.rows {
                return Err(BackupError::Integrity("the trailer's row counts differ from the rows read".into()));
            }
            let mut rest = String::new();
            if reader.read_line(&mut rest).map_err(io)? != 0 {
                return Err(fail(n + 1, "content after the trailer".into()));
            }
            break;
        } else {
            return Err(fail(n, "unrecognised line".into()));
        }
        hash.update(line.as_bytes());
    }
    if section.is_some() {
        return Err(BackupError::Integrity("the last table section is not closed".into()));
    }
    for t in schema::tables() {
        if !summary.rows.contains_key(&t.name) {
            return Err(BackupError::Integrity(format!("the export has no section for table {}", t.name)));
        }
    }
    if db.backend() == Backend::Postgres {
        for t in schema::tables().iter().filter(|t| t.has_identity) {
            let sql =
                format!("SELECT setval(pg_get_serial_sequence('{0}', 'id'), COALESCE((SELECT MAX(id) FROM {0}), 0) + 1, false)", t.name);
            tx.execute(&sql, vec![]).await?;
        }
    }
    tx.commit().await?;
    Ok(summary)
}

async fn flush(tx: &mut Tx, s: &mut Section) -> Result<(), BackupError> {
    if s.pending.is_empty() {
        return Ok(());
    }
    let cols: Vec<&str> = s.table.columns.iter().map(|c| c.name.as_str()).collect();
    let width = cols.len();
    let groups: Vec<String> = (0..s.pending.len())
        .map(|r| format!("({})", (1..=width).map(|c| format!("${}", r * width + c)).collect::<Vec<_>>().join(", ")))
        .collect();
    let sql = format!("INSERT INTO {} ({}) VALUES {}", s.table.name, cols.join(", "), groups.join(", "));
    let first = s.pending_from;
    let last = first + s.pending.len() as u64 - 1;
    let params: Vec<Param> = s.pending.drain(..).flatten().collect();
    tx.execute(&sql, params).await.map_err(|source| BackupError::Rows { table: s.table.name.clone(), first, last, source })?;
    Ok(())
}

/// Import restores into an empty database only: merging two registries is a different operation.
async fn ensure_empty(db: &Db) -> Result<(), BackupError> {
    for t in schema::tables() {
        let One(n): One<i64> = db.fetch_one(&format!("SELECT COUNT(*) FROM {}", t.name), vec![]).await?;
        if n > 0 {
            return Err(BackupError::Refused(format!(
                "the database already holds data ({n} rows in {}); import restores into an empty database: \
                 point ENDOREG_DATABASE_URL at a new one and run `endoreg migrate` first",
                t.name
            )));
        }
    }
    Ok(())
}
