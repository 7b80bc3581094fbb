//! Uploads: streamed, recognised by content, hashed, encrypted, deduplicated, stored atomically; each
//! becomes a video or report with its processing job. Bad uploads leave nothing behind.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::{Body, Bytes};
use axum::http::{Method, Request, StatusCode, header};
use serde_json::json;

use endoreg_common::access::Role;
use endoreg_common::storage::Identities;
use endoreg_registry::http::multipart::{CHUNK_BYTES, MAX_PART_HEADER_BYTES};

use crate::backends;
use crate::support::{Backend, TestApp};

backends!(
    a_video_upload_becomes_an_encrypted_object_a_video_and_a_job,
    bad_uploads_leave_nothing_behind,
    an_upload_that_fails_in_the_database_leaves_nothing
);

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

/// Makes the database refuse every new row of `table`, as a failing write would: a trigger, since the
/// registry refuses bad input before it reaches the database.
async fn refuse_inserts(app: &TestApp, table: &str) {
    let statements = match app.backend {
        Backend::Sqlite => {
            vec![format!("CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} BEGIN SELECT RAISE(ABORT, 'test: {table} refused'); END")]
        }
        Backend::Postgres => vec![
            format!(
                "CREATE FUNCTION refuse_{table}() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN RAISE EXCEPTION 'test: {table} refused'; END $f$"
            ),
            format!("CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION refuse_{table}()"),
        ],
    };
    for sql in statements {
        app.db.execute(&sql, vec![]).await.unwrap();
    }
}

async fn allow_inserts(app: &TestApp, table: &str) {
    app.db
        .execute(
            &format!(
                "DROP TRIGGER refuse_{table}{}",
                if app.backend == Backend::Postgres { format!(" ON {table}") } else { String::new() }
            ),
            vec![],
        )
        .await
        .unwrap();
}

async fn count(app: &TestApp, table: &str) -> i64 {
    let endoreg_registry::db::exec::One(n): endoreg_registry::db::exec::One<i64> =
        app.db.fetch_one(&format!("SELECT COUNT(*) FROM {table}"), vec![]).await.unwrap();
    n
}

async fn an_upload_that_fails_in_the_database_leaves_nothing(app: TestApp) {
    let file = fake_mp4(50_000, 9);
    let meta = json!({
        "center": "demo_center",
        "processor": "olympus_cv_1500",
        "identity": {"patient_first_name": "Erika", "patient_last_name": "Mustermann"}
    });
    // The video row is written, then queueing its job fails: neither the row, the identity nor the object
    // stays (before, the row stayed, pointing at a deleted object, with no job to process it).
    refuse_inserts(&app, "job").await;
    let r = app.upload(Role::DataManager, &meta, &file).await;
    assert!(!r.status.is_success(), "{}", r.body);
    assert_eq!(count(&app, "video").await, 0);
    assert_eq!(count(&app, "video_state_event").await, 0);
    assert_eq!(count(&app, "media_identity").await, 0);
    assert!(app.stored_files().is_empty(), "{:?}", app.stored_files());
    // The same upload succeeds once the database takes it.
    allow_inserts(&app, "job").await;
    let ok = app.upload(Role::DataManager, &json!({"center": "demo_center", "processor": "olympus_cv_1500"}), &file).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    assert_eq!(app.stored_files().len(), 1);
    // A repeated upload that fails keeps what the first one stored: the object is not this upload's.
    refuse_inserts(&app, "media_identity").await;
    let again = app.upload(Role::DataManager, &meta, &file).await;
    assert!(!again.status.is_success(), "{}", again.body);
    assert_eq!(app.stored_files().len(), 1);
    assert_eq!(count(&app, "video").await, 1);
    assert_eq!(count(&app, "job").await, 1);
    assert_eq!(count(&app, "media_identity").await, 0);
    let id = ok.body["video"]["id"].as_i64().unwrap();
    let video = app.get(&format!("/api/v1/videos/{id}")).await;
    assert_eq!(video.body["raw_key"], ok.body["video"]["raw_key"]);
}

