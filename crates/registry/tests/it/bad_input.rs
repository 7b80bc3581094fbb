//! Bad input gets a 4xx problem naming the problem — never a 500, never a panic, never a partial write.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::json;

use endoreg_common::access::Role;
use endoreg_common::storage::keys;
use endoreg_registry::db::exec::One;

use crate::backends;
use crate::support::TestApp;

backends!(
    malformed_bodies_are_named,
    unknown_names_are_422_and_nothing_is_written,
    concurrent_conflicting_updates_are_detected,
    requests_outside_the_api_are_problems_too,
    control_characters_are_refused_where_they_arrive,
    frame_arithmetic_cannot_overflow,
    storage_keys_are_taken_only_in_their_own_form
);

async fn post_raw(app: &TestApp, path: &str, content_type: &str, body: Vec<u8>) -> crate::support::Response {
    let req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {}", app.tokens[&Role::Admin]))
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .unwrap();
    app.raw(req).await
}

async fn malformed_bodies_are_named(app: TestApp) {
    let cases: Vec<(&str, Vec<u8>, StatusCode, &str, &str)> = vec![
        ("application/json", b"{\"center\": ".to_vec(), StatusCode::BAD_REQUEST, "malformed_json", "not valid JSON"),
        ("application/json", b"{\"center\": \"demo_center\"} trailing".to_vec(), StatusCode::BAD_REQUEST, "malformed_json", "trailing"),
        (
            "application/json",
            b"{\"center\": \"demo_center\", \"shoe_size\": 44}".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "shoe_size",
        ),
        (
            "application/json",
            b"{\"center\": \"demo_center\", \"birth_year\": \"1960\"}".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "/birth_year",
        ),
        ("application/json", b"{}".to_vec(), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", "missing field `center`"),
        ("application/json", b"[1, 2]".to_vec(), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", "/0: invalid type"),
        ("application/json", vec![b'{', b'"', 0xff, 0xfe, b'"', b'}'], StatusCode::BAD_REQUEST, "invalid_encoding", "UTF-8"),
        (
            "text/plain",
            b"{\"center\": \"demo_center\"}".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "application/json",
        ),
        (
            "application/json",
            format!("{{\"center\": \"{}\"}}", "x".repeat(2 * 1024 * 1024)).into_bytes(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "limit",
        ),
    ];
    for (ct, body, status, code, needle) in cases {
        let r = post_raw(&app, "/api/v1/patients", ct, body).await;
        assert_eq!(r.status, status, "{code}: {}", r.body);
        assert_eq!(r.headers[header::CONTENT_TYPE], "application/problem+json");
        assert_eq!(r.problem_code(), code, "{}", r.body);
        assert!(r.body["detail"].as_str().unwrap_or_default().contains(needle), "{needle} not in {}", r.body);
    }
    let One(n): One<i64> = app.db.fetch_one("SELECT COUNT(*) FROM patient", vec![]).await.unwrap();
    assert_eq!(n, 0);
    // Query strings and path parameters too.
    assert_eq!(app.get("/api/v1/patients?page=first").await.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.get("/api/v1/patients?colour=red").await.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.get("/api/v1/patients/twelve").await.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.get("/api/v1/patients?per_page=100000").await.status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn unknown_names_are_422_and_nothing_is_written(app: TestApp) {
    let patient = app.patient().await;
    let r = app
        .post(
            "/api/v1/patient-examinations",
            json!({
                "patient_id": patient,
                "examination": "colonoscopy",
                "findings": [
                    {"finding": "colon_polyp", "classifications": [{"classification": "paris", "choice": "paris_0_is"}]},
                    {"finding": "colon_polyp", "classifications": [
                        {"classification": "paris", "choice": "nice_type_1"},
                        {"classification": "nice", "choice": "nice_type_7"}
                    ]},
                    {"finding": "gastric_ulcer_nonexistent"}
                ]
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let pointers: Vec<&str> = r.body["errors"].as_array().unwrap().iter().map(|e| e["pointer"].as_str().unwrap()).collect();
    assert!(pointers.contains(&"/findings/1/classifications/0/choice"), "{pointers:?}");
    assert!(pointers.contains(&"/findings/1/classifications/1/choice"), "{pointers:?}");
    assert!(pointers.contains(&"/findings/2/finding"), "{pointers:?}");
    let detail = r.body["detail"].as_str().unwrap();
    assert!(detail.contains("unknown classification choice `nice_type_7` for classification `nice`"), "{detail}");
    assert!(detail.contains("nice_type_1, nice_type_2, nice_type_3"), "{detail}");
    // The valid first finding was not written either: the examination is all or nothing.
    let One(n): One<i64> = app.db.fetch_one("SELECT COUNT(*) FROM patient_examination", vec![]).await.unwrap();
    assert_eq!(n, 0);
    let One(n): One<i64> = app.db.fetch_one("SELECT COUNT(*) FROM patient_finding", vec![]).await.unwrap();
    assert_eq!(n, 0);
    // A finding of another examination is refused; dangling ids too.
    let r = app
        .post(
            "/api/v1/patient-examinations",
            json!({"patient_id": patient, "examination": "gastroscopy", "findings": [{"finding": "colon_polyp"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let r = app.post("/api/v1/patient-examinations", json!({"patient_id": 99999, "examination": "colonoscopy"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body["detail"].as_str().unwrap().contains("no patient 99999"));
    let r = app.post("/api/v1/patients", json!({"center": "atlantis"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body["detail"].as_str().unwrap().contains("unknown center: `atlantis`"));
}

async fn concurrent_conflicting_updates_are_detected(app: TestApp) {
    let patient = app.patient().await;
    let path = format!("/api/v1/patients/{patient}");
    // Missing and malformed If-Match.
    let r = app.call(Some(Role::Admin), Method::PATCH, &path, Some(json!({"birth_year": 1962})), None).await;
    assert_eq!(r.status, StatusCode::PRECONDITION_REQUIRED);
    let r = app.call(Some(Role::Admin), Method::PATCH, &path, Some(json!({"birth_year": 1962})), Some("yesterday")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Eight writers read version 1 and write at once: exactly one wins, the others hear 412.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let router = app.router.clone();
        let token = app.tokens[&Role::Admin].clone();
        let path = path.clone();
        tasks.push(tokio::spawn(async move {
            use tower::ServiceExt;
            let req = Request::builder()
                .method(Method::PATCH)
                .uri(path)
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::IF_MATCH, "\"1\"")
                .body(Body::from(json!({"birth_year": 1950 + i}).to_string()))
                .unwrap();
            router.oneshot(req).await.unwrap().status()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == StatusCode::OK || *s == StatusCode::PRECONDITION_FAILED), "{statuses:?}");
    let r = app.get(&path).await;
    assert_eq!(r.body["version"], 2);
    assert_eq!(r.etag(), "\"2\"");
}

async fn requests_outside_the_api_are_problems_too(app: TestApp) {
    let r = app.get("/api/v1/nothing-here").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.problem_code(), "not_found");
    let r = app.call(Some(Role::Admin), Method::PUT, "/api/v1/patients", Some(json!({})), None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(r.headers.contains_key(header::ALLOW));
    let req = Request::builder()
        .uri("/api/v1/patients")
        .header(header::AUTHORIZATION, "Bearer endoreg_not_a_real_token_at_all_0000000000")
        .body(Body::empty())
        .unwrap();
    let r = app.raw(req).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.headers.contains_key(header::WWW_AUTHENTICATE));
    let req = Request::builder().uri("/api/v1/patients").header(header::AUTHORIZATION, "Basic dXNlcjpwYXNz").body(Body::empty()).unwrap();
    assert_eq!(app.raw(req).await.status, StatusCode::UNAUTHORIZED);
}

/// The pointers of a 422's field problems, and the whole detail.
fn refused(r: &crate::support::Response) -> (Vec<String>, String) {
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let pointers = r.body["errors"].as_array().unwrap().iter().map(|e| e["pointer"].as_str().unwrap().to_owned()).collect();
    (pointers, r.body["detail"].as_str().unwrap().to_owned())
}

async fn control_characters_are_refused_where_they_arrive(app: TestApp) {
    let patient = app.patient().await;
    let identity = format!("/api/v1/patients/{patient}/identity");
    let app = &app;
    let put = |body: serde_json::Value| {
        let path = identity.clone();
        async move { app.call(Some(Role::DataManager), Method::PUT, &path, Some(body), None).await }
    };
    // U+0000 anywhere in a JSON body: PostgreSQL cannot store it, SQLite could; both refuse it alike.
    let (pointers, detail) = refused(&put(json!({"first_name": "Erika", "notes": "a\u{0}b"})).await);
    assert_eq!(pointers, ["/notes"]);
    assert!(detail.contains("U+0000 at character 2"), "{detail}");
    for notes in ["a\u{7f}b", "a\u{85}b", "a\u{1b}[31m"] {
        let (pointers, _) = refused(&put(json!({"notes": notes})).await);
        assert_eq!(pointers, ["/notes"], "{notes:?}");
    }
    // Names are one line; free text keeps its line breaks and tabs.
    let (pointers, detail) = refused(&put(json!({"first_name": "Eri\nka", "last_name": "\t"})).await);
    assert_eq!(pointers, ["/first_name", "/last_name"], "{detail}");
    let r = put(json!({"first_name": "Erika", "notes": "line 1\r\nline\t2"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["notes"], "line 1\r\nline\t2");
    // Nested values and member names are named by their JSON pointer.
    let r = app
        .post(
            "/api/v1/patient-examinations",
            json!({"patient_id": patient, "examination": "colonoscopy",
                   "findings": [{"finding": "colon_polyp", "classifications": [{"classification": "paris", "choice": "paris_0\u{0}is"}]}]}),
        )
        .await;
    assert_eq!(refused(&r).0, ["/findings/0/classifications/0/choice"]);
    let r = app
        .post("/api/v1/ai-model-versions", json!({"model": "colonoscopy_multilabel_classifier", "version": "1", "metadata": {"a\u{0}": 1}}))
        .await;
    assert_eq!(refused(&r).0, ["/metadata/a\u{0}"]);
    let r = app.post("/api/v1/patients", json!({"center": "demo\u{0}center"})).await;
    assert_eq!(refused(&r).0, ["/center"]);
    // The upload's metadata part is read the same way.
    let r = app
        .upload(Role::DataManager, &json!({"center": "demo_center", "identity": {"patient_last_name": "Muster\u{0}mann"}}), b"%PDF-1.4")
        .await;
    assert_eq!(refused(&r).0, ["/identity/patient_last_name"]);
    // Query and path parameters, percent-encoded: no control character at all.
    for (path, pointer) in [
        ("/api/v1/patients?center=demo%00center", "/center"),
        ("/api/v1/patient-examinations?examination=colonoscopy%0A", "/examination"),
        ("/api/v1/terminology/finding?q=%00", "/q"),
        ("/api/v1/terminology/finding/colon%00polyp", "/name"),
        ("/api/v1/terminology/fin%1Fding", "/kind"),
        ("/api/v1/examination-indications/screening%00/expected-interventions", "/name"),
    ] {
        let r = app.get(path).await;
        let (pointers, detail) = refused(&r);
        assert_eq!(pointers, [pointer], "{path}");
        assert!(detail.contains("parameter"), "{path}: {detail}");
    }
    // Nothing of it was written.
    let One(n): One<i64> = app.db.fetch_one("SELECT COUNT(*) FROM patient", vec![]).await.unwrap();
    assert_eq!(n, 1);
    let One(n): One<i64> = app.db.fetch_one("SELECT COUNT(*) FROM video", vec![]).await.unwrap();
    assert_eq!(n, 0);
    let r = app.get(&identity).await;
    assert_eq!(r.body["notes"], "line 1\r\nline\t2");
}

const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

async fn video(app: &TestApp) -> i64 {
    let r = app.post("/api/v1/videos", json!({"center": "demo_center", "processor": "olympus_cv_1500", "sha256": SHA})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_i64().unwrap()
}

async fn frame_arithmetic_cannot_overflow(app: TestApp) {
    let id = video(&app).await;
    let prefix = keys::frames(SHA, "raw");
    let frame_set = |first: i64, count: i64, step: i64| json!({"source": "raw", "first_frame": first, "frame_count": count, "step": step, "format": "jpeg", "storage_prefix": prefix});
    let app = &app;
    let put = |body: serde_json::Value| {
        let path = format!("/api/v1/videos/{id}/frame-sets/raw");
        async move { app.call(Some(Role::Service), Method::PUT, &path, Some(body), None).await }
    };
    // The video's frame count is not known yet: only the bounds stand between these and a wrapped sum.
    for (body, pointer) in [
        (frame_set(i64::MAX, 2, 1), "/first_frame"),
        (frame_set(0, 3, 4_611_686_018_427_387_904), "/step"),
        (frame_set(999_999_999, 2, 1), "/frame_count"),
        (frame_set(0, 1_000_000_000, 2), "/frame_count"),
        (frame_set(-1, 1, 1), "/first_frame"),
    ] {
        let (pointers, detail) = refused(&put(body.clone()).await);
        assert_eq!(pointers, [pointer], "{body}: {detail}");
    }
    let r = put(frame_set(999_999_998, 2, 1)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // Segments likewise.
    let seg = |s: i64, e: i64| json!({"label": "polyp", "start_frame": s, "end_frame": e});
    let r = app.post(&format!("/api/v1/videos/{id}/segments"), seg(i64::MAX - 1, i64::MAX)).await;
    assert_eq!(refused(&r).0, ["/start_frame", "/end_frame"]);
    let r = app.post(&format!("/api/v1/videos/{id}/segments"), seg(0, 999_999_999)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // An id beyond 64 bits is a documented 400, a page beyond 32 bits too; the largest page is an empty one.
    let r = app.get("/api/v1/patients/9223372036854775808").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(app.get("/api/v1/patients?page=4294967296").await.status, StatusCode::BAD_REQUEST);
    let r = app.get("/api/v1/videos?page=4294967295&per_page=500").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["items"], json!([]));
}

async fn storage_keys_are_taken_only_in_their_own_form(app: TestApp) {
    let bad = ["../../etc/passwd", "/etc/shadow", "raw/9f/../../../x.age", ""];
    for key in bad {
        let r = app.post("/api/v1/videos", json!({"center": "demo_center", "sha256": SHA, "raw_key": key})).await;
        assert_eq!(refused(&r).0, ["/raw_key"], "{key}");
        let r = app.post("/api/v1/reports", json!({"center": "demo_center", "sha256": SHA, "raw_key": key})).await;
        assert_eq!(refused(&r).0, ["/raw_key"], "{key}");
    }
    // Another content's raw key is refused too: a key is made from the content's hash.
    let other = "b5bb9d8014a0f9b1d61e21e796d78dccdf1352f23cd32812f4850b878ae4944c";
    let r = app.post("/api/v1/videos", json!({"center": "demo_center", "sha256": SHA, "raw_key": keys::raw(other)})).await;
    assert_eq!(refused(&r).0, ["/raw_key"]);
    let r = app.post("/api/v1/videos", json!({"center": "demo_center", "sha256": SHA, "raw_key": keys::raw(SHA)})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    let app = &app;
    let patch = |body: serde_json::Value, version: &str| {
        let path = format!("/api/v1/videos/{id}");
        let version = version.to_owned();
        async move { app.call(Some(Role::Service), Method::PATCH, &path, Some(body), Some(&version)).await }
    };
    for key in bad.iter().map(|k| k.to_string()).chain([format!("anonymised/00/{other}.mp4"), keys::raw(other)]) {
        let r = patch(json!({"anonymised_key": key}), "\"1\"").await;
        assert_eq!(refused(&r).0, ["/anonymised_key"], "{key}");
        let r = patch(json!({"raw_key": key}), "\"1\"").await;
        assert_eq!(refused(&r).0, ["/raw_key"], "{key}");
    }
    let r = patch(json!({"anonymised_key": keys::anonymised_video(other)}), "\"1\"").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for key in bad.iter().map(|k| k.to_string()).chain([keys::frames(other, "raw"), keys::frames(SHA, "anonymised")]) {
        let r = app
            .call(
                Some(Role::Service),
                Method::PUT,
                &format!("/api/v1/videos/{id}/frame-sets/raw"),
                Some(json!({"source": "raw", "first_frame": 0, "frame_count": 1, "step": 1, "format": "jpeg", "storage_prefix": key})),
                None,
            )
            .await;
        assert_eq!(refused(&r).0, ["/storage_prefix"], "{key}");
    }
    let mv = app.post("/api/v1/ai-model-versions", json!({"model": "colonoscopy_multilabel_classifier", "version": "k-1"})).await;
    assert_eq!(mv.status, StatusCode::OK, "{}", mv.body);
    let mv = mv.body["id"].as_i64().unwrap();
    for key in bad.iter().map(|k| k.to_string()).chain([keys::predictions(SHA, mv + 1), keys::predictions(other, mv)]) {
        let r = app
            .call(
                Some(Role::Service),
                Method::PUT,
                &format!("/api/v1/videos/{id}/predictions/{mv}"),
                Some(json!({"storage_key": key, "frame_count": 1, "step": 1, "labels": ["polyp"], "segments": []})),
                None,
            )
            .await;
        assert_eq!(refused(&r).0, ["/storage_key"], "{key}");
    }
    let r = app.get(&format!("/api/v1/videos/{id}")).await;
    assert_eq!(r.body["raw_key"], keys::raw(SHA));
    assert_eq!(r.body["anonymised_key"], keys::anonymised_video(other));
    assert_eq!(r.body["frame_sets"], json!([]));
}
