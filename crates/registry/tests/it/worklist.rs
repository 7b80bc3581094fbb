//! The worklist: videos and reports together, newest first, filtered, counted by state, paged on the
//! server (10,000 videos are one query per page), each with its latest job; bad filters named.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use endoreg_common::access::Role;
use endoreg_registry::params;

use crate::backends;
use crate::support::TestApp;

backends!(the_worklist_filters_counts_and_pages_videos_and_reports, ten_thousand_videos_are_paged_on_the_server);

async fn second_center(app: &TestApp) {
    let toml = "[[center]]\nname = \"second_center\"\n";
    endoreg_registry::kb::load(&app.db, &endoreg_registry::kb::ours::Files(vec![("c.toml".into(), toml.into())])).await.unwrap();
}

fn ids(body: &Value) -> Vec<(String, i64)> {
    body["items"].as_array().unwrap().iter().map(|i| (i["kind"].as_str().unwrap().to_owned(), i["id"].as_i64().unwrap())).collect()
}

async fn set_received(app: &TestApp, table: &str, id: i64, at: &str) {
    let at: chrono::DateTime<chrono::Utc> = at.parse().unwrap();
    app.db.execute(&format!("UPDATE {table} SET created_at = $1 WHERE id = $2"), params![at, id]).await.unwrap();
}

