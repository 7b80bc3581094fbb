//! Rows whose columns are known only at run time (terminology kinds, backup), decoded into JSON values
//! on either backend.
//!
//! Values come out as the backend stores them: SQLite gives text for dates, timestamps and JSON;
//! PostgreSQL gives them typed (rendered here as ISO 8601 text and JSON). Callers that need one canonical
//! form normalise with the column's [`ColType`](super::schema::ColType).

use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Column, FromRow, Row, TypeInfo, ValueRef};

/// Column name → value, in select order.
#[derive(Debug, Clone, PartialEq)]
pub struct DynRow(pub Vec<(String, Value)>);

impl DynRow {
    pub fn get(&self, column: &str) -> &Value {
        self.0.iter().find(|(c, _)| c == column).map_or(&Value::Null, |(_, v)| v)
    }

    pub fn take(&mut self, column: &str) -> Value {
        self.0.iter_mut().find(|(c, _)| c == column).map_or(Value::Null, |(_, v)| std::mem::take(v))
    }
}

impl<'r> FromRow<'r, SqliteRow> for DynRow {
    fn from_row(row: &'r SqliteRow) -> Result<Self, sqlx::Error> {
        let mut out = Vec::with_capacity(row.columns().len());
        for (i, col) in row.columns().iter().enumerate() {
            let raw = row.try_get_raw(i)?;
            let value = if raw.is_null() {
                Value::Null
            } else {
                // The storage class of this value (SQLite is dynamically typed; STRICT tables keep it to
                // the declared one).
                match raw.type_info().name() {
                    "INTEGER" | "BOOLEAN" => Value::from(row.try_get::<i64, _>(i)?),
                    "REAL" | "NUMERIC" => serde_json::Number::from_f64(row.try_get::<f64, _>(i)?).map_or(Value::Null, Value::Number),
                    "BLOB" => Value::String(hex(&row.try_get::<Vec<u8>, _>(i)?)),
                    _ => Value::String(row.try_get::<String, _>(i)?),
                }
            };
            out.push((col.name().to_owned(), value));
        }
        Ok(DynRow(out))
    }
}

impl<'r> FromRow<'r, PgRow> for DynRow {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        let mut out = Vec::with_capacity(row.columns().len());
        for (i, col) in row.columns().iter().enumerate() {
            let value = match col.type_info().name() {
                "INT8" => row.try_get::<Option<i64>, _>(i)?.map(Value::from),
                "INT4" => row.try_get::<Option<i32>, _>(i)?.map(Value::from),
                "INT2" => row.try_get::<Option<i16>, _>(i)?.map(Value::from),
                "FLOAT8" => row.try_get::<Option<f64>, _>(i)?.and_then(serde_json::Number::from_f64).map(Value::Number),
                "FLOAT4" => row.try_get::<Option<f32>, _>(i)?.and_then(|f| serde_json::Number::from_f64(f64::from(f))).map(Value::Number),
                "BOOL" => row.try_get::<Option<bool>, _>(i)?.map(Value::from),
                "JSONB" | "JSON" => row.try_get::<Option<Value>, _>(i)?,
                "DATE" => row.try_get::<Option<chrono::NaiveDate>, _>(i)?.map(|d| Value::String(d.to_string())),
                "TIMESTAMPTZ" => row
                    .try_get::<Option<chrono::DateTime<chrono::Utc>>, _>(i)?
                    .map(|t| Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))),
                "BYTEA" => row.try_get::<Option<Vec<u8>>, _>(i)?.map(|b| Value::String(hex(&b))),
                _ => row.try_get::<Option<String>, _>(i)?.map(Value::String),
            };
            out.push((col.name().to_owned(), value.unwrap_or(Value::Null)));
        }
        Ok(DynRow(out))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
