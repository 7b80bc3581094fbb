//! The web app in headless Chromium against a real registry with the demo video processed by the real
//! media worker: sign in, the worklist (with live progress of an upload made in the browser), the video
//! page (streaming, seeking, the timeline checked against the database, adding, moving, splitting and
//! deleting a segment with mouse and keyboard, a conflict with another client), the report page, the
//! patient pages, and every role's view of every page. Screenshots go to target/web-screenshots/.
//!
//! One test, its steps in order: each step builds on the state the previous ones left (a browser and a
//! processed video are the expensive part), and its assertion messages name the step.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test reports failure

use reqwest::Method;
use serde_json::{Value, json};

use endoreg_common::access::Role;
use endoreg_web_tests::{Browser, Registry};

const RIGHT: &str = "\u{E014}";
const DELETE: &str = "\u{E017}";

/// The segments the database holds for `video`, by id.
async fn stored(reg: &Registry, video: i64) -> std::collections::BTreeMap<i64, Value> {
    let (status, body) = reg.api(Role::Admin, Method::GET, &format!("/api/v1/videos/{video}/segments"), None, None).await;
    assert_eq!(status, 200, "{body}");
    body.as_array().unwrap().iter().map(|s| (s["id"].as_i64().unwrap(), s.clone())).collect()
}

/// Every segment element of the timeline with its data and its box relative to the timeline's track.
async fn rendered(b: &Browser) -> (f64, Vec<Value>) {
    let v = b
        .script(
            "const inner = document.querySelector('.tl-inner').getBoundingClientRect();
             const segs = [...document.querySelectorAll('#timeline .seg')].map((e) => { const r = e.getBoundingClientRect();
               return { id: +e.dataset.id, start: +e.dataset.start, end: +e.dataset.end, label: e.dataset.label,
                        model: e.classList.contains('model'), row: e.parentElement.dataset.row, lane: e.parentElement.dataset.label,
                        left: r.left - inner.left, width: r.width, x: r.left + r.width / 2, y: r.top + r.height / 2 }; });
             return [inner.width, segs];",
            vec![],
        )
        .await;
    (v[0].as_f64().unwrap(), v[1].as_array().unwrap().clone())
}

