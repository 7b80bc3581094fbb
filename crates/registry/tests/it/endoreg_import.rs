//! Importing EndoregDB's base data: the shared v0.7.0 tree gives exactly the counts and problems that an
//! independent script (`tests/data/endoreg_reference_count.py`) established; older and newer trees are
//! read with unknown fields reported and references checked strictly.

use std::path::Path;

use serde_json::Value;

use endoreg_registry::db::exec::One;
use endoreg_registry::kb::{self, KbError, ProblemKind};
use endoreg_registry::service::terminology;

use crate::backends;
use crate::support::{TestApp, endoreg_base_data};

backends!(the_shared_tree_imports_with_the_independently_established_result, other_tree_versions_are_read_and_their_problems_named);

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
    assert_eq!(report.counts.get("requirement_set"), None);
    assert_eq!(report.counts["unit"], 43);
    // The unknown field is kept, the dangling reference dropped, the sound rest imported.
    let parsec = terminology::get(&app.db, "unit", "parsec").await.unwrap();
    assert_eq!(parsec.attributes["si_factor"], 3.1e16);
    let lab = terminology::get(&app.db, "lab_value", "zz_lab").await.unwrap();
    assert!(lab.refs.get("default_unit").is_none());

    // --strict refuses the whole import when there is any problem.
    let (strict_db, _guard) = crate::support::database(app.backend).await;
    let err = kb::import_endoreg(&strict_db, tree, true, false).await.unwrap_err();
    assert!(matches!(err, KbError::Invalid(ref p) if !p.is_empty()));
    let One(n): One<i64> = strict_db.fetch_one("SELECT COUNT(*) FROM unit", vec![]).await.unwrap();
    assert_eq!(n, 0, "a refused import writes nothing");
}
