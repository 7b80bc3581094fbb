//! The job queue through the API: leases, heartbeats, retries with back-off, final failure of the job
//! and its medium, recovery of abandoned leases, parallel claims that never hand one job out twice.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use endoreg_common::access::{Permission, Role};
use endoreg_common::api::TokenCreate;
use endoreg_registry::db::exec::Param;

use crate::backends;
use crate::support::TestApp;

backends!(a_job_moves_through_its_life, abandoned_leases_are_recovered_and_parallel_claims_are_exclusive);

async fn upload_video(app: &TestApp, seed: u8) -> Value {
    let mut file = vec![0, 0, 0, 0x20];
    file.extend_from_slice(b"ftypisom\0\0\x02\0isomiso2mp41");
    file.extend(std::iter::repeat_n(seed, 1000));
    let meta = json!({"center": "demo_center", "processor": "pentax_epk_i7010", "identity": {"patient_last_name": format!("Name{seed}")}});
    let r = app.upload(Role::Service, &meta, &file).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body
}

async fn post(app: &TestApp, role: Role, path: &str, body: Value) -> crate::support::Response {
    app.call(Some(role), Method::POST, path, Some(body), None).await
}

fn claim(worker: &str, lease: i64) -> Value {
    json!({"worker": worker, "kinds": ["process_video"], "lease_secs": lease})
}

