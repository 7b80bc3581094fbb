//! Writing validated knowledge-base rows, in one transaction: rows are upserted by name, then each row's
//! list references and regions are replaced by what the input says where they differ. A row the input
//! does not change is not written at all, so loading the same files twice writes nothing and the count of
//! what was created, updated and left unchanged is exact. Model versions are inserted, never changed.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;

use super::catalogue::{KINDS, Kind, MODEL_VERSION_TABLE, TRANSLATIONS};
use super::resolve::{Existing, ExistingNames, ExistingVersions, Region, Row, VersionRow};
use crate::db::exec::{One, Param, Tx};
use crate::db::schema::ColType;
use crate::db::{Db, DbError};
use crate::params;

/// What a load did to the entries of one kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
}

impl Tally {
    /// Every entry counted: the entries of the input that were written or found as they are.
    pub fn entries(&self) -> usize {
        self.created + self.updated + self.unchanged
    }
}

/// What a load wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Written {
    /// All kinds together.
    pub total: Tally,
    /// List-reference rows inserted (those of new rows, and of rows whose lists changed).
    pub links: usize,
    /// Processor regions inserted, likewise.
    pub regions: usize,
    /// Per kind (its table), in the order they were written; only kinds the input has.
    #[serde(serialize_with = "as_map")]
    pub kinds: Vec<(&'static str, Tally)>,
}

