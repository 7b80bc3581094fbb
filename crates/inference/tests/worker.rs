//! The inference worker against a real registry (SQLite, served on loopback) and the real media worker:
//! an uploaded demo video is anonymised, its frames extracted, then predicted by the demo model with real
//! ONNX Runtime; the segments land in the registry under the model version, a second run replaces them,
//! and failing jobs are reported without stopping the worker.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
// The registry outage and the log lines, as the media worker's tests have them.
#[allow(dead_code)]
#[path = "../../media/tests/support/logs.rs"]
mod logs;
#[allow(dead_code)]
#[path = "../../media/tests/support/proxy.rs"]
mod proxy;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use endoreg_common::access::Role;
use endoreg_common::api::{AiModelVersionIn, JobClaim, LabelSegment, MediaIdentity, TokenCreate, UploadMetadata, Video, VideoPatch};
use endoreg_common::secret::Secret;
use endoreg_common::storage::{Identities, Store};
use endoreg_inference::probabilities::Probabilities;
use endoreg_inference::service::{self, Service, StartError};
use endoreg_inference::telemetry::Gpus;
use endoreg_inference::worker::Predictor;
use endoreg_media::client::Client;
use endoreg_media::config::MediaConfig;
use endoreg_media::video::encode::H264Settings;
use endoreg_media::video::frames::FrameSettings;
use endoreg_media::worker::Worker;
use endoreg_registry::config::RegistryConfig;
use endoreg_registry::db::{ConnectOptions, Db};

struct Harness {
    media: Worker,
    db: Db,
    predictor: Predictor,
    /// How many of the next state changes a data manager's edit of the same video precedes.
    edits_before_state_change: Arc<AtomicUsize>,
    dir: tempfile::TempDir,
    _server: tokio::task::JoinHandle<()>,
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = Db::connect(&format!("sqlite://{}", data.join("registry.db").display()), &ConnectOptions::default()).await.unwrap();
    db.migrate().await.unwrap();
    endoreg_registry::kb::load(&db, &endoreg_registry::kb::ours::Files::builtin()).await.unwrap();
    let token =
        endoreg_registry::service::tokens::create(&db, &TokenCreate { name: "workers".into(), role: Role::Service, expires_in_days: None })
            .await
            .unwrap();
    let cfg = RegistryConfig { data_dir: data.clone(), ..RegistryConfig::default() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let edits_before_state_change = Arc::new(AtomicUsize::new(0));
    let app = endoreg_registry::http::router(db.clone(), &cfg).unwrap().layer(axum::middleware::from_fn({
        let edits = edits_before_state_change.clone();
        let editor = Client::new(&url, Secret::new(token.token.clone())).unwrap();
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let (edits, editor) = (edits.clone(), editor.clone());
            async move {
                let path = req.uri().path().to_owned();
                let video = path.strip_prefix("/api/v1/videos/").and_then(|p| p.strip_suffix("/state")).and_then(|id| id.parse().ok());
                if let Some(id) = video.filter(|_| req.method() == axum::http::Method::POST)
                    && edits.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
                {
                    // Someone corrects the video's metadata just before the worker's state change lands.
                    let v = editor.video(id).await.unwrap();
                    editor.patch_video(&v, &VideoPatch { metadata: Some(v.metadata.clone()), ..Default::default() }).await.unwrap();
                }
                next.run(req).await
            }
        }
    }));
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let client = Client::new(&url, Secret::new(token.token)).unwrap();

    let media_cfg = MediaConfig {
        data_dir: data.clone(),
        registry_url: url.clone(),
        lease_secs: 60,
        anonymise: H264Settings { crf: 23, preset: "ultrafast".into(), threads: 0, ..H264Settings::default() },
        frames: FrameSettings { step: 10, jpeg_qscale: 5, workers: 1 },
        ..MediaConfig::default()
    };
    let store = Store::open(&media_cfg.storage, &data).unwrap();
    let media = Worker {
        client: client.clone(),
        store: store.clone(),
        identities: Identities::read(&cfg.local_key_file()).unwrap(),
        cfg: media_cfg,
        name: "media-test".into(),
        templates: endoreg_media::report::default_templates(),
    };

