//! The registry's service logic: what the HTTP API and the CLI both call. Each module owns one resource;
//! validation happens here (names resolved, memberships checked, versions compared) before anything is
//! written, and every multi-row write is one transaction.

pub mod error;
pub mod examinations;
pub mod findings;
pub mod jobs;
pub mod media;
pub mod patients;
pub mod predictions;
pub mod reports;
pub mod segments;
pub mod sessions;
pub mod state;
pub mod terminology;
pub mod terms;
pub mod text;
pub mod tokens;
pub mod uploads;
pub mod videos;
pub mod worklist;

pub use error::{Checks, ServiceError};

use endoreg_common::api::{Page, Paging};

use crate::db::exec::{One, Param};
use crate::db::{Db, DbError};

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

pub const MAX_PER_PAGE: u32 = 500;

/// Checks paging parameters; returns `(limit, offset)`.
pub fn limits(paging: &Paging) -> Result<(i64, i64)> {
    let mut checks = Checks::default();
    if paging.page == 0 {
        checks.add("/page", "pages are numbered from 1");
    }
    if paging.per_page == 0 || paging.per_page > MAX_PER_PAGE {
        checks.add("/per_page", format!("must be between 1 and {MAX_PER_PAGE}"));
    }
    checks.finish()?;
    let per_page = i64::from(paging.per_page);
    let offset = (i64::from(paging.page) - 1).checked_mul(per_page).ok_or_else(|| ServiceError::invalid("/page", "is too large"))?;
    Ok((per_page, offset))
}

/// Runs a list query and its count with the same `WHERE` clause. `select` and `count` are the
/// statements up to (not including) the `WHERE`; `order` is appended to the select.
pub async fn page<R, T>(
    db: &Db,
    select: &str,
    count: &str,
    filters: &Filters,
    order: &str,
    paging: &Paging,
    map: impl Fn(R) -> T,
) -> Result<Page<T>>
where
    R: crate::db::exec::AnyRow,
{
    let (limit, offset) = limits(paging)?;
    let where_sql = filters.sql();
    let n = filters.params.len();
    let mut params = filters.params.clone();
    params.push(Param::Int(Some(limit)));
    params.push(Param::Int(Some(offset)));
    let rows: Vec<R> = db.fetch_all(&format!("{select}{where_sql} ORDER BY {order} LIMIT ${} OFFSET ${}", n + 1, n + 2), params).await?;
    let One(total) = db.fetch_one::<One<i64>>(&format!("{count}{where_sql}"), filters.params.clone()).await?;
    Ok(Page { items: rows.into_iter().map(map).collect(), total, page: paging.page, per_page: paging.per_page })
}

/// A `WHERE` clause assembled from optional filters, with numbered placeholders.
#[derive(Default, Debug, Clone)]
pub struct Filters {
    clauses: Vec<String>,
    params: Vec<Param>,
}

impl Filters {
    /// Adds `condition`, in which `?` stands for the next placeholder.
    pub fn add(&mut self, condition: &str, value: impl Into<Param>) -> &mut Self {
        self.params.push(value.into());
        self.clauses.push(condition.replace('?', &format!("${}", self.params.len())));
        self
    }

    pub fn params(&self) -> Vec<Param> {
        self.params.clone()
    }

    pub fn sql(&self) -> String {
        if self.clauses.is_empty() { String::new() } else { format!(" WHERE {}", self.clauses.join(" AND ")) }
    }
}

/// Compares the version a client sent (`If-Match`) with the stored one, after an update that matched no
/// row: the record is gone (404) or was changed meanwhile (412).
pub async fn explain_version_miss(db_or_tx: VersionProbe<'_>, table: &'static str, id: i64, what: &str) -> Result<ServiceError> {
    let sql = format!("SELECT version FROM {table} WHERE id = $1");
    let current: Option<One<i64>> = match db_or_tx {
        VersionProbe::Db(db) => db.fetch_optional(&sql, crate::params![id]).await?,
        VersionProbe::Tx(tx) => tx.fetch_optional(&sql, crate::params![id]).await?,
    };
    Ok(match current {
        None => ServiceError::not_found(format!("{what} {id}")),
        Some(One(current)) => ServiceError::VersionMismatch { current },
    })
}

pub enum VersionProbe<'a> {
    Db(&'a Db),
    Tx(&'a mut crate::db::exec::Tx),
}

impl From<DbError> for ServiceError {
    fn from(e: DbError) -> Self {
        ServiceError::from_db(e)
    }
}

/// Lowercase hex SHA-256.
pub use endoreg_common::storage::keys::is_sha256;

/// Records a problem at `pointer` unless `value` lies in `range` (frame numbers, counts, steps: values
/// whose arithmetic must not overflow).
pub fn check_range(checks: &mut Checks, pointer: &str, value: i64, range: std::ops::RangeInclusive<i64>) {
    if !range.contains(&value) {
        checks.add(pointer, format!("must be between {} and {}", range.start(), range.end()));
    }
}

/// Records a problem at `pointer` unless the storage key `key` (from a request) is `expected`, the key
/// the registry and the workers make for this record: keys are never taken as sent.
pub fn check_key(checks: &mut Checks, pointer: &str, key: &str, expected: &str) {
    if key != expected {
        checks.add(pointer, format!("must be `{expected}`, the key of this content (keys are made from content hashes)"));
    }
}

/// The current time at microsecond precision: what PostgreSQL stores, so that SQLite holds the same
/// instants and a backup moved between backends compares equal.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::{SubsecRound, Utc};
    Utc::now().trunc_subsecs(6)
}
