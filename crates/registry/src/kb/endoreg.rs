//! Reading an EndoregDB base-data tree (`endoreg_db/data/`), the way EndoregDB's `load_base_db_data`
//! reads it: for each kind, the top-level `*.yaml` files of its directory in sorted order, each a YAML
//! list of `{model, fields}` entries. The directory decides the kind (the `model:` key is unreliable).
//!
//! Model metadata (`ai_model_meta`) is read as model versions. Every other directory that holds YAML
//! files and is not read is reported as skipped, so nothing is left out without a word.
//!
//! EndoregDB stores a processor's image regions as flat `<region>_x/_y/_width/_height` fields; they are
//! turned into `regions` here, so the rest of the pipeline sees one shape.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde_json::{Map, Value, json};

use super::catalogue::{KINDS, MODEL_META_DIR};
use super::entry::{Entry, Origin, Problem, ProblemKind, VersionEntry};

/// Entries, per-directory entry counts (in load order) and structural problems of a tree.
pub struct Tree {
    pub entries: Vec<Entry>,
    /// The model metadata of `ai_model_meta`.
    pub versions: Vec<VersionEntry>,
    pub counts: Vec<(String, usize)>,
    pub problems: Vec<Problem>,
}

/// One list item of a file, before it is known what it describes.
struct Item {
    file: String,
    index: usize,
    name: String,
    fields: Map<String, Value>,
}

pub fn read_tree(root: &Path) -> std::io::Result<Tree> {
    if !root.is_dir() {
        return Err(std::io::Error::new(std::io::ErrorKind::NotFound, format!("{} is not a directory", root.display())));
    }
    let mut tree = Tree { entries: Vec::new(), versions: Vec::new(), counts: Vec::new(), problems: Vec::new() };
    for kind in KINDS {
        let Some(dir) = kind.endoreg_dir else {
            continue;
        };
        for item in read_dir(root, dir, kind.name, &mut tree)? {
            let mut entry =
                Entry { origin: Origin::Endoreg, kind, file: item.file, index: item.index, name: item.name, fields: item.fields };
            if kind.has_regions {
                flatten_regions(&mut entry, &mut tree.problems);
            }
            tree.entries.push(entry);
        }
    }
    for item in read_dir(root, MODEL_META_DIR, "model versions", &mut tree)? {
        tree.versions.push(VersionEntry { file: item.file, index: item.index, name: item.name, fields: item.fields });
    }
    let read: HashSet<String> = tree.counts.iter().map(|(d, _)| d.clone()).collect();
    report_skipped(root, "", &read, &mut tree.problems)?;
    Ok(tree)
}

/// The items of the top-level `*.yaml` files of `dir`, in file-name order; its count is recorded. An
/// absent directory is a problem and gives nothing.
fn read_dir(root: &Path, dir: &str, what: &str, tree: &mut Tree) -> std::io::Result<Vec<Item>> {
    let path = root.join(dir);
    if !path.is_dir() {
        tree.problems.push(Problem::for_file(
            dir,
            ProblemKind::MissingDirectory,
            format!("no directory {dir} in the tree; no {what} loaded"),
        ));
        return Ok(Vec::new());
    }
    let mut files: Vec<String> = std::fs::read_dir(&path)?
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    files.sort();
    let mut items = Vec::new();
    let mut count = 0;
    for file in files {
        let rel = format!("{dir}/{file}");
        count += read_file(&path.join(&file), &rel, &mut items, &mut tree.problems);
    }
    tree.counts.push((dir.to_owned(), count));
    Ok(items)
}

/// Reads one file; returns the number of list items it holds.
fn read_file(path: &Path, rel: &str, out: &mut Vec<Item>, problems: &mut Vec<Problem>) -> usize {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            problems.push(Problem::for_file(rel, ProblemKind::InvalidFile, format!("cannot read: {e}")));
            return 0;
        }
    };
    let doc: Value = match serde_norway::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            problems.push(Problem::for_file(rel, ProblemKind::InvalidFile, format!("not valid YAML: {e}")));
            return 0;
        }
    };
    let items = match doc {
        Value::Array(items) => items,
        Value::Null => {
            problems.push(Problem::for_file(rel, ProblemKind::InvalidFile, "empty file"));
            return 0;
        }
        _ => {
            problems.push(Problem::for_file(rel, ProblemKind::InvalidFile, "expected a list of entries"));
            return 0;
        }
    };
    let n = items.len();
    for (index, item) in items.into_iter().enumerate() {
        let mut fields = match item {
            Value::Object(mut m) => match m.remove("fields") {
                Some(Value::Object(f)) => f,
                _ => Map::new(),
            },
            _ => Map::new(),
        };
        match fields.remove("name") {
            Some(Value::String(name)) if !name.trim().is_empty() => out.push(Item { file: rel.to_owned(), index, name, fields }),
            _ => problems.push(Problem {
                file: rel.to_owned(),
                entry: format!("#{index}"),
                kind: ProblemKind::MissingName,
                detail: "entry has no `fields.name`; skipped".into(),
                index,
            }),
        }
    }
    n
}

/// Every directory of the tree that holds `*.yaml` files of its own and was not read is reported, so
/// that nothing in a tree goes unimported without a word (EndoregDB's trees carry more than its loader
/// reads, and newer trees bring new directories). `rel` is `/`-separated; the root is `.`.
fn report_skipped(root: &Path, rel: &str, read: &HashSet<String>, problems: &mut Vec<Problem>) -> std::io::Result<()> {
    let dir = if rel.is_empty() { root.to_path_buf() } else { root.join(rel) };
    let mut yaml = 0;
    let mut subdirs = Vec::new();
    for e in std::fs::read_dir(&dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        // Symbolic links to directories are not followed: a link could lead out of the tree or in a circle.
        if e.file_type()?.is_dir() {
            subdirs.push(name);
        } else if name.ends_with(".yaml") && e.path().is_file() {
            yaml += 1;
        }
    }
    let shown = if rel.is_empty() { "." } else { rel };
    if yaml > 0 && !read.contains(shown) {
        problems.push(Problem::for_file(
            shown,
            ProblemKind::SkippedDirectory,
            format!("{yaml} YAML file(s) here are not imported: the registry has no kind for this directory"),
        ));
    }
    subdirs.sort();
    for sub in subdirs {
        let next = if rel.is_empty() { sub } else { format!("{rel}/{sub}") };
        report_skipped(root, &next, read, problems)?;
    }
    Ok(())
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