fn as_map<S: serde::Serializer>(kinds: &[(&'static str, Tally)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(kinds.iter().map(|(k, t)| (k, t)))
}

impl Written {
    pub fn kind(&self, name: &str) -> Option<Tally> {
        self.kinds.iter().find(|(k, _)| *k == name).map(|(_, t)| *t)
    }

    fn count(&mut self, kind: &'static str, created: bool, changed: bool) {
        let i = match self.kinds.iter().position(|(k, _)| *k == kind) {
            Some(i) => i,
            None => {
                self.kinds.push((kind, Tally::default()));
                self.kinds.len() - 1
            }
        };
        for t in [&mut self.kinds[i].1, &mut self.total] {
            match (created, changed) {
                (true, _) => t.created += 1,
                (false, true) => t.updated += 1,
                (false, false) => t.unchanged += 1,
            }
        }
    }
}

/// The names of every kind and the model versions, as stored now.
pub async fn existing(db: &Db) -> Result<Existing, DbError> {
    // A transaction only so that both reads see one state; it is rolled back when dropped.
    let mut tx = db.begin().await?;
    let mut names = ExistingNames::new();
    for (kind, ids) in name_ids(&mut tx).await? {
        names.insert(kind, ids.into_keys().collect());
    }
    let rows: Vec<(String, String, Option<String>, Json<Value>)> = tx
        .fetch_all(
            &format!(
                "SELECT m.name, v.version, ls.name, v.metadata FROM {MODEL_VERSION_TABLE} v JOIN ai_model m ON m.id = v.ai_model_id \
                 LEFT JOIN label_set ls ON ls.id = v.label_set_id"
            ),
            vec![],
        )
        .await?;
    let versions: ExistingVersions = rows.into_iter().map(|(m, v, l, meta)| ((m, v), (l, meta.0))).collect();
    Ok(Existing { names, versions })
}

type NameIds = HashMap<&'static str, HashMap<String, i64>>;

async fn name_ids(tx: &mut Tx) -> Result<NameIds, DbError> {
    let mut out = NameIds::new();
    for kind in KINDS {
        let rows: Vec<(String, i64)> = tx.fetch_all(&format!("SELECT name, id FROM {}", kind.name), vec![]).await?;
        out.insert(kind.name, rows.into_iter().collect());
    }
    Ok(out)
}

fn columns(kind: &Kind) -> Vec<String> {
    let mut cols: Vec<String> = vec!["name".into()];
    cols.extend(TRANSLATIONS.iter().map(|t| (*t).to_owned()));
    cols.extend(kind.typed.iter().map(|t| t.field.to_owned()));
    cols.extend(kind.refs.iter().map(|r| Kind::ref_column(r.field)));
    cols.push("attributes".into());
    cols
}

/// Inserts, or updates a row whose values differ; returns its id only when it wrote (both backends
/// return nothing for a conflicting row the `WHERE` leaves alone).
fn upsert_sql(kind: &Kind) -> String {
    let cols = columns(kind);
    let placeholders: Vec<String> = (1..=cols.len()).map(|i| format!("${i}")).collect();
    let sets: Vec<String> = cols.iter().skip(1).map(|c| format!("{c} = excluded.{c}")).collect();
    let differs: Vec<String> = cols.iter().skip(1).map(|c| format!("{}.{c} IS DISTINCT FROM excluded.{c}", kind.name)).collect();
    format!(
        "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT (name) DO UPDATE SET {} WHERE {} RETURNING id",
        kind.name,
        cols.join(", "),
        placeholders.join(", "),
        sets.join(", "),
        differs.join(" OR ")
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

/// The stored targets of one list reference, per source row, in order.
async fn stored_links(tx: &mut Tx, table: &str) -> Result<HashMap<i64, Vec<i64>>, DbError> {
    let rows: Vec<(i64, i64)> =
        tx.fetch_all(&format!("SELECT source_id, target_id FROM {table} ORDER BY source_id, position"), vec![]).await?;
    let mut out: HashMap<i64, Vec<i64>> = HashMap::new();
    for (source, target) in rows {
        out.entry(source).or_default().push(target);
    }
    Ok(out)
}

async fn stored_regions(tx: &mut Tx) -> Result<HashMap<i64, Vec<Region>>, DbError> {
    let rows: Vec<(i64, String, String, i64, i64, i64, i64)> = tx
        .fetch_all("SELECT endoscopy_processor_id, name, kind, x, y, width, height FROM endoscopy_processor_region ORDER BY endoscopy_processor_id, id", vec![])
        .await?;
    let mut out: HashMap<i64, Vec<Region>> = HashMap::new();
    for (id, name, kind, x, y, width, height) in rows {
        out.entry(id).or_default().push(Region { name, kind, x, y, width, height });
    }
    Ok(out)
}

/// Writes `rows` (in catalogue order, as [`resolve`](super::resolve::resolve) returns them) and
/// `versions` in one transaction. Every reference in them must name an entry of the input or of the
/// database.
pub async fn store(db: &Db, rows: &[Row], versions: &[VersionRow]) -> Result<Written, DbError> {
    let mut tx = db.begin().await?;
    let mut ids = name_ids(&mut tx).await?;
    let existed: HashSet<(&str, &str)> =
        rows.iter().filter(|r| ids[r.kind.name].contains_key(&r.name)).map(|r| (r.kind.name, r.name.as_str())).collect();
    let sql: HashMap<&str, String> = KINDS.iter().map(|k| (k.name, upsert_sql(k))).collect();
    let mut written = Written::default();
    let unknown = |kind: &str, name: &str| DbError::Config(format!("internal: {kind} `{name}` was not written before it was referenced"));

    let mut row_ids = Vec::with_capacity(rows.len());
    let mut columns_changed = Vec::with_capacity(rows.len());
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
        let wrote: Option<One<i64>> = tx.fetch_optional(&sql[kind.name], params).await?;
        let id = match wrote {
            Some(One(id)) => id,
            None => *ids[kind.name].get(&row.name).ok_or_else(|| unknown(kind.name, &row.name))?,
        };
        ids.get_mut(kind.name).map(|m| m.insert(row.name.clone(), id));
        row_ids.push(id);
        columns_changed.push(wrote.is_some());
    }

    // What the rows that were there already link to, to leave alone what does not change.
    let mut old_links: HashMap<String, HashMap<i64, Vec<i64>>> = HashMap::new();
    for kind in KINDS.iter().filter(|k| existed.iter().any(|(n, _)| *n == k.name)) {
        for field in kind.links {
            let table = kind.link_table(field.field);
            let links = stored_links(&mut tx, &table).await?;
            old_links.insert(table, links);
        }
    }
    let old_regions = if existed.iter().any(|(n, _)| rows.iter().any(|r| r.kind.name == *n && r.kind.has_regions)) {
        stored_regions(&mut tx).await?
    } else {
        HashMap::new()
    };

    for ((row, &id), columns_changed) in rows.iter().zip(&row_ids).zip(columns_changed) {
        let kind = row.kind;
        let was_there = existed.contains(&(kind.name, row.name.as_str()));
        let mut changed = columns_changed;
        for (field, targets) in kind.links.iter().zip(&row.links) {
            let table = kind.link_table(field.field);
            let target_ids = targets
                .iter()
                .map(|name| ids[field.target].get(name).copied().ok_or_else(|| unknown(field.target, name)))
                .collect::<Result<Vec<i64>, _>>()?;
            if was_there {
                let old = old_links.get(&table).and_then(|m| m.get(&id)).map_or(&[][..], Vec::as_slice);
                if old == target_ids.as_slice() {
                    continue;
                }
                changed = true;
                tx.execute(&format!("DELETE FROM {table} WHERE source_id = $1"), params![id]).await?;
            }
            // Chunked so a statement stays under SQLite's limit of bound parameters.
            for (chunk_no, chunk) in target_ids.chunks(300).enumerate() {
                let mut params = Vec::with_capacity(chunk.len() * 3);
                for (i, &target) in chunk.iter().enumerate() {
                    let position = i64::try_from(chunk_no * 300 + i).unwrap_or(i64::MAX);
                    params.extend(params![id, target, position]);
                }
                tx.execute(&links_insert_sql(&table, chunk.len()), params).await?;
                written.links += chunk.len();
            }
        }
        if let Some(regions) = &row.regions {
            let unchanged = was_there && old_regions.get(&id).map_or(&[][..], Vec::as_slice) == regions.as_slice();
            if !unchanged {
                if was_there {
                    changed = true;
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
        written.count(kind.name, !was_there, changed);
    }

    for v in versions {
        let model = *ids["ai_model"].get(&v.model).ok_or_else(|| unknown("ai_model", &v.model))?;
        let label_set = *ids["label_set"].get(&v.label_set).ok_or_else(|| unknown("label_set", &v.label_set))?;
        let inserted: Option<One<i64>> = tx
            .fetch_optional(
                &format!(
                    "INSERT INTO {MODEL_VERSION_TABLE} (ai_model_id, version, label_set_id, metadata, created_at) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (ai_model_id, version) DO NOTHING RETURNING id"
                ),
                params![model, &v.version, label_set, v.metadata.clone(), crate::service::now()],
            )
            .await?;
        if inserted.is_none() {
            // Checked against the database before the import; checked again here, where it counts.
            let (stored_set, Json(stored_meta)): (Option<i64>, Json<Value>) = tx
                .fetch_one(
                    &format!("SELECT label_set_id, metadata FROM {MODEL_VERSION_TABLE} WHERE ai_model_id = $1 AND version = $2"),
                    params![model, &v.version],
                )
                .await?;
            if stored_set != Some(label_set) || stored_meta != v.metadata {
                return Err(DbError::Config(format!(
                    "model {} version {} was registered differently while it was being imported; nothing was imported, run the import again",
                    v.model, v.version
                )));
            }
        }
        written.count(MODEL_VERSION_TABLE, inserted.is_some(), false);
    }
    tx.commit().await?;
    Ok(written)
}
