//! The media worker against a real registry (SQLite, served on loopback): good videos end up anonymised
//! with their frames stored; bad ones fail their job with a reason a data manager understands, leave
//! nothing partial in storage, and do not stop the worker.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test reports failure

mod support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use endoreg_common::access::Role;
use endoreg_common::api::{JobClaim, MediaIdentity, TokenCreate, UploadMetadata, Video};
use endoreg_common::secret::Secret;
use endoreg_common::storage::{Identities, Store};
use endoreg_media::client::Client;
use endoreg_media::config::MediaConfig;
use endoreg_media::video::demo::{self, DemoSpec};
use endoreg_media::video::encode::H264Settings;
use endoreg_media::video::frames::FrameSettings;
use endoreg_media::worker::Worker;
use endoreg_registry::config::RegistryConfig;
use endoreg_registry::db::{ConnectOptions, Db};
use support::proxy::Proxy;
use support::synthetic::{self, Spec};

struct Harness {
    worker: Worker,
    /// A data manager's token: reads what only identity-permitted roles may.
    data_manager_token: String,
    db: Db,
    /// Set to the flag that the registry raises when the next claim arrives (a SIGTERM during a claim).
    stop_at_claim: Arc<Mutex<Option<Arc<AtomicBool>>>>,
    dir: tempfile::TempDir,
    _server: tokio::task::JoinHandle<()>,
}