/// The timeline shows exactly the database's segments, each in its label's lane and its source's row, at
/// the position and width its frames give (within a pixel; very short ones have a minimum width).
async fn check_timeline_against_database(b: &Browser, reg: &Registry, video: i64, frames: f64) {
    let db = stored(reg, video).await;
    let (width, segs) = rendered(b).await;
    let ids: std::collections::BTreeSet<i64> = segs.iter().map(|s| s["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, db.keys().copied().collect(), "timeline: the segments on screen are the database's");
    for s in &segs {
        let d = &db[&s["id"].as_i64().unwrap()];
        let (start, end) = (d["start_frame"].as_f64().unwrap(), d["end_frame"].as_f64().unwrap());
        assert_eq!(s["start"].as_f64().unwrap(), start, "timeline: start of {d}");
        assert_eq!(s["end"].as_f64().unwrap(), end, "timeline: end of {d}");
        assert_eq!(s["lane"], d["label"], "timeline: lane of {d}");
        let model = !d["model_version_id"].is_null();
        assert_eq!(s["model"].as_bool().unwrap(), model, "timeline: kind of {d}");
        assert_eq!(s["row"], if model { "model" } else { "annotation" }, "timeline: row of {d}");
        let left = start / frames * width;
        let w = ((end + 1.0 - start) / frames * width).max(2.0);
        assert!((s["left"].as_f64().unwrap() - left).abs() <= 1.0, "timeline: {d} at x={} px, expected {left:.1}", s["left"]);
        assert!((s["width"].as_f64().unwrap() - w).abs() <= 1.0, "timeline: {d} {} px wide, expected {w:.1}", s["width"]);
    }
}

async fn wait_for_version(reg: &Registry, segment: i64, version: i64) -> Value {
    for _ in 0..400 {
        let (status, body) = reg.api(Role::Admin, Method::GET, &format!("/api/v1/segments/{segment}"), None, None).await;
        if status == 200 && body["version"].as_i64() == Some(version) {
            return body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("segment {segment} never reached version {version}");
}

async fn seg_element(b: &Browser, id: i64) -> Value {
    let (_, segs) = rendered(b).await;
    segs.into_iter().find(|s| s["id"].as_i64() == Some(id)).unwrap_or_else(|| panic!("segment {id} is not on the timeline"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_app_in_a_real_browser() {
    let started = std::time::Instant::now();
    let reg = Registry::start().await;
    let worker = reg.media_worker().await;
    let video = reg.process_demo_video(&worker, 150).await;
    let (vid, frames) = (video.id, video.metadata.frame_count.unwrap() as f64);
    let fps = video.metadata.fps.unwrap();

    // The model's segments (as the inference worker records them) and one of an annotator.
    let (_, mv) = reg
        .api(
            Role::Service,
            Method::POST,
            "/api/v1/ai-model-versions",
            Some(json!({"model": "colonoscopy_multilabel_classifier", "version": "web-test",
            "label_set": "multilabel_classification_colonoscopy", "metadata": {}})),
            None,
        )
        .await;
    let mv = mv["id"].as_i64().unwrap();
    let prediction = json!({"storage_key": endoreg_common::storage::keys::predictions(&video.sha256, mv), "frame_count": frames as i64, "step": 1,
        "labels": ["outside", "polyp"], "segments": [{"label": "outside", "start_frame": 0, "end_frame": 19}, {"label": "polyp", "start_frame": 60, "end_frame": 109}]});
    let (status, body) =
        reg.api(Role::Service, Method::PUT, &format!("/api/v1/videos/{vid}/predictions/{mv}"), Some(prediction), None).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = reg
        .api(
            Role::Annotator,
            Method::POST,
            &format!("/api/v1/videos/{vid}/segments"),
            Some(json!({"label": "polyp", "start_frame": 70, "end_frame": 99, "source": "annotation"})),
            None,
        )
        .await;
    assert_eq!(status, 201, "{body}");

    // Every answer of the app carries the security headers.
    let res = reg.http.get(format!("{}/", reg.url)).send().await.unwrap();
    let h = res.headers();
    assert_eq!(h["content-security-policy"], endoreg_registry::http::web::CONTENT_SECURITY_POLICY);
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));

    let b = Browser::start().await;
    let app = reg.url.as_str();

    // 1. Sign in. The token goes nowhere but the sign-in request: not into the URL, not into storage;
    //    the session cookie is HttpOnly, Secure, SameSite=Strict.
    b.goto(&format!("{app}/")).await;
    b.wait("#sign-in #token").await;
    assert!(
        b.script("return location.hash", vec![]).await.as_str().unwrap().starts_with("#/sign-in"),
        "sign-in: anonymous visitors are sent to it"
    );
    b.screenshot("1-sign-in").await;
    let field = b.wait("#token").await;
    b.type_into(&field, "endoreg_wrong").await;
    b.click(&b.wait("#sign-in button[type=submit]").await).await;
    b.wait_until("document.querySelector('#sign-in-error').textContent.includes('unknown, revoked or expired')").await;
    let annotator = reg.tokens[&Role::Annotator].clone();
    b.sign_in(app, &annotator).await;
    let leaks = b
        .script("return [location.href, JSON.stringify(localStorage), JSON.stringify(sessionStorage), document.cookie, document.querySelector('#token')?.value || ''].join(' ');", vec![])
        .await;
    assert!(!leaks.as_str().unwrap().contains(&annotator[8..]), "sign-in: the token leaked: {leaks}");
    let cookies = b.cookies().await;
    let session = cookies.iter().find(|c| c["name"] == "endoreg_session").expect("sign-in: the session cookie is set");
    assert_eq!(
        (session["httpOnly"].as_bool(), session["secure"].as_bool(), session["sameSite"].as_str()),
        (Some(true), Some(true), Some("Strict")),
        "{session}"
    );
    assert_eq!(session["path"], "/");

    // 2. The worklist shows the processed video, with its picture.
    b.wait(&format!("#worklist-rows tr[data-kind=video][data-id='{vid}']")).await;
    b.wait_until(&format!("document.querySelector(\"tr[data-id='{vid}'] img.thumb\")?.naturalWidth > 0")).await;
    let state = b.text(&b.wait(&format!("tr[data-id='{vid}'] .state")).await).await;
    assert_eq!(state, "frames extracted", "worklist: the video's state");
    b.screenshot("2-worklist").await;

    // 3. The video page: the anonymised video plays from the registry in ranges (so it is seekable), the
    //    timeline shows the database's segments in their lanes and rows.
    b.click(&b.wait(&format!("tr[data-id='{vid}'] a.item")).await).await;
    b.wait("#player").await;
    b.wait_until("document.querySelector('#player').readyState >= 1").await;
    let seekable = b
        .script("const p = document.querySelector('#player'); return [p.duration, p.seekable.length ? p.seekable.end(0) : 0];", vec![])
        .await;
    let duration = seekable[0].as_f64().unwrap();
    assert!((duration - frames / fps).abs() < 0.2, "video: duration {duration} s for {frames} frames");
    assert!(seekable[1].as_f64().unwrap() > duration - 0.2, "video: the whole video is seekable (ranged requests): {seekable}");
    b.wait("#timeline .seg").await;
    check_timeline_against_database(&b, &reg, vid, frames).await;

    // 4. Seek by clicking the timeline's ruler at 75 %.
    let ruler = b
        .script("const r = document.querySelector('.tl-ruler').getBoundingClientRect(); return [r.left, r.top, r.width, r.height];", vec![])
        .await;
    let (rx, ry, rw) = (ruler[0].as_f64().unwrap(), ruler[1].as_f64().unwrap(), ruler[2].as_f64().unwrap());
    b.click_at((rx + rw * 0.75, ry + 10.0), false).await;
    b.wait_until("(() => { const p = document.querySelector('#player'); return !p.seeking && p.readyState >= 2 && p.currentTime > 0; })()")
        .await;
    let position = b.wait_until("document.querySelector('#position').textContent.match(/^frame (\\d+) /)?.[1]").await;
    let playhead: i64 = position.as_str().unwrap().parse().unwrap();
    assert!((playhead as f64 - frames * 0.75).abs() <= 1.0, "seek: at frame {playhead}, expected {}", frames * 0.75);
    let time = b.script("return document.querySelector('#player').currentTime", vec![]).await.as_f64().unwrap();
    assert!((time - playhead as f64 / fps).abs() < 1.0 / fps, "seek: the video is at {time} s");

    // 5. Add a segment with the toolbar at the playhead (label `blood`), then move it with the mouse.
    b.script("const s = document.querySelector('#new-label'); s.value = 'blood'; s.dispatchEvent(new Event('change'));", vec![]).await;
    let before: std::collections::BTreeSet<i64> = stored(&reg, vid).await.keys().copied().collect();
    b.click(&b.wait("#add-segment").await).await;
    b.wait("#timeline .seg.annotation[data-label=blood]").await;
    let after = stored(&reg, vid).await;
    let added: Vec<&Value> = after.values().filter(|s| !before.contains(&s["id"].as_i64().unwrap())).collect();
    assert_eq!(added.len(), 1, "add: one new segment stored");
    let seg = added[0].clone();
    let id = seg["id"].as_i64().unwrap();
    assert_eq!((seg["label"].as_str(), seg["source"].as_str(), seg["version"].as_i64()), (Some("blood"), Some("annotation"), Some(1)));
    assert_eq!(seg["start_frame"].as_i64().unwrap(), playhead, "add: at the playhead");
    let start = seg["start_frame"].as_i64().unwrap();
    let el = seg_element(&b, id).await;
    let (x, y) = (el["x"].as_f64().unwrap(), el["y"].as_f64().unwrap());
    let (width, _) = rendered(&b).await;
    b.drag((x, y), (x - 150.0, y), 6).await;
    let moved = wait_for_version(&reg, id, 2).await;
    let expected = start - (150.0 / width * frames).round() as i64;
    assert!(
        (moved["start_frame"].as_i64().unwrap() - expected).abs() <= 1,
        "drag: moved to {} , expected about {expected}",
        moved["start_frame"]
    );
    assert_eq!(
        moved["end_frame"].as_i64().unwrap() - moved["start_frame"].as_i64().unwrap(),
        seg["end_frame"].as_i64().unwrap() - start,
        "drag: length kept"
    );
    check_timeline_against_database(&b, &reg, vid, frames).await;

    // 6. The keyboard: → moves it by a frame.
    b.script("document.querySelector(`#timeline .seg[data-id='${arguments[0]}']`).focus();", vec![json!(id)]).await;
    b.keys(&[RIGHT]).await;
    let stepped = wait_for_version(&reg, id, 3).await;
    assert_eq!(stepped["start_frame"].as_i64(), moved["start_frame"].as_i64().map(|s| s + 1), "keyboard: → moves one frame");

    // 7. A conflict: another client changes the segment meanwhile; this page's next change is refused
    //    by the registry, both versions are shown, and "save mine" keeps neither change lost.
    let mut theirs = stepped.clone();
    theirs["end_frame"] = json!(stepped["end_frame"].as_i64().unwrap() - 5);
    let body = json!({"label": "blood", "start_frame": theirs["start_frame"], "end_frame": theirs["end_frame"], "source": "annotation"});
    let (status, changed) = reg.api(Role::DataManager, Method::PUT, &format!("/api/v1/segments/{id}"), Some(body), Some(3)).await;
    assert_eq!(status, 200, "{changed}");
    b.script("document.querySelector(`#timeline .seg[data-id='${arguments[0]}']`).focus();", vec![json!(id)]).await;
    b.keys(&[RIGHT]).await;
    b.wait("#conflict").await;
    let theirs_text = b.text(&b.wait("#conflict-theirs").await).await;
    let mine_text = b.text(&b.wait("#conflict-mine").await).await;
    assert!(
        theirs_text.contains(&format!("frames {}–{}", theirs["start_frame"], theirs["end_frame"])),
        "conflict: theirs shown: {theirs_text}"
    );
    let mine_start = stepped["start_frame"].as_i64().unwrap() + 1;
    assert!(
        mine_text.contains(&format!("frames {mine_start}–{}", stepped["end_frame"].as_i64().unwrap() + 1)),
        "conflict: mine shown: {mine_text}"
    );
    assert_eq!(
        wait_for_version(&reg, id, 4).await["end_frame"],
        theirs["end_frame"],
        "conflict: theirs stays stored until the annotator decides"
    );
    b.screenshot("4-conflict").await;
    b.click(&b.wait("#keep-mine").await).await;
    let resolved = wait_for_version(&reg, id, 5).await;
    assert_eq!(resolved["start_frame"].as_i64(), Some(mine_start), "conflict: mine saved over theirs");
    b.wait_until("!document.querySelector('#conflict')").await;
    check_timeline_against_database(&b, &reg, vid, frames).await;

    // 8. Split it at the playhead with the keyboard, then delete the second part with Delete.
    let (s0, e0) = (resolved["start_frame"].as_i64().unwrap(), resolved["end_frame"].as_i64().unwrap());
    let middle = (s0 + e0) / 2;
    b.script(
        "const p = document.querySelector('#player'); p.currentTime = arguments[0] / arguments[1] + 0.001;",
        vec![json!(middle), json!(fps)],
    )
    .await;
    b.wait_until(&format!("document.querySelector('#position').textContent.startsWith('frame {middle} ')")).await;
    b.script("document.querySelector(`#timeline .seg[data-id='${arguments[0]}']`).focus();", vec![json!(id)]).await;
    b.keys(&["s"]).await;
    let first = wait_for_version(&reg, id, 6).await;
    assert_eq!(first["end_frame"].as_i64(), Some(middle - 1), "split: the first part ends before the playhead");
    let second = loop {
        let all = stored(&reg, vid).await;
        if let Some(s) = all.values().find(|s| s["label"] == "blood" && s["start_frame"].as_i64() == Some(middle)) {
            break s.clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    };
    assert_eq!(second["end_frame"].as_i64(), Some(e0), "split: the second part ends where the segment ended");
    let second_id = second["id"].as_i64().unwrap();
    b.wait(&format!("#timeline .seg[data-id='{second_id}'].selected")).await;
    b.keys(&[DELETE]).await;
    b.wait_until(&format!("!document.querySelector(\"#timeline .seg[data-id='{second_id}']\")")).await;
    assert!(!stored(&reg, vid).await.contains_key(&second_id), "delete: gone from the database");
    check_timeline_against_database(&b, &reg, vid, frames).await;

    // 9. Double-click an annotation row adds a segment there (the mouse's way).
    let lane = b.script("const r = document.querySelector(\"#timeline .tl-row.annotation[data-label='outside']\").getBoundingClientRect(); return [r.left, r.top, r.width, r.height];", vec![]).await;
    let count = stored(&reg, vid).await.len();
    b.click_at(
        (lane[0].as_f64().unwrap() + lane[2].as_f64().unwrap() * 0.1, lane[1].as_f64().unwrap() + lane[3].as_f64().unwrap() / 2.0),
        true,
    )
    .await;
    b.wait("#timeline .seg.annotation[data-label=outside]").await;
    assert_eq!(stored(&reg, vid).await.len(), count + 1, "double-click: one segment added");
    check_timeline_against_database(&b, &reg, vid, frames).await;
    b.script("document.querySelector('#player').currentTime = arguments[0]; window.scrollTo(0, 0);", vec![json!(duration * 0.7)]).await;
    b.wait_until("(() => { const p = document.querySelector('#player'); return !p.seeking && p.readyState >= 2; })()").await;
    b.screenshot("3-video").await;

    // 10. Upload in the browser, then watch the worklist follow the processing without a reload.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("second.mp4");
    let path = file.clone();
    tokio::task::spawn_blocking(move || {
        let mut spec = endoreg_media::video::demo::DemoSpec::olympus(320, 180, 50);
        spec.patient.name = "BEISPIEL, MAX".into();
        endoreg_media::video::demo::generate(&path, &spec)
    })
    .await
    .unwrap()
    .unwrap();
    b.goto(&format!("{app}/#/upload")).await;
    let refused = b.wait("#refused, #upload").await;
    assert_eq!(
        b.script("return arguments[0].id", vec![json!({"element-6066-11e4-a52e-4f735466cecf": refused.0})]).await,
        "refused",
        "annotators do not upload"
    );
    b.click(&b.wait("#sign-out").await).await;
    b.wait("#sign-in").await;
    assert!(b.cookies().await.iter().all(|c| c["name"] != "endoreg_session"), "sign-out: the cookie is gone");
    b.sign_in(app, &reg.tokens[&Role::DataManager]).await;
    b.goto(&format!("{app}/#/upload")).await;
    b.wait("#upload").await;
    b.script("document.querySelector('#f-processor').value = 'olympus_cv_1500';", vec![]).await;
    let input = b.wait("#file").await;
    b.type_into(&input, file.to_str().unwrap()).await;
    b.click(&b.wait("#upload button[type=submit]").await).await;
    let link = b.wait("#upload-result a").await;
    assert_eq!(
        b.script("return document.querySelector('#upload-progress').value", vec![]).await,
        json!(1),
        "upload: the progress bar reached the end"
    );
    let href = b.script("return arguments[0].getAttribute('href')", vec![json!({"element-6066-11e4-a52e-4f735466cecf": link.0})]).await;
    let uploaded: i64 = href.as_str().unwrap().rsplit('/').next().unwrap().parse().unwrap();
    b.screenshot("5-upload").await;
    b.goto(&format!("{app}/#/?kind=video")).await;
    b.wait(&format!("tr[data-id='{uploaded}'][data-state=uploaded]")).await;
    b.wait_until("document.querySelector('#worklist-status').textContent.includes('updates by itself')").await;
    let claim = endoreg_common::api::JobClaim { worker: worker.name.clone(), kinds: vec!["process_video".into()], lease_secs: 60 };
    let job = worker.client.claim(&claim).await.unwrap().expect("the upload queued a job");
    worker.handle_job(job).await;
    b.wait(&format!("tr[data-id='{uploaded}'][data-state=frames_extracted]")).await;

    // 11. A report: its anonymised text with each replacement marked.
    let (status, report) = reg
        .api(Role::DataManager, Method::POST, "/api/v1/reports", Some(json!({"center": "demo_center", "sha256": "c".repeat(64)})), None)
        .await;
    assert_eq!(status, 201, "{report}");
    let rid = report["id"].as_i64().unwrap();
    let text = "Patient: [PATIENT_NAME], geb. [BIRTH_DATE]\nUntersuchung am [EXAMINATION_DATE]\n\nBefund: Im Sigma ein 6 mm großer sessiler Polyp (Paris 0-Is, NICE 2), mit kalter Schlinge abgetragen.\n\nUntersucher: [EXAMINER]";
    for (state, version) in [("text_extracted", 1), ("anonymised", 3)] {
        if state == "anonymised" {
            let (s, b) = reg
                .api(Role::Service, Method::PATCH, &format!("/api/v1/reports/{rid}"), Some(json!({"anonymised_text": text})), Some(2))
                .await;
            assert_eq!(s, 200, "{b}");
        }
        let (s, b) = reg
            .api(Role::Service, Method::POST, &format!("/api/v1/reports/{rid}/state"), Some(json!({"state": state})), Some(version))
            .await;
        assert_eq!(s, 200, "{b}");
    }
    b.goto(&format!("{app}/#/reports/{rid}")).await;
    b.wait("#report-text").await;
    let marks = b.script("return [...document.querySelectorAll('#report-text mark.replaced')].map((m) => m.textContent)", vec![]).await;
    assert_eq!(marks, json!(["[PATIENT_NAME]", "[BIRTH_DATE]", "[EXAMINATION_DATE]", "[EXAMINER]"]), "report: every replacement marked");
    assert_eq!(
        b.script("return document.querySelector('#report-text').textContent", vec![]).await,
        json!(text),
        "report: the text exactly"
    );
    b.screenshot("6-report").await;
    b.goto(&format!("{app}/#/")).await;
    b.wait(&format!("#worklist-rows tr[data-kind=report][data-id='{rid}']")).await;
    b.wait_until("[...document.querySelectorAll('img.thumb')].every((i) => i.complete)").await;
    b.screenshot("9-worklist-later").await;

    // 12. Patients and examinations, pseudonymised.
    let (_, patient) = reg
        .api(
            Role::DataManager,
            Method::POST,
            "/api/v1/patients",
            Some(json!({"center": "demo_center", "gender": "female", "birth_year": 1961})),
            None,
        )
        .await;
    let pid = patient["id"].as_i64().unwrap();
    let (status, exam) = reg
        .api(Role::DataManager, Method::POST, "/api/v1/patient-examinations", Some(json!({"patient_id": pid, "examination": "colonoscopy", "date": "2024-02-03",
            "indications": [{"indication": "screening_colonoscopy"}],
            "findings": [{"finding": "colon_polyp", "classifications": [{"classification": "paris", "choice": "paris_0_is"}, {"classification": "nice", "choice": "nice_type_2"}],
                          "interventions": [{"intervention": "cold_snare_polypectomy", "state": "performed"}]}]})), None)
        .await;
    assert_eq!(status, 201, "{exam}");
    let eid = exam["id"].as_i64().unwrap();
    let (status, body) = reg
        .api(
            Role::DataManager,
            Method::PUT,
            &format!("/api/v1/patients/{pid}/identity"),
            Some(json!({"first_name": "Erika", "last_name": "Mustermann", "date_of_birth": "1961-08-12"})),
            None,
        )
        .await;
    assert!(status == 200 || status == 201, "{body}");

    // 13. Each role: what each page shows and what it refuses (the server refuses the same through the API).
    let pages = [
        ("worklist", "#/".to_owned(), "#worklist"),
        ("video", format!("#/videos/{vid}"), "#video-page"),
        ("report", format!("#/reports/{rid}"), "#report-page"),
        ("upload", "#/upload".to_owned(), "#upload"),
        ("patients", "#/patients".to_owned(), "#patients"),
        ("examination", format!("#/examinations/{eid}"), "#examination-page"),
        ("identity", "#/identity".to_owned(), "#identity-placeholder"),
    ];
    for role in Role::ALL {
        b.click(&b.wait("#sign-out").await).await;
        b.wait("#sign-in").await;
        b.sign_in(app, &reg.tokens[&role]).await;
        for (page, hash, shown) in &pages {
            let permission = match *page {
                "upload" => endoreg_common::access::Permission::WriteMedia,
                "patients" | "examination" => endoreg_common::access::Permission::ReadClinical,
                "identity" => endoreg_common::access::Permission::ReadIdentity,
                _ => endoreg_common::access::Permission::ReadMedia,
            };
            b.goto(&format!("{app}/{hash}")).await;
            let found = b.wait(&format!("{shown}, #refused")).await;
            let id = b.script("return arguments[0].id", vec![json!({"element-6066-11e4-a52e-4f735466cecf": found.0})]).await;
            let expected = if role.allows(permission) { shown.trim_start_matches('#') } else { "refused" };
            assert_eq!(id, expected, "{role} on the {page} page");
        }
        // What the pages offer follows the role too: segment tools, the upload entry, no identity anywhere.
        b.goto(&format!("{app}/#/videos/{vid}")).await;
        b.wait("#timeline .seg").await;
        let tools = !b.find_all("#add-segment").await.is_empty();
        assert_eq!(tools, role.allows(endoreg_common::access::Permission::WriteLabels), "{role}: segment tools");
        let nav =
            b.script("return [...document.querySelectorAll('#nav a')].filter((a) => !a.hidden).map((a) => a.textContent)", vec![]).await;
        assert_eq!(
            nav.as_array().unwrap().iter().any(|a| a == "Upload"),
            role.allows(endoreg_common::access::Permission::WriteMedia),
            "{role}: nav {nav}"
        );
        assert!(
            !nav.as_array().unwrap().iter().any(|a| a == "Identity verification"),
            "{role}: identity verification stays hidden until its API exists"
        );
        let page = b.page_text().await;
        assert!(!page.contains("Mustermann") && !page.contains("1961-08-12"), "{role}: no identity on the video page");
        if role == Role::Researcher {
            b.goto(&format!("{app}/#/examinations/{eid}")).await;
            b.wait("#findings").await;
            let text = b.page_text().await;
            assert!(
                text.contains("paris 0 is") && text.contains("cold snare polypectomy"),
                "researcher: findings and classifications: {text}"
            );
            assert!(!text.contains("Mustermann") && !text.contains("Erika"), "researcher: pseudonymised only");
            b.screenshot("7-examination-researcher").await;
            // The session cannot do through the API what the role may not, CSRF token or not.
            let r = b
                .async_script(
                    "const done = arguments[arguments.length - 1];
                     fetch('/api/v1/sessions/current').then((r) => r.json()).then((s) =>
                       fetch(`/api/v1/videos/${arguments[0]}/segments`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': s.csrf_token },
                         body: JSON.stringify({ label: 'polyp', start_frame: 1, end_frame: 2 }) }))
                       .then((r) => done(r.status));",
                    vec![json!(vid)],
                )
                .await;
            assert_eq!(r, json!(403), "researcher: writing labels is refused");
            let r = b.async_script("const done = arguments[arguments.length - 1]; fetch(`/api/v1/patients/${arguments[0]}/identity`).then((r) => done(r.status));", vec![json!(pid)]).await;
            assert_eq!(r, json!(403), "researcher: the identity is refused");
        }
        if role == Role::Annotator {
            // A change without the CSRF token is refused even for a role that may make it.
            let r = b
                .async_script(
                    "const done = arguments[arguments.length - 1];
                     fetch(`/api/v1/videos/${arguments[0]}/segments`, { method: 'POST', headers: { 'Content-Type': 'application/json' },
                       body: JSON.stringify({ label: 'polyp', start_frame: 1, end_frame: 2 }) }).then((r) => r.json().then((p) => done([r.status, p.type])));",
                    vec![json!(vid)],
                )
                .await;
            assert_eq!(r, json!([403, "urn:endoreg:problem:csrf_token_missing"]), "annotator: a change without the CSRF token");
        }
    }
    b.click(&b.wait("#sign-out").await).await;
    b.wait("#sign-in").await;
    b.sign_in(app, &reg.tokens[&Role::Researcher]).await;
    b.goto(&format!("{app}/#/patients")).await;
    b.wait("#patients").await;
    b.screenshot("8-patients").await;
    eprintln!("browser test took {:.1} s", started.elapsed().as_secs_f64());
}
