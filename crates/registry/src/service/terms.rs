//! Looking up terminology by name for the services, with errors that name what is missing.

use crate::db::exec::One;
use crate::db::{Db, DbError};
use crate::kb::catalogue;
use crate::params;

use super::Checks;

/// The id of the `kind` entry called `name`. `kind` must be a catalogue kind (a table name).
pub async fn id_of(db: &Db, kind: &'static str, name: &str) -> Result<Option<i64>, DbError> {
    debug_assert!(catalogue::kind(kind).is_some(), "{kind} is not a terminology kind");
    let row: Option<One<i64>> = db.fetch_optional(&format!("SELECT id FROM {kind} WHERE name = $1"), params![name]).await?;
    Ok(row.map(|One(id)| id))
}

/// Like [`id_of`], recording a problem at `pointer` when the name is unknown.
pub async fn require(db: &Db, checks: &mut Checks, kind: &'static str, name: &str, pointer: &str) -> Result<Option<i64>, DbError> {
    let id = id_of(db, kind, name).await?;
    if id.is_none() {
        checks.add(pointer, format!("unknown {}: `{name}`", kind.replace('_', " ")));
    }
    Ok(id)
}

/// The names a list reference of entry `source_id` points at, in stored order.
pub async fn linked_names(db: &Db, kind: &'static str, field: &str, source_id: i64) -> Result<Vec<String>, DbError> {
    let k = catalogue::kind(kind).ok_or_else(|| DbError::Config(format!("internal: {kind} is not a terminology kind")))?;
    let link = k.find_link(field).ok_or_else(|| DbError::Config(format!("internal: {kind} has no list field {field}")))?;
    let sql = format!(
        "SELECT t.name FROM {} l JOIN {} t ON t.id = l.target_id WHERE l.source_id = $1 ORDER BY l.position",
        k.link_table(field),
        link.target
    );
    let rows: Vec<One<String>> = db.fetch_all(&sql, params![source_id]).await?;
    Ok(rows.into_iter().map(|One(n)| n).collect())
}

/// Whether entry `source_id`'s list reference `field` contains `target_id`.
pub async fn is_linked(db: &Db, kind: &'static str, field: &str, source_id: i64, target_id: i64) -> Result<bool, DbError> {
    let k = catalogue::kind(kind).ok_or_else(|| DbError::Config(format!("internal: {kind} is not a terminology kind")))?;
    let sql = format!("SELECT COUNT(*) FROM {} WHERE source_id = $1 AND target_id = $2", k.link_table(field));
    let One(n): One<i64> = db.fetch_one(&sql, params![source_id, target_id]).await?;
    Ok(n > 0)
}

/// How many entries a list reference of `source_id` has.
pub async fn link_count(db: &Db, kind: &'static str, field: &str, source_id: i64) -> Result<i64, DbError> {
    let k = catalogue::kind(kind).ok_or_else(|| DbError::Config(format!("internal: {kind} is not a terminology kind")))?;
    let sql = format!("SELECT COUNT(*) FROM {} WHERE source_id = $1", k.link_table(field));
    let One(n): One<i64> = db.fetch_one(&sql, params![source_id]).await?;
    Ok(n)
}
