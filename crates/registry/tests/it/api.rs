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
    the_openapi_document_describes_every_route,
    pseudonyms_are_codes_in_one_folded_form,
    dates_are_plausible_whichever_is_written_first,
    identity_text_is_bounded,
    pseudonyms_stored_before_folding_are_folded_where_free
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
            Some(json!({"source": "anonymised", "first_frame": 0, "frame_count": 100, "step": 1, "format": "jpeg", "storage_prefix": endoreg_common::storage::keys::frames(SHA, "anonymised")})),
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
    // Every reference resolves (the problem schema is defined), every response says what it is.
    fn walk<'a>(v: &'a serde_json::Value, refs: &mut Vec<&'a str>) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(r) = m.get("$ref").and_then(|r| r.as_str()) {
                    refs.push(r);
                }
                m.values().for_each(|v| walk(v, refs));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, refs)),
            _ => {}
        }
    }
    let mut refs = Vec::new();
    walk(&r.body, &mut refs);
    assert!(refs.contains(&"#/components/schemas/Problem"));
    for reference in refs {
        let pointer = reference.strip_prefix('#').unwrap();
        assert!(r.body.pointer(pointer).is_some(), "{reference} is not defined");
    }
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            for (status, response) in op["responses"].as_object().unwrap() {
                assert!(!response["description"].as_str().unwrap_or_default().is_empty(), "{method} {path} {status} has no description");
            }
        }
    }
    // Errors are documented where they arise: ids beyond 64 bits, lists of something that may not exist.
    let get_patient = &paths["/api/v1/patients/{id}"]["get"];
    assert!(get_patient["responses"]["400"].is_object() && get_patient["responses"]["404"].is_object());
    assert_eq!(get_patient["parameters"][0]["schema"], json!({"type": "integer", "format": "int64", "minimum": 1}));
    assert!(paths["/api/v1/videos/{id}/segments"]["get"]["responses"]["404"].is_object());
    assert!(paths["/api/v1/terminology/{kind}"]["get"]["responses"]["404"].is_object());
    // A role every token has is never refused: those operations document no 403.
    assert!(paths["/api/v1/terminology"]["get"]["responses"].get("403").is_none());
    assert!(paths["/api/v1/patients"]["get"]["responses"]["403"].is_object());
    // Constraints are schema keywords, so that generated clients keep to them.
    let per_page = paths["/api/v1/patients"]["get"]["parameters"].as_array().unwrap().iter().find(|p| p["name"] == "per_page").unwrap();
    assert_eq!((per_page["schema"]["minimum"].as_f64(), per_page["schema"]["maximum"].as_f64()), (Some(1.0), Some(500.0)));
    let schemas = &r.body["components"]["schemas"];
    assert_eq!(schemas["FrameSet"]["properties"]["first_frame"]["maximum"].as_f64(), Some((endoreg_common::api::MAX_FRAMES - 1) as f64));
    assert_eq!(schemas["FrameSet"]["properties"]["frame_count"]["maximum"].as_f64(), Some(endoreg_common::api::MAX_FRAMES as f64));
    assert!(schemas["PatientCreate"]["properties"]["pseudonym"]["pattern"].is_string());
    assert_eq!(schemas["PatientIdentityIn"]["properties"]["notes"]["maxLength"], 10_000);
    let kinds = &paths["/api/v1/terminology/{kind}"]["get"]["parameters"][0]["schema"]["enum"];
    assert!(kinds.as_array().unwrap().iter().any(|k| k == "finding_classification"), "{kinds}");
}

