//! The worker loop: claim a job, keep its lease alive, process, complete — and never let one bad video
//! take the worker down. Processing is idempotent and resumes where an earlier attempt stopped: each step
//! checks the medium's state, and every product is stored under a content-addressed key.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use endoreg_common::api::{FrameSet, Job, Video, VideoMetadata, VideoPatch};
use endoreg_common::storage::{Identities, StorageError, Store, keys};

use crate::client::{Client, ClientError};
use crate::config::MediaConfig;
use crate::jobs::{JobHandler, JobLoop, Lease};
use crate::video::mask::{Layout, Mask};
use crate::video::{MediaError, anonymise, frames, probe};
use crate::workdir::JobDir;

/// Why a job failed, and whether another attempt could succeed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{0}")]
    Media(#[from] MediaError),
    #[error("{0}")]
    Registry(#[from] ClientError),
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Report(String),
    #[error("the lease was lost to another worker")]
    LeaseLost,
}

impl crate::jobs::JobFailure for JobError {
    fn retry(&self) -> bool {
        match self {
            JobError::Media(e) => !e.is_permanent(),
            JobError::Registry(e) => e.is_transient(),
            JobError::Storage(e) => crate::jobs::storage_fault_may_pass(e),
            JobError::Report(_) => false,
            JobError::LeaseLost => true,
        }
    }
}

/// Each job's directory under the work directory.
pub const WORK_PREFIX: &str = "job-";

pub struct Worker {
    pub client: Client,
    pub store: Store,
    pub identities: Identities,
    pub cfg: MediaConfig,
    pub name: String,
    /// Report templates, loaded (and checked) once at start.
    pub templates: Vec<crate::report::ReportTemplate>,
}

/// Runs `f` on a blocking thread (FFmpeg work must not stall the async runtime).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, MediaError> + Send + 'static) -> Result<T, MediaError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| MediaError::internal("worker thread", e))?
}

impl JobHandler for Worker {
    type Error = JobError;

    async fn handle(&self, job: &Job, lease: &Arc<Lease>) -> Result<(), JobError> {
        match job.kind.as_str() {
            "process_video" => self.process_video(job, lease).await,
            "process_report" => crate::report_job::process(self, job, lease).await,
            other => Err(JobError::Report(format!("this worker does not handle `{other}` jobs"))),
        }
    }
}

impl Worker {
    /// How this worker claims jobs.
    pub fn job_loop(&self) -> JobLoop {
        JobLoop {
            client: self.client.clone(),
            worker: self.name.clone(),
            kinds: self.cfg.kinds.clone(),
            lease_secs: self.cfg.lease_secs,
            poll_secs: self.cfg.poll_secs,
            target: module_path!(),
        }
    }

    /// Claims and processes jobs until `stop` is set.
    pub async fn run(&self, stop: Arc<AtomicBool>) {
        crate::workdir::clear_leftovers(self.cfg.work_dir(), WORK_PREFIX).await;
        self.job_loop().run(self, stop).await;
    }

    /// Processes one claimed job and reports the outcome.
    pub async fn handle_job(&self, job: Job) {
        self.job_loop().handle(self, job).await;
    }

    pub(crate) fn work_dir(&self) -> Result<JobDir, JobError> {
        Ok(JobDir::create(&self.cfg.work_dir(), WORK_PREFIX)?)
    }

    async fn layout(&self, video: &Video) -> Result<Layout, JobError> {
        let name = video.processor.clone().ok_or_else(|| MediaError::Regions("the video names no endoscopy processor".into()))?;
        Ok(self.client.layout(&name).await?)
    }

