//! Reading the knowledge base: every kind through one generic path driven by the catalogue, plus the
//! views researchers ask for (classifications with their choices, an indication's expected interventions).

use std::collections::HashMap;

use serde_json::{Map, Value};

use endoreg_common::api::{ChoiceSummary, ClassificationWithChoices, Page, Paging, Region, TermEntry, TermKindSummary};

use crate::db::dynrow::DynRow;
use crate::db::exec::{One, Param};
use crate::db::{Db, DbError};
use crate::kb::catalogue::{self, KINDS, Kind, TRANSLATIONS};
use crate::params;

use super::{Filters, Result, ServiceError};

pub fn kind(name: &str) -> Result<&'static Kind> {
    catalogue::kind(name).ok_or_else(|| ServiceError::not_found(format!("terminology kind `{name}`")))
}

/// Every kind with its number of entries.
pub async fn kinds(db: &Db) -> Result<Vec<TermKindSummary>> {
    let sql = KINDS.iter().map(|k| format!("SELECT '{0}' AS kind, COUNT(*) AS n FROM {0}", k.name)).collect::<Vec<_>>().join(" UNION ALL ");
    let rows: Vec<(String, i64)> = db.fetch_all(&sql, vec![]).await?;
    let counts: HashMap<String, i64> = rows.into_iter().collect();
    Ok(KINDS.iter().map(|k| TermKindSummary { kind: k.name.to_owned(), count: counts.get(k.name).copied().unwrap_or(0) }).collect())
}

fn select(kind: &Kind) -> String {
    let mut cols = vec!["t.id".to_owned(), "t.name".to_owned()];
    cols.extend(TRANSLATIONS.iter().map(|c| format!("t.{c}")));
    cols.extend(kind.typed.iter().map(|c| format!("t.{}", c.field)));
    let mut joins = String::new();
    for (i, r) in kind.refs.iter().enumerate() {
        cols.push(format!("r{i}.name AS ref__{}", r.field));
        joins += &format!(" LEFT JOIN {} r{i} ON r{i}.id = t.{}", r.target, Kind::ref_column(r.field));
    }
    cols.push("t.attributes".to_owned());
    format!("SELECT {} FROM {} t{joins}", cols.join(", "), kind.name)
}

fn as_text(v: Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s),
        _ => None,
    }
}

/// Turns rows of `kind` into entries, loading their list references and regions in one query each.
async fn assemble(db: &Db, kind: &'static Kind, rows: Vec<DynRow>) -> Result<Vec<TermEntry>, DbError> {
    let ids: Vec<i64> = rows.iter().filter_map(|r| r.get("id").as_i64()).collect();
    let mut links: HashMap<(i64, &str), Vec<Value>> = HashMap::new();
    let mut regions: HashMap<i64, Vec<Region>> = HashMap::new();
    if !ids.is_empty() {
        let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let in_list = placeholders.join(", ");
        let id_params: Vec<Param> = ids.iter().map(|&i| Param::from(i)).collect();
        for l in kind.links {
            let sql = format!(
                "SELECT l.source_id, x.name FROM {} l JOIN {} x ON x.id = l.target_id WHERE l.source_id IN ({in_list}) ORDER BY l.source_id, l.position",
                kind.link_table(l.field),
                l.target
            );
            let found: Vec<(i64, String)> = db.fetch_all(&sql, id_params.clone()).await?;
            for (src, name) in found {
                links.entry((src, l.field)).or_default().push(Value::String(name));
            }
        }
        if kind.has_regions {
            let sql = format!(
                "SELECT endoscopy_processor_id, name, kind, x, y, width, height FROM endoscopy_processor_region \
                 WHERE endoscopy_processor_id IN ({in_list}) ORDER BY endoscopy_processor_id, id"
            );
            let found: Vec<(i64, String, String, i64, i64, i64, i64)> = db.fetch_all(&sql, id_params).await?;
            for (p, name, kind, x, y, width, height) in found {
                regions.entry(p).or_default().push(Region { name, kind, x, y, width, height });
            }
        }
    }
    Ok(rows
        .into_iter()
        .map(|mut r| {
            let id = r.get("id").as_i64().unwrap_or_default();
            let mut fields = Map::new();
            for t in kind.typed {
                let v = r.take(t.field);
                if !v.is_null() {
                    fields.insert(t.field.to_owned(), v);
                }
            }
            let mut refs = Map::new();
            for f in kind.refs {
                let v = r.take(&format!("ref__{}", f.field));
                if !v.is_null() {
                    refs.insert(f.field.to_owned(), v);
                }
            }
            let mut link_map = Map::new();
            for l in kind.links {
                if let Some(names) = links.remove(&(id, l.field)) {
                    link_map.insert(l.field.to_owned(), Value::Array(names));
                }
            }
            let attributes = match r.take("attributes") {
                Value::String(s) => serde_json::from_str(&s).unwrap_or_default(),
                Value::Object(m) => m,
                _ => Map::new(),
            };
            TermEntry {
                kind: kind.name.to_owned(),
                name: as_text(r.take("name")).unwrap_or_default(),
                name_de: as_text(r.take("name_de")),
                name_en: as_text(r.take("name_en")),
                description: as_text(r.take("description")),
                description_de: as_text(r.take("description_de")),
                description_en: as_text(r.take("description_en")),
                fields,
                refs,
                links: link_map,
                attributes,
                regions: regions.remove(&id).unwrap_or_default(),
            }
        })
        .collect())
}

