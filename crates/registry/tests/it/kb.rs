//! Our knowledge base: it loads, loads again without change, holds what the issue asks for, and a broken
//! knowledge base fails as a whole, naming file and entry.

use std::collections::BTreeMap;

use endoreg_registry::db::exec::One;
use endoreg_registry::db::schema;
use endoreg_registry::kb::{self, KbError, ProblemKind, ours::Files};
use endoreg_registry::service::terminology;

use crate::backends;
use crate::support::TestApp;

backends!(loading_twice_changes_nothing, required_terminology_is_there, a_broken_knowledge_base_is_refused_whole);

async fn counts(app: &TestApp) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for t in schema::tables() {
        let One(n): One<i64> = app.db.fetch_one(&format!("SELECT COUNT(*) FROM {}", t.name), vec![]).await.unwrap();
        out.insert(t.name, n);
    }
    out
}

async fn loading_twice_changes_nothing(app: TestApp) {
    // TestApp::new loaded it once already.
    let before = counts(&app).await;
    let paris_before = terminology::get(&app.db, "finding_classification", "paris").await.unwrap();
    let report = kb::load(&app.db, &Files::builtin()).await.unwrap();
    assert!(report.entries > 300, "{report:?}");
    // Nothing was written, and the report says so.
    let w = &report.written;
    assert_eq!(w.total, kb::Tally { created: 0, updated: 0, unchanged: report.entries }, "{w:?}");
    assert_eq!((w.links, w.regions), (0, 0), "{w:?}");
    assert_eq!(before, counts(&app).await);
    assert_eq!(paris_before, terminology::get(&app.db, "finding_classification", "paris").await.unwrap());
}

async fn required_terminology_is_there(app: TestApp) {
    let classes = terminology::classifications(&app.db).await.unwrap();
    let choices = |name: &str| -> Vec<String> {
        classes
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("classification {name} missing"))
            .choices
            .iter()
            .map(|c| c.name.clone())
            .collect()
    };
    assert_eq!(choices("nice"), ["nice_type_1", "nice_type_2", "nice_type_3"]);
    assert_eq!(choices("jnet").len(), 4);
    assert!(choices("paris").contains(&"paris_0_ip".to_owned()) && choices("paris").contains(&"paris_0_iic".to_owned()));
    assert_eq!(choices("kudo").len(), 7);
    assert_eq!(choices("lst").len(), 4);
    assert_eq!(choices("lesion_size").len(), 4);
    for bbps in ["bbps_right", "bbps_transverse", "bbps_left"] {
        assert_eq!(choices(bbps).len(), 4, "{bbps}");
    }
    assert!(classes.iter().any(|c| c.name.contains("location") && c.choices.iter().any(|ch| ch.name.contains("caecum"))));
    for kind in
        ["examination", "finding", "finding_intervention", "examination_indication", "unit", "gender", "center", "endoscopy_processor"]
    {
        let page = terminology::list(&app.db, kind, None, &Default::default()).await.unwrap();
        assert!(page.total > 0, "{kind} is empty");
    }
    let set = terminology::get(&app.db, "label_set", "multilabel_classification_colonoscopy").await.unwrap();
    let labels: Vec<&str> = set.links["labels"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(
        labels,
        [
            "appendix",
            "blood",
            "diverticule",
            "grasper",
            "ileocaecalvalve",
            "ileum",
            "low_quality",
            "nbi",
            "needle",
            "outside",
            "polyp",
            "snare",
            "water_jet",
            "wound"
        ]
    );
    let processor = terminology::get(&app.db, "endoscopy_processor", "olympus_cv_1500").await.unwrap();
    assert_eq!(processor.regions.iter().filter(|r| r.kind == "endoscope_image").count(), 1);
    assert!(processor.regions.iter().any(|r| r.kind == "patient_information"));
    let center = terminology::get(&app.db, "center", "demo_center").await.unwrap();
    assert!(center.name_en.is_some());
}

fn files(list: &[(&str, &str)]) -> Files {
    Files(list.iter().map(|(p, t)| ((*p).to_owned(), (*t).to_owned())).collect())
}

async fn a_broken_knowledge_base_is_refused_whole(app: TestApp) {
    let before = counts(&app).await;
    let broken = files(&[
        (
            "a.toml",
            "[[finding_classification_choice]]\nname = \"new_choice\"\n\n[[finding_classification]]\nname = \"new_class\"\nchoices = [\"new_choice\", \"no_such_choice\"]\n",
        ),
        ("b.toml", "[[finding_classification_choice]]\nname = \"new_choice\"\nname_en = \"again\"\n"),
        ("c.toml", "[[unit]]\nname = \"furlong\"\nabbreviation = \"fur\"\nlength_in_m = 201\n"),
        ("d.toml", "[[no_such_kind]]\nname = \"x\"\n"),
        ("e.toml", "[[unit]]\nabbreviation = \"nameless\"\n"),
        ("f.toml", "[[unit\nname = 1"),
    ]);
    let err = kb::load(&app.db, &broken).await.unwrap_err();
    let KbError::Invalid(problems) = err else { panic!("expected problems, got {err}") };
    let found: Vec<(String, String, ProblemKind)> = problems.iter().map(|p| (p.file.clone(), p.entry.clone(), p.kind)).collect();
    let expect = [
        ("a.toml", "new_class", ProblemKind::DanglingReference),
        ("b.toml", "new_choice", ProblemKind::DuplicateName),
        ("c.toml", "furlong", ProblemKind::UnknownField),
        ("d.toml", "", ProblemKind::InvalidFile),
        ("e.toml", "unit #0", ProblemKind::MissingName),
        ("f.toml", "", ProblemKind::InvalidFile),
    ];
    for (file, entry, kind) in expect {
        assert!(found.contains(&(file.to_owned(), entry.to_owned(), kind)), "missing {file} [{entry}] {kind:?} in {found:?}");
    }
    let dangling = problems.iter().find(|p| p.kind == ProblemKind::DanglingReference).unwrap();
    assert_eq!(dangling.detail, "choices -> finding_classification_choice:no_such_choice does not exist");
    assert_eq!(before, counts(&app).await, "a failed load must write nothing");

    // The message a user sees names file and entry.
    let msg =
        kb::load(&app.db, &files(&[("x/y.toml", "[[finding]]\nname = \"f\"\nexaminations = [\"nope\"]\n")])).await.unwrap_err().to_string();
    assert!(msg.contains("x/y.toml [f]: dangling_reference: examinations -> examination:nope does not exist"), "{msg}");
}
