//! Validation shared by both knowledge-base formats: every field is classified against the catalogue,
//! values are type-checked, duplicate definitions are merged (and reported), and every reference is
//! checked against the names defined in the input or already in the database.
//!
//! EndoregDB's model metadata become [`VersionRow`]s: a model version is immutable, so one that the
//! database holds with another label set or other metadata is a conflict, never replaced.
//!
//! The result is a list of [`Row`]s ready to be written and the list of problems. Whether problems are
//! fatal is the caller's decision: our own knowledge base refuses to load with any, the EndoregDB importer
//! reports them and loads what is sound.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::catalogue::{KINDS, Kind, REGION_KINDS, TRANSLATIONS};
use super::entry::{Entry, Problem, ProblemKind, VersionEntry};
use crate::db::schema::ColType;

pub use endoreg_common::api::Region;

/// A validated entry, ready to be written.
#[derive(Debug, Clone)]
pub struct Row {
    pub kind: &'static Kind,
    pub name: String,
    pub translations: [Option<String>; TRANSLATIONS.len()],
    /// One value per `kind.typed`, already checked against its column type.
    pub typed: Vec<Value>,
    /// One target name per `kind.refs`.
    pub refs: Vec<Option<String>>,
    /// One list of target names per `kind.links`, without repetitions, in first-seen order.
    pub links: Vec<Vec<String>>,
    pub attributes: Map<String, Value>,
    pub regions: Option<Vec<Region>>,
}

/// A model version to be written: EndoregDB's model metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionRow {
    /// The `ai_model` it is a version of.
    pub model: String,
    pub version: String,
    /// The `label_set` it predicts.
    pub label_set: String,
    /// `endoreg_model_meta` (the metadata set's name) and every other field of the entry.
    pub metadata: Value,
}

/// Names already stored, per kind (so that a partial load may refer to entries loaded earlier).
pub type ExistingNames = HashMap<&'static str, HashSet<String>>;

/// A stored model version: its label set and metadata, by model name and version.
pub type ExistingVersions = HashMap<(String, String), (Option<String>, Value)>;

/// What the database holds that an input may refer to or collide with.
#[derive(Debug, Default)]
pub struct Existing {
    pub names: ExistingNames,
    pub versions: ExistingVersions,
}

pub struct Resolved {
    pub rows: Vec<Row>,
    pub versions: Vec<VersionRow>,
    pub problems: Vec<Problem>,
}

/// Model metadata fields EndoregDB's `ModelMeta` has besides its name, version, model and label set;
/// kept in the version's metadata.
const VERSION_METADATA: [&str; 10] =
    ["activation", "mean", "std", "size_x", "size_y", "axes", "batchsize", "num_workers", "weights", "description"];