    async fn process_video(&self, job: &Job, lease: &Arc<Lease>) -> Result<(), JobError> {
        let id = job.video_id.ok_or_else(|| JobError::Report("the job names no video".into()))?;
        let mut video = self.client.video(id).await?;
        // What an earlier attempt recorded is not done again: it may have finished everything and lost only
        // its report (the raw video is then not even decrypted).
        if !matches!(video.state.as_str(), "uploaded" | "probed" | "anonymised") {
            log::info!("video {id} is {} already: nothing to do", video.state);
            return Ok(());
        }
        let work = self.work_dir()?;
        let anonymised = work.path().join("anonymised.mp4");
        let frames_prefix = keys::frames(&video.sha256, "anonymised");

        if matches!(video.state.as_str(), "uploaded" | "probed") {
            let raw_key = video.raw_key.clone().ok_or_else(|| MediaError::NotMedia("the video has no stored file".into()))?;
            let raw = work.path().join("raw");
            self.store.download(&raw_key, &raw, Some(&self.identities)).await?;

            // probed: what the file is.
            let raw_for_probe = raw.clone();
            let probed = blocking(move || probe::probe(&raw_for_probe)).await?;
            if video.state == "uploaded" {
                let metadata = VideoMetadata {
                    container: Some(probed.container.clone()),
                    codec: Some(probed.codec.clone()),
                    width: Some(i64::from(probed.width)),
                    height: Some(i64::from(probed.height)),
                    fps: Some(probed.fps),
                    duration_s: Some(probed.duration_s),
                    frame_count: Some(i64::try_from(probed.frame_count).unwrap_or(i64::MAX)),
                    rotation: Some(probed.rotation),
                };
                video = self.client.patch_video(&video, &VideoPatch { metadata: Some(metadata), ..Default::default() }).await?;
                video = self.client.video_state(&video, "probed", None).await?;
            }
            check_lease(lease)?;

            // anonymised: blank everything but the endoscope image, re-encode, verify. An anonymised key
            // recorded while the video is `probed` is not reused: it may be from before a retry (after the
            // processor's regions were corrected), and nothing says which.
            let layout = self.layout(&video).await?;
            let mask = Mask::for_video(&layout, probed.width, probed.height)?;
            let (input, output, settings, p) = (raw.clone(), anonymised.clone(), self.cfg.anonymise.clone(), probed.clone());
            let lease2 = lease.clone();
            let done =
                blocking(move || anonymise::anonymise(&input, &output, &p, &mask, &settings, &mut |_| still_wanted(&lease2))).await?;
            drop_file(&raw);
            check_lease(lease)?;
            let mut ingest = self.store.ingest(None, u64::MAX).await?;
            if let Err(e) = copy_into(&anonymised, &mut ingest).await {
                ingest.abort().await;
                return Err(e);
            }
            let stored = ingest.finish(keys::anonymised_video).await?;
            // Frames of an earlier anonymised version (before a retry) go before the new one is recorded: the
            // frames found under the prefix are then always of the recorded anonymised video.
            self.store.delete_prefix(&frames_prefix).await?;
            let metadata = VideoMetadata { frame_count: Some(i64::try_from(done.frames).unwrap_or(i64::MAX)), ..video.metadata.clone() };
            video = self
                .client
                .patch_video(&video, &VideoPatch { anonymised_key: Some(stored.key), metadata: Some(metadata), ..Default::default() })
                .await?;
            video = self.client.video_state(&video, "anonymised", None).await?;
        } else {
            let key = video
                .anonymised_key
                .clone()
                .ok_or_else(|| MediaError::internal("resume", "the video is anonymised but has no anonymised file"))?;
            self.store.download(&key, &anonymised, None).await?;
        }
        check_lease(lease)?;

        // frames_extracted: JPEGs of the anonymised video, never of the raw one.
        let step = self.cfg.frames.step.max(1);
        let count = match self.stored_frames(&video, &frames_prefix, step).await? {
            Some(count) => {
                log::info!("video {id}: its {count} frames are stored already (an earlier attempt); not extracting them again");
                count
            }
            None => {
                // An earlier attempt may have stopped half-way.
                self.store.delete_prefix(&frames_prefix).await?;
                match self.extract_frames(&anonymised, &frames_prefix, lease).await {
                    Ok((count, _)) => count,
                    Err(e) => {
                        // Once the lease is lost the prefix is the new holder's, who may be uploading there.
                        if !lease.is_lost() {
                            let _ = self.store.delete_prefix(&frames_prefix).await;
                        }
                        return Err(e);
                    }
                }
            }
        };
        let set = FrameSet {
            source: "anonymised".into(),
            first_frame: 0,
            frame_count: i64::try_from(count).unwrap_or(i64::MAX),
            step: i64::try_from(step).unwrap_or(1),
            format: "jpeg".into(),
            storage_prefix: frames_prefix,
        };
        video = self.client.put_frame_set(id, &set).await?;
        self.client.video_state(&video, "frames_extracted", None).await?;
        Ok(())
    }