/// An upload body produced piece by piece as it is read: `head`, then `filler` bytes of `fill`, then `tail`;
/// `pulled` counts what the server took.
fn counted_body(head: &[u8], fill: u8, filler: usize, tail: &[u8], pulled: Arc<AtomicUsize>) -> Body {
    const PIECE: usize = 8 * 1024;
    let pieces = std::iter::once(Bytes::copy_from_slice(head))
        .chain((0..filler.div_ceil(PIECE)).map(move |i| Bytes::from(vec![fill; PIECE.min(filler - i * PIECE)])))
        .chain(std::iter::once(Bytes::copy_from_slice(tail)));
    Body::from_stream(futures::stream::iter(pieces.map(move |b| {
        pulled.fetch_add(b.len(), Ordering::SeqCst);
        Ok::<_, std::io::Error>(b)
    })))
}

const BOUNDARY: &str = "XBOUNDARY";

fn part_head(name: &str) -> String {
    format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n")
}

async fn send(app: &TestApp, body: Body) -> crate::support::Response {
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/uploads")
        .header(header::AUTHORIZATION, format!("Bearer {}", app.tokens[&Role::DataManager]))
        .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(body)
        .unwrap();
    app.raw(req).await
}

/// A request body of `head`, 16 MiB of filler and `tail`, over a limit of the upload route.
struct Overrun {
    what: &'static str,
    head: Vec<u8>,
    tail: Vec<u8>,
    status: StatusCode,
    says: &'static str,
    /// What the server may read of the filler, give or take a chunk.
    limit: usize,
}

/// Every limit of the upload route holds while the body streams: a request over one is refused having read
/// at most the limit and two chunks of it, never the whole body (a 1 GiB metadata part took 1 GiB of memory).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_limits_hold_while_the_body_streams() {
    const HUGE: usize = 16 * 1024 * 1024;
    let app = TestApp::with_config(Backend::Sqlite, |c| c.upload.max_bytes = 100_000).await;
    let meta = json!({"center": "demo_center", "processor": "olympus_cv_1500"}).to_string();
    let file_head = |meta: &str| format!("{}{meta}\r\n{}", part_head("metadata"), part_head("file"));
    let end = format!("\r\n--{BOUNDARY}--\r\n");
    let mp4 = fake_mp4(100, 7);
    let end = end.into_bytes();
    let cases = [
        // A metadata part without end.
        Overrun {
            what: "metadata",
            head: part_head("metadata").into_bytes(),
            tail: end.clone(),
            status: StatusCode::PAYLOAD_TOO_LARGE,
            says: "`metadata` part is larger than 64 KiB",
            limit: 64 * 1024,
        },
        // No boundary ever: all preamble.
        Overrun {
            what: "preamble",
            head: Vec::new(),
            tail: Vec::new(),
            status: StatusCode::BAD_REQUEST,
            says: "16 KiB",
            limit: MAX_PART_HEADER_BYTES,
        },
        // Part headers without end.
        Overrun {
            what: "part headers",
            head: format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"metadata\"\r\nX-Padding: ").into_bytes(),
            tail: Vec::new(),
            status: StatusCode::BAD_REQUEST,
            says: "16 KiB",
            limit: MAX_PART_HEADER_BYTES,
        },
        // A file over upload.max_bytes.
        Overrun {
            what: "file",
            head: [file_head(&meta).into_bytes(), mp4.clone()].concat(),
            tail: end.clone(),
            status: StatusCode::PAYLOAD_TOO_LARGE,
            says: "limit of 100000 bytes",
            limit: 100_000 + 1024,
        },
    ];
    for Overrun { what, head, tail, status, says, limit } in cases {
        let pulled = Arc::new(AtomicUsize::new(0));
        let r = send(&app, counted_body(&head, b'a', HUGE, &tail, pulled.clone())).await;
        assert_eq!(r.status, status, "{what}: {}", r.body);
        assert!(r.body["detail"].as_str().unwrap_or_default().contains(says), "{what}: {says} not in {}", r.body);
        let read = pulled.load(Ordering::SeqCst);
        assert!(read <= limit + 2 * CHUNK_BYTES, "{what}: the server read {read} bytes of a limit of {limit}");
    }
    // A third part is refused, not ignored, and nothing of the upload stays.
    let body = [file_head(&meta).into_bytes(), mp4, format!("\r\n{}extra\r\n--{BOUNDARY}--\r\n", part_head("notes")).into_bytes()].concat();
    let r = send(&app, Body::from(body)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body["detail"].as_str().unwrap().contains("unexpected part `notes`"), "{}", r.body);
    assert!(app.stored_files().is_empty(), "{:?}", app.stored_files());
    assert_eq!(app.get("/api/v1/videos").await.body["total"], 0);
}
