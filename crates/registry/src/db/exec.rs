//! Backend-neutral query execution: SQL text plus a list of typed [`Param`]s, run on whichever pool or
//! transaction is at hand. Service code is written once against these functions; row types derive
//! `sqlx::FromRow` and decode on both backends.
//!
//! The SQL must be understood by both SQLite and PostgreSQL (`$n` placeholders, `RETURNING`,
//! `ON CONFLICT`); it is assembled from constants, never from input (values are always bound).

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, FromRow, Postgres, Sqlite, Transaction};

use super::{BeginWrite, Db, DbError};

/// A bound value. The variant fixes the SQL type, which matters for PostgreSQL even when the value is NULL.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Int(Option<i64>),
    Float(Option<f64>),
    Bool(Option<bool>),
    Text(Option<String>),
    Date(Option<NaiveDate>),
    Timestamp(Option<DateTime<Utc>>),
    Json(Option<Value>),
}

macro_rules! from_impl {
    ($t:ty, $variant:ident, $conv:expr) => {
        impl From<$t> for Param {
            fn from(v: $t) -> Self {
                #[allow(clippy::redundant_closure_call)]
                Param::$variant(($conv)(v))
            }
        }
    };
}
from_impl!(i64, Int, Some);
from_impl!(Option<i64>, Int, |v| v);
from_impl!(i32, Int, |v: i32| Some(i64::from(v)));
from_impl!(Option<i32>, Int, |v: Option<i32>| v.map(i64::from));
from_impl!(f64, Float, Some);
from_impl!(Option<f64>, Float, |v| v);
from_impl!(bool, Bool, Some);
from_impl!(String, Text, Some);
from_impl!(Option<String>, Text, |v| v);
from_impl!(&str, Text, |v: &str| Some(v.to_owned()));
from_impl!(&String, Text, |v: &String| Some(v.clone()));
from_impl!(Option<&str>, Text, |v: Option<&str>| v.map(str::to_owned));
from_impl!(NaiveDate, Date, Some);
from_impl!(Option<NaiveDate>, Date, |v| v);
from_impl!(DateTime<Utc>, Timestamp, Some);
from_impl!(Option<DateTime<Utc>>, Timestamp, |v| v);
from_impl!(Value, Json, Some);

/// Builds a `Vec<Param>` from values convertible into [`Param`].
#[macro_export]
macro_rules! params {
    ($($v:expr),* $(,)?) => { vec![$($crate::db::exec::Param::from($v)),*] };
}

/// Binds `params` in order onto a sqlx query of either backend.
macro_rules! bind_all {
    ($q:expr, $params:expr) => {{
        let mut q = $q;
        for p in $params {
            q = match p {
                Param::Int(v) => q.bind(v),
                Param::Float(v) => q.bind(v),
                Param::Bool(v) => q.bind(v),
                Param::Text(v) => q.bind(v),
                Param::Date(v) => q.bind(v),
                Param::Timestamp(v) => q.bind(v),
                Param::Json(v) => q.bind(v.map(Json)),
            };
        }
        q
    }};
}

/// A row type that decodes on both backends.
pub trait AnyRow: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin {}
impl<T> AnyRow for T where T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin {}

fn sql_of(sql: &str) -> AssertSqlSafe<String> {
    AssertSqlSafe(sql.to_owned())
}

impl Db {
    pub async fn fetch_all<T: AnyRow>(&self, sql: &str, params: Vec<Param>) -> Result<Vec<T>, DbError> {
        Ok(match self {
            Db::Sqlite(p) => bind_all!(sqlx::query_as::<Sqlite, T>(sql_of(sql)), params).fetch_all(p).await?,
            Db::Postgres(p) => bind_all!(sqlx::query_as::<Postgres, T>(sql_of(sql)), params).fetch_all(p).await?,
        })
    }

    pub async fn fetch_optional<T: AnyRow>(&self, sql: &str, params: Vec<Param>) -> Result<Option<T>, DbError> {
        Ok(match self {
            Db::Sqlite(p) => bind_all!(sqlx::query_as::<Sqlite, T>(sql_of(sql)), params).fetch_optional(p).await?,
            Db::Postgres(p) => bind_all!(sqlx::query_as::<Postgres, T>(sql_of(sql)), params).fetch_optional(p).await?,
        })
    }

