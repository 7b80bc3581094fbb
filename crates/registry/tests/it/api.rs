//! The API end to end: clinical records, identities, media, segments, reports, terminology, filters and
//! paging, optimistic concurrency.

use axum::http::{Method, StatusCode};
use serde_json::json;

use endoreg_common::access::Role;

use crate::backends;
use crate::support::TestApp;

backends!(
    patients_examinations_and_findings_round_trip,
    identities_are_kept_apart_and_guarded,
    lists_filter_and_page_with_a_total,
    videos_follow_their_state_machine,
    segments_and_reports,
    terminology_is_readable_by_every_role,
    a_token_tells_its_own_role_and_nothing_else,
    the_openapi_document_describes_every_route
);

async fn patients_examinations_and_findings_round_trip(app: TestApp) {
    let patient = app.patient().await;
    let exam = app.colonoscopy(patient, "2024-03-01").await;
    let id = exam["id"].as_i64().unwrap();
    let got = app.get(&format!("/api/v1/patient-examinations/{id}")).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.etag(), "\"1\"");
    assert_eq!(got.body, exam);
    let finding = &got.body["findings"][0];
    assert_eq!(finding["finding"], "colon_polyp");
    assert_eq!(finding["classifications"].as_array().unwrap().len(), 3);
    assert_eq!(finding["interventions"][0]["intervention"], "cold_snare_polypectomy");
    assert_eq!(got.body["indications"][0]["indication"], "screening_colonoscopy");

    // Add and replace a finding; the examination's version follows its findings.
    let r = app.post(&format!("/api/v1/patient-examinations/{id}/findings"), json!({"finding": "diverticulosis"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let fid = r.body["id"].as_i64().unwrap();
    let r = app
        .call(
            Some(Role::DataManager),
            Method::PUT,
            &format!("/api/v1/patient-findings/{fid}"),
            Some(json!({"finding": "colon_polyp", "classifications": [{"classification": "jnet", "choice": "jnet_type_2a"}]})),
            Some("\"1\""),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["version"], 2);
    assert_eq!(r.body["classifications"][0]["choice"], "jnet_type_2a");
    let exam = app.get(&format!("/api/v1/patient-examinations/{id}")).await;
    assert_eq!(exam.body["findings"].as_array().unwrap().len(), 2);
    assert_eq!(exam.body["version"], 3);

    // Patch the examination.
    let r = app
        .call(
            Some(Role::Admin),
            Method::PATCH,
            &format!("/api/v1/patient-examinations/{id}"),
            Some(json!({"date": "2024-03-02"})),
            Some("\"3\""),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["date"], "2024-03-02");

    // A patient with examinations cannot be deleted; after the examination is gone, it can.
    let r = app.call(Some(Role::Admin), Method::DELETE, &format!("/api/v1/patients/{patient}"), None, Some("\"1\"")).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    let r = app.call(Some(Role::Admin), Method::DELETE, &format!("/api/v1/patient-examinations/{id}"), None, Some("\"4\"")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(app.get(&format!("/api/v1/patient-findings/{fid}")).await.status, StatusCode::NOT_FOUND);
    let r = app.call(Some(Role::Admin), Method::DELETE, &format!("/api/v1/patients/{patient}"), None, Some("\"1\"")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(app.get(&format!("/api/v1/patients/{patient}")).await.status, StatusCode::NOT_FOUND);
}

async fn identities_are_kept_apart_and_guarded(app: TestApp) {
    let patient = app.patient().await;
    let path = format!("/api/v1/patients/{patient}/identity");
    let identity = json!({"first_name": "Erika", "last_name": "Mustermann", "date_of_birth": "1961-08-12", "external_id": "H-0815"});
    let r = app.call(Some(Role::Researcher), Method::PUT, &path, Some(identity.clone()), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app.call(Some(Role::DataManager), Method::PUT, &path, Some(identity.clone()), None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // Creating twice without If-Match is a conflict; replacing needs the version.
    let r = app.call(Some(Role::DataManager), Method::PUT, &path, Some(identity.clone()), None).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = app
        .call(Some(Role::DataManager), Method::PUT, &path, Some(json!({"first_name": "Erika", "last_name": "Musterfrau"})), Some("\"1\""))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["last_name"], "Musterfrau");
    assert!(r.body["date_of_birth"].is_null());
    for role in [Role::Annotator, Role::Researcher, Role::Service] {
        assert_eq!(app.call(Some(role), Method::GET, &path, None, None).await.status, StatusCode::FORBIDDEN, "{role}");
    }
    assert_eq!(app.call(Some(Role::DataManager), Method::GET, &path, None, None).await.status, StatusCode::OK);
    // Pseudonymised views carry no identifying field.
    let p = app.call(Some(Role::Researcher), Method::GET, &format!("/api/v1/patients/{patient}"), None, None).await;
    assert_eq!(p.status, StatusCode::OK);
    let text = p.body.to_string();
    assert!(!text.contains("Erika") && !text.contains("Muster") && !text.contains("H-0815"), "{text}");
    // A birth date that contradicts the birth year is refused.
    let r = app.call(Some(Role::DataManager), Method::PUT, &path, Some(json!({"date_of_birth": "1970-01-01"})), Some("\"2\"")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn lists_filter_and_page_with_a_total(app: TestApp) {
    let p1 = app.patient().await;
    let p2 = app.patient().await;
    for (p, d) in [(p1, "2023-01-10"), (p1, "2023-06-01"), (p2, "2024-02-02"), (p2, "2024-05-05"), (p2, "2025-01-01")] {
        app.colonoscopy(p, d).await;
    }
    let r = app.get("/api/v1/patient-examinations?per_page=2").await;
    assert_eq!(r.body["total"], 5);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
    let r = app.get("/api/v1/patient-examinations?per_page=2&page=3").await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    let r = app.get("/api/v1/patient-examinations?date_from=2024-01-01&date_to=2024-12-31").await;
    assert_eq!(r.body["total"], 2);
    let r = app.get(&format!("/api/v1/patient-examinations?patient_id={p1}&center=demo_center&examination=colonoscopy")).await;
    assert_eq!(r.body["total"], 2);
    let r = app.get("/api/v1/patient-examinations?examination=gastroscopy").await;
    assert_eq!(r.body["total"], 0);
    let r = app.get("/api/v1/patient-examinations?examination_type=endoscopy").await;
    assert_eq!(r.body["total"], 5, "{}", r.body);
    let r = app.get("/api/v1/patient-examinations?examination_type=upper_gi_endoscopy").await;
    assert_eq!(r.body["total"], 0);
    let r = app.get("/api/v1/patients?center=demo_center").await;
    assert_eq!(r.body["total"], 2);
    let r = app.get("/api/v1/patient-examinations?date_from=2025-01-01&date_to=2024-01-01").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

async fn video(app: &TestApp) -> i64 {
    let r = app
        .call(
            Some(Role::Service),
            Method::POST,
            "/api/v1/videos",
            Some(json!({"center": "demo_center", "processor": "olympus_cv_1500", "sha256": SHA, "size_bytes": 1000})),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_i64().unwrap()
}

async fn videos_follow_their_state_machine(app: TestApp) {
    let id = video(&app).await;
    let again = app.post("/api/v1/videos", json!({"center": "demo_center", "sha256": SHA})).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.body["detail"].as_str().unwrap().contains(&format!("video {id}")));
    let app = &app;
    let state = |s: &'static str, v: i64| {
        let body = json!({"state": s, "detail": if s == "failed" { json!("decoder error at frame 12") } else { json!(null) }});
        let path = format!("/api/v1/videos/{id}/state");
        async move { app.call(Some(Role::Service), Method::POST, &path, Some(body), Some(&format!("\"{v}\""))).await }
    };
    // Skipping a step is refused; the state machine's path is followed.
    let r = state("anonymised", 1).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(state("probed", 1).await.status, StatusCode::OK);
    let r = app
        .call(
            Some(Role::Service),
            Method::PATCH,
            &format!("/api/v1/videos/{id}"),
            Some(json!({"metadata": {"container": "mp4", "codec": "h264", "width": 1920, "height": 1080, "fps": 50.0, "duration_s": 2.0, "frame_count": 100, "rotation": 0}})),
            Some("\"2\""),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(state("anonymised", 3).await.status, StatusCode::OK);
    let r = app
        .call(
            Some(Role::Service),
            Method::PUT,
            &format!("/api/v1/videos/{id}/frame-sets/anonymised"),
            Some(json!({"source": "anonymised", "first_frame": 0, "frame_count": 100, "step": 1, "format": "jpeg", "storage_prefix": "frames/abc"})),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["frame_sets"][0]["frame_count"], 100);
    assert_eq!(state("frames_extracted", 4).await.status, StatusCode::OK);
    assert_eq!(state("failed", 5).await.status, StatusCode::OK);
    let r = app.get(&format!("/api/v1/videos/{id}")).await;
    assert_eq!(r.body["state"], "failed");
    assert_eq!(r.body["state_detail"], "decoder error at frame 12");
    let events = app.get(&format!("/api/v1/videos/{id}/events")).await;
    let to: Vec<&str> = events.body.as_array().unwrap().iter().map(|e| e["to_state"].as_str().unwrap()).collect();
    assert_eq!(to, ["uploaded", "probed", "anonymised", "frames_extracted", "failed"]);
    // Failing needs a reason; researchers cannot move states.
    let r = app
        .call(Some(Role::Service), Method::POST, &format!("/api/v1/videos/{id}/state"), Some(json!({"state": "uploaded"})), Some("\"6\""))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app
        .call(Some(Role::Service), Method::POST, &format!("/api/v1/videos/{id}/state"), Some(json!({"state": "failed"})), Some("\"7\""))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .call(Some(Role::Researcher), Method::POST, &format!("/api/v1/videos/{id}/state"), Some(json!({"state": "probed"})), Some("\"7\""))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app.get("/api/v1/videos?state=uploaded&center=demo_center").await;
    assert_eq!(r.body["total"], 1);
}

async fn segments_and_reports(app: TestApp) {
    let id = video(&app).await;
    let seg = |label: &str, s: i64, e: i64| json!({"label": label, "start_frame": s, "end_frame": e, "source": "annotation"});
    for (l, s, e) in [("polyp", 10, 40), ("outside", 0, 5), ("polyp", 60, 80)] {
        let r = app.call(Some(Role::Annotator), Method::POST, &format!("/api/v1/videos/{id}/segments"), Some(seg(l, s, e)), None).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let r = app.call(Some(Role::Researcher), Method::GET, &format!("/api/v1/videos/{id}/segments?label=polyp"), None, None).await;
    let starts: Vec<i64> = r.body.as_array().unwrap().iter().map(|s| s["start_frame"].as_i64().unwrap()).collect();
    assert_eq!(starts, [10, 60]);
    let r = app.call(Some(Role::Annotator), Method::POST, &format!("/api/v1/videos/{id}/segments"), Some(seg("polyp", 50, 40)), None).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app.call(Some(Role::Annotator), Method::POST, &format!("/api/v1/videos/{id}/segments"), Some(seg("unicorn", 1, 2)), None).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body["detail"].as_str().unwrap().contains("unicorn"));
    let r = app.call(Some(Role::Researcher), Method::POST, &format!("/api/v1/videos/{id}/segments"), Some(seg("polyp", 1, 2)), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let r = app
        .call(
            Some(Role::DataManager),
            Method::POST,
            "/api/v1/reports",
            Some(json!({"center": "demo_center", "sha256": "b5bb9d8014a0f9b1d61e21e796d78dccdf1352f23cd32812f4850b878ae4944c"})),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let rid = r.body["id"].as_i64().unwrap();
    let r = app
        .call(
            Some(Role::Service),
            Method::PATCH,
            &format!("/api/v1/reports/{rid}"),
            Some(json!({"anonymised_text": "Patient: [NAME]"})),
            Some("\"1\""),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app
        .call(
            Some(Role::Service),
            Method::POST,
            &format!("/api/v1/reports/{rid}/state"),
            Some(json!({"state": "anonymised"})),
            Some("\"2\""),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = app
        .call(
            Some(Role::Service),
            Method::POST,
            &format!("/api/v1/reports/{rid}/state"),
            Some(json!({"state": "text_extracted"})),
            Some("\"2\""),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

async fn terminology_is_readable_by_every_role(app: TestApp) {
    for role in Role::ALL {
        let r = app.call(Some(role), Method::GET, "/api/v1/terminology/finding_classification/paris", None, None).await;
        assert_eq!(r.status, StatusCode::OK, "{role}");
        assert!(r.body["links"]["choices"].as_array().unwrap().iter().any(|c| c == "paris_0_is"));
    }
    let r = app.get("/api/v1/terminology").await;
    assert!(r.body.as_array().unwrap().iter().any(|k| k["kind"] == "finding" && k["count"].as_i64().unwrap() > 0));
    let r = app.get("/api/v1/terminology/finding?q=POLYP&per_page=5").await;
    assert!(r.body["items"].as_array().unwrap().iter().any(|f| f["name"] == "colon_polyp"), "{}", r.body);
    let r = app.get("/api/v1/terminology/unicorn").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app.get("/api/v1/examination-indications/screening_colonoscopy/expected-interventions").await;
    assert!(r.body.as_array().unwrap().iter().any(|i| i["name"] == "cold_snare_polypectomy"), "{}", r.body);
    let r = app.get("/api/v1/classifications").await;
    assert!(r.body.as_array().unwrap().len() >= 10);
}

async fn a_token_tells_its_own_role_and_nothing_else(app: TestApp) {
    for role in Role::ALL {
        let r = app.call(Some(role), Method::GET, "/api/v1/tokens/self", None, None).await;
        assert_eq!(r.status, StatusCode::OK, "{role}: {}", r.body);
        assert_eq!(r.body["role"], role.as_str());
        assert_eq!(r.body["name"], format!("test {role}"));
        assert!(r.body.get("token").is_none() && r.body.get("hash").is_none(), "{}", r.body);
    }
    assert_eq!(app.call(None, Method::GET, "/api/v1/tokens/self", None, None).await.status, StatusCode::UNAUTHORIZED);
}

async fn the_openapi_document_describes_every_route(app: TestApp) {
    let r = app.call(Some(Role::Researcher), Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["openapi"], "3.1.0");
    let paths = r.body["paths"].as_object().unwrap();
    for p in ["/api/v1/patients/{id}", "/api/v1/patient-examinations/{id}", "/api/v1/videos/{id}/segments", "/healthz", "/readyz"] {
        assert!(paths.contains_key(p), "{p}");
    }
    assert!(r.body["components"]["schemas"]["PatientExamination"].is_object());
    assert_eq!(app.call(None, Method::GET, "/api/openapi.json", None, None).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_provisioned_token_replaces_the_old_one() {
    use endoreg_registry::service::tokens;
    let app = TestApp::new(crate::support::Backend::Sqlite).await;
    let old = format!("{}{}", tokens::PREFIX, "a".repeat(43));
    let new = format!("{}{}", tokens::PREFIX, "b".repeat(43));
    let first = tokens::register(&app.db, "media-token", Role::Service, &old).await.unwrap();
    assert_eq!(first.name, "provisioned: media-token");
    // Registering the same secret again (every restart) changes nothing.
    assert_eq!(tokens::register(&app.db, "media-token", Role::Service, &old).await.unwrap().id, first.id);
    assert!(tokens::verify(&app.db, &old).await.unwrap().is_some());
    // The secret was rotated: the new token works, the old one is revoked.
    tokens::register(&app.db, "media-token", Role::Service, &new).await.unwrap();
    assert!(tokens::verify(&app.db, &new).await.unwrap().is_some());
    assert!(tokens::verify(&app.db, &old).await.unwrap().is_none());
    assert!(tokens::register(&app.db, "x", Role::Service, "too-short").await.is_err());
}