    let mut icfg = common::config(&data);
    icfg.registry_url = url;
    icfg.poll_secs = 1;
    icfg.lease_secs = 60;
    let model = service::load_model(&icfg).unwrap();
    let version = service::register(&client, &model).await.unwrap();
    let predictor =
        Predictor { service: Arc::new(Service::new(model, icfg, Gpus::none())), version, client, store, name: "inference-test".into() };
    Harness { media, db, predictor, edits_before_state_change, dir, _server: server }
}

/// Uploads a demo video and lets the media worker anonymise it and extract its frames.
async fn processed_video(h: &Harness, frames: u64) -> Video {
    let file = common::demo_video(h.dir.path(), &format!("demo-{frames}.mp4"), frames);
    let meta = UploadMetadata {
        center: "demo_center".into(),
        processor: Some("olympus_cv_1500".into()),
        patient_examination_id: None,
        pdf_type: None,
        identity: Some(MediaIdentity { patient_last_name: Some("Mustermann".into()), ..Default::default() }),
    };
    let video = h.media.client.upload(&file, &meta).await.unwrap().video.unwrap();
    let claim = JobClaim { worker: h.media.name.clone(), kinds: vec!["process_video".into()], lease_secs: 60 };
    while let Some(job) = h.media.client.claim(&claim).await.unwrap() {
        h.media.handle_job(job).await;
    }
    let video = h.media.client.video(video.id).await.unwrap();
    assert_eq!(video.state, "frames_extracted", "{video:?}");
    video
}

/// Claims and handles every queued prediction job.
async fn predict_queued(h: &Harness) -> usize {
    let claim = JobClaim { worker: h.predictor.name.clone(), kinds: vec!["predict_video".into()], lease_secs: 60 };
    let mut n = 0;
    while let Some(job) = h.predictor.client.claim(&claim).await.unwrap() {
        h.predictor.handle_job(job).await;
        n += 1;
    }
    n
}

