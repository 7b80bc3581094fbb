//! Importing EndoregDB's base data: the v0.7.0 tree gives exactly the counts, problems and created rows
//! that an independent script (`tests/data/endoreg_reference_count.py`) established, model metadata
//! included and every directory it does not import named; older and newer trees are read with unknown
//! fields reported and references checked strictly; what was written is counted exactly.

use std::path::Path;

use serde_json::{Value, json};

use endoreg_common::api::AiModelVersionIn;
use endoreg_registry::db::Db;
use endoreg_registry::db::exec::One;
use endoreg_registry::kb::{self, Outcome, ProblemKind, Tally};
use endoreg_registry::service::{predictions, terminology};

use crate::backends;
use crate::support::{TestApp, endoreg_base_data};

backends!(
    the_shared_tree_imports_with_the_independently_established_result,
    an_import_into_an_empty_database_creates_what_the_script_counted_and_again_nothing,
    other_tree_versions_are_read_and_their_problems_named
);

fn expected() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/endoreg-v0.7.0-expected.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

async fn count(app: &TestApp, table: &str) -> i64 {
    let One(n): One<i64> = app.db.fetch_one(&format!("SELECT COUNT(*) FROM {table}"), vec![]).await.unwrap();
    n
}

async fn the_shared_tree_imports_with_the_independently_established_result(app: TestApp) {
    let tree = endoreg_base_data();
    let report = kb::import_endoreg(&app.db, &tree, false, false).await.unwrap();
    let json = serde_json::to_value(&report).unwrap();
    let expected = expected();
    assert_eq!(json["counts"], expected["counts"]);
    assert_eq!(json["problems"], expected["problems"]);
    assert_eq!(report.outcome, Outcome::Imported);
    // The built-in knowledge base was there: some names were updated, but every entry is counted once.
    let written = report.written.as_ref().unwrap();
    let distinct: u64 = expected["created"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(written.total.entries() as u64, distinct, "{written:?}");
    assert!(written.total.updated > 0, "{written:?}");

    // What EndoregDB's loader would have stored is here, translations included.
    let kudo = terminology::get(&app.db, "finding_classification", "colon_lesion_kudo").await.unwrap();
    assert!(!kudo.links["choices"].as_array().unwrap().is_empty());
    let processor = terminology::get(&app.db, "endoscopy_processor", "olympus_cv_1500").await.unwrap();
    assert_eq!(processor.fields["image_width"], 1920);
    let image = processor.regions.iter().find(|r| r.name == "endoscope_image").unwrap();
    assert_eq!((image.x, image.y, image.width, image.height), (550, 0, 1350, 1080));
    assert_eq!(processor.regions.len(), 8);
    let gender = terminology::get(&app.db, "gender", "female").await.unwrap();
    assert!(gender.name_de.is_some() && gender.name_en.is_some(), "{gender:?}");
    // The later duplicate wins, as in EndoregDB.
    let set = terminology::get(&app.db, "label_set", "multilabel_classification_colonoscopy_default").await.unwrap();
    assert_eq!(set.fields["version"], 2);

    // Importing again changes nothing.
    let choices = count(&app, "finding_classification_choice").await;
    let links = count(&app, "finding_classification__choices").await;
    let again = kb::import_endoreg(&app.db, &tree, false, false).await.unwrap();
    assert_eq!(serde_json::to_value(&again).unwrap()["problems"], expected["problems"]);
    assert_eq!(choices, count(&app, "finding_classification_choice").await);
    assert_eq!(links, count(&app, "finding_classification__choices").await);
}

/// The rows an import wrote per EndoregDB directory, as the script counts them.
fn created_per_dir(report: &kb::ImportReport) -> serde_json::Map<String, Value> {
    let written = report.written.as_ref().expect("imported");
    report
        .counts
        .keys()
        .map(|dir| {
            let table = kb::endoreg_dir_table(dir).unwrap_or_else(|| panic!("{dir} has no table"));
            let tally = written.kind(table).unwrap_or_default();
            (dir.clone(), json!(tally.created))
        })
        .collect()
}

async fn an_import_into_an_empty_database_creates_what_the_script_counted_and_again_nothing(app: TestApp) {
    let (db, _guard) = crate::support::database(app.backend).await;
    let tree = endoreg_base_data();
    let report = kb::import_endoreg(&db, &tree, false, false).await.unwrap();
    let written = report.written.clone().unwrap();
    assert_eq!(Value::Object(created_per_dir(&report)), expected()["created"]);
    assert_eq!((written.total.updated, written.total.unchanged), (0, 0), "{written:?}");
    assert!(written.links > 1000 && written.regions == 8, "{written:?}");

    // The model metadata is a model version of the imported model, predicting the imported label set.
    let versions = predictions::versions(&db).await.unwrap();
    assert_eq!(versions.len(), 1, "{versions:?}");
    let v = &versions[0];
    assert_eq!(
        (v.model.as_str(), v.version.as_str(), v.label_set.as_deref()),
        ("image_multilabel_classification_colonoscopy_default", "1", Some("multilabel_classification_colonoscopy_default"))
    );
    assert_eq!(v.metadata, json!({"endoreg_model_meta": "image_multilabel_classification_colonoscopy_default"}));

    // Again: every entry found as it is, nothing written.
    let again = kb::import_endoreg(&db, &tree, false, false).await.unwrap();
    let w = again.written.unwrap();
    assert_eq!(w.total, Tally { created: 0, updated: 0, unchanged: written.total.created }, "{w:?}");
    assert_eq!((w.links, w.regions), (0, 0));
    assert_eq!(predictions::versions(&db).await.unwrap().len(), 1);

    // A changed entry is updated, and only it; a new one is created.
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&tree, dir.path());
    let file = dir.path().join("finding_classification_choice/zz_new.yaml");
    std::fs::write(&file, "- model: endoreg_db.finding_classification_choice\n  fields:\n    name: zz_choice\n").unwrap();
    let gender = dir.path().join("gender/data.yaml");
    let text = std::fs::read_to_string(&gender).unwrap();
    assert!(text.contains("name_en: \"male\"\n"));
    std::fs::write(&gender, text.replacen("name_en: \"male\"\n", "name_en: \"Male\"\n", 1)).unwrap();
    let third = kb::import_endoreg(&db, dir.path(), false, false).await.unwrap().written.unwrap();
    assert_eq!(third.kind("finding_classification_choice").unwrap().created, 1, "{third:?}");
    assert_eq!(third.kind("gender").unwrap(), Tally { created: 0, updated: 1, unchanged: 6 });
    assert_eq!(third.total.created + third.total.updated, 2, "{third:?}");
}