    /// How many frames are stored under `prefix` when they are exactly every `step`-th frame of the
    /// anonymised video (an earlier attempt extracted them all and lost its report); `None` otherwise.
    async fn stored_frames(&self, video: &Video, prefix: &str, step: u64) -> Result<Option<u64>, JobError> {
        let Some(frames) = video.metadata.frame_count.and_then(|n| u64::try_from(n).ok()).filter(|n| *n > 0) else {
            return Ok(None);
        };
        let mut expected: Vec<String> =
            (0..frames).step_by(usize::try_from(step).unwrap_or(1)).map(|i| keys::frame(prefix, i, "jpg")).collect();
        expected.sort();
        let stored = self.store.list(prefix).await?;
        Ok((stored == expected).then_some(expected.len() as u64))
    }

    /// Extracts frames on blocking threads and uploads them as they come, through a bounded channel.
    async fn extract_frames(&self, video: &Path, prefix: &str, lease: &Arc<Lease>) -> Result<(u64, u64), JobError> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<(u64, Vec<u8>)>(16);
        let (input, settings, lease) = (video.to_owned(), self.cfg.frames.clone(), lease.clone());
        let extraction = tokio::task::spawn_blocking(move || {
            frames::extract(&input, &settings, &mut |i, bytes| {
                still_wanted(&lease)?;
                tx.blocking_send((i, bytes)).map_err(|_| MediaError::internal("frame upload", "the uploader stopped"))
            })
        });
        let mut upload_error = None;
        while let Some((i, bytes)) = rx.recv().await {
            if let Err(e) = self.store.put_bytes(&keys::frame(prefix, i, "jpg"), bytes).await {
                upload_error = Some(e);
                break;
            }
        }
        drop(rx);
        let extracted = extraction.await.map_err(|e| MediaError::internal("frame extraction", e))?;
        if let Some(e) = upload_error {
            return Err(e.into());
        }
        Ok(extracted?)
    }
}

/// Between steps: stop once the lease is lost or the worker is shutting down.
pub(crate) fn check_lease(lease: &Lease) -> Result<(), JobError> {
    if lease.is_lost() {
        return Err(JobError::LeaseLost);
    }
    Ok(still_wanted(lease)?)
}

/// For FFmpeg loops on blocking threads, asked after every frame: an error once the job should stop (its
/// lease was lost, or the worker is shutting down), so SIGTERM does not wait for a long video to finish.
fn still_wanted(lease: &Lease) -> Result<(), MediaError> {
    if lease.should_stop() {
        let why = if lease.is_lost() { "the job's lease was lost to another worker" } else { "the worker is shutting down" };
        Err(MediaError::Cancelled(why.into()))
    } else {
        Ok(())
    }
}

async fn copy_into(path: &Path, ingest: &mut endoreg_common::storage::Ingest) -> Result<(), JobError> {
    use tokio::io::AsyncReadExt;
    let mut f = tokio::fs::File::open(path).await.map_err(|e| MediaError::internal(format!("cannot open {}", path.display()), e))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).await.map_err(|e| MediaError::internal(format!("cannot read {}", path.display()), e))?;
        if n == 0 {
            return Ok(());
        }
        ingest.write(&buf[..n]).await?;
    }
}

/// Removes a decrypted raw file as soon as it is no longer needed (it shows the patient's name).
fn drop_file(path: &PathBuf) {
    let _ = std::fs::remove_file(path);
}