async fn a_job_moves_through_its_life(app: TestApp) {
    let up = upload_video(&app, 1).await;
    let job_id = up["job"]["id"].as_i64().unwrap();
    let video_id = up["video"]["id"].as_i64().unwrap();
    // Only workers (and admins) claim.
    assert_eq!(post(&app, Role::DataManager, "/api/v1/jobs/claim", claim("w1", 60)).await.status, StatusCode::FORBIDDEN);
    let r = post(&app, Role::Service, "/api/v1/jobs/claim", json!({"worker": "w1", "kinds": ["bake_bread"], "lease_secs": 60})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = post(&app, Role::Service, "/api/v1/jobs/claim", claim("w1", 60)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["id"], job_id);
    assert_eq!(r.body["state"], "running");
    assert_eq!(r.body["attempts"], 1);
    // Nothing else to do; another worker's heartbeat or completion is refused.
    assert_eq!(post(&app, Role::Service, "/api/v1/jobs/claim", claim("w2", 60)).await.status, StatusCode::NO_CONTENT);
    let r = post(&app, Role::Service, &format!("/api/v1/jobs/{job_id}/heartbeat"), json!({"worker": "w2", "lease_secs": 60})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = post(&app, Role::Service, &format!("/api/v1/jobs/{job_id}/heartbeat"), json!({"worker": "w1", "lease_secs": 120})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // The worker may read the medium's identity (names to remove), and record what it found.
    let who = app.call(Some(Role::Service), Method::GET, &format!("/api/v1/jobs/{job_id}/identity?worker=w1"), None, None).await;
    assert_eq!(who.status, StatusCode::OK, "{}", who.body);
    assert_eq!(who.body["patient_last_name"], "Name1");
    // A worker that stops mid-job gives it back: queued again at once, the attempt not counted, and
    // only the lease holder may do that.
    let release = json!({"worker": "w1", "outcome": "released"});
    let r = post(&app, Role::Service, &format!("/api/v1/jobs/{job_id}/complete"), json!({"worker": "w2", "outcome": "released"})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    let r = post(&app, Role::Service, &format!("/api/v1/jobs/{job_id}/complete"), release.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["state"], "queued");
    assert_eq!(r.body["attempts"], 0);
    assert_eq!(r.body["lease_owner"], Value::Null);
    assert_eq!(post(&app, Role::Service, &format!("/api/v1/jobs/{job_id}/complete"), release).await.status, StatusCode::CONFLICT);
    let r = post(&app, Role::Service, "/api/v1/jobs/claim", claim("w1", 60)).await;
    assert_eq!(r.status, StatusCode::OK, "released work is claimable at once: {}", r.body);
    assert_eq!(r.body["attempts"], 1);
    let r = post(&app, Role::Service, &format!("/api/v1/jobs/{job_id}/complete"), json!({"worker": "w1", "outcome": "abandoned"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.to_string().contains("`released`"), "{}", r.body);
    // A transient failure is retried later, not now.
    let r = post(
        &app,
        Role::Service,
        &format!("/api/v1/jobs/{job_id}/complete"),
        json!({"worker": "w1", "outcome": "failed", "error": "storage timed out", "retry": true}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["state"], "queued");
    assert_eq!(r.body["last_error"], "storage timed out");
    assert_eq!(post(&app, Role::Service, "/api/v1/jobs/claim", claim("w1", 60)).await.status, StatusCode::NO_CONTENT);
    app.db.execute("UPDATE job SET run_after = $1", vec![Param::from(chrono::Utc::now() - chrono::Duration::seconds(1))]).await.unwrap();
    let r = post(&app, Role::Service, "/api/v1/jobs/claim", claim("w2", 60)).await;
    assert_eq!(r.body["attempts"], 2);
    // A permanent failure ends the job and fails the video with the reason.
    let r = post(
        &app,
        Role::Service,
        &format!("/api/v1/jobs/{job_id}/complete"),
        json!({"worker": "w2", "outcome": "failed", "error": "not a video: no video stream", "retry": false}),
    )
    .await;
    assert_eq!(r.body["state"], "failed");
    let v = app.get(&format!("/api/v1/videos/{video_id}")).await;
    assert_eq!(v.body["state"], "failed");
    assert_eq!(v.body["state_detail"], "not a video: no video stream");
    // A data manager retries it after fixing the cause: the video starts over.
    let r = post(&app, Role::DataManager, &format!("/api/v1/jobs/{job_id}/retry"), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["state"], "queued");
    assert_eq!(r.body["attempts"], 0);
    assert_eq!(app.get(&format!("/api/v1/videos/{video_id}")).await.body["state"], "uploaded");
    let r = post(&app, Role::Service, "/api/v1/jobs/claim", claim("w3", 60)).await;
    let r = post(&app, Role::Service, &format!("/api/v1/jobs/{}/complete", r.body["id"]), json!({"worker": "w3", "outcome": "succeeded"}))
        .await;
    assert_eq!(r.body["state"], "succeeded");
    let list = app.get("/api/v1/jobs?state=succeeded").await;
    assert_eq!(list.body["total"], 1);
}

async fn abandoned_leases_are_recovered_and_parallel_claims_are_exclusive(app: TestApp) {
    let mut jobs = Vec::new();
    for seed in 1..=6 {
        jobs.push(upload_video(&app, seed).await["job"]["id"].as_i64().unwrap());
    }
    // Eight workers claim at once: six get distinct jobs, two get none.
    let mut tasks = Vec::new();
    for w in 0..8 {
        let router = app.router.clone();
        let token = app.tokens[&Role::Service].clone();
        tasks.push(tokio::spawn(async move {
            use tower::ServiceExt;
            let req = axum::http::Request::builder()
                .method(Method::POST)
                .uri("/api/v1/jobs/claim")
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .body(axum::body::Body::from(claim(&format!("w{w}"), 30).to_string()))
                .unwrap();
            let res = router.oneshot(req).await.unwrap();
            let status = res.status();
            let bytes = http_body_util::BodyExt::collect(res.into_body()).await.unwrap().to_bytes();
            (status, serde_json::from_slice::<Value>(&bytes).ok())
        }));
    }
    let mut claimed = Vec::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            StatusCode::OK => claimed.push(body.unwrap()["id"].as_i64().unwrap()),
            StatusCode::NO_CONTENT => {}
            other => panic!("claim answered {other}"),
        }
    }
    claimed.sort();
    assert_eq!(claimed, jobs, "every job claimed exactly once");
    // A worker that vanished: its lease expires and the job is claimed again.
    app.db
        .execute(
            "UPDATE job SET lease_expires_at = $1 WHERE id = $2",
            vec![Param::from(chrono::Utc::now() - chrono::Duration::seconds(5)), Param::from(jobs[0])],
        )
        .await
        .unwrap();
    let r = post(&app, Role::Service, "/api/v1/jobs/claim", claim("rescuer", 30)).await;
    assert_eq!(r.body["id"], jobs[0]);
    assert_eq!(r.body["attempts"], 2);
    assert_eq!(r.body["lease_owner"], "rescuer");
    // With no attempts left, an abandoned job fails (and its video) instead of being claimed again.
    app.db
        .execute(
            "UPDATE job SET lease_expires_at = $1, max_attempts = 2 WHERE id = $2",
            vec![Param::from(chrono::Utc::now() - chrono::Duration::seconds(5)), Param::from(jobs[0])],
        )
        .await
        .unwrap();
    let r = post(&app, Role::Service, "/api/v1/jobs/claim", claim("late", 30)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let job = app.get(&format!("/api/v1/jobs/{}", jobs[0])).await;
    assert_eq!(job.body["state"], "failed");
    assert!(job.body["last_error"].as_str().unwrap().contains("lease expired"));
    let video = app.get(&format!("/api/v1/videos/{}", job.body["video_id"])).await;
    assert_eq!(video.body["state"], "failed");
}

backends!(predictions_replace_a_model_versions_segments_and_follow_processing);

async fn predictions_replace_a_model_versions_segments_and_follow_processing(app: TestApp) {
    let up = upload_video(&app, 9).await;
    let video = up["video"]["id"].as_i64().unwrap();
    // The media worker processes the video; when its job succeeds, a prediction job is queued.
    let job = post(&app, Role::Service, "/api/v1/jobs/claim", claim("media", 60)).await;
    for (state, v) in [("probed", 1), ("anonymised", 2), ("frames_extracted", 3)] {
        let r = app
            .call(
                Some(Role::Service),
                Method::POST,
                &format!("/api/v1/videos/{video}/state"),
                Some(json!({"state": state})),
                Some(&format!("\"{v}\"")),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let r = app
        .call(
            Some(Role::Service),
            Method::PATCH,
            &format!("/api/v1/videos/{video}"),
            Some(json!({"metadata": {"frame_count": 500, "fps": 25.0, "width": 960, "height": 540}})),
            Some("\"4\""),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    post(&app, Role::Service, &format!("/api/v1/jobs/{}/complete", job.body["id"]), json!({"worker": "media", "outcome": "succeeded"}))
        .await;
    let predict =
        post(&app, Role::Service, "/api/v1/jobs/claim", json!({"worker": "gpu", "kinds": ["predict_video"], "lease_secs": 60})).await;
    assert_eq!(predict.status, StatusCode::OK, "a prediction job follows processing");
    assert_eq!(predict.body["video_id"], video);
    assert!(predict.body["ai_model_version_id"].is_null());

    // The inference worker registers its model version (idempotently) and records predictions.
    let mv = json!({"model": "colonoscopy_multilabel_classifier", "version": "demo-1", "label_set": "multilabel_classification_colonoscopy", "metadata": {"input": 128}});
    let v1 = post(&app, Role::Service, "/api/v1/ai-model-versions", mv.clone()).await;
    assert_eq!(v1.status, StatusCode::OK, "{}", v1.body);
    let v2 = post(&app, Role::Service, "/api/v1/ai-model-versions", mv).await;
    assert_eq!(v1.body["id"], v2.body["id"]);
    let mv_id = v1.body["id"].as_i64().unwrap();
    let labels = ["outside", "polyp", "nbi"];
    let key = endoreg_common::storage::keys::predictions(up["video"]["sha256"].as_str().unwrap(), mv_id);
    let record =
        |segments: serde_json::Value| json!({"storage_key": key, "frame_count": 500, "step": 1, "labels": labels, "segments": segments});
    let path = format!("/api/v1/videos/{video}/predictions/{mv_id}");
    let r = app
        .call(
            Some(Role::Service),
            Method::PUT,
            &path,
            Some(record(
                json!([{"label": "outside", "start_frame": 0, "end_frame": 74}, {"label": "polyp", "start_frame": 200, "end_frame": 260}]),
            )),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["segments"], 2);
    // Running again replaces, never duplicates.
    let r = app
        .call(Some(Role::Service), Method::PUT, &path, Some(record(json!([{"label": "nbi", "start_frame": 300, "end_frame": 350}]))), None)
        .await;
    assert_eq!(r.body["segments"], 1);
    let segs = app.get(&format!("/api/v1/videos/{video}/segments")).await;
    let labels_now: Vec<&str> = segs.body.as_array().unwrap().iter().map(|s| s["label"].as_str().unwrap()).collect();
    assert_eq!(labels_now, ["nbi"]);
    assert_eq!(segs.body[0]["source"], "prediction");
    assert_eq!(segs.body[0]["model_version_id"], mv_id);
    // Manual segments of annotators are not touched by model runs.
    let manual = app
        .post(
            &format!("/api/v1/videos/{video}/segments"),
            json!({"label": "polyp", "start_frame": 10, "end_frame": 20, "source": "annotation"}),
        )
        .await;
    assert_eq!(manual.status, StatusCode::CREATED);
    app.call(Some(Role::Service), Method::PUT, &path, Some(record(json!([]))), None).await;
    assert_eq!(app.get(&format!("/api/v1/videos/{video}/segments")).await.body.as_array().unwrap().len(), 1);
    // Bad predictions are refused whole.
    let r = app
        .call(
            Some(Role::Service),
            Method::PUT,
            &path,
            Some(record(
                json!([{"label": "unicorn", "start_frame": 0, "end_frame": 1}, {"label": "nbi", "start_frame": 0, "end_frame": 900}]),
            )),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let preds = app.get(&format!("/api/v1/videos/{video}/predictions")).await;
    assert_eq!(preds.body[0]["labels"], json!(labels));
    // A data manager asks for a prediction by a specific version; unknown versions are refused.
    let r = post(&app, Role::DataManager, &format!("/api/v1/videos/{video}/predict"), json!({"model_version_id": mv_id})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["ai_model_version_id"], mv_id);
    let r = post(&app, Role::DataManager, &format!("/api/v1/videos/{video}/predict"), json!({"model_version_id": 999})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    // A failed prediction leaves the video alone.
    let r = post(
        &app,
        Role::Service,
        &format!("/api/v1/jobs/{}/complete", predict.body["id"]),
        json!({"worker": "gpu", "outcome": "failed", "error": "model file missing", "retry": false}),
    )
    .await;
    assert_eq!(r.body["state"], "failed");
    assert_eq!(app.get(&format!("/api/v1/videos/{video}")).await.body["state"], "frames_extracted");
}

backends!(
    a_lease_belongs_to_the_token_that_claimed_it,
    only_the_lease_holder_of_a_running_processing_job_reads_its_identity,
    lease_owners_are_shown_only_to_roles_that_process_jobs
);

/// A second service token, as another worker (or anyone holding a service token) would have.
async fn other_service_token(app: &TestApp) -> String {
    let input = TokenCreate { name: "another worker".into(), role: Role::Service, expires_in_days: None };
    endoreg_registry::service::tokens::create(&app.db, &input).await.unwrap().token
}

async fn a_lease_belongs_to_the_token_that_claimed_it(app: TestApp) {
    let up = upload_video(&app, 3).await;
    let job_id = up["job"]["id"].as_i64().unwrap();
    let r = post(&app, Role::Service, "/api/v1/jobs/claim", claim("w1", 60)).await;
    assert_eq!(r.body["id"], job_id, "{}", r.body);
    let other = other_service_token(&app).await;
    let admin = app.tokens[&Role::Admin].clone();
    // The same worker name from another token is not the lease holder: refused, and nothing changes.
    for token in [&other, &admin] {
        let hb = app
            .call_with(
                Some(token),
                Method::POST,
                &format!("/api/v1/jobs/{job_id}/heartbeat"),
                Some(json!({"worker": "w1", "lease_secs": 600})),
                None,
            )
            .await;
        assert_eq!(hb.status, StatusCode::CONFLICT, "{}", hb.body);
        assert!(hb.body["detail"].as_str().unwrap().contains("leased to another worker"), "{}", hb.body);
        let failed = json!({"worker": "w1", "outcome": "failed", "error": "Mustermann was here", "retry": false});
        let done = app.call_with(Some(token), Method::POST, &format!("/api/v1/jobs/{job_id}/complete"), Some(failed), None).await;
        assert_eq!(done.status, StatusCode::CONFLICT, "{}", done.body);
        let released = json!({"worker": "w1", "outcome": "released"});
        let done = app.call_with(Some(token), Method::POST, &format!("/api/v1/jobs/{job_id}/complete"), Some(released), None).await;
        assert_eq!(done.status, StatusCode::CONFLICT, "{}", done.body);
    }
    let job = app.get(&format!("/api/v1/jobs/{job_id}")).await;
    assert_eq!(job.body["state"], "running");
    assert_eq!(job.body["attempts"], 1);
    assert_eq!(job.body["last_error"], Value::Null);
    assert_eq!(job.body["lease_owner"], "w1");
    // Its holder still renews and completes it.
    let hb = post(&app, Role::Service, &format!("/api/v1/jobs/{job_id}/heartbeat"), json!({"worker": "w1", "lease_secs": 60})).await;
    assert_eq!(hb.status, StatusCode::OK, "{}", hb.body);
    let done = post(&app, Role::Service, &format!("/api/v1/jobs/{job_id}/complete"), json!({"worker": "w1", "outcome": "succeeded"})).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(done.body["state"], "succeeded");
    // A lease taken over after it expired belongs to the new claimant's token: the first token's name
    // no longer opens it.
    let up = upload_video(&app, 4).await;
    let job_id = up["job"]["id"].as_i64().unwrap();
    post(&app, Role::Service, "/api/v1/jobs/claim", claim("w1", 30)).await;
    app.db
        .execute(
            "UPDATE job SET lease_expires_at = $1 WHERE id = $2",
            vec![Param::from(chrono::Utc::now() - chrono::Duration::seconds(5)), Param::from(job_id)],
        )
        .await
        .unwrap();
    let r = app.call_with(Some(&other), Method::POST, "/api/v1/jobs/claim", Some(claim("w1", 30)), None).await;
    assert_eq!(r.body["id"], job_id, "{}", r.body);
    let hb = post(&app, Role::Service, &format!("/api/v1/jobs/{job_id}/heartbeat"), json!({"worker": "w1", "lease_secs": 60})).await;
    assert_eq!(hb.status, StatusCode::CONFLICT, "{}", hb.body);
    let hb = app
        .call_with(
            Some(&other),
            Method::POST,
            &format!("/api/v1/jobs/{job_id}/heartbeat"),
            Some(json!({"worker": "w1", "lease_secs": 60})),
            None,
        )
        .await;
    assert_eq!(hb.status, StatusCode::OK, "{}", hb.body);
}

async fn only_the_lease_holder_of_a_running_processing_job_reads_its_identity(app: TestApp) {
    let up = upload_video(&app, 5).await;
    let job_id = up["job"]["id"].as_i64().unwrap();
    let identity = format!("/api/v1/jobs/{job_id}/identity?worker=w1");
    let found = json!({"examiner": "Dr. Beispiel"});
    // Queued: nobody holds it, nobody reads or writes its identity.
    let r = app.call(Some(Role::Service), Method::GET, &identity, None, None).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(!r.body.to_string().contains("Name5"), "{}", r.body);
    assert!(r.body["detail"].as_str().unwrap().contains("queued, not running"), "{}", r.body);
    let r = app.call(Some(Role::Service), Method::PUT, &identity, Some(found.clone()), None).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    let r = post(&app, Role::Service, "/api/v1/jobs/claim", claim("w1", 60)).await;
    assert_eq!(r.body["id"], job_id, "{}", r.body);
    // Running: another token with the holder's name, or the holder's token with another name, is refused.
    let other = other_service_token(&app).await;
    for (token, path) in [
        (other.as_str(), identity.clone()),
        (app.tokens[&Role::Admin].as_str(), identity.clone()),
        (app.tokens[&Role::Service].as_str(), format!("/api/v1/jobs/{job_id}/identity?worker=w2")),
    ] {
        let r = app.call_with(Some(token), Method::GET, &path, None, None).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "GET {path}: {}", r.body);
        assert!(!r.body.to_string().contains("Name5"), "{}", r.body);
        let r = app.call_with(Some(token), Method::PUT, &path, Some(found.clone()), None).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "PUT {path}: {}", r.body);
    }
    let who = app.call(Some(Role::DataManager), Method::GET, &format!("/api/v1/videos/{}/identity", up["video"]["id"]), None, None).await;
    assert_eq!(who.body["examiner"], Value::Null, "nothing was written by those refused: {}", who.body);
    // The worker name is required and checked like a claim's.
    let r = app.call(Some(Role::Service), Method::GET, &format!("/api/v1/jobs/{job_id}/identity"), None, None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body["detail"].as_str().unwrap().contains("worker"), "{}", r.body);
    let r = app.call(Some(Role::Service), Method::GET, &format!("/api/v1/jobs/{job_id}/identity?worker=%20"), None, None).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.body["errors"][0]["pointer"], "/worker", "{}", r.body);
    // The holder reads and adds to it.
    let r = app.call(Some(Role::Service), Method::GET, &identity, None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["patient_last_name"], "Name5");
    let r = app.call(Some(Role::Service), Method::PUT, &identity, Some(found), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["examiner"], "Dr. Beispiel");
    // Finished: the lease is over, and so is the access.
    post(&app, Role::Service, &format!("/api/v1/jobs/{job_id}/complete"), json!({"worker": "w1", "outcome": "succeeded"})).await;
    let r = app.call(Some(Role::Service), Method::GET, &identity, None, None).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    // A prediction job (queued by the processing job's success) works on the anonymised video: its
    // holder reads no names.
    let predict =
        post(&app, Role::Service, "/api/v1/jobs/claim", json!({"worker": "gpu", "kinds": ["predict_video"], "lease_secs": 60})).await;
    assert_eq!(predict.status, StatusCode::OK, "{}", predict.body);
    let r =
        app.call(Some(Role::Service), Method::GET, &format!("/api/v1/jobs/{}/identity?worker=gpu", predict.body["id"]), None, None).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(!r.body.to_string().contains("Name5"), "{}", r.body);
}

async fn lease_owners_are_shown_only_to_roles_that_process_jobs(app: TestApp) {
    let up = upload_video(&app, 6).await;
    let job_id = up["job"]["id"].as_i64().unwrap();
    post(&app, Role::Service, "/api/v1/jobs/claim", claim("ward-7-host-4711", 60)).await;
    for role in Role::ALL {
        let one = app.call(Some(role), Method::GET, &format!("/api/v1/jobs/{job_id}"), None, None).await;
        let list = app.call(Some(role), Method::GET, "/api/v1/jobs", None, None).await;
        assert_eq!(one.status, StatusCode::OK, "{role}: {}", one.body);
        assert_eq!(list.body["items"][0]["id"], job_id, "{role}: {}", list.body);
        let expected = if role.allows(Permission::ProcessJobs) { json!("ward-7-host-4711") } else { Value::Null };
        assert_eq!(one.body["lease_owner"], expected, "{role}: {}", one.body);
        assert_eq!(list.body["items"][0]["lease_owner"], expected, "{role}: {}", list.body);
        assert!(one.body.get("lease_token_id").is_none(), "the token is never shown: {}", one.body);
    }
    for role in [Role::Researcher, Role::Annotator, Role::DataManager] {
        assert!(!role.allows(Permission::ProcessJobs), "{role} does not process jobs");
    }
}
