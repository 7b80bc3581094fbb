//! The demo end to end, on whatever registry the worker is configured for: a synthetic video with a fake
//! patient's name burned in is generated, uploaded, processed by this worker, and a before/after pair of
//! pictures is written so a person can see what anonymisation removed.

use std::path::PathBuf;

use endoreg_common::api::{JobClaim, MediaIdentity, UploadMetadata};

use crate::client::Client;
use crate::config::MediaConfig;
use crate::video::demo::{self, DemoSpec, FakePatient};
use crate::video::encode::H264Settings;
use crate::video::frames;
use crate::video::mask::Layout;
use crate::worker::Worker;

pub struct Outcome {
    pub video: i64,
    pub ok: bool,
    pub detail: String,
    pub before: PathBuf,
    pub after: PathBuf,
}

pub async fn run(worker: &Worker, cfg: &MediaConfig, processor: &str, seconds: u64) -> anyhow::Result<Outcome> {
    let dir = cfg.data_dir.join("demo");
    std::fs::create_dir_all(&dir)?;
    let p = worker.client.processor(processor).await?;
    let dim = |k: &str| p.fields.get(k).and_then(|v| v.as_u64()).and_then(|v| u32::try_from(v).ok()).unwrap_or(0);
    let layout = Layout { processor: processor.into(), width: dim("image_width"), height: dim("image_height"), regions: p.regions };
    // Half the processor's size: the same layout, scaled, and a quicker demo.
    let (w, h) = ((layout.width / 2) & !1, (layout.height / 2) & !1);
    let fps = 25;
    let raw = dir.join("demo-raw.mp4");
    let patient = FakePatient::default();
    let spec = DemoSpec {
        width: w,
        height: h,
        fps,
        frames: seconds * u64::from(fps),
        layout,
        patient: patient.clone(),
        noise: 0,
        encoding: H264Settings { crf: 18, preset: "veryfast".into(), threads: 0, ..H264Settings::default() },
    };
    let raw_path = raw.clone();
    let frames_written = tokio::task::spawn_blocking(move || demo::generate(&raw_path, &spec)).await??;
    println!("generated  {} ({w}x{h}, {frames_written} frames, fake patient {} born {})", raw.display(), patient.name, patient.birth_date);

    let meta = UploadMetadata {
        center: "demo_center".into(),
        processor: Some(processor.into()),
        patient_examination_id: None,
        pdf_type: None,
        identity: Some(MediaIdentity {
            patient_first_name: Some("Erika".into()),
            patient_last_name: Some("Mustermann".into()),
            patient_date_of_birth: chrono::NaiveDate::from_ymd_opt(1961, 8, 12),
            examination_date: chrono::NaiveDate::from_ymd_opt(2024, 2, 3),
            examiner: None,
        }),
    };
    let uploaded = worker.client.upload(&raw, &meta).await?;
    let video = uploaded.video.ok_or_else(|| anyhow::anyhow!("the upload was not recognised as a video"))?;
    println!("uploaded   video {} (job {}, {})", video.id, uploaded.job.id, if uploaded.duplicate { "seen before" } else { "new" });

    // Process queued jobs until this video is done (the registry may hold other work too).
    let claim = JobClaim { worker: worker.name.clone(), kinds: vec!["process_video".into()], lease_secs: cfg.lease_secs };
    for _ in 0..20 {
        let v = worker.client.video(video.id).await?;
        if v.state == "failed" || processed(&v.state) {
            break;
        }
        match worker.client.claim(&claim).await? {
            Some(job) => worker.handle_job(job).await,
            None => tokio::time::sleep(std::time::Duration::from_millis(500)).await,
        }
    }
    let v = worker.client.video(video.id).await?;
    let before = dir.join("before.png");
    let after = dir.join("after.png");
    // A second run finds the video of the first, maybe predicted since: processed all the same.
    if !processed(&v.state) {
        return Ok(Outcome {
            video: v.id,
            ok: false,
            detail: format!("video {} is {}: {}", v.id, v.state, v.state_detail.unwrap_or_default()),
            before,
            after,
        });
    }
    let anonymised = dir.join("demo-anonymised.mp4");
    let key = v.anonymised_key.clone().unwrap_or_default();
    worker.store.download(&key, &anonymised, None).await?;
    // A frame in the mucosa phase, 40 % into the video.
    let index = frames_written * 2 / 5;
    let (r, a, b, af) = (raw.clone(), anonymised.clone(), before.clone(), after.clone());
    tokio::task::spawn_blocking(move || -> Result<(), crate::video::MediaError> {
        frames::snapshot_png(&r, index, &b)?;
        frames::snapshot_png(&a, index, &af)
    })
    .await??;
    let frames = v.frame_sets.first().map(|f| f.frame_count).unwrap_or(0);
    println!(
        "processed  video {} is {}: {} frames anonymised, {frames} JPEG frames stored",
        v.id,
        v.state,
        v.metadata.frame_count.unwrap_or(0)
    );
    println!("before     {}", before.display());
    println!("after      {}", after.display());
    Ok(Outcome { video: v.id, ok: true, detail: String::new(), before, after })
}

/// Whether a video in `state` has been through this worker (anonymised, frames extracted).
fn processed(state: &str) -> bool {
    matches!(state, "frames_extracted" | "predicted" | "validated")
}

/// Waits until an inference worker has predicted `video` (processing queues that), then prints its
/// predicted segments. An error when it does not happen within `wait`.
pub async fn print_predictions(client: &Client, video: i64, wait: std::time::Duration) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + wait;
    let v = loop {
        let v = client.video(video).await?;
        if v.state == "predicted" {
            break v;
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!(
                "video {video} is still {} after {} s: is an inference worker running (endoreg-inference serve)?",
                v.state,
                wait.as_secs()
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    let fps = v.metadata.fps.unwrap_or(25.0).max(1.0);
    let mut segments: Vec<_> = client.segments(video).await?.into_iter().filter(|s| s.model_version_id.is_some()).collect();
    segments.sort_by_key(|s| s.start_frame);
    let detail = v.state_detail.unwrap_or_else(|| format!("{} segments", segments.len()));
    println!("predicted  video {video}: {detail}");
    for s in &segments {
        println!(
            "           {:<16} frames {:>5} .. {:>5}  ({:.1} s .. {:.1} s)",
            s.label,
            s.start_frame,
            s.end_frame,
            s.start_frame as f64 / fps,
            (s.end_frame + 1) as f64 / fps
        );
    }
    Ok(())
}