/// Merges duplicates, validates fields and checks references. Rows come out in catalogue order, then in
/// input order within a kind; versions in input order.
pub fn resolve(entries: Vec<Entry>, versions: Vec<VersionEntry>, existing: &Existing) -> Resolved {
    let mut problems = Vec::new();

    // Merge duplicate definitions field by field, the later definition winning (EndoregDB's semantics:
    // it updates the row by name), and report every definition after the first.
    let mut merged: Vec<Entry> = Vec::new();
    let mut first_seen: HashMap<(&'static str, String), usize> = HashMap::new();
    for entry in entries {
        match first_seen.get(&(entry.kind.name, entry.name.clone())) {
            Some(&i) => {
                let first = &mut merged[i];
                problems.push(Problem::for_entry(&entry, ProblemKind::DuplicateName, format!("also defined in {}", first.file)));
                for (k, v) in entry.fields {
                    first.fields.insert(k, v);
                }
            }
            None => {
                first_seen.insert((entry.kind.name, entry.name.clone()), merged.len());
                merged.push(entry);
            }
        }
    }

    let defined: HashSet<(&str, &str)> = merged.iter().map(|e| (e.kind.name, e.name.as_str())).collect();
    let exists = |kind: &str, name: &str| defined.contains(&(kind, name)) || existing.names.get(kind).is_some_and(|s| s.contains(name));

    let mut rows = Vec::with_capacity(merged.len());
    for entry in &merged {
        rows.push(validate(entry, &exists, &mut problems));
    }
    let order: HashMap<&str, usize> = KINDS.iter().enumerate().map(|(i, k)| (k.name, i)).collect();
    rows.sort_by_key(|r| order[r.kind.name]);
    let versions = resolve_versions(versions, &exists, &existing.versions, &mut problems);
    Resolved { rows, versions, problems }
}

/// Model metadata → model versions. The model is the `model` field or, as in EndoregDB's own
/// `create_multilabel_model_meta` (which names the metadata after its model), the entry's name. A version
/// whose model or label set does not exist, or that contradicts a stored version, is not imported; a
/// version defined twice takes its later definition.
fn resolve_versions(
    entries: Vec<VersionEntry>,
    exists: &dyn Fn(&str, &str) -> bool,
    stored: &ExistingVersions,
    problems: &mut Vec<Problem>,
) -> Vec<VersionRow> {
    let label = |target: &str| super::catalogue::kind(target).and_then(|k| k.endoreg_dir).unwrap_or("?");
    let mut out: Vec<(VersionEntry, VersionRow)> = Vec::new();
    for entry in entries {
        let invalid = |detail: String| Problem::for_version(&entry, ProblemKind::InvalidValue, detail);
        let mut metadata = Map::new();
        metadata.insert("endoreg_model_meta".into(), Value::String(entry.name.clone()));
        let (mut model, mut version, mut label_set) = (Some(entry.name.clone()), None, None);
        let mut sound = true;
        for (field, value) in &entry.fields {
            match (field.as_str(), value) {
                ("version", Value::Number(n)) if n.is_i64() => version = Some(n.to_string()),
                ("version", Value::String(v)) if !v.trim().is_empty() && v.trim().len() <= 100 => version = Some(v.trim().to_owned()),
                ("version", other) => {
                    problems
                        .push(invalid(format!("version: expected an integer or text of 1 to 100 characters, found {}", type_name(other))));
                    sound = false;
                }
                ("model", Value::String(m)) => model = Some(m.clone()),
                ("labelset", Value::String(l)) => label_set = Some(l.clone()),
                ("model" | "labelset", other) => {
                    problems.push(invalid(format!("{field}: expected a name, found {}", type_name(other))));
                    sound = false;
                }
                (f, v) => {
                    if !VERSION_METADATA.contains(&f) {
                        problems.push(Problem::for_version(
                            &entry,
                            ProblemKind::UnknownField,
                            format!("field `{f}` is not part of model metadata; kept in the version's metadata"),
                        ));
                    }
                    if !v.is_null() {
                        metadata.insert(f.to_owned(), v.clone());
                    }
                }
            }
        }
        if sound && !entry.fields.contains_key("version") {
            problems.push(invalid("version: missing; the version is not imported".into()));
            sound = false;
        }
        if sound && !entry.fields.contains_key("labelset") {
            problems.push(invalid("labelset: missing (the label set this version predicts); the version is not imported".into()));
            sound = false;
        }
        let (Some(model), Some(version), Some(label_set), true) = (model, version, label_set, sound) else {
            continue;
        };
        let row = VersionRow { model, version, label_set, metadata: Value::Object(metadata) };
        match out.iter().position(|(_, r)| r.model == row.model && r.version == row.version) {
            Some(i) => {
                problems.push(Problem::for_version(
                    &entry,
                    ProblemKind::DuplicateName,
                    format!("model {} version {} also defined in {}", row.model, row.version, out[i].0.file),
                ));
                out[i] = (entry, row);
            }
            None => out.push((entry, row)),
        }
    }

    let mut rows = Vec::with_capacity(out.len());
    for (entry, row) in out {
        let mut sound = true;
        for (field, target, name) in [("model", "ai_model", &row.model), ("labelset", "label_set", &row.label_set)] {
            if !exists(target, name) {
                problems.push(Problem::for_version(
                    &entry,
                    ProblemKind::DanglingReference,
                    format!("{field} -> {}:{name} does not exist; the version is not imported", label(target)),
                ));
                sound = false;
            }
        }
        if let Some((label_set, metadata)) = stored.get(&(row.model.clone(), row.version.clone()))
            && (label_set.as_deref() != Some(row.label_set.as_str()) || *metadata != row.metadata)
        {
            problems.push(Problem::for_version(
                &entry,
                ProblemKind::Conflict,
                format!(
                    "model {} version {} is already registered with label set {} and metadata {metadata}; a version never changes: \
                     give a changed model a new version; not imported",
                    row.model,
                    row.version,
                    label_set.as_deref().unwrap_or("(none)")
                ),
            ));
            sound = false;
        }
        if sound {
            rows.push(row);
        }
    }
    rows
}

fn validate(entry: &Entry, exists: &dyn Fn(&str, &str) -> bool, problems: &mut Vec<Problem>) -> Row {
    let kind = entry.kind;
    let mut row = Row {
        kind,
        name: entry.name.clone(),
        translations: Default::default(),
        typed: vec![Value::Null; kind.typed.len()],
        refs: vec![None; kind.refs.len()],
        links: vec![Vec::new(); kind.links.len()],
        attributes: Map::new(),
        regions: None,
    };
    let invalid = |field: &str, detail: String| Problem::for_entry(entry, ProblemKind::InvalidValue, format!("{field}: {detail}"));

    for (field, value) in &entry.fields {
        if let Some(i) = TRANSLATIONS.iter().position(|t| t == field) {
            match value {
                Value::Null => {}
                Value::String(s) => row.translations[i] = Some(s.clone()),
                other => problems.push(invalid(field, format!("expected text, found {}", type_name(other)))),
            }
        } else if let Some(i) = kind.typed.iter().position(|t| t.field == field) {
            match check_type(kind.typed[i].ty, value) {
                Ok(v) => row.typed[i] = v,
                Err(e) => problems.push(invalid(field, e)),
            }
        } else if let Some(i) = kind.refs.iter().position(|r| r.field == field) {
            let target = kind.refs[i].target;
            match value {
                Value::Null => {}
                Value::String(name) => {
                    if exists(target, name) {
                        row.refs[i] = Some(name.clone());
                    } else {
                        problems.push(dangling(entry, field, target, name));
                    }
                }
                other => problems.push(invalid(field, format!("expected the name of a {target}, found {}", type_name(other)))),
            }
        } else if let Some(i) = kind.links.iter().position(|l| l.field == field) {
            let target = kind.links[i].target;
            let names: Vec<&Value> = match value {
                Value::Null => Vec::new(),
                Value::Array(items) => items.iter().collect(),
                // A single name where a list is expected is read as a list of one.
                single @ Value::String(_) => vec![single],
                other => {
                    problems.push(invalid(field, format!("expected a list of {target} names, found {}", type_name(other))));
                    continue;
                }
            };
            for item in names {
                match item {
                    Value::String(name) => {
                        if !exists(target, name) {
                            problems.push(dangling(entry, field, target, name));
                        } else if !row.links[i].contains(name) {
                            row.links[i].push(name.clone());
                        }
                    }
                    other => problems.push(invalid(field, format!("expected a {target} name in the list, found {}", type_name(other)))),
                }
            }
        } else if kind.attributes.contains(&field.as_str()) {
            if !value.is_null() {
                row.attributes.insert(field.clone(), value.clone());
            }
        } else if kind.has_regions && field == "regions" {
            match parse_regions(value) {
                Ok(regions) => row.regions = Some(regions),
                Err(e) => problems.push(invalid(field, e)),
            }
        } else {
            // Kept, so that nothing an older or newer source carries is lost, and reported.
            problems.push(Problem::for_entry(
                entry,
                ProblemKind::UnknownField,
                format!("field `{field}` is not part of {}; kept in its attributes", kind.name),
            ));
            row.attributes.insert(field.clone(), value.clone());
        }
    }
    if let (Some(regions), Some(w), Some(h)) = (
        &row.regions,
        kind.find_typed("image_width").and_then(|_| row.typed.first()).and_then(Value::as_i64),
        kind.find_typed("image_height").and_then(|_| row.typed.get(1)).and_then(Value::as_i64),
    ) {
        for r in regions {
            if r.x + r.width > w || r.y + r.height > h {
                problems.push(Problem::for_entry(
                    entry,
                    ProblemKind::InvalidValue,
                    format!("regions: `{}` ({}x{} at {},{}) falls outside the {w}x{h} picture", r.name, r.width, r.height, r.x, r.y),
                ));
            }
        }
    }
    row
}

fn dangling(entry: &Entry, field: &str, target: &str, name: &str) -> Problem {
    let shown = super::catalogue::kind(target).map_or(target, |k| entry.kind_label(k));
    Problem::for_entry(entry, ProblemKind::DanglingReference, format!("{field} -> {shown}:{name} does not exist"))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "a table",
    }
}