fn predicted(segments: &[LabelSegment], version: i64) -> Vec<(String, i64, i64)> {
    let mut out: Vec<_> = segments
        .iter()
        .filter(|s| s.model_version_id == Some(version))
        .map(|s| {
            assert_eq!(s.source.as_deref(), Some("prediction"), "{s:?}");
            (s.label.clone(), s.start_frame, s.end_frame)
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_processed_video_is_predicted_into_segments_and_a_rerun_replaces_them() {
    let h = harness().await;
    let video = processed_video(&h, 100).await;
    // Processing queued the prediction by itself.
    assert_eq!(predict_queued(&h).await, 1);

    let client = &h.predictor.client;
    let v = client.video(video.id).await.unwrap();
    assert_eq!(v.state, "predicted", "{v:?}");
    let version = h.predictor.version.id;
    let segments = predicted(&client.segments(video.id).await.unwrap(), version);
    // The demo video's phases (outside 0–14, NBI 55–69, blurred 70–84 of 100 frames), within a frame or two
    // of smoothing at the edges; nothing else.
    let labels: Vec<&str> = segments.iter().map(|(l, ..)| l.as_str()).collect();
    assert_eq!(labels, ["low_quality", "nbi", "outside"], "{segments:?}");
    let near = |(_, s, e): &(String, i64, i64), start: i64, end: i64| (s - start).abs() <= 2 && (e - end).abs() <= 2;
    assert!(near(&segments[0], 70, 84) && near(&segments[1], 55, 69) && near(&segments[2], 0, 14), "{segments:?}");

    // The per-frame probabilities are one object in storage, with a row per frame.
    let predictions = client.predictions(video.id).await.unwrap();
    assert_eq!(predictions.len(), 1);
    assert_eq!((predictions[0].frame_count, predictions[0].step, predictions[0].segments), (100, 1, 3));
    let bytes = h.predictor.store.get_bytes(&predictions[0].storage_key).await.unwrap();
    let probs = Probabilities::decode(&bytes).unwrap();
    assert_eq!((probs.header.rows, probs.header.frames, probs.labels()), (100, 100, 14));
    let outside = probs.header.labels.iter().position(|l| l == "outside").unwrap();
    let column: Vec<f32> = probs.column(outside).collect();
    assert!(column[..10].iter().all(|p| *p > 0.9) && column[20..].iter().all(|p| *p < 0.1), "{column:?}");

    // Asked again: the same segments, replaced rather than added.
    client.request_prediction(video.id, None).await.unwrap();
    assert_eq!(predict_queued(&h).await, 1);
    assert_eq!(predicted(&client.segments(video.id).await.unwrap(), version), segments);
    assert_eq!(client.predictions(video.id).await.unwrap().len(), 1);

    let metrics =
        endoreg_inference::telemetry::render(&h.predictor.service.counters, &h.predictor.service.info, &h.predictor.service.gpus.sample());
    assert!(metrics.contains("endoreg_inference_frames_total 200"), "{metrics}");
    assert!(metrics.contains("endoreg_inference_videos_total{outcome=\"succeeded\"} 2"), "{metrics}");
}

/// The move to `predicted` is conditional on the video as read (If-Match). A video edited in between is
/// read again and the change retried, so the job does not fail with its segments already recorded; an
/// edit that keeps coming in the way is given up on after three tries, and the job says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_racing_the_state_change_is_read_again() {
    let h = harness().await;
    let client = &h.predictor.client;
    let video = processed_video(&h, 30).await;
    let before = client.video(video.id).await.unwrap();
    h.edits_before_state_change.store(2, Ordering::SeqCst);
    assert_eq!(predict_queued(&h).await, 1);
    assert_eq!(h.edits_before_state_change.load(Ordering::SeqCst), 0, "both edits happened");
    let after = client.video(video.id).await.unwrap();
    assert_eq!(after.state, "predicted", "{after:?}");
    // Both edits and the state change are there: nothing was overwritten.
    assert_eq!(after.version, before.version + 3, "{before:?} -> {after:?}");

    // An edit before every try: the third 412 ends the attempt with the registry's reason, to be retried.
    h.edits_before_state_change.store(3, Ordering::SeqCst);
    client.request_prediction(video.id, None).await.unwrap();
    let claim = JobClaim { worker: h.predictor.name.clone(), kinds: vec!["predict_video".into()], lease_secs: 60 };
    let job = client.claim(&claim).await.unwrap().unwrap();
    h.predictor.handle_job(job.clone()).await;
    let job = client.job(job.id).await.unwrap();
    assert_eq!(job.state, "queued", "{job:?}");
    let error = job.last_error.clone().unwrap_or_default();
    assert!(error.contains("kept changing") && error.contains("412"), "{job:?}");
    assert_eq!(h.edits_before_state_change.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_jobs_are_reported_and_the_worker_goes_on() {
    let h = harness().await;
    let client = h.predictor.client.clone();
    let good = processed_video(&h, 50).await;
    let damaged = processed_video(&h, 40).await;
    // Nothing runs yet: drop the jobs processing queued, then queue them in a known order.
    let claim = JobClaim { worker: "nobody".into(), kinds: vec!["predict_video".into()], lease_secs: 60 };
    while let Some(job) = client.claim(&claim).await.unwrap() {
        client
            .complete(
                job.id,
                &endoreg_common::api::JobCompletion { worker: "nobody".into(), outcome: "succeeded".into(), error: None, retry: false },
            )
            .await
            .unwrap();
    }

    // 1. A model version this worker does not serve.
    let other = client
        .register_model_version(&AiModelVersionIn {
            model: "colonoscopy_multilabel_classifier".into(),
            version: "someone-else".into(),
            label_set: Some("multilabel_classification_colonoscopy".into()),
            metadata: serde_json::json!({}),
        })
        .await
        .unwrap();
    let wrong_model = client.request_prediction(good.id, Some(other.id)).await.unwrap();
    // 2. A video whose anonymised file is damaged in storage (not a video any more).
    h.predictor.store.put_bytes(damaged.anonymised_key.as_deref().unwrap(), b"not a video at all".to_vec()).await.unwrap();
    let broken = client.request_prediction(damaged.id, None).await.unwrap();
    // 3. A good one, after both.
    let fine = client.request_prediction(good.id, None).await.unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let looping = {
        let (stop, predictor) = (stop.clone(), clone_predictor(&h.predictor));
        tokio::spawn(async move { predictor.job_loop().run(&predictor, stop).await })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while client.job(fine.id).await.unwrap().state != "succeeded" {
        assert!(std::time::Instant::now() < deadline, "the good job did not finish: {:?}", client.job(fine.id).await.unwrap());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::Relaxed);
    looping.await.unwrap();

    let job = client.job(wrong_model.id).await.unwrap();
    assert_eq!(job.state, "failed", "{job:?}");
    assert!(job.last_error.as_deref().unwrap().contains(&format!("asks for model version {}", other.id)), "{job:?}");
    let job = client.job(broken.id).await.unwrap();
    assert_eq!(job.state, "failed", "{job:?}");
    assert!(job.last_error.as_deref().unwrap().contains("not a readable video"), "{job:?}");
    // A failed prediction leaves the video as it was; the good one is predicted.
    assert_eq!(client.video(damaged.id).await.unwrap().state, "frames_extracted");
    assert_eq!(client.video(good.id).await.unwrap().state, "predicted");
    assert!(client.predictions(damaged.id).await.unwrap().is_empty());
}

fn clone_predictor(p: &Predictor) -> Predictor {
    Predictor {
        service: p.service.clone(),
        version: p.version.clone(),
        client: p.client.clone(),
        store: p.store.clone(),
        name: p.name.clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_model_file_under_the_same_version_is_refused_at_start() {
    let h = harness().await;
    let dir = tempfile::tempdir().unwrap();
    // The same name and version, another file (the demo model with a different weight).
    let onnx = dir.path().join("changed.onnx");
    let mut bytes = std::fs::read(common::demo_model()).unwrap();
    let at = bytes.windows(7).position(|w| w == b"head_w\x00").unwrap_or(bytes.len() / 2);
    bytes[at + 12] ^= 0x01;
    std::fs::write(&onnx, bytes).unwrap();
    std::fs::copy(common::demo_model().with_extension("toml"), onnx.with_extension("toml")).unwrap();
    let mut cfg = common::config(dir.path());
    cfg.model.path = Some(onnx);
    let model = service::load_model(&cfg).unwrap();
    let e = service::register(&h.predictor.client, &model).await.unwrap_err();
    assert!(matches!(e, StartError::ChangedFile { .. }), "{e}");
    assert!(e.to_string().contains("give a changed model a new version"), "{e}");

    // A version someone registered by hand, without the file's hash, is not taken over either.
    let sidecar = std::fs::read_to_string(common::demo_model().with_extension("toml"))
        .unwrap()
        .replace("version = \"demo-1\"", "version = \"by-hand\"");
    assert!(sidecar.contains("by-hand"));
    std::fs::write(dir.path().join("changed.toml"), sidecar).unwrap();
    std::fs::copy(common::demo_model(), dir.path().join("changed.onnx")).unwrap();
    h.predictor
        .client
        .register_model_version(&AiModelVersionIn {
            model: "colonoscopy_multilabel_classifier".into(),
            version: "by-hand".into(),
            label_set: Some("multilabel_classification_colonoscopy".into()),
            metadata: serde_json::json!({}),
        })
        .await
        .unwrap();
    let model = service::load_model(&cfg).unwrap();
    let e = service::register(&h.predictor.client, &model).await.unwrap_err();
    assert!(matches!(e, StartError::UnknownFile { .. }) && e.to_string().contains("without the hash of its ONNX file"), "{e}");
}

/// The `predict_video` job of `video` as the registry has it now.
async fn predict_job(h: &Harness, video: i64) -> endoreg_common::api::Job {
    let token = h.predictor.client.token().expose().to_owned();
    let body: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/api/v1/jobs?video_id={video}", h.media.cfg.registry_url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let item = body["items"].as_array().unwrap().iter().find(|j| j["kind"] == "predict_video").cloned().unwrap();
    serde_json::from_value(item).unwrap()
}

/// Waits until `done` holds (a minute at most).
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "waited a minute for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A predictor like the harness's, named `name`, reaching the registry at `url`.
fn predictor_at(h: &Harness, name: &str, url: &str) -> Predictor {
    Predictor { client: Client::new(url, h.predictor.client.token().clone()).unwrap(), name: name.into(), ..clone_predictor(&h.predictor) }
}

async fn claim_prediction(h: &Harness, worker: &str) -> endoreg_common::api::Job {
    let claim = JobClaim { worker: worker.into(), kinds: vec!["predict_video".into()], lease_secs: 60 };
    h.predictor.client.claim(&claim).await.unwrap().expect("a prediction job")
}

/// The registry stops answering as the worker reports a finished prediction: the worker keeps trying while
/// its lease lasts, and the job completes on the same attempt without the model running again. The job
/// lines are the inference worker's (they were logged under the media crate's name).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_during_the_report_costs_no_attempt_and_no_second_prediction() {
    logs::capture();
    let h = harness().await;
    let video = processed_video(&h, 30).await;
    let proxy = proxy::Proxy::start(&h.media.cfg.registry_url).await;
    proxy.down_at("/complete HTTP/1.1");
    let predictor = predictor_at(&h, "outage-predictor", &proxy.url);
    let job = claim_prediction(&h, "outage-predictor").await;
    let task = tokio::spawn(async move { predictor.handle_job(job).await });
    until("the report meeting the outage three times, or the worker giving up", || proxy.refused() >= 3 || task.is_finished()).await;
    assert!(!task.is_finished(), "the worker gave up reporting after {} try", proxy.refused());
    let frames = h.predictor.service.counters.frames.load(Ordering::Relaxed);
    assert_eq!(frames, 30);
    proxy.up();
    tokio::time::timeout(Duration::from_secs(60), task).await.expect("the report never got through").unwrap();

    let job = predict_job(&h, video.id).await;
    assert_eq!((job.state.as_str(), job.attempts), ("succeeded", 1), "{job:?}");
    assert_eq!(h.predictor.service.counters.frames.load(Ordering::Relaxed), frames, "the model ran again");
    assert_eq!(h.predictor.client.video(video.id).await.unwrap().state, "predicted");
    let claimed = logs::containing("(predict_video) claimed");
    assert!(!claimed.is_empty() && claimed.iter().all(|l| l.target == "endoreg_inference::worker"), "{claimed:?}");
    let retries = logs::containing(&format!("job {}: retrying report (succeeded)", job.id));
    assert!(!retries.is_empty() && retries.iter().all(|l| l.target == "endoreg_inference::worker"), "{retries:?}");
}

/// The report got lost and the lease ended before the registry was back: the job's next attempt finds
/// the probabilities the first stored and records them, without running the model again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_after_a_lost_lease_uses_the_stored_probabilities() {
    let h = harness().await;
    let video = processed_video(&h, 30).await;
    let proxy = proxy::Proxy::start(&h.media.cfg.registry_url).await;
    proxy.down_at("/complete HTTP/1.1");
    let first = predictor_at(&h, "first-predictor", &proxy.url);
    let job = claim_prediction(&h, "first-predictor").await;
    let task = tokio::spawn(async move { first.handle_job(job).await });
    until("the report meeting the outage", || proxy.is_down()).await;
    let counters = &h.predictor.service.counters;
    assert_eq!(counters.frames.load(Ordering::Relaxed), 30);
    let segments = predicted(&h.predictor.client.segments(video.id).await.unwrap(), h.predictor.version.id);

    let job = predict_job(&h, video.id).await;
    // The lease ends now (as after an outage longer than the lease).
    h.db.execute("UPDATE job SET lease_expires_at = created_at WHERE id = $1", vec![endoreg_registry::db::exec::Param::from(job.id)])
        .await
        .unwrap();
    let second = predictor_at(&h, "second-predictor", &h.media.cfg.registry_url);
    let rerun = claim_prediction(&h, "second-predictor").await;
    assert_eq!((rerun.id, rerun.attempts), (job.id, 2));
    second.handle_job(rerun).await;
    let job = predict_job(&h, video.id).await;
    assert_eq!((job.state.as_str(), job.attempts), ("succeeded", 2), "{job:?}");
    assert_eq!(counters.frames.load(Ordering::Relaxed), 30, "the model ran again");
    assert_eq!(predicted(&h.predictor.client.segments(video.id).await.unwrap(), h.predictor.version.id), segments);
    assert_eq!(h.predictor.client.predictions(video.id).await.unwrap().len(), 1);

    proxy.up();
    tokio::time::timeout(Duration::from_secs(60), task).await.expect("the first worker kept trying").unwrap();
    assert_eq!(predict_job(&h, video.id).await.state, "succeeded");
}