async fn pseudonyms_are_codes_in_one_folded_form(app: TestApp) {
    let create = |pseudonym: &str| app.post("/api/v1/patients", json!({"center": "demo_center", "pseudonym": pseudonym}));
    for name in ["Erika Mustermann", "MUSTERMANN", "Müller-1", "X1", "A--1"] {
        let r = create(name).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {}", r.body);
        assert_eq!(r.body["errors"][0]["pointer"], "/pseudonym");
    }
    let r = create(" dup-1 ").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["pseudonym"], "DUP-1");
    for same in ["DUP-1", "Dup-1", "dup-1\t"] {
        let r = create(same).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{same:?}: {}", r.body);
    }
    let r = app.get("/api/v1/patients?pseudonym=dup-1").await;
    assert_eq!(r.body["total"], 1, "{}", r.body);
    // Without one, a pseudonym is generated.
    let r = app.post("/api/v1/patients", json!({"center": "demo_center"})).await;
    assert!(r.body["pseudonym"].as_str().unwrap().starts_with("P-"), "{}", r.body);
    // One stored before pseudonyms were folded (as an import of an old export may hold) still counts.
    app.db
        .execute(
            "INSERT INTO patient (pseudonym, center_id, version, created_at, updated_at) \
             SELECT 'legacy-7 ', id, 1, $1, $1 FROM center WHERE name = 'demo_center'",
            endoreg_registry::params![chrono::Utc::now()],
        )
        .await
        .unwrap();
    assert_eq!(create("LEGACY-7").await.status, StatusCode::CONFLICT);
    assert_eq!(app.get("/api/v1/patients?pseudonym=Legacy-7").await.body["total"], 1);
}

#[track_caller]
fn refused(r: &crate::support::Response, pointer: &str, needle: &str) {
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{pointer}: {}", r.body);
    assert!(r.body["errors"].as_array().unwrap().iter().any(|e| e["pointer"] == pointer), "{pointer}: {}", r.body);
    assert!(r.body["detail"].as_str().unwrap().contains(needle), "{needle} not in {}", r.body);
}

