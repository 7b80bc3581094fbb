//! Reading an EndoregDB base-data tree (`endoreg_db/data/`), the way EndoregDB's `load_base_db_data`
//! reads it: for each kind, the top-level `*.yaml` files of its directory in sorted order, each a YAML
//! list of `{model, fields}` entries. The directory decides the kind (the `model:` key is unreliable).
//!
//! EndoregDB stores a processor's image regions as flat `<region>_x/_y/_width/_height` fields; they are
//! turned into `regions` here, so the rest of the pipeline sees one shape.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value, json};

use super::catalogue::{KINDS, Kind};
use super::entry::{Entry, Origin, Problem, ProblemKind};

/// Entries, per-directory entry counts (in load order) and structural problems of a tree.
pub struct Tree {
    pub entries: Vec<Entry>,
    pub counts: Vec<(String, usize)>,
    pub problems: Vec<Problem>,
}

pub fn read_tree(root: &Path) -> std::io::Result<Tree> {
    if !root.is_dir() {
        return Err(std::io::Error::new(std::io::ErrorKind::NotFound, format!("{} is not a directory", root.display())));
    }
    let mut tree = Tree { entries: Vec::new(), counts: Vec::new(), problems: Vec::new() };
    for kind in KINDS {
        let Some(dir) = kind.endoreg_dir else {
            continue;
        };
        let path = root.join(dir);
        if !path.is_dir() {
            tree.problems.push(Problem::for_file(
                dir,
                ProblemKind::MissingDirectory,
                format!("no directory {dir} in the tree; no {} loaded", kind.name),
            ));
            continue;
        }
        let mut files: Vec<String> = std::fs::read_dir(&path)?
            .filter_map(Result::ok)
            .filter(|e| e.path().is_file())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.ends_with(".yaml"))
            .collect();
        files.sort();
        let mut count = 0;
        for file in files {
            let rel = format!("{dir}/{file}");
            count += read_file(kind, &path.join(&file), &rel, &mut tree);
        }
        tree.counts.push((dir.to_owned(), count));
    }
    Ok(tree)
}

/// Reads one file; returns the number of list items it holds.
fn read_file(kind: &'static Kind, path: &Path, rel: &str, tree: &mut Tree) -> usize {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            tree.problems.push(Problem::for_file(rel, ProblemKind::InvalidFile, format!("cannot read: {e}")));
            return 0;
        }
    };
    let doc: Value = match serde_norway::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            tree.problems.push(Problem::for_file(rel, ProblemKind::InvalidFile, format!("not valid YAML: {e}")));
            return 0;
        }
    };
    let items = match doc {
        Value::Array(items) => items,
        Value::Null => {
            tree.problems.push(Problem::for_file(rel, ProblemKind::InvalidFile, "empty file"));
            return 0;
        }
        _ => {
            tree.problems.push(Problem::for_file(rel, ProblemKind::InvalidFile, "expected a list of entries"));
            return 0;
        }
    };
    let n = items.len();
    for (index, item) in items.into_iter().enumerate() {
        let fields = match item {
            Value::Object(mut m) => match m.remove("fields") {
                Some(Value::Object(f)) => f,
                _ => Map::new(),
            },
            _ => Map::new(),
        };
        let mut fields = fields;
        let name = match fields.remove("name") {
            Some(Value::String(s)) if !s.trim().is_empty() => s,
            _ => {
                tree.problems.push(Problem {
                    file: rel.to_owned(),
                    entry: format!("#{index}"),
                    kind: ProblemKind::MissingName,
                    detail: "entry has no `fields.name`; skipped".into(),
                    index,
                });
                continue;
            }
        };
        let mut entry = Entry { origin: Origin::Endoreg, kind, file: rel.to_owned(), index, name, fields };
        if kind.has_regions {
            flatten_regions(&mut entry, &mut tree.problems);
        }
        tree.entries.push(entry);
    }
    n
}

const EDGES: [&str; 4] = ["x", "y", "width", "height"];

/// `<region>_x`, `_y`, `_width`, `_height` → `regions: [{name, kind, x, y, width, height}]`.
fn flatten_regions(entry: &mut Entry, problems: &mut Vec<Problem>) {
    let mut parts: BTreeMap<String, [Option<Value>; 4]> = BTreeMap::new();
    let keys: Vec<String> = entry.fields.keys().cloned().collect();
    for key in keys {
        if key == "image_width" || key == "image_height" {
            continue;
        }
        let Some((region, edge)) = key.rsplit_once('_') else {
            continue;
        };
        let Some(i) = EDGES.iter().position(|e| *e == edge) else {
            continue;
        };
        if let Some(v) = entry.fields.remove(&key) {
            parts.entry(region.to_owned()).or_default()[i] = Some(v);
        }
    }
    let mut regions = Vec::new();
    for (name, edges) in parts {
        if edges.iter().all(|e| matches!(e, None | Some(Value::Null))) {
            continue;
        }
        let numbers: Vec<Option<i64>> = edges.iter().map(|e| e.as_ref().and_then(Value::as_i64)).collect();
        let missing: Vec<&str> = EDGES.iter().zip(&numbers).filter(|(_, n)| n.is_none()).map(|(e, _)| *e).collect();
        if !missing.is_empty() {
            problems.push(Problem::for_entry(
                entry,
                ProblemKind::InvalidValue,
                format!(
                    "region `{name}` lacks an integer {}; region skipped",
                    missing.iter().map(|m| format!("{name}_{m}")).collect::<Vec<_>>().join(", ")
                ),
            ));
            continue;
        }
        let kind = if name == "endoscope_image" {
            "endoscope_image"
        } else if name.starts_with("endoscope_") {
            "device_information"
        } else {
            "patient_information"
        };
        regions.push(json!({"name": name, "kind": kind, "x": numbers[0], "y": numbers[1], "width": numbers[2], "height": numbers[3]}));
    }
    if !regions.is_empty() {
        entry.fields.insert("regions".into(), Value::Array(regions));
    }
}