/// A page of entries of `kind`, by name; `q` matches a substring of the name or a translation.
pub async fn list(db: &Db, kind_name: &str, q: Option<&str>, paging: &Paging) -> Result<Page<TermEntry>> {
    let kind = kind(kind_name)?;
    let (limit, offset) = super::limits(paging)?;
    let mut f = Filters::default();
    if let Some(q) = q.filter(|q| !q.is_empty()) {
        let pattern = format!("%{}%", q.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
        f.add(
            "(LOWER(t.name) LIKE ? ESCAPE '\\' OR LOWER(COALESCE(t.name_en, '')) LIKE ? ESCAPE '\\' OR LOWER(COALESCE(t.name_de, '')) LIKE ? ESCAPE '\\')",
            pattern,
        );
    }
    let mut params = f.params();
    let n = params.len();
    params.extend(params![limit, offset]);
    let rows: Vec<DynRow> =
        db.fetch_all(&format!("{}{} ORDER BY t.name LIMIT ${} OFFSET ${}", select(kind), f.sql(), n + 1, n + 2), params).await?;
    let One(total): One<i64> = db.fetch_one(&format!("SELECT COUNT(*) FROM {} t{}", kind.name, f.sql()), f.params()).await?;
    Ok(Page { items: assemble(db, kind, rows).await?, total, page: paging.page, per_page: paging.per_page })
}

pub async fn get(db: &Db, kind_name: &str, name: &str) -> Result<TermEntry> {
    let kind = kind(kind_name)?;
    let rows: Vec<DynRow> = db.fetch_all(&format!("{} WHERE t.name = $1", select(kind)), params![name]).await?;
    assemble(db, kind, rows).await?.into_iter().next().ok_or_else(|| ServiceError::not_found(format!("{kind_name} `{name}`")))
}

/// Every entry of `kind`, by name.
pub async fn all(db: &Db, kind_name: &str) -> Result<Vec<TermEntry>> {
    let kind = kind(kind_name)?;
    let rows: Vec<DynRow> = db.fetch_all(&format!("{} ORDER BY t.name", select(kind)), vec![]).await?;
    Ok(assemble(db, kind, rows).await?)
}

fn names(entry: &TermEntry, field: &str) -> Vec<String> {
    entry
        .links
        .get(field)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// All finding classifications with their choices (in the classification's order).
pub async fn classifications(db: &Db) -> Result<Vec<ClassificationWithChoices>> {
    let classes = all(db, "finding_classification").await?;
    let choices: Vec<(String, Option<String>, Option<String>)> =
        db.fetch_all("SELECT name, name_en, name_de FROM finding_classification_choice", vec![]).await?;
    let by_name: HashMap<String, (Option<String>, Option<String>)> = choices.into_iter().map(|(n, en, de)| (n, (en, de))).collect();
    Ok(classes
        .into_iter()
        .map(|c| ClassificationWithChoices {
            choices: names(&c, "choices")
                .into_iter()
                .map(|n| {
                    let (name_en, name_de) = by_name.get(&n).cloned().unwrap_or_default();
                    ChoiceSummary { name: n, name_en, name_de }
                })
                .collect(),
            classification_types: names(&c, "classification_types"),
            findings: names(&c, "findings"),
            name: c.name,
            name_en: c.name_en,
            name_de: c.name_de,
        })
        .collect())
}

/// The interventions an examination indication expects, with their entries.
pub async fn expected_interventions(db: &Db, indication: &str) -> Result<Vec<TermEntry>> {
    let ind = get(db, "examination_indication", indication).await?;
    let mut out = Vec::new();
    for n in names(&ind, "expected_interventions") {
        out.push(get(db, "finding_intervention", &n).await?);
    }
    Ok(out)
}