async fn dates_are_plausible_whichever_is_written_first(app: TestApp) {
    let app = &app;
    let new_patient = |birth_year: Option<i32>| async move {
        let r = app.post("/api/v1/patients", json!({"center": "demo_center", "birth_year": birth_year})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["id"].as_i64().unwrap()
    };
    let identity = |p: i64, body: serde_json::Value, version: Option<&'static str>| async move {
        app.call(Some(Role::DataManager), Method::PUT, &format!("/api/v1/patients/{p}/identity"), Some(body), version).await
    };
    let birth_year = |p: i64, year: i32, version: &'static str| async move {
        app.call(Some(Role::DataManager), Method::PATCH, &format!("/api/v1/patients/{p}"), Some(json!({"birth_year": year})), Some(version))
            .await
    };
    let exam = |p: i64, date: &str, intervention: serde_json::Value| {
        let body = json!({"patient_id": p, "examination": "colonoscopy", "date": date,
                          "findings": [{"finding": "colon_polyp", "interventions": [intervention]}]});
        async move { app.post("/api/v1/patient-examinations", body).await }
    };
    let snare = |date: &str, state: &str| json!({"intervention": "cold_snare_polypectomy", "state": state, "date": date});

    // Absolute bounds.
    for year in [1899, 2999] {
        let r = app.post("/api/v1/patients", json!({"center": "demo_center", "birth_year": year})).await;
        refused(&r, "/birth_year", "must be between 1900");
    }
    let p = new_patient(None).await;
    refused(&identity(p, json!({"date_of_birth": "1899-12-31"}), None).await, "/date_of_birth", "before 1900-01-01");
    refused(&identity(p, json!({"date_of_birth": "-0001-06-01"}), None).await, "/date_of_birth", "");
    refused(&identity(p, json!({"date_of_birth": "2999-01-01"}), None).await, "/date_of_birth", "in the future");
    refused(&exam(p, "1899-01-01", snare("2024-01-01", "performed")).await, "/date", "before 1900-01-01");
    refused(&exam(p, "2024-01-01", snare("1800-01-01", "performed")).await, "/findings/0/interventions/0/date", "before 1900-01-01");
    let next_year = (chrono::Utc::now().date_naive() + chrono::Days::new(366)).to_string();
    refused(&exam(p, "2024-01-01", snare(&next_year, "performed")).await, "/findings/0/interventions/0/date", "in the future");
    let r = exam(p, "2024-01-01", snare(&next_year, "planned")).await;
    assert_eq!(r.status, StatusCode::CREATED, "a planned intervention may lie ahead: {}", r.body);

    // Birth year first, then a date of birth; and the other way round.
    let a = new_patient(Some(1961)).await;
    refused(&identity(a, json!({"date_of_birth": "1970-01-01"}), None).await, "/date_of_birth", "birth year is 1961");
    assert_eq!(identity(a, json!({"date_of_birth": "1961-08-12"}), None).await.status, StatusCode::CREATED);
    let b = new_patient(None).await;
    assert_eq!(identity(b, json!({"date_of_birth": "1961-08-12"}), None).await.status, StatusCode::CREATED);
    refused(&birth_year(b, 1970, "\"1\"").await, "/birth_year", "contradicts the date of birth");
    assert_eq!(birth_year(b, 1961, "\"1\"").await.status, StatusCode::OK);

    // Examinations and interventions not before the birth, whichever is written first.
    refused(&exam(a, "1950-01-01", snare("2024-01-01", "performed")).await, "/date", "before the patient's date of birth");
    refused(&exam(a, "1961-03-01", snare("2024-01-01", "performed")).await, "/date", "before the patient's date of birth");
    refused(&exam(a, "2024-01-01", snare("1961-03-01", "performed")).await, "/findings/0/interventions/0/date", "date of birth");
    let c = new_patient(Some(1961)).await;
    refused(&exam(c, "1960-12-31", snare("2024-01-01", "performed")).await, "/date", "before the patient's birth year 1961");
    let r = exam(a, "1961-09-01", snare("1961-09-01", "performed")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let exam_id = r.body["id"].as_i64().unwrap();
    let r = app
        .call(
            Some(Role::Admin),
            Method::PATCH,
            &format!("/api/v1/patient-examinations/{exam_id}"),
            Some(json!({"date": "1961-01-01"})),
            Some("\"1\""),
        )
        .await;
    refused(&r, "/date", "before the patient's date of birth");
    let d = new_patient(None).await;
    let r = exam(d, "2000-05-05", snare("1999-05-05", "performed")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    refused(&birth_year(d, 2000, "\"1\"").await, "/birth_year", "dated 1999-05-05");
    refused(&identity(d, json!({"date_of_birth": "1999-06-01"}), None).await, "/date_of_birth", "dated 1999-05-05");
    assert_eq!(birth_year(d, 1999, "\"1\"").await.status, StatusCode::OK);
    assert_eq!(identity(d, json!({"date_of_birth": "1999-01-01"}), None).await.status, StatusCode::CREATED);
}

async fn identity_text_is_bounded(app: TestApp) {
    let p = app.patient().await;
    let path = format!("/api/v1/patients/{p}/identity");
    let put = |body: serde_json::Value| app.call(Some(Role::DataManager), Method::PUT, &path, Some(body), None);
    let r = put(json!({"notes": "x".repeat(900 * 1024)})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body["detail"].as_str().unwrap().contains("/notes: must be at most 10000 characters"), "{}", r.body);
    let r = put(json!({"first_name": "E".repeat(101), "last_name": "", "external_id": "H".repeat(65)})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let pointers: Vec<&str> = r.body["errors"].as_array().unwrap().iter().map(|e| e["pointer"].as_str().unwrap()).collect();
    assert_eq!(pointers, ["/first_name", "/last_name", "/external_id"]);
    let r = put(json!({"first_name": "E".repeat(100), "notes": "ü".repeat(10_000)})).await;
    assert_eq!(r.status, StatusCode::CREATED, "limits count characters, not bytes: {}", r.body);
}

/// Migration 0004 folds the pseudonyms an older registry stored, except where two would collide.
async fn pseudonyms_stored_before_folding_are_folded_where_free(app: TestApp) {
    use endoreg_registry::db::Db;
    let dir = tempfile::tempdir().unwrap();
    let (sub, url) = match app.backend {
        crate::support::Backend::Sqlite => ("sqlite", format!("sqlite://{}", dir.path().join("old.db").display())),
        crate::support::Backend::Postgres => ("postgres", crate::support::postgres::new_database().await),
    };
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(sub);
    let older = dir.path().join("older");
    std::fs::create_dir(&older).unwrap();
    for f in std::fs::read_dir(&source).unwrap().flatten() {
        let name = f.file_name().into_string().unwrap();
        if name.as_str() < "0004" {
            std::fs::copy(f.path(), older.join(&name)).unwrap();
        }
    }
    let db = Db::connect(&url, &Default::default()).await.unwrap();
    let migrator = sqlx::migrate::Migrator::new(older.as_path()).await.unwrap();
    match &db {
        Db::Sqlite(pool) => migrator.run(pool).await.unwrap(),
        Db::Postgres(pool) => migrator.run(pool).await.unwrap(),
    }
    db.execute("INSERT INTO center (name) VALUES ('c')", vec![]).await.unwrap();
    for p in ["keep-1", " free-2 ", "Twin-3", "twin-3", "OK-4"] {
        db.execute(
            "INSERT INTO patient (pseudonym, center_id, version, created_at, updated_at) SELECT $1, id, 1, $2, $2 FROM center",
            endoreg_registry::params![p, chrono::Utc::now()],
        )
        .await
        .unwrap();
    }
    db.migrate().await.unwrap();
    let rows: Vec<(String, i64)> = db.fetch_all("SELECT pseudonym, version FROM patient ORDER BY id", vec![]).await.unwrap();
    assert_eq!(
        rows,
        [("KEEP-1".into(), 2), ("FREE-2".into(), 2), ("Twin-3".into(), 1), ("twin-3".into(), 1), ("OK-4".into(), 1)],
        "folded where free, collisions left for a data manager"
    );
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

/// The check every test's responses go through fails when the description leaves a status out, or
/// describes a body other than the one sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_the_description_does_not_describe_fails_the_check() {
    use crate::support::description::{Description, registry};
    let app = TestApp::new(crate::support::Backend::Sqlite).await;
    let missing = app.get("/api/v1/patients/999").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let id = app.patient().await;
    let found = app.get(&format!("/api/v1/patients/{id}")).await;
    let bytes = |r: &crate::support::Response| serde_json::to_vec(&r.body).unwrap();
    let path = format!("/api/v1/patients/{id}");
    let check = |d: &Description, r: &crate::support::Response, path: &str| d.check(&Method::GET, path, r.status, &r.headers, &bytes(r));
    check(registry(), &missing, "/api/v1/patients/999").unwrap();
    check(registry(), &found, &path).unwrap();

    let original = || {
        let (_, _, doc) = endoreg_registry::http::parts();
        Description::new(serde_json::to_value(&doc).unwrap())
    };
    let mut without_404 = original();
    without_404.doc_mut()["paths"]["/api/v1/patients/{id}"]["get"]["responses"].as_object_mut().unwrap().remove("404");
    let err = check(&without_404, &missing, "/api/v1/patients/999").unwrap_err();
    assert!(err.contains("GET /api/v1/patients/{id} answered 404, which the description does not document"), "{err}");

    let mut other_schema = original();
    other_schema.doc_mut()["components"]["schemas"]["Patient"]["required"].as_array_mut().unwrap().push(json!("shoe_size"));
    let err = check(&other_schema, &found, &path).unwrap_err();
    assert!(err.contains("shoe_size"), "{err}");

    let mut other_type = original();
    let content = other_type.doc_mut()["paths"]["/api/v1/patients/{id}"]["get"]["responses"]["404"]["content"].as_object_mut().unwrap();
    let problem = content.remove("application/problem+json").unwrap();
    content.insert("application/json".into(), problem);
    let err = check(&other_type, &missing, "/api/v1/patients/999").unwrap_err();
    assert!(err.contains("as `application/problem+json`"), "{err}");
}