fn check_type(ty: ColType, v: &Value) -> Result<Value, String> {
    let ok = match (ty, v) {
        (_, Value::Null) => true,
        (ColType::Int, Value::Number(n)) => n.is_i64(),
        (ColType::Float, Value::Number(_)) => true,
        (ColType::Bool, Value::Bool(_)) => true,
        (ColType::Text, Value::String(_)) => true,
        (ColType::Date, Value::String(s)) => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok(),
        (ColType::Json, _) => true,
        _ => false,
    };
    if ok {
        Ok(v.clone())
    } else {
        let expected = match ty {
            ColType::Int | ColType::Id => "an integer",
            ColType::Float => "a number",
            ColType::Bool => "true or false",
            ColType::Text => "text",
            ColType::Date => "a date (YYYY-MM-DD)",
            ColType::Timestamp => "a timestamp",
            ColType::Json => "a JSON value",
        };
        Err(format!("expected {expected}, found {}", type_name(v)))
    }
}

fn parse_regions(v: &Value) -> Result<Vec<Region>, String> {
    let regions: Vec<Region> =
        serde_json::from_value(v.clone()).map_err(|e| format!("expected a list of {{name, kind, x, y, width, height}}: {e}"))?;
    let images = regions.iter().filter(|r| r.kind == "endoscope_image").count();
    if images != 1 {
        return Err(format!("a processor needs exactly one region of kind endoscope_image, found {images}"));
    }
    let mut names = HashSet::new();
    for r in &regions {
        if !REGION_KINDS.contains(&r.kind.as_str()) {
            return Err(format!("region `{}` has kind `{}`; kinds are {}", r.name, r.kind, REGION_KINDS.join(", ")));
        }
        if r.x < 0 || r.y < 0 || r.width <= 0 || r.height <= 0 {
            return Err(format!("region `{}` needs x, y >= 0 and width, height > 0", r.name));
        }
        if !names.insert(r.name.as_str()) {
            return Err(format!("region `{}` is defined twice", r.name));
        }
    }
    Ok(regions)
}