async fn version_count(db: &Db) -> usize {
    predictions::versions(db).await.unwrap().len()
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

async fn other_tree_versions_are_read_and_their_problems_named(app: TestApp) {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path();
    copy_tree(&endoreg_base_data(), tree);
    // An older tree: no requirement sets yet. A newer one: a new field, a new directory, and a reference
    // to a unit that does not exist.
    std::fs::remove_dir_all(tree.join("requirement_set")).unwrap();
    std::fs::create_dir_all(tree.join("brand_new_kind")).unwrap();
    std::fs::write(tree.join("brand_new_kind/data.yaml"), "- model: x\n  fields:\n    name: y\n").unwrap();
    std::fs::write(
        tree.join("unit/zz_new.yaml"),
        "- model: endoreg_db.unit\n  fields:\n    name: \"parsec\"\n    abbreviation: \"pc\"\n    si_factor: 3.1e16\n\
         - model: endoreg_db.unit\n  fields:\n    abbreviation: \"nameless\"\n",
    )
    .unwrap();
    std::fs::write(
        tree.join("lab_value/zz_new.yaml"),
        "- model: endoreg_db.lab_value\n  fields:\n    name: \"zz_lab\"\n    default_unit: \"no_such_unit\"\n",
    )
    .unwrap();
    std::fs::write(tree.join("organ/zz_broken.yaml"), "- model: endoreg_db.organ\n  fields: [unclosed\n").unwrap();
    // Data below a directory that is read, but not in it: EndoregDB does not read it, and neither do we.
    std::fs::create_dir_all(tree.join("unit/extra")).unwrap();
    std::fs::write(tree.join("unit/extra/more.yaml"), "- model: endoreg_db.unit\n  fields:\n    name: furlong\n").unwrap();
    // Model metadata: a dangling label set, a version of another model with a field of its own, one without a
    // version, and one that contradicts a version the database has.
    std::fs::write(
        tree.join("ai_model_meta/zz_new.yaml"),
        "- model: endoreg_db.model_meta\n  fields:\n    name: image_multilabel_classification_colonoscopy_default\n    version: 2\n    labelset: no_such_set\n\
         - model: endoreg_db.model_meta\n  fields:\n    name: meta_x\n    model: image_multilabel_classification_colonoscopy_default\n    version: \"3a\"\n    \
         labelset: multilabel_classification_colonoscopy_default\n    activation: sigmoid\n    colour: red\n\
         - model: endoreg_db.model_meta\n  fields:\n    name: meta_y\n    labelset: multilabel_classification_colonoscopy_default\n\
         - model: endoreg_db.model_meta\n  fields:\n    name: meta_z\n    model: colonoscopy_multilabel_classifier\n    version: 1\n    \
         labelset: multilabel_classification_colonoscopy_default\n",
    )
    .unwrap();
    let registered = predictions::register_version(
        &app.db,
        &AiModelVersionIn {
            model: "colonoscopy_multilabel_classifier".into(),
            version: "1".into(),
            label_set: Some("multilabel_classification_colonoscopy".into()),
            metadata: json!({"onnx_sha256": "ab"}),
        },
    )
    .await
    .unwrap();

    let report = kb::import_endoreg(&app.db, tree, false, false).await.unwrap();
    let problems: Vec<(String, String, ProblemKind, String)> =
        report.problems.iter().map(|p| (p.file.clone(), p.entry.clone(), p.kind, p.detail.clone())).collect();
    let has = |file: &str, entry: &str, kind: ProblemKind, detail: &str| {
        assert!(
            problems.iter().any(|p| p.0 == file && p.1 == entry && p.2 == kind && p.3.contains(detail)),
            "missing {file} [{entry}] {kind:?} `{detail}` in {problems:#?}"
        );
    };
    has("requirement_set", "", ProblemKind::MissingDirectory, "no directory requirement_set");
    has("unit/zz_new.yaml", "parsec", ProblemKind::UnknownField, "si_factor");
    has("unit/zz_new.yaml", "#1", ProblemKind::MissingName, "no `fields.name`");
    has("lab_value/zz_new.yaml", "zz_lab", ProblemKind::DanglingReference, "default_unit -> unit:no_such_unit does not exist");
    has("organ/zz_broken.yaml", "", ProblemKind::InvalidFile, "not valid YAML");
    has("brand_new_kind", "", ProblemKind::SkippedDirectory, "1 YAML file(s) here are not imported");
    has("unit/extra", "", ProblemKind::SkippedDirectory, "1 YAML file(s) here are not imported");
    let meta = "ai_model_meta/zz_new.yaml";
    has(
        meta,
        "image_multilabel_classification_colonoscopy_default",
        ProblemKind::DanglingReference,
        "labelset -> ai_model_label/label-set:no_such_set does not exist; the version is not imported",
    );
    has(meta, "meta_x", ProblemKind::UnknownField, "field `colour` is not part of model metadata");
    has(meta, "meta_y", ProblemKind::InvalidValue, "version: missing");
    has(meta, "meta_z", ProblemKind::Conflict, "model colonoscopy_multilabel_classifier version 1 is already registered");
    assert_eq!(report.counts.get("requirement_set"), None);
    assert_eq!(report.counts["unit"], 43);
    // The unknown field is kept, the dangling reference dropped, the sound rest imported.
    let parsec = terminology::get(&app.db, "unit", "parsec").await.unwrap();
    assert_eq!(parsec.attributes["si_factor"], 3.1e16);
    let lab = terminology::get(&app.db, "lab_value", "zz_lab").await.unwrap();
    assert!(lab.refs.get("default_unit").is_none());
    assert!(terminology::get(&app.db, "unit", "furlong").await.is_err(), "a skipped directory is not imported");
    // Of the model metadata, the sound versions are imported, the conflicting one leaves the stored one alone.
    let versions = predictions::versions(&app.db).await.unwrap();
    let found = |model: &str, version: &str| versions.iter().find(|v| v.model == model && v.version == version).cloned();
    let x = found("image_multilabel_classification_colonoscopy_default", "3a").expect("meta_x imported");
    assert_eq!(x.metadata, json!({"endoreg_model_meta": "meta_x", "activation": "sigmoid", "colour": "red"}));
    assert!(found("image_multilabel_classification_colonoscopy_default", "1").is_some());
    assert!(found("image_multilabel_classification_colonoscopy_default", "2").is_none());
    assert_eq!(found("colonoscopy_multilabel_classifier", "1").unwrap(), registered);
    assert_eq!(report.written.as_ref().unwrap().kind("ai_model_version").unwrap().created, 2);

    // --strict refuses the whole import when there is any problem, and says so.
    let (strict_db, _guard) = crate::support::database(app.backend).await;
    let refused = kb::import_endoreg(&strict_db, tree, true, false).await.unwrap();
    assert_eq!(refused.outcome, Outcome::Refused);
    assert!(
        refused.written.is_none() && refused.problems.iter().any(|p| p.kind == ProblemKind::SkippedDirectory),
        "{:?}",
        refused.problems
    );
    let One(n): One<i64> = strict_db.fetch_one("SELECT COUNT(*) FROM unit", vec![]).await.unwrap();
    assert_eq!(n, 0, "a refused import writes nothing");
    assert_eq!(version_count(&strict_db).await, 0);
    // A dry run writes nothing either.
    let dry = kb::import_endoreg(&strict_db, tree, false, true).await.unwrap();
    assert_eq!((dry.outcome, dry.written.is_none()), (Outcome::DryRun, true));
    assert_eq!(version_count(&strict_db).await, 0);
}
