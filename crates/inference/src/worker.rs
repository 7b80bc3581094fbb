//! `predict_video` jobs: the anonymised video through the pipeline, the probabilities into storage, the
//! segments into the registry under this model version (replacing its earlier ones), the video to
//! `predicted`. A failing job is reported and the worker goes on with the next.

use std::sync::Arc;

use endoreg_common::api::{AiModelVersion, Job, PredictionIn, Video};
use endoreg_common::storage::{StorageError, Store, keys};
use endoreg_media::client::{Client, ClientError};
use endoreg_media::jobs::{JobFailure, JobHandler, JobLoop, Lease};
use endoreg_media::video::MediaError;
use endoreg_media::workdir::JobDir;

use crate::pipeline::{self, PipelineError};
use crate::postprocess;
use crate::probabilities::Probabilities;
use crate::service::Service;
use crate::telemetry::Counters;

#[derive(Debug, thiserror::Error)]
pub enum PredictError {
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Registry(#[from] ClientError),
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// The job or the video is not something this worker can predict.
    #[error("{0}")]
    Input(String),
    #[error("the lease was lost to another worker")]
    LeaseLost,
    /// The video kept being edited while its state was being set; the segments are recorded, and a later
    /// attempt sets the state.
    #[error("the video kept changing while it was moved to `predicted`: {0}")]
    Contended(ClientError),
}

impl From<MediaError> for PredictError {
    fn from(e: MediaError) -> Self {
        PredictError::Pipeline(PipelineError::Media(e))
    }
}

impl JobFailure for PredictError {
    fn retry(&self) -> bool {
        match self {
            PredictError::Pipeline(e) => !e.is_permanent(),
            PredictError::Registry(e) => e.is_transient(),
            PredictError::Storage(e) => endoreg_media::jobs::storage_fault_may_pass(e),
            PredictError::Input(_) => false,
            PredictError::LeaseLost | PredictError::Contended(_) => true,
        }
    }
}

/// Each job's directory under the work directory: a copy of the video being predicted.
pub const WORK_PREFIX: &str = "predict-";

pub struct Predictor {
    pub service: Arc<Service>,
    pub version: AiModelVersion,
    pub client: Client,
    pub store: Store,
    pub name: String,
}

impl JobHandler for Predictor {
    type Error = PredictError;

    async fn handle(&self, job: &Job, lease: &Arc<Lease>) -> Result<(), PredictError> {
        let result = match job.kind.as_str() {
            "predict_video" => self.predict_video(job, lease).await,
            other => Err(PredictError::Input(format!("this worker does not handle `{other}` jobs"))),
        };
        let c = &self.service.counters;
        // A job stopped by the worker's shutdown or taken over by another worker did not fail.
        if result.is_ok() || !lease.should_stop() {
            Counters::add(if result.is_ok() { &c.videos_succeeded } else { &c.videos_failed }, 1);
        }
        result
    }
}

impl Predictor {
    pub fn job_loop(&self) -> JobLoop {
        let cfg = &self.service.cfg;
        JobLoop {
            client: self.client.clone(),
            worker: self.name.clone(),
            kinds: vec!["predict_video".into()],
            lease_secs: cfg.lease_secs,
            poll_secs: cfg.poll_secs,
            target: module_path!(),
        }
    }

    /// Predicts one claimed job and reports the outcome (what [`JobLoop::run`] does with each job).
    pub async fn handle_job(&self, job: Job) {
        self.job_loop().handle(self, job).await;
    }