async fn the_worklist_filters_counts_and_pages_videos_and_reports(app: TestApp) {
    second_center(&app).await;
    // An uploaded video (with its job), two registered ones, two reports.
    let mut file = vec![0, 0, 0, 0x20];
    file.extend_from_slice(b"ftypisom\0\0\x02\0isomiso2mp41");
    file.extend(std::iter::repeat_n(7u8, 1000));
    let up = app.upload(Role::Service, &json!({"center": "demo_center", "processor": "olympus_cv_1500"}), &file).await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.body);
    let v1 = up.body["video"]["id"].as_i64().unwrap();
    let v2 = app.post("/api/v1/videos", json!({"center": "second_center", "sha256": "a".repeat(64)})).await.body["id"].as_i64().unwrap();
    let v3 = app.post("/api/v1/videos", json!({"center": "demo_center", "sha256": "b".repeat(64)})).await.body["id"].as_i64().unwrap();
    let r1 = app.post("/api/v1/reports", json!({"center": "demo_center", "sha256": "c".repeat(64)})).await.body["id"].as_i64().unwrap();
    let r2 = app.post("/api/v1/reports", json!({"center": "second_center", "sha256": "d".repeat(64)})).await.body["id"].as_i64().unwrap();
    let r = app
        .call(
            Some(Role::Admin),
            Method::POST,
            &format!("/api/v1/videos/{v3}/state"),
            Some(json!({"state": "failed", "detail": "unreadable"})),
            Some("\"1\""),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    set_received(&app, "video", v1, "2025-01-10T08:00:00Z").await;
    set_received(&app, "video", v2, "2025-01-11T08:00:00Z").await;
    set_received(&app, "video", v3, "2025-01-12T23:59:59Z").await;
    set_received(&app, "report_document", r1, "2025-01-12T09:00:00Z").await;
    set_received(&app, "report_document", r2, "2025-01-13T00:00:00Z").await;

    // Everything, newest first, with the counts by kind and state and the upload's job.
    let all = app.call(Some(Role::Researcher), Method::GET, "/api/v1/worklist", None, None).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    let v = |id| ("video".to_owned(), id);
    let rp = |id| ("report".to_owned(), id);
    assert_eq!(ids(&all.body), vec![rp(r2), v(v3), rp(r1), v(v2), v(v1)]);
    assert_eq!(all.body["total"], 5);
    let counts: Vec<(String, String, i64)> = all.body["states"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["kind"].as_str().unwrap().to_owned(), s["state"].as_str().unwrap().to_owned(), s["count"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        counts,
        vec![("video".into(), "failed".into(), 1), ("video".into(), "uploaded".into(), 2), ("report".into(), "uploaded".into(), 2)]
    );
    let first_video = all.body["items"].as_array().unwrap().iter().find(|i| i["id"] == v1 && i["kind"] == "video").unwrap();
    assert_eq!(first_video["job"]["kind"], "process_video");
    assert_eq!(first_video["job"]["state"], "queued");
    assert_eq!(first_video["processor"], "olympus_cv_1500");
    let failed = all.body["items"].as_array().unwrap().iter().find(|i| i["id"] == v3 && i["kind"] == "video").unwrap();
    assert_eq!((failed["state"].as_str(), failed["state_detail"].as_str()), (Some("failed"), Some("unreadable")));

    // Filters: kind, center, state, days (inclusive, UTC), and together; the counts ignore only the state.
    let get = |q: &str| {
        let path = format!("/api/v1/worklist?{q}");
        let app = &app;
        async move { app.call(Some(Role::Annotator), Method::GET, &path, None, None).await }
    };
    assert_eq!(ids(&get("kind=report").await.body), vec![rp(r2), rp(r1)]);
    assert_eq!(ids(&get("center=second_center").await.body), vec![rp(r2), v(v2)]);
    let uploaded = get("state=uploaded").await;
    assert_eq!(ids(&uploaded.body), vec![rp(r2), rp(r1), v(v2), v(v1)]);
    assert_eq!(uploaded.body["total"], 4);
    assert_eq!(uploaded.body["states"].as_array().unwrap().len(), 3, "counts of every state, for the filter chips");
    assert_eq!(ids(&get("received_from=2025-01-11&received_to=2025-01-12").await.body), vec![v(v3), rp(r1), v(v2)]);
    assert_eq!(ids(&get("kind=video&center=demo_center&state=failed").await.body), vec![v(v3)]);
    assert_eq!(ids(&get("kind=video&state=failed&center=second_center").await.body), Vec::<(String, i64)>::new());
    // Pages.
    let p1 = get("per_page=2").await;
    let p3 = get("per_page=2&page=3").await;
    assert_eq!((ids(&p1.body), ids(&p3.body)), (vec![rp(r2), v(v3)], vec![v(v1)]));
    assert_eq!((p3.body["total"].as_i64(), p3.body["page"].as_i64(), p3.body["per_page"].as_i64()), (Some(5), Some(3), Some(2)));
    assert_eq!(ids(&get("per_page=2&page=4").await.body), Vec::<(String, i64)>::new());

    // Bad filters are named.
    for (q, pointer, status) in [
        ("kind=image", "/kind", StatusCode::UNPROCESSABLE_ENTITY),
        ("state=done", "/state", StatusCode::UNPROCESSABLE_ENTITY),
        ("kind=report&state=predicted", "/state", StatusCode::UNPROCESSABLE_ENTITY),
        ("received_from=2025-02-01&received_to=2025-01-01", "/received_to", StatusCode::UNPROCESSABLE_ENTITY),
        ("per_page=0", "/per_page", StatusCode::UNPROCESSABLE_ENTITY),
        ("page=0", "/page", StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let r = get(q).await;
        assert_eq!(r.status, status, "{q}: {}", r.body);
        assert!(r.body["errors"].as_array().unwrap().iter().any(|e| e["pointer"] == pointer), "{q}: {}", r.body);
    }
    assert_eq!(get("received_from=yesterday").await.status, StatusCode::BAD_REQUEST);
    assert_eq!(get("sort=id").await.status, StatusCode::BAD_REQUEST);
}

async fn ten_thousand_videos_are_paged_on_the_server(app: TestApp) {
    let center: (i64,) = app.db.fetch_one("SELECT id FROM center WHERE name = 'demo_center'", vec![]).await.unwrap();
    let now = chrono::Utc::now();
    let mut tx = app.db.begin().await.unwrap();
    for i in 0..10_000i64 {
        let sha = format!("{i:064x}");
        let at = now - chrono::Duration::seconds(i);
        tx.execute(
            "INSERT INTO video (center_id, sha256, state, state_changed_at, version, created_at, updated_at) VALUES ($1, $2, $3, $4, 1, $4, $4)",
            params![center.0, sha, if i % 10 == 0 { "failed" } else { "predicted" }, at],
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let started = std::time::Instant::now();
    let first = app.call(Some(Role::Researcher), Method::GET, "/api/v1/worklist?per_page=50", None, None).await;
    let took = started.elapsed();
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body["total"], 10_000);
    assert_eq!(first.body["items"].as_array().unwrap().len(), 50);
    assert_eq!(first.body["items"][0]["id"], 1, "the newest first");
    let last = app.call(Some(Role::Researcher), Method::GET, "/api/v1/worklist?per_page=50&page=200", None, None).await;
    assert_eq!(last.body["items"].as_array().unwrap().len(), 50);
    assert_eq!(last.body["items"][49]["id"], 10_000, "the oldest last");
    let failed = app.call(Some(Role::Researcher), Method::GET, "/api/v1/worklist?state=failed&per_page=500", None, None).await;
    assert_eq!((failed.body["total"].as_i64(), failed.body["items"].as_array().unwrap().len()), (Some(1_000), 500));
    eprintln!("worklist of 10,000 videos ({:?}): first page in {took:?}", app.backend);
}
