//! The lines of the export format and canonical values.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::db::exec::Param;
use crate::db::schema::ColType;

pub const FORMAT: &str = "endoreg-export";
pub const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub version: u32,
    pub created_at: DateTime<Utc>,
    pub source: String,
    pub migrations: usize,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct TableStart {
    pub table: String,
    pub columns: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct TableEnd {
    pub end_table: String,
    pub rows: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Trailer {
    pub end: bool,
    pub rows: std::collections::BTreeMap<String, u64>,
    pub sha256: String,
}

/// A stored value in its canonical export form.
pub fn canonical(ty: ColType, v: Value) -> Result<Value, String> {
    Ok(match (ty, v) {
        (_, Value::Null) => Value::Null,
        (ColType::Id | ColType::Int, Value::Number(n)) if n.is_i64() => Value::Number(n),
        (ColType::Float, Value::Number(n)) => Value::Number(n),
        (ColType::Bool, Value::Bool(b)) => Value::Bool(b),
        (ColType::Bool, Value::Number(n)) => Value::Bool(n.as_i64() != Some(0)),
        (ColType::Text, Value::String(s)) => Value::String(s),
        (ColType::Date, Value::String(s)) => {
            let d = NaiveDate::parse_from_str(&s, "%Y-%m-%d").map_err(|e| format!("date `{s}`: {e}"))?;
            Value::String(d.to_string())
        }
        (ColType::Timestamp, Value::String(s)) => Value::String(canonical_instant(&s)?),
        (ColType::Json, Value::String(s)) => sorted(serde_json::from_str(&s).map_err(|e| format!("JSON column holds invalid JSON: {e}"))?),
        (ColType::Json, v) => sorted(v),
        (ty, v) => return Err(format!("a {ty:?} column holds {v}")),
    })
}

fn canonical_instant(s: &str) -> Result<String, String> {
    let t = DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%:z"))
        .map_err(|e| format!("timestamp `{s}`: {e}"))?;
    Ok(t.with_timezone(&Utc).to_rfc3339_opts(SecondsFormat::Micros, true))
}

/// JSON with object keys sorted, recursively (PostgreSQL's jsonb reorders keys; SQLite keeps them).
fn sorted(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(String, Value)> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect::<Map<String, Value>>())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// A canonical value as a parameter for its column type.
pub fn param(ty: ColType, v: &Value) -> Result<Param, String> {
    let bad = || format!("expected a {ty:?} value, found {v}");
    Ok(match ty {
        ColType::Id | ColType::Int => Param::Int(if v.is_null() { None } else { Some(v.as_i64().ok_or_else(bad)?) }),
        ColType::Float => Param::Float(if v.is_null() { None } else { Some(v.as_f64().ok_or_else(bad)?) }),
        ColType::Bool => Param::Bool(if v.is_null() { None } else { Some(v.as_bool().ok_or_else(bad)?) }),
        ColType::Text => Param::Text(if v.is_null() { None } else { Some(v.as_str().ok_or_else(bad)?.to_owned()) }),
        ColType::Date => Param::Date(match v {
            Value::Null => None,
            Value::String(s) => Some(NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|e| format!("date `{s}`: {e}"))?),
            _ => return Err(bad()),
        }),
        ColType::Timestamp => Param::Timestamp(match v {
            Value::Null => None,
            Value::String(s) => Some(DateTime::parse_from_rfc3339(s).map_err(|e| format!("timestamp `{s}`: {e}"))?.with_timezone(&Utc)),
            _ => return Err(bad()),
        }),
        ColType::Json => Param::Json(if v.is_null() { None } else { Some(v.clone()) }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn instants_from_either_backend_become_the_same_text() {
        let sqlite = canonical(ColType::Timestamp, json!("2026-11-25T01:59:04.039666+00:00")).unwrap();
        let pg = canonical(ColType::Timestamp, json!("2026-11-25T01:59:04.039666Z")).unwrap();
        assert_eq!(sqlite, pg);
        assert_eq!(pg, json!("2026-11-25T01:59:04.039666Z"));
    }

    #[test]
    fn json_keys_are_sorted_at_every_depth() {
        let v = canonical(ColType::Json, json!("{\"b\":1,\"a\":{\"d\":[{\"z\":1,\"y\":2}],\"c\":0}}")).unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"{"a":{"c":0,"d":[{"y":2,"z":1}]},"b":1}"#);
    }

    #[test]
    fn a_value_of_the_wrong_type_is_refused() {
        assert!(canonical(ColType::Int, json!("12")).is_err());
        assert!(param(ColType::Date, &json!(20240101)).is_err());
        assert!(param(ColType::Timestamp, &json!("yesterday")).is_err());
    }
}
