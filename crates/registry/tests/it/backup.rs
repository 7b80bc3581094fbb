//! Backup round trips: a seeded database exported, imported on the other backend and exported again gives
//! the same content; a damaged file restores nothing.

use axum::http::Method;
use serde_json::json;

use endoreg_common::access::Role;
use endoreg_registry::backup;
use endoreg_registry::db::exec::One;

use crate::support::{Backend, TestApp, database};

/// Everything the registry stores: terminology (ours and EndoregDB's), patients with identities,
/// examinations with findings, videos with states and frames, segments, reports, tokens.
async fn seed(app: &TestApp) {
    endoreg_registry::kb::import_endoreg(&app.db, &crate::support::endoreg_base_data(), false, false).await.unwrap();
    for i in 0..3 {
        let p = app.patient().await;
        let r = app
            .call(
                Some(Role::DataManager),
                Method::PUT,
                &format!("/api/v1/patients/{p}/identity"),
                Some(json!({"first_name": format!("Name{i}"), "last_name": "Müller-Ćwikła", "date_of_birth": "1961-02-03", "notes": "line 1\nline \"2\""})),
                None,
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let exam = app.colonoscopy(p, &format!("2024-0{}-15", i + 1)).await;
        let sha = format!("{:064x}", i + 1);
        let v = app
            .post(
                "/api/v1/videos",
                json!({"center": "demo_center", "processor": "olympus_cv_190", "sha256": sha, "patient_examination_id": exam["id"]}),
            )
            .await;
        assert_eq!(v.status, 201, "{}", v.body);
        let vid = v.body["id"].as_i64().unwrap();
        let r = app
            .call(
                Some(Role::Service),
                Method::POST,
                &format!("/api/v1/videos/{vid}/state"),
                Some(json!({"state": "probed"})),
                Some("\"1\""),
            )
            .await;
        assert_eq!(r.status, 200);
        let r = app
            .call(
                Some(Role::Service),
                Method::PATCH,
                &format!("/api/v1/videos/{vid}"),
                Some(json!({"metadata": {"width": 1920, "height": 1080, "fps": 29.97, "frame_count": 300, "duration_s": 10.01}})),
                Some("\"2\""),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let r = app
            .post(
                &format!("/api/v1/videos/{vid}/segments"),
                json!({"label": "polyp", "start_frame": 3, "end_frame": 90, "source": "annotation"}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let rep = app
            .post(
                "/api/v1/reports",
                json!({"center": "demo_center", "sha256": format!("{:064x}", 100 + i), "patient_examination_id": exam["id"]}),
            )
            .await;
        assert_eq!(rep.status, 201, "{}", rep.body);
    }
}

/// The export without its header and trailer (which name the source backend, time and checksum).
fn body_of(path: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[1..lines.len() - 1].to_vec()
}

async fn round_trip(from: Backend, to: Backend) {
    let app = TestApp::new(from).await;
    seed(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.jsonl");
    let summary = backup::export(&app.db, &first).await.unwrap();
    assert!(summary.rows["patient_identity"] == 3 && summary.rows["label_video_segment"] == 3, "{summary:?}");
    assert!(summary.rows["finding_classification_choice"] > 150);

    let (target, _guard) = database(to).await;
    let restored = backup::import(&target, &first).await.unwrap();
    assert_eq!(restored, summary);
    let second = dir.path().join("second.jsonl.gz");
    backup::export(&target, &second).await.unwrap();
    let plain = dir.path().join("second.jsonl");
    let mut gz = flate2::read::GzDecoder::new(std::fs::File::open(&second).unwrap());
    let mut text = String::new();
    std::io::Read::read_to_string(&mut gz, &mut text).unwrap();
    std::fs::write(&plain, text).unwrap();
    assert_eq!(body_of(&first), body_of(&plain), "the restored database differs from the original");

    // The restored registry works: new rows get fresh ids (identity sequences follow the import).
    let r = endoreg_registry::service::patients::create(
        &target,
        &endoreg_common::api::PatientCreate { center: "demo_center".into(), gender: None, birth_year: None, pseudonym: None },
    )
    .await
    .unwrap();
    assert_eq!(r.id, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_to_postgres_round_trip_is_lossless() {
    round_trip(Backend::Sqlite, Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_to_sqlite_round_trip_is_lossless() {
    round_trip(Backend::Postgres, Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_or_foreign_file_restores_nothing() {
    let app = TestApp::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.jsonl");
    backup::export(&app.db, &good).await.unwrap();
    let text = std::fs::read_to_string(&good).unwrap();
    let lines: Vec<&str> = text.lines().collect();

    let cases: Vec<(&str, String, &str)> = vec![
        ("truncated", text[..text.len() / 2].to_owned(), "incomplete"),
        ("no trailer", lines[..lines.len() - 1].join("\n") + "\n", "without its trailer"),
        ("altered", text.replacen("\"colon_polyp\"", "\"colon_polyq\"", 1), "checksum"),
        ("not an export", "hello\n".to_owned(), "line 1"),
        ("from the future", text.replacen("\"version\":1", "\"version\":99", 1), "upgrade endoreg"),
        ("unknown column", text.replacen("\"name_de\"", "\"name_xx\"", 1), "has no column `name_xx`"),
    ];
    for (what, content, needle) in cases {
        let path = dir.path().join(format!("{}.jsonl", what.replace(' ', "_")));
        std::fs::write(&path, content).unwrap();
        let (db, _guard) = database(Backend::Sqlite).await;
        let err = backup::import(&db, &path).await.unwrap_err().to_string();
        assert!(err.contains(needle), "{what}: {err}");
        let One(n): One<i64> = db.fetch_one("SELECT COUNT(*) FROM finding", vec![]).await.unwrap();
        assert_eq!(n, 0, "{what}: a failed import must write nothing");
    }
    // Restoring over existing data is refused.
    let err = backup::import(&app.db, &good).await.unwrap_err().to_string();
    assert!(err.contains("empty database"), "{err}");
}

/// An export from a registry that stored U+0000 (SQLite could, before the API refused it): PostgreSQL
/// cannot hold it, and the import names the record instead of failing with the database's words;
/// SQLite restores it as it was.
async fn an_export_with_nul(to: Backend) -> Result<backup::Summary, String> {
    let app = TestApp::new(Backend::Sqlite).await;
    let p = app.patient().await;
    let r =
        app.call(Some(Role::DataManager), Method::PUT, &format!("/api/v1/patients/{p}/identity"), Some(json!({"notes": "ab"})), None).await;
    assert_eq!(r.status, 201, "{}", r.body);
    app.db.execute("UPDATE patient_identity SET notes = 'a' || char(0) || 'b'", vec![]).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("old.jsonl");
    backup::export(&app.db, &file).await.unwrap();
    let (target, _guard) = database(to).await;
    let result = backup::import(&target, &file).await.map_err(|e| e.to_string());
    let One(n): One<i64> = target.fetch_one("SELECT COUNT(*) FROM patient", vec![]).await.unwrap();
    assert_eq!(n, if result.is_ok() { 1 } else { 0 }, "all or nothing");
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_holding_nul_names_the_record_postgres_cannot_store() {
    let err = an_export_with_nul(Backend::Postgres).await.unwrap_err();
    for needle in ["line ", "patient_identity patient_id=1", "column notes", "U+0000", "restore the export into SQLite"] {
        assert!(err.contains(needle), "{needle} not in {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_holding_nul_restores_into_sqlite() {
    let summary = an_export_with_nul(Backend::Sqlite).await.unwrap();
    assert_eq!(summary.rows["patient_identity"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_the_database_refuses_are_named_by_table_and_lines() {
    let app = TestApp::new(Backend::Sqlite).await;
    let first = app.post("/api/v1/patients", json!({"center": "demo_center", "pseudonym": "TWIN-1"})).await;
    app.post("/api/v1/patients", json!({"center": "demo_center", "pseudonym": "TWIN-2"})).await;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.jsonl");
    backup::export(&app.db, &good).await.unwrap();
    // Two patients with one pseudonym, and a checksum that agrees: well-formed, refused by the schema.
    let text = std::fs::read_to_string(&good).unwrap().replacen("\"TWIN-2\"", "\"TWIN-1\"", 1);
    let mut lines: Vec<&str> = text.lines().collect();
    let trailer: serde_json::Value = serde_json::from_str(lines.pop().unwrap()).unwrap();
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let digest: String = sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(body.as_bytes()))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let trailer = json!({"end": true, "rows": trailer["rows"], "sha256": digest});
    let patched = dir.path().join("patched.jsonl");
    std::fs::write(&patched, format!("{body}{trailer}\n")).unwrap();
    let first_line = lines.iter().position(|l| l.contains(&format!("[{},\"TWIN-1\"", first.body["id"]))).unwrap() + 1;
    for to in [Backend::Sqlite, Backend::Postgres] {
        let (db, _guard) = database(to).await;
        let err = backup::import(&db, &patched).await.unwrap_err().to_string();
        let needle = format!("table patient, lines {first_line} to {}", first_line + 1);
        assert!(err.contains(&needle) && err.contains("refused these rows"), "{to:?}: {needle} not in {err}");
    }
}
