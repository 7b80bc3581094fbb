//! Writing validated knowledge-base rows, in one transaction: rows are upserted by name (so loading the
//! same files twice changes nothing), then each row's list references and regions are replaced by what
//! the input says.

use std::collections::HashMap;

use serde_json::Value;

use super::catalogue::{KINDS, Kind, TRANSLATIONS};
use super::resolve::{ExistingNames, Row};
use crate::db::exec::{One, Param};
use crate::db::schema::ColType;
use crate::db::{Db, DbError};
use crate::params;

/// Counts of what a load wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Written {
    pub rows: usize,
    pub links: usize,
    pub regions: usize,
}

/// The names stored for every kind.
pub async fn existing_names(db: &Db) -> Result<ExistingNames, DbError> {
    let mut out = ExistingNames::new();
    for (kind, names) in name_ids(db).await? {
        out.insert(kind, names.into_keys().collect());
    }
    Ok(out)
}

type NameIds = HashMap<&'static str, HashMap<String, i64>>;

async fn name_ids(db: &Db) -> Result<NameIds, DbError> {
    let mut out = NameIds::new();
    for kind in KINDS {
        let rows: Vec<(String, i64)> = db.fetch_all(&format!("SELECT name, id FROM {}", kind.name), vec![]).await?;
        out.insert(kind.name, rows.into_iter().collect());
    }
    Ok(out)
}

fn upsert_sql(kind: &Kind) -> String {
    let mut cols: Vec<String> = vec!["name".into()];
    cols.extend(TRANSLATIONS.iter().map(|t| (*t).to_owned()));
    cols.extend(kind.typed.iter().map(|t| t.field.to_owned()));
    cols.extend(kind.refs.iter().map(|r| Kind::ref_column(r.field)));
    cols.push("attributes".into());
    let placeholders: Vec<String> = (1..=cols.len()).map(|i| format!("${i}")).collect();
    let sets: Vec<String> = cols.iter().skip(1).map(|c| format!("{c} = excluded.{c}")).collect();
    format!(
        "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT (name) DO UPDATE SET {} RETURNING id",
        kind.name,
        cols.join(", "),
        placeholders.join(", "),
        sets.join(", ")
    )
}

fn links_insert_sql(table: &str, n: usize) -> String {
    let values: Vec<String> = (0..n).map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3)).collect();
    format!("INSERT INTO {table} (source_id, target_id, position) VALUES {}", values.join(", "))
}

/// A JSON value already checked against `ty`, as a parameter of that column type.
fn typed_param(ty: ColType, v: &Value) -> Param {
    match ty {
        ColType::Int | ColType::Id => Param::Int(v.as_i64()),
        ColType::Float => Param::Float(v.as_f64()),
        ColType::Bool => Param::Bool(v.as_bool()),
        ColType::Text => Param::Text(v.as_str().map(str::to_owned)),
        ColType::Date => Param::Date(v.as_str().and_then(|s| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())),
        ColType::Timestamp => Param::Timestamp(v.as_str().and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok()).map(|t| t.to_utc())),
        ColType::Json => Param::Json((!v.is_null()).then(|| v.clone())),
    }
}

/// Writes `rows` (in catalogue order, as [`resolve`](super::resolve::resolve) returns them) in one
/// transaction. Every reference in them must name an entry of the input or of the database.
pub async fn store(db: &Db, rows: &[Row]) -> Result<Written, DbError> {
    let mut ids = name_ids(db).await?;
    let existed: std::collections::HashSet<(&str, String)> =
        rows.iter().filter(|r| ids[r.kind.name].contains_key(&r.name)).map(|r| (r.kind.name, r.name.clone())).collect();
    let sql: HashMap<&str, String> = KINDS.iter().map(|k| (k.name, upsert_sql(k))).collect();
    let mut written = Written::default();
    let unknown = |kind: &str, name: &str| DbError::Config(format!("internal: {kind} `{name}` was not written before it was referenced"));

    let mut tx = db.begin().await?;
    let mut row_ids = Vec::with_capacity(rows.len());
    for row in rows {
        let kind = row.kind;
        let mut params = vec![Param::from(&row.name)];
        params.extend(row.translations.iter().map(|t| Param::Text(t.clone())));
        params.extend(kind.typed.iter().zip(&row.typed).map(|(f, v)| typed_param(f.ty, v)));
        for (field, target) in kind.refs.iter().zip(&row.refs) {
            let id = match target {
                Some(name) => Some(*ids[field.target].get(name).ok_or_else(|| unknown(field.target, name))?),
                None => None,
            };
            params.push(Param::Int(id));
        }
        params.push(Param::Json(Some(Value::Object(row.attributes.clone()))));
        let One(id) = tx.fetch_one::<One<i64>>(&sql[kind.name], params).await?;
        ids.get_mut(kind.name).map(|m| m.insert(row.name.clone(), id));
        row_ids.push(id);
        written.rows += 1;
    }

    for (row, &id) in rows.iter().zip(&row_ids) {
        let kind = row.kind;
        let was_there = existed.contains(&(kind.name, row.name.clone()));
        for (field, targets) in kind.links.iter().zip(&row.links) {
            let table = kind.link_table(field.field);
            if was_there {
                tx.execute(&format!("DELETE FROM {table} WHERE source_id = $1"), params![id]).await?;
            }
            // Chunked so a statement stays under SQLite's limit of bound parameters.
            for (chunk_no, chunk) in targets.chunks(300).enumerate() {
                let mut params = Vec::with_capacity(chunk.len() * 3);
                for (i, name) in chunk.iter().enumerate() {
                    let target = *ids[field.target].get(name).ok_or_else(|| unknown(field.target, name))?;
                    let position = i64::try_from(chunk_no * 300 + i).unwrap_or(i64::MAX);
                    params.extend(params![id, target, position]);
                }
                tx.execute(&links_insert_sql(&table, chunk.len()), params).await?;
                written.links += chunk.len();
            }
        }
        if let Some(regions) = &row.regions {
            if was_there {
                tx.execute("DELETE FROM endoscopy_processor_region WHERE endoscopy_processor_id = $1", params![id]).await?;
            }
            for r in regions {
                tx.execute(
                    "INSERT INTO endoscopy_processor_region (endoscopy_processor_id, name, kind, x, y, width, height) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    params![id, &r.name, &r.kind, r.x, r.y, r.width, r.height],
                )
                .await?;
                written.regions += 1;
            }
        }
    }
    tx.commit().await?;
    Ok(written)
}
