//! Uploads: streamed, recognised by content, hashed, encrypted, deduplicated, stored atomically; each
//! becomes a video or report with its processing job. Bad uploads leave nothing behind.

use axum::http::{Method, StatusCode};
use serde_json::json;

use endoreg_common::access::Role;
use endoreg_common::storage::Identities;

use crate::backends;
use crate::support::{Backend, TestApp};

backends!(a_video_upload_becomes_an_encrypted_object_a_video_and_a_job, bad_uploads_leave_nothing_behind);

/// Bytes that look like an MP4 to the sniffer (the worker, not the registry, decodes them).
fn fake_mp4(n: usize, seed: u8) -> Vec<u8> {
    let mut v = vec![0, 0, 0, 0x20];
    v.extend_from_slice(b"ftypisom\0\0\x02\0isomiso2mp41");
    v.extend((0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
    v
}

async fn a_video_upload_becomes_an_encrypted_object_a_video_and_a_job(app: TestApp) {
    let file = fake_mp4(200_000, 1);
    let meta = json!({
        "center": "demo_center",
        "processor": "olympus_cv_1500",
        "identity": {"patient_first_name": "Erika", "patient_last_name": "Mustermann", "patient_date_of_birth": "1961-08-12", "examination_date": "2024-02-03"}
    });
    let r = app.upload(Role::DataManager, &meta, &file).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["kind"], "video");
    assert_eq!(r.body["duplicate"], false);
    let video = &r.body["video"];
    assert_eq!(video["state"], "uploaded");
    assert_eq!(video["size_bytes"], file.len());
    assert_eq!(video["sha256"], format!("{:x}", <sha2::Sha256 as sha2::Digest>::digest(&file)));
    assert_eq!(r.body["job"]["state"], "queued");
    assert_eq!(r.body["job"]["kind"], "process_video");
    // Stored once, encrypted, under its content key; decryptable with the local key.
    let files = app.stored_files();
    assert_eq!(files.len(), 1, "{files:?}");
    let stored = std::fs::read(&files[0]).unwrap();
    assert!(stored.starts_with(b"age-encryption.org/v1"));
    let ids = Identities::read(&app.config.local_key_file()).unwrap();
    let store = app.config.open_storage().unwrap();
    let out = tempfile::NamedTempFile::new().unwrap();
    store.download(video["raw_key"].as_str().unwrap(), out.path(), Some(&ids)).await.unwrap();
    assert_eq!(std::fs::read(out.path()).unwrap(), file);
    // The identity went to the identifying table: data managers see it, researchers do not.
    let id = video["id"].as_i64().unwrap();
    let who = app.call(Some(Role::DataManager), Method::GET, &format!("/api/v1/videos/{id}/identity"), None, None).await;
    assert_eq!(who.body["patient_last_name"], "Mustermann");
    let who = app.call(Some(Role::Researcher), Method::GET, &format!("/api/v1/videos/{id}/identity"), None, None).await;
    assert_eq!(who.status, StatusCode::FORBIDDEN);
    let listed = app.call(Some(Role::Researcher), Method::GET, &format!("/api/v1/videos/{id}"), None, None).await;
    assert!(!listed.body.to_string().contains("Mustermann"));
    // The same content again: the same video and job, nothing new stored.
    let again = app.upload(Role::Service, &json!({"center": "demo_center", "processor": "olympus_cv_1500"}), &file).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["duplicate"], true);
    assert_eq!(again.body["video"]["id"], id);
    assert_eq!(again.body["job"]["id"], r.body["job"]["id"]);
    assert_eq!(app.stored_files().len(), 1);
    // A report PDF becomes a report and its job.
    let pdf = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n".to_vec();
    let rep = app.upload(Role::DataManager, &json!({"center": "demo_center"}), &pdf).await;
    assert_eq!(rep.status, StatusCode::CREATED, "{}", rep.body);
    assert_eq!(rep.body["kind"], "report");
    assert_eq!(rep.body["job"]["kind"], "process_report");
    let job = app.get(&format!("/api/v1/jobs/{}", rep.body["job"]["id"])).await;
    assert_eq!(job.body["state"], "queued");
}

async fn bad_uploads_leave_nothing_behind(app: TestApp) {
    let small = TestApp::with_config(app.backend, |c| c.upload.max_bytes = 100_000).await;
    let meta = json!({"center": "demo_center", "processor": "olympus_cv_1500"});
    let cases: Vec<(&TestApp, serde_json::Value, Vec<u8>, StatusCode, &str)> = vec![
        (&app, meta.clone(), Vec::new(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "empty"),
        (
            &app,
            meta.clone(),
            b"GIF89a\x01\x00\x01\x00 not a video at all".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not a supported video",
        ),
        (&app, meta.clone(), vec![0u8; 10_000], StatusCode::UNSUPPORTED_MEDIA_TYPE, "00 00 00 00"),
        (&app, json!({"center": "demo_center"}), fake_mp4(1000, 2), StatusCode::UNPROCESSABLE_ENTITY, "endoscopy processor"),
        (
            &app,
            json!({"center": "atlantis", "processor": "olympus_cv_1500"}),
            fake_mp4(1000, 3),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown center",
        ),
        (
            &app,
            json!({"center": "demo_center", "processor": "x", "colour": 1}),
            fake_mp4(1000, 4),
            StatusCode::UNPROCESSABLE_ENTITY,
            "colour",
        ),
        (&small, meta.clone(), fake_mp4(300_000, 5), StatusCode::PAYLOAD_TOO_LARGE, "limit of 100000 bytes"),
    ];
    for (target, m, file, status, needle) in cases {
        let r = target.upload(Role::DataManager, &m, &file).await;
        assert_eq!(r.status, status, "{needle}: {}", r.body);
        assert!(r.body["detail"].as_str().unwrap_or_default().contains(needle), "{needle} not in {}", r.body);
    }
    // A researcher may not upload; a body that is not multipart is refused.
    assert_eq!(app.upload(Role::Researcher, &meta, &fake_mp4(10, 6)).await.status, StatusCode::FORBIDDEN);
    let r = app.call(Some(Role::DataManager), Method::POST, "/api/v1/uploads", Some(json!({"center": "demo_center"})), None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(app.stored_files().is_empty(), "{:?}", app.stored_files());
    assert!(small.stored_files().is_empty(), "{:?}", small.stored_files());
    let videos = app.get("/api/v1/videos").await;
    assert_eq!(videos.body["total"], 0);
    let _ = Backend::Sqlite;
}