/// A registry with our knowledge base (plus a processor whose layout fits no video) and a worker.
async fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = Db::connect(&format!("sqlite://{}", data.join("registry.db").display()), &ConnectOptions::default()).await.unwrap();
    db.migrate().await.unwrap();
    endoreg_registry::kb::load(&db, &endoreg_registry::kb::ours::Files::builtin()).await.unwrap();
    let square = "[[endoscopy_processor]]\nname = \"square_processor\"\nimage_width = 1024\nimage_height = 1024\n\
                  regions = [{ name = \"endoscope_image\", kind = \"endoscope_image\", x = 100, y = 100, width = 800, height = 800 }]\n";
    endoreg_registry::kb::load(&db, &endoreg_registry::kb::ours::Files(vec![("square.toml".into(), square.into())])).await.unwrap();
    let token =
        endoreg_registry::service::tokens::create(&db, &TokenCreate { name: "worker".into(), role: Role::Service, expires_in_days: None })
            .await
            .unwrap();
    let manager = TokenCreate { name: "data manager".into(), role: Role::DataManager, expires_in_days: None };
    let manager = endoreg_registry::service::tokens::create(&db, &manager).await.unwrap();
    let cfg = RegistryConfig { data_dir: data.clone(), ..RegistryConfig::default() };
    let stop_at_claim: Arc<Mutex<Option<Arc<AtomicBool>>>> = Arc::default();
    let app = endoreg_registry::http::router(db.clone(), &cfg).unwrap().layer(axum::middleware::from_fn({
        let stop_at_claim = stop_at_claim.clone();
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            if req.uri().path() == "/api/v1/jobs/claim"
                && let Some(stop) = stop_at_claim.lock().unwrap().take()
            {
                stop.store(true, Ordering::SeqCst);
            }
            next.run(req)
        }
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let media_cfg = MediaConfig {
        data_dir: data.clone(),
        registry_url: format!("http://127.0.0.1:{port}"),
        lease_secs: 60,
        anonymise: H264Settings { crf: 28, preset: "ultrafast".into(), threads: 0, ..H264Settings::default() },
        frames: FrameSettings { step: 5, jpeg_qscale: 5, workers: 2 },
        ..MediaConfig::default()
    };
    let client = Client::new(&media_cfg.registry_url, Secret::new(token.token)).unwrap();
    let store = Store::open(&media_cfg.storage, &data).unwrap();
    let identities = Identities::read(&cfg.local_key_file()).unwrap();
    let worker = Worker {
        client,
        store,
        identities,
        cfg: media_cfg,
        name: "test-worker".into(),
        templates: endoreg_media::report::default_templates(),
    };
    Harness { worker, data_manager_token: manager.token, db, stop_at_claim, dir, _server: server }
}

/// Another worker on the harness's registry and storage: named `name`, reaching the registry at `url`, its
/// configuration changed by `adjust`, decrypting with `identities`.
fn another_worker(h: &Harness, name: &str, url: &str, identities: Identities, adjust: impl FnOnce(&mut MediaConfig)) -> Worker {
    let mut cfg = MediaConfig { registry_url: url.into(), ..h.worker.cfg.clone() };
    adjust(&mut cfg);
    Worker {
        client: Client::new(url, h.worker.client.token().clone()).unwrap(),
        store: h.worker.store.clone(),
        identities,
        cfg,
        name: name.into(),
        templates: endoreg_media::report::default_templates(),
    }
}

fn demo_video(dir: &Path, name: &str, frames: u64) -> PathBuf {
    let path = dir.join(name);
    demo::generate(&path, &DemoSpec::olympus(480, 270, frames)).unwrap();
    path
}

async fn upload(h: &Harness, file: &Path, processor: &str) -> Video {
    let meta = UploadMetadata {
        center: "demo_center".into(),
        processor: Some(processor.into()),
        patient_examination_id: None,
        pdf_type: None,
        identity: Some(MediaIdentity { patient_last_name: Some("Mustermann".into()), ..Default::default() }),
    };
    h.worker.client.upload(file, &meta).await.unwrap().video.unwrap()
}

/// Lets the worker take every queued job.
async fn drain(h: &Harness) {
    let claim = JobClaim { worker: h.worker.name.clone(), kinds: vec!["process_video".into()], lease_secs: 60 };
    while let Some(job) = h.worker.client.claim(&claim).await.unwrap() {
        h.worker.handle_job(job).await;
    }
}

fn files_under(dir: &Path) -> Vec<String> {
    fn walk(d: &Path, base: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                walk(&e.path(), base, out);
            } else {
                out.push(e.path().strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_videos_are_processed_and_bad_ones_fail_cleanly() {
    let h = harness().await;
    let src = h.dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let good = demo_video(&src, "good.mp4", 40);
    let bytes = std::fs::read(&good).unwrap();

    // Bad inputs, generated here: cut off, damaged mid-stream, not a video behind an MP4 signature, a
    // processor whose layout does not fit.
    let truncated = src.join("truncated.mp4");
    std::fs::write(&truncated, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let mut damaged = bytes.clone();
    let mid = damaged.len() / 2;
    damaged[mid..mid + 3000].iter_mut().for_each(|b| *b ^= 0xA5);
    let corrupt = src.join("corrupt.mp4");
    std::fs::write(&corrupt, &damaged).unwrap();
    let fake = src.join("fake.mp4");
    let mut f = vec![0, 0, 0, 0x20];
    f.extend_from_slice(b"ftypisom\0\0\x02\0isomiso2mp41");
    f.extend(std::iter::repeat_n(b'x', 50_000));
    std::fs::write(&fake, f).unwrap();
    let other = demo_video(&src, "other.mp4", 20);

    let v_trunc = upload(&h, &truncated, "olympus_cv_1500").await;
    let v_corrupt = upload(&h, &corrupt, "olympus_cv_1500").await;
    let v_fake = upload(&h, &fake, "olympus_cv_1500").await;
    let v_square = upload(&h, &other, "square_processor").await;
    let v_good = upload(&h, &good, "olympus_cv_1500").await;
    drain(&h).await;

    let get = |v: &Video| {
        let c = h.worker.client.clone();
        let id = v.id;
        async move { c.video(id).await.unwrap() }
    };
    let good_now = get(&v_good).await;
    assert_eq!(good_now.state, "frames_extracted", "{good_now:?}");
    assert_eq!(good_now.metadata.width, Some(480));
    assert_eq!(good_now.metadata.frame_count, Some(40));
    assert_eq!(good_now.frame_sets[0].frame_count, 8);
    let stored = files_under(&h.dir.path().join("data/storage"));
    let frames: Vec<&String> = stored.iter().filter(|f| f.starts_with(&format!("frames/{}/anonymised/", good_now.sha256))).collect();
    assert_eq!(frames.len(), 8, "{stored:#?}");
    assert!(stored.iter().any(|f| f.starts_with("anonymised/")), "{stored:#?}");

    for (v, needle) in [
        (&v_trunc, "cut off"),
        (&v_corrupt, "damaged"),
        (&v_fake, "not a readable video"),
        (&v_square, "but processor `square_processor` produces 1024x1024"),
    ] {
        let now = get(v).await;
        assert_eq!(now.state, "failed", "video {} should have failed: {now:?}", v.id);
        let detail = now.state_detail.clone().unwrap_or_default();
        assert!(detail.contains(needle), "video {}: `{needle}` not in `{detail}`", v.id);
        // Nothing of a failed video stays: no anonymised file, no frames.
        assert!(!stored.iter().any(|f| f.contains(&now.sha256) && !f.starts_with("raw/")), "{stored:#?}");
    }
    // The bad inputs are permanent failures: their jobs are failed, not queued for another attempt.
    let jobs: serde_json::Value = serde_json::from_str(&reqwest_get(&h, "/api/v1/jobs?state=failed").await).unwrap();
    assert_eq!(jobs["total"], 4, "{jobs}");
    // Only one anonymised video exists (the good one), and the work directory is empty again.
    assert_eq!(stored.iter().filter(|f| f.starts_with("anonymised/")).count(), 1);
    assert!(files_under(&h.worker.cfg.work_dir()).is_empty(), "{:?}", files_under(&h.worker.cfg.work_dir()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_run_twice_leaves_one_result() {
    let h = harness().await;
    let src = h.dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let video = upload(&h, &demo_video(&src, "v.mp4", 20), "olympus_cv_1500").await;
    drain(&h).await;
    let first = h.worker.client.video(video.id).await.unwrap();
    assert_eq!(first.state, "frames_extracted");
    let before = files_under(&h.dir.path().join("data/storage"));
    // The finished job is queued again (as after a crash or a retry by a data manager) and runs again.
    let jobs: serde_json::Value = serde_json::from_str(&reqwest_get(&h, &format!("/api/v1/jobs?video_id={}", video.id)).await).unwrap();
    let job_id = jobs["items"][0]["id"].as_i64().unwrap();
    assert_eq!(reqwest_post(&h, &format!("/api/v1/jobs/{job_id}/retry")).await, 200);
    // The video is not failed, so it keeps its state; the job runs again and changes nothing.
    drain(&h).await;
    let after = files_under(&h.dir.path().join("data/storage"));
    assert_eq!(before, after, "a second run must not add or change stored objects");
    let second = h.worker.client.video(video.id).await.unwrap();
    assert_eq!(second.anonymised_key, first.anonymised_key);
    assert_eq!(second.frame_sets, first.frame_sets);
}

/// SIGTERM mid-video: the FFmpeg loop stops at the next frame, the job is given back without using an
/// attempt, nothing half-made is stored, and the next run processes the video from where it stood.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_worker_gives_its_job_back_unfinished() {
    use std::time::{Duration, Instant};

    let h = harness().await;
    let src = h.dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    // Long enough that anonymising it takes seconds, so the stop lands in the middle.
    let video = upload(&h, &demo_video(&src, "long.mp4", 1500), "olympus_cv_1500").await;
    let stop = Arc::new(AtomicBool::new(false));
    let work = h.worker.cfg.work_dir();
    let stopper = {
        let (stop, work) = (stop.clone(), work.clone());
        async move {
            // The encoder's output (under a temporary name until complete) appears once anonymisation has begun.
            let started = Instant::now();
            while !files_under(&work).iter().any(|f| f.contains("anonymised.mp4")) {
                assert!(started.elapsed() < Duration::from_secs(60), "anonymisation never started");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            stop.store(true, Ordering::Relaxed);
            Instant::now()
        }
    };
    let (_, stopped_at) = tokio::join!(h.worker.run(stop.clone()), stopper);
    let answered = stopped_at.elapsed();
    assert!(answered < Duration::from_secs(5), "the worker took {answered:?} to stop");

    let jobs: serde_json::Value = serde_json::from_str(&reqwest_get(&h, &format!("/api/v1/jobs?video_id={}", video.id)).await).unwrap();
    let job = &jobs["items"][0];
    assert_eq!(job["state"], "queued", "{job}");
    assert_eq!(job["attempts"], 0, "a release must not use an attempt: {job}");
    assert_eq!(job["lease_owner"], serde_json::Value::Null);
    let now = h.worker.client.video(video.id).await.unwrap();
    assert_eq!(now.state, "probed", "{now:?}");
    assert_eq!(now.anonymised_key, None);
    let stored = files_under(&h.dir.path().join("data/storage"));
    assert!(!stored.iter().any(|f| f.starts_with("anonymised/") || f.starts_with("frames/")), "{stored:#?}");
    assert!(files_under(&work).is_empty(), "{:?}", files_under(&work));

    // The next worker run finishes it, with its first counted attempt.
    drain(&h).await;
    let done = h.worker.client.video(video.id).await.unwrap();
    assert_eq!(done.state, "frames_extracted", "{done:?}");
    assert_eq!(done.metadata.frame_count, Some(1500));
    let jobs: serde_json::Value = serde_json::from_str(&reqwest_get(&h, &format!("/api/v1/jobs?video_id={}", video.id)).await).unwrap();
    assert_eq!(jobs["items"][0]["attempts"], 1, "{jobs}");
}

/// SIGTERM while a claim is under way: the job that arrives is given back untouched, not started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_claimed_as_the_worker_stops_is_given_back_untouched() {
    let h = harness().await;
    let src = h.dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let video = upload(&h, &demo_video(&src, "v.mp4", 20), "olympus_cv_1500").await;
    let stop = Arc::new(AtomicBool::new(false));
    *h.stop_at_claim.lock().unwrap() = Some(stop.clone());
    tokio::time::timeout(std::time::Duration::from_secs(30), h.worker.run(stop)).await.expect("the worker did not stop");
    let jobs: serde_json::Value = serde_json::from_str(&reqwest_get(&h, &format!("/api/v1/jobs?video_id={}", video.id)).await).unwrap();
    let job = &jobs["items"][0];
    assert_eq!((job["state"].as_str(), job["attempts"].as_i64()), (Some("queued"), Some(0)), "{job}");
    assert_eq!(h.worker.client.video(video.id).await.unwrap().state, "uploaded");
    assert!(files_under(&h.worker.cfg.work_dir()).is_empty());
}

/// The README's main job run twice on the same data directory: the second run finds the first's video,
/// predicted by then, and succeeds with the same result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_again_on_the_same_registry() {
    let h = harness().await;
    let first = endoreg_media::demo_run::run(&h.worker, &h.worker.cfg, "olympus_cv_1500", 1).await.unwrap();
    assert!(first.ok, "{}", first.detail);
    let v = h.worker.client.video(first.video).await.unwrap();
    assert_eq!(v.state, "frames_extracted");
    // What the inference worker does next.
    h.worker.client.video_state(&v, "predicted", Some("0 segments".into())).await.unwrap();
    let second = endoreg_media::demo_run::run(&h.worker, &h.worker.cfg, "olympus_cv_1500", 1).await.unwrap();
    assert!(second.ok, "{}", second.detail);
    assert_eq!(second.video, first.video);
    assert!(second.before.is_file() && second.after.is_file());
}

/// A report's identity as a data manager reads it.
async fn report_identity(h: &Harness, report: i64) -> MediaIdentity {
    let url = format!("{}/api/v1/reports/{report}/identity", h.worker.cfg.registry_url);
    let res = reqwest::Client::new().get(url).bearer_auth(&h.data_manager_token).send().await.unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn reqwest_get(h: &Harness, path: &str) -> String {
    let token = worker_token(h);
    reqwest::Client::new()
        .get(format!("{}{path}", h.worker.cfg.registry_url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn reqwest_post(h: &Harness, path: &str) -> u16 {
    let token = worker_token(h);
    reqwest::Client::new().post(format!("{}{path}", h.worker.cfg.registry_url)).bearer_auth(token).send().await.unwrap().status().as_u16()
}

fn worker_token(h: &Harness) -> String {
    // The service role may read jobs and retry them (write_media).
    h.worker.client.token().expose().to_owned()
}

/// A one-page PDF report with the fake patient, built here.
fn report_pdf(lines: &[&str]) -> Vec<u8> {
    use lopdf::content::{Content, Operation};
    use lopdf::{Document, Object, Stream, StringFormat, dictionary};
    let mut doc = Document::with_version("1.7");
    let pages_id = doc.new_object_id();
    let font =
        doc.add_object(dictionary! { "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica", "Encoding" => "WinAnsiEncoding" });
    let mut ops = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        ops.push(Operation::new("BT", vec![]));
        ops.push(Operation::new("Tf", vec!["F1".into(), 10.into()]));
        ops.push(Operation::new("Td", vec![56.into(), (790 - 14 * i as i64).into()]));
        let bytes: Vec<u8> = line.chars().map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?')).collect();
        ops.push(Operation::new("Tj", vec![Object::String(bytes, StringFormat::Literal)]));
        ops.push(Operation::new("ET", vec![]));
    }
    let content = doc.add_object(Stream::new(dictionary! {}, Content { operations: ops }.encode().unwrap()));
    let page = doc.add_object(dictionary! { "Type" => "Page", "Parent" => pages_id, "Contents" => content });
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages", "Kids" => vec![page.into()], "Count" => 1,
            "Resources" => dictionary! { "Font" => dictionary! { "F1" => font } },
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        }),
    );
    let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog);
    let mut bytes = Vec::new();
    doc.save_to(&mut bytes).unwrap();
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_pdf_becomes_anonymised_text_and_its_identity_is_kept_apart() {
    let h = harness().await;
    let src = h.dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let pdf = src.join("befund.pdf");
    std::fs::write(
        &pdf,
        report_pdf(&[
            "Koloskopie-Befund",
            "Patient: Mustermann, Erika, geb. 12.08.1961",
            "Untersuchungsdatum: 03.02.2024",
            "Untersucher: Dr. med. Hans Beispiel",
            "Befund: Polyp 6 mm, Paris 0-Is, NICE 2, kalte Schlinge.",
            "Frau Mustermann wurde aufgeklaert.",
        ]),
    )
    .unwrap();
    let broken = src.join("broken.pdf");
    std::fs::write(&broken, b"%PDF-1.7\n1 0 obj << /Type /Catalog").unwrap();
    let meta =
        UploadMetadata { center: "demo_center".into(), processor: None, patient_examination_id: None, pdf_type: None, identity: None };
    let good = h.worker.client.upload(&pdf, &meta).await.unwrap().report.unwrap();
    let bad = h.worker.client.upload(&broken, &meta).await.unwrap().report.unwrap();
    let claim = JobClaim { worker: h.worker.name.clone(), kinds: vec!["process_report".into()], lease_secs: 60 };
    while let Some(job) = h.worker.client.claim(&claim).await.unwrap() {
        h.worker.handle_job(job).await;
    }
    let r = h.worker.client.report(good.id).await.unwrap();
    assert_eq!(r.state, "anonymised", "{r:?}");
    let text = r.anonymised_text.unwrap();
    assert!(text.contains("Polyp 6 mm, Paris 0-Is, NICE 2, kalte Schlinge."), "{text}");
    for secret in ["Mustermann", "Erika", "12.08.1961", "03.02.2024", "Beispiel"] {
        assert!(!text.contains(secret), "`{secret}` survived: {text}");
    }
    assert!(text.contains("[PATIENT_NAME]") && text.contains("[BIRTH_DATE]"), "{text}");
    // What the template found is in the identifying table, for roles that may read it.
    let body = reqwest_get(&h, &format!("/api/v1/jobs?report_id={}", good.id)).await;
    let jobs: serde_json::Value = serde_json::from_str(&body).unwrap();
    let job_id = jobs["items"][0]["id"].as_i64().unwrap();
    assert_eq!(jobs["items"][0]["state"], "succeeded");
    // The job is over: its worker reads the identity no more.
    let refused = h.worker.client.job_identity(job_id, &h.worker.name).await.unwrap_err();
    assert_eq!(refused.status(), Some(409), "{refused}");
    let found = report_identity(&h, good.id).await;
    assert_eq!(found.patient_last_name.as_deref(), Some("Mustermann"));
    assert_eq!(found.patient_date_of_birth, chrono::NaiveDate::from_ymd_opt(1961, 8, 12));
    assert_eq!(found.examiner.as_deref(), Some("Dr. med. Hans Beispiel"));
    let r_bad = h.worker.client.report(bad.id).await.unwrap();
    assert_eq!(r_bad.state, "failed");
    assert!(r_bad.state_detail.as_deref().unwrap_or_default().contains("PDF"), "{r_bad:?}");
    assert!(files_under(&h.worker.cfg.work_dir()).is_empty());
}

/// The `process_video` job of `video`, as the registry has it now.
async fn process_job(h: &Harness, video: i64) -> serde_json::Value {
    let jobs: serde_json::Value = serde_json::from_str(&reqwest_get(h, &format!("/api/v1/jobs?video_id={video}")).await).unwrap();
    jobs["items"].as_array().unwrap().iter().find(|j| j["kind"] == "process_video").cloned().unwrap()
}

/// Waits until `done` holds (a minute at most).
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "waited a minute for: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Every stored object except the raw uploads, with its bytes.
fn products(h: &Harness) -> Vec<(String, Vec<u8>)> {
    let root = h.dir.path().join("data/storage");
    files_under(&root).into_iter().filter(|f| !f.starts_with("raw/")).map(|f| (f.clone(), std::fs::read(root.join(&f)).unwrap())).collect()
}

/// The lease of job `id` ends now (as after an outage longer than the lease).
async fn expire_lease(h: &Harness, id: i64) {
    use endoreg_registry::db::exec::Param;
    h.db.execute("UPDATE job SET lease_expires_at = created_at WHERE id = $1", vec![Param::from(id)]).await.unwrap();
}

/// Claims the next `process_video` job as `worker`.
async fn claim_as(h: &Harness, worker: &str) -> endoreg_common::api::Job {
    let claim = JobClaim { worker: worker.into(), kinds: vec!["process_video".into()], lease_secs: 60 };
    h.worker.client.claim(&claim).await.unwrap().expect("a job to claim")
}

/// An odd-sized RGB recording (FFV1, 1279×719, which libx264 refused and the job retried for minutes) is
/// processed on its first attempt into an even-sided anonymised video; an MP4 cut off before its index
/// fails at once, with one attempt, saying it is incomplete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_odd_sized_rgb_video_is_processed_and_an_incomplete_mp4_fails_at_once() {
    let h = harness().await;
    let src = h.dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let odd = src.join("odd.mkv");
    let spec = Spec { container: "matroska", codec: "ffv1", pixel: ffmpeg_next::format::Pixel::BGRZ, width: 1279, height: 719, frames: 10 };
    synthetic::write(&odd, &spec, &|x, y| [(x % 200) as u8 + 30, (y % 150) as u8 + 50, 90]);
    let whole = src.join("whole.mp4");
    let spec = Spec { container: "mp4", codec: "libx264", pixel: ffmpeg_next::format::Pixel::YUV420P, width: 480, height: 270, frames: 40 };
    synthetic::write(&whole, &spec, &|x, y| [(x % 256) as u8, (y % 256) as u8, 128]);
    let bytes = std::fs::read(&whole).unwrap();
    let cut = src.join("cut.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let v_odd = upload(&h, &odd, "olympus_cv_1500").await;
    let v_cut = upload(&h, &cut, "olympus_cv_1500").await;
    drain(&h).await;

    let job = process_job(&h, v_odd.id).await;
    assert_eq!((job["state"].as_str(), job["attempts"].as_i64()), (Some("succeeded"), Some(1)), "{job}");
    let v = h.worker.client.video(v_odd.id).await.unwrap();
    assert_eq!(v.state, "frames_extracted", "{v:?}");
    assert_eq!((v.metadata.width, v.metadata.height, v.metadata.frame_count), (Some(1279), Some(719), Some(10)));
    let anonymised = h.dir.path().join("anonymised.mp4");
    h.worker.store.download(v.anonymised_key.as_deref().unwrap(), &anonymised, None).await.unwrap();
    let (format, w, hh, _) = synthetic::stream_of(&anonymised);
    assert_eq!((format, w, hh), (ffmpeg_next::format::Pixel::YUV420P, 1280, 720));

    let job = process_job(&h, v_cut.id).await;
    assert_eq!((job["state"].as_str(), job["attempts"].as_i64()), (Some("failed"), Some(1)), "{job}");
    let v = h.worker.client.video(v_cut.id).await.unwrap();
    assert_eq!(v.state, "failed");
    let detail = v.state_detail.unwrap_or_default();
    assert!(detail.contains("incomplete") && detail.contains("moov"), "{detail}");
}

/// The registry stops answering just as the worker reports a finished job: the worker keeps trying while
/// its lease lasts, and when the registry is back the job completes on the same attempt, nothing redone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_during_the_report_costs_no_attempt() {
    support::logs::capture();
    let h = harness().await;
    let src = h.dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let video = upload(&h, &demo_video(&src, "v.mp4", 20), "olympus_cv_1500").await;
    let proxy = Proxy::start(&h.worker.cfg.registry_url).await;
    proxy.down_at("/complete HTTP/1.1");
    let worker = another_worker(&h, "outage-worker", &proxy.url, h.worker.identities.clone(), |_| {});
    let job = claim_as(&h, "outage-worker").await;
    let task = tokio::spawn(async move { worker.handle_job(job).await });
    until("the worker's report meeting the outage three times, or the worker giving up", || proxy.refused() >= 3 || task.is_finished())
        .await;
    assert!(!task.is_finished(), "the worker gave up reporting after {} try", proxy.refused());
    let before = products(&h);
    assert_eq!(process_job(&h, video.id).await["state"], "running");
    proxy.up();
    tokio::time::timeout(std::time::Duration::from_secs(60), task).await.expect("the report never got through").unwrap();

    let job = process_job(&h, video.id).await;
    assert_eq!((job["state"].as_str(), job["attempts"].as_i64()), (Some("succeeded"), Some(1)), "{job}");
    assert_eq!(h.worker.client.video(video.id).await.unwrap().state, "frames_extracted");
    assert_eq!(products(&h), before, "nothing was made again");
    let retries = support::logs::containing(&format!("job {}: retrying report (succeeded)", job["id"]));
    assert!(!retries.is_empty() && retries.iter().all(|l| l.target == "endoreg_media::worker"), "{retries:?}");
}

/// The worker finished, its report got lost, and its lease ended before the registry was back: the job
/// runs again and finds everything recorded. The second worker cannot decrypt raw videos and encodes
/// differently, so anything it did again would show (or fail); the first worker's late report is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_after_a_lost_lease_uses_what_the_first_attempt_recorded() {
    let h = harness().await;
    let src = h.dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let video = upload(&h, &demo_video(&src, "v.mp4", 20), "olympus_cv_1500").await;
    let proxy = Proxy::start(&h.worker.cfg.registry_url).await;
    proxy.down_at("/complete HTTP/1.1");
    let first = another_worker(&h, "first-worker", &proxy.url, h.worker.identities.clone(), |_| {});
    let job = claim_as(&h, "first-worker").await;
    let task = tokio::spawn(async move { first.handle_job(job).await });
    until("the report meeting the outage", || proxy.is_down()).await;
    let before = products(&h);
    assert_eq!(h.worker.client.video(video.id).await.unwrap().state, "frames_extracted");

    let job_id = process_job(&h, video.id).await["id"].as_i64().unwrap();
    expire_lease(&h, job_id).await;
    let (_, stranger) = endoreg_common::storage::local_key(&h.dir.path().join("other.agekey")).unwrap();
    let second = another_worker(&h, "second-worker", &h.worker.cfg.registry_url.clone(), stranger, |c| {
        c.anonymise.crf = 40;
        c.frames.jpeg_qscale = 25;
    });
    let job = claim_as(&h, "second-worker").await;
    assert_eq!((job.id, job.attempts), (job_id, 2));
    second.handle_job(job).await;
    let job = process_job(&h, video.id).await;
    assert_eq!((job["state"].as_str(), job["attempts"].as_i64()), (Some("succeeded"), Some(2)), "{job}");
    assert_eq!(products(&h), before, "the rerun made something again");

    proxy.up();
    tokio::time::timeout(std::time::Duration::from_secs(60), task).await.expect("the first worker kept trying").unwrap();
    let job = process_job(&h, video.id).await;
    assert_eq!((job["state"].as_str(), job["attempts"].as_i64()), (Some("succeeded"), Some(2)), "{job}");
}

/// The registry went away after every frame was stored but before the frame set was recorded, for longer
/// than the lease: the rerun records the stored frames instead of extracting them again (its JPEG
/// quality differs, so frames made again would differ).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_records_frames_an_earlier_attempt_stored() {
    let h = harness().await;
    let src = h.dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let video = upload(&h, &demo_video(&src, "v.mp4", 20), "olympus_cv_1500").await;
    let proxy = Proxy::start(&h.worker.cfg.registry_url).await;
    proxy.down_at("/frame-sets/anonymised HTTP/1.1");
    let first = another_worker(&h, "first-worker", &proxy.url, h.worker.identities.clone(), |_| {});
    let job = claim_as(&h, "first-worker").await;
    let task = tokio::spawn(async move { first.handle_job(job).await });
    until("the frame set meeting the outage", || proxy.is_down()).await;
    let v = h.worker.client.video(video.id).await.unwrap();
    assert_eq!((v.state.as_str(), v.frame_sets.len()), ("anonymised", 0), "{v:?}");
    let before = products(&h);
    assert_eq!(before.iter().filter(|(f, _)| f.starts_with("frames/")).count(), 4, "{:?}", before.iter().map(|p| &p.0).collect::<Vec<_>>());

    let job_id = process_job(&h, video.id).await["id"].as_i64().unwrap();
    expire_lease(&h, job_id).await;
    let (_, stranger) = endoreg_common::storage::local_key(&h.dir.path().join("other.agekey")).unwrap();
    let second = another_worker(&h, "second-worker", &h.worker.cfg.registry_url.clone(), stranger, |c| c.frames.jpeg_qscale = 25);
    let job = claim_as(&h, "second-worker").await;
    second.handle_job(job).await;
    let job = process_job(&h, video.id).await;
    assert_eq!((job["state"].as_str(), job["attempts"].as_i64()), (Some("succeeded"), Some(2)), "{job}");
    let v = h.worker.client.video(video.id).await.unwrap();
    assert_eq!(v.state, "frames_extracted");
    assert_eq!(v.frame_sets[0].frame_count, 4);
    assert_eq!(products(&h), before, "the frames were extracted again");

    // The first worker's report (a failure to record the frame set) is refused: the job is done.
    proxy.up();
    tokio::time::timeout(std::time::Duration::from_secs(60), task).await.expect("the first worker kept trying").unwrap();
    assert_eq!(process_job(&h, video.id).await["state"], "succeeded");
}

/// A video whose stored file is gone cannot be processed by any attempt: its job fails at once, saying
/// which object is missing, instead of being retried with back-off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_stored_file_fails_at_once() {
    let h = harness().await;
    let src = h.dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let video = upload(&h, &demo_video(&src, "v.mp4", 10), "olympus_cv_1500").await;
    h.worker.store.delete(video.raw_key.as_deref().unwrap()).await.unwrap();
    drain(&h).await;
    let job = process_job(&h, video.id).await;
    assert_eq!((job["state"].as_str(), job["attempts"].as_i64()), (Some("failed"), Some(1)), "{job}");
    let v = h.worker.client.video(video.id).await.unwrap();
    assert_eq!(v.state, "failed");
    assert!(v.state_detail.as_deref().unwrap_or_default().contains("not found"), "{v:?}");
}