    async fn predict_video(&self, job: &Job, lease: &Arc<Lease>) -> Result<(), PredictError> {
        let id = job.video_id.ok_or_else(|| PredictError::Input("the job names no video".into()))?;
        if let Some(wanted) = job.ai_model_version_id.filter(|v| *v != self.version.id) {
            return Err(PredictError::Input(format!(
                "the job asks for model version {wanted}; this worker serves {} {} (version {})",
                self.version.model, self.version.version, self.version.id
            )));
        }
        let video = self.client.video(id).await?;
        if !matches!(video.state.as_str(), "frames_extracted" | "predicted" | "validated") {
            return Err(PredictError::Input(format!("video {id} is {}; only processed videos are predicted", video.state)));
        }
        let key = video.anonymised_key.clone().ok_or_else(|| PredictError::Input(format!("video {id} has no anonymised file")))?;
        let storage_key = keys::predictions(&video.sha256, self.version.id);
        // A rerun of this job (its earlier attempt lost its report or its lease) uses what that attempt
        // stored; a new request predicts afresh.
        let stored = if job.attempts > 1 { self.stored_probabilities(&storage_key, &key).await? } else { None };
        let probs = match stored {
            Some(probs) => {
                log::info!(
                    "video {id}: its probabilities by {} {} are stored already (an earlier attempt); not predicting again",
                    self.version.model,
                    self.version.version
                );
                probs
            }
            None => {
                let mut probs = self.predict(id, &video, &key, lease).await?;
                probs.header.source = Some(key);
                self.store.put_bytes(&storage_key, probs.encode()).await?;
                probs
            }
        };
        let segments = postprocess::segments(&probs, &self.service.contract);
        let prediction = PredictionIn {
            storage_key,
            frame_count: i64::try_from(probs.header.rows).unwrap_or(i64::MAX),
            step: i64::from(probs.header.step),
            labels: probs.header.labels.clone(),
            segments,
        };
        let recorded = self.client.record_prediction(id, self.version.id, &prediction).await?;
        let detail = format!("{} segments by {} {}", recorded.segments, self.version.model, self.version.version);
        // The state change is conditional on the video as read (If-Match): someone editing the video in
        // between is read again, not a failed job with its segments already recorded.
        for attempt in 1.. {
            let video = self.client.video(id).await?;
            if !matches!(video.state.as_str(), "frames_extracted" | "predicted") {
                break;
            }
            match self.client.video_state(&video, "predicted", Some(detail.clone())).await {
                Ok(_) => break,
                Err(e) if matches!(e.status(), Some(409 | 412)) && attempt < 3 => {}
                Err(e) if matches!(e.status(), Some(409 | 412)) => return Err(PredictError::Contended(e)),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// The stored probabilities of the anonymised video `source` by this model version, with this worker's
    /// frame step, when an earlier attempt stored them (and lost its report, or its lease). Stored under a
    /// key of the video and the model version, they are reused only when they say they are of the same
    /// anonymised video (the video may have been anonymised again since); anything else is predicted again
    /// and replaced.
    async fn stored_probabilities(&self, storage_key: &str, source: &str) -> Result<Option<Probabilities>, PredictError> {
        let bytes = match self.store.get_bytes(storage_key).await {
            Ok(bytes) => bytes,
            Err(StorageError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let Ok(probs) = Probabilities::decode(&bytes) else { return Ok(None) };
        let (h, c) = (&probs.header, &self.service.contract);
        let same = h.source.as_deref() == Some(source)
            && h.model == c.name
            && h.version == c.version
            && h.labels == c.labels
            && h.step == self.service.cfg.pipeline.step.max(1);
        Ok(same.then_some(probs))
    }

    /// Runs the model over the anonymised video stored under `key`.
    async fn predict(&self, id: i64, video: &Video, key: &str, lease: &Arc<Lease>) -> Result<Probabilities, PredictError> {
        let layout = match (&video.processor, self.service.contract.preprocessing.crop) {
            (_, crate::contract::Crop::None) => None,
            (Some(p), _) => Some(self.service.layout(&self.client, p).await?),
            (None, _) => {
                return Err(PredictError::Input(format!(
                    "video {id} names no endoscopy processor, and the model crops to the processor's endoscope image"
                )));
            }
        };

        let dir = self.service.cfg.work_dir();
        let work = tokio::task::spawn_blocking(move || JobDir::create(&dir, WORK_PREFIX))
            .await
            .map_err(|e| MediaError::internal("work directory thread", e))??;
        let path = work.path().join("anonymised.mp4");
        self.store.download(key, &path, None).await?;

        let probe = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || endoreg_media::video::probe::probe(&path))
                .await
                .map_err(|e| MediaError::internal("probe thread", e))??
        };
        let region = self.service.region(layout.as_ref(), probe.width, probe.height)?;
        let (service, lease2) = (self.service.clone(), lease.clone());
        let result = tokio::task::spawn_blocking(move || {
            pipeline::run(&path, region, &service.model, &service.cfg.pipeline, &service.counters, &|| lease2.should_stop())
        })
        .await
        .map_err(|e| PipelineError::Internal(e.to_string()))?
        .map_err(|e| if lease.is_lost() { PredictError::LeaseLost } else { e.into() });
        // A copy of the whole video: removed off the async threads, whatever the outcome.
        let _ = tokio::task::spawn_blocking(move || drop(work)).await;
        let (probs, stats) = result?;
        if lease.is_lost() {
            return Err(PredictError::LeaseLost);
        }
        log::info!(
            "video {id}: {} frames predicted in {:.1} s ({:.1} frames/s, {:.0}% of the time in the model)",
            stats.predicted,
            stats.seconds,
            stats.predicted as f64 / stats.seconds.max(1e-9),
            100.0 * stats.model_seconds / stats.seconds.max(1e-9)
        );
        Ok(probs)
    }
}
