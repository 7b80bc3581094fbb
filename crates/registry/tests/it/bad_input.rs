//! Bad input gets a 4xx problem naming the problem — never a 500, never a panic, never a partial write.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::json;

use endoreg_common::access::Role;
use endoreg_registry::db::exec::One;

use crate::backends;
use crate::support::TestApp;

backends!(
    malformed_bodies_are_named,
    unknown_names_are_422_and_nothing_is_written,
    concurrent_conflicting_updates_are_detected,
    requests_outside_the_api_are_problems_too
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