    pub async fn fetch_one<T: AnyRow>(&self, sql: &str, params: Vec<Param>) -> Result<T, DbError> {
        Ok(match self {
            Db::Sqlite(p) => bind_all!(sqlx::query_as::<Sqlite, T>(sql_of(sql)), params).fetch_one(p).await?,
            Db::Postgres(p) => bind_all!(sqlx::query_as::<Postgres, T>(sql_of(sql)), params).fetch_one(p).await?,
        })
    }

    /// Runs a statement; returns the number of rows it affected.
    pub async fn execute(&self, sql: &str, params: Vec<Param>) -> Result<u64, DbError> {
        Ok(match self {
            Db::Sqlite(p) => bind_all!(sqlx::query::<Sqlite>(sql_of(sql)), params).execute(p).await?.rows_affected(),
            Db::Postgres(p) => bind_all!(sqlx::query::<Postgres>(sql_of(sql)), params).execute(p).await?.rows_affected(),
        })
    }

    /// Begins a read-only transaction that sees one consistent snapshot (for export): a deferred
    /// transaction on SQLite (WAL keeps writers going), REPEATABLE READ on PostgreSQL.
    pub async fn begin_snapshot(&self) -> Result<Tx, DbError> {
        Ok(match self {
            Db::Sqlite(p) => Tx::Sqlite(p.begin_with("BEGIN DEFERRED").await?),
            Db::Postgres(p) => Tx::Postgres(p.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await?),
        })
    }

    /// Begins a transaction that will write (see [`BeginWrite`]).
    pub async fn begin(&self) -> Result<Tx, DbError> {
        Ok(match self {
            Db::Sqlite(p) => Tx::Sqlite(p.begin_write().await?),
            Db::Postgres(p) => Tx::Postgres(p.begin_write().await?),
        })
    }
}

/// A transaction of either backend. Dropped without [`Tx::commit`], it rolls back.
pub enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

impl Tx {
    pub async fn fetch_all<T: AnyRow>(&mut self, sql: &str, params: Vec<Param>) -> Result<Vec<T>, DbError> {
        Ok(match self {
            Tx::Sqlite(t) => bind_all!(sqlx::query_as::<Sqlite, T>(sql_of(sql)), params).fetch_all(&mut **t).await?,
            Tx::Postgres(t) => bind_all!(sqlx::query_as::<Postgres, T>(sql_of(sql)), params).fetch_all(&mut **t).await?,
        })
    }

    pub async fn fetch_optional<T: AnyRow>(&mut self, sql: &str, params: Vec<Param>) -> Result<Option<T>, DbError> {
        Ok(match self {
            Tx::Sqlite(t) => bind_all!(sqlx::query_as::<Sqlite, T>(sql_of(sql)), params).fetch_optional(&mut **t).await?,
            Tx::Postgres(t) => bind_all!(sqlx::query_as::<Postgres, T>(sql_of(sql)), params).fetch_optional(&mut **t).await?,
        })
    }

    pub async fn fetch_one<T: AnyRow>(&mut self, sql: &str, params: Vec<Param>) -> Result<T, DbError> {
        Ok(match self {
            Tx::Sqlite(t) => bind_all!(sqlx::query_as::<Sqlite, T>(sql_of(sql)), params).fetch_one(&mut **t).await?,
            Tx::Postgres(t) => bind_all!(sqlx::query_as::<Postgres, T>(sql_of(sql)), params).fetch_one(&mut **t).await?,
        })
    }

    pub async fn execute(&mut self, sql: &str, params: Vec<Param>) -> Result<u64, DbError> {
        Ok(match self {
            Tx::Sqlite(t) => bind_all!(sqlx::query::<Sqlite>(sql_of(sql)), params).execute(&mut **t).await?.rows_affected(),
            Tx::Postgres(t) => bind_all!(sqlx::query::<Postgres>(sql_of(sql)), params).execute(&mut **t).await?.rows_affected(),
        })
    }

    pub async fn commit(self) -> Result<(), DbError> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }
}

/// A single-column row, for `SELECT id ...` and `SELECT COUNT(*) ...`.
#[derive(Debug, sqlx::FromRow)]
pub struct One<T>(pub T);
