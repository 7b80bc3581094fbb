//! A whole video through the model, overlapped:
//!
//! ```text
//! decode (FFmpeg, frame threads) ─▶ preprocess (N threads) ─▶ reorder + batch ─▶ model
//!            bounded channel            bounded channel          (this thread)
//! ```
//!
//! While the model runs a batch, the next frames are decoded and preprocessed. Every channel is bounded
//! and input buffers are recycled, so memory does not grow with the video's length; only the result does
//! (labels × 4 bytes per predicted frame).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ffmpeg_next::frame;

use endoreg_media::video::MediaError;
use endoreg_media::video::decode::FrameSource;

use crate::config::PipelineConfig;
use crate::contract::Contract;
use crate::preprocess::{PreprocessError, Preprocessor, Region};
use crate::probabilities::{Header, Probabilities};
use crate::runtime::{Model, ModelError};
use crate::telemetry::Counters;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error(transparent)]
    Preprocess(#[from] PreprocessError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("stopped before the end of the video (the worker is stopping, or lost the job)")]
    Cancelled,
    #[error("the pipeline failed: {0}")]
    Internal(String),
}

impl PipelineError {
    /// Whether the video or the model is the problem (another attempt cannot help).
    pub fn is_permanent(&self) -> bool {
        match self {
            PipelineError::Media(e) => e.is_permanent(),
            PipelineError::Preprocess(_) => true,
            PipelineError::Model(ModelError::Run(_)) => false,
            PipelineError::Model(_) => true,
            PipelineError::Cancelled | PipelineError::Internal(_) => false,
        }
    }
}

/// How a run went, besides its result.
#[derive(Debug, Clone, Default)]
pub struct RunStats {
    pub decoded: u64,
    pub predicted: u64,
    pub seconds: f64,
    /// Seconds inside the model.
    pub model_seconds: f64,
}

/// Asked between frames, from the decoding thread: whether to stop (the worker is shutting down, or lost
/// the job).
pub type Cancel<'a> = dyn Fn() -> bool + Sync + 'a;

/// Runs `model` on every `cfg.step`-th frame of the video at `path`, cropped to `region`.
pub fn run(
    path: &Path,
    region: Region,
    model: &Mutex<Model>,
    cfg: &PipelineConfig,
    counters: &Counters,
    cancel: &Cancel<'_>,
) -> Result<(Probabilities, RunStats), PipelineError> {
    let poisoned = || PipelineError::Internal("the model lock is poisoned".into());
    let (contract, batch, per_frame) = {
        let m = model.lock().map_err(|_| poisoned())?;
        (m.contract.clone(), m.batch_size, m.frame_len())
    };
    let mut run_batch = |frames: &[f32], n: usize| Ok(model.lock().map_err(|_| poisoned())?.run(frames, n)?);
    let stage = ModelStage { contract, batch, per_frame, run: &mut run_batch };
    run_stages(path, region, stage, cfg, counters, cancel)
}

/// Runs `n` frames (planar floats, one after the other) and returns `n × labels` probabilities.
type RunBatch<'a> = dyn FnMut(&[f32], usize) -> Result<Vec<f32>, PipelineError> + 'a;

/// What the pipeline needs of a model: its contract, frames per batch, floats per frame, and a batch run.
struct ModelStage<'a> {
    contract: Contract,
    batch: usize,
    per_frame: usize,
    run: &'a mut RunBatch<'a>,
}

fn run_stages(
    path: &Path,
    region: Region,
    stage: ModelStage<'_>,
    cfg: &PipelineConfig,
    counters: &Counters,
    cancel: &Cancel<'_>,
) -> Result<(Probabilities, RunStats), PipelineError> {
    let started = Instant::now();
    let probe = endoreg_media::video::probe::probe(path)?;
    let ModelStage { contract, batch, per_frame, run: run_batch } = stage;
    let cores = endoreg_media::video::cores();
    let decode_threads = if cfg.decode_threads == 0 { cores } else { cfg.decode_threads };
    let workers = if cfg.preprocess_threads == 0 { (cores / 2).max(1) } else { cfg.preprocess_threads };
    let step = u64::from(cfg.step.max(1));
    let queue = cfg.queue_frames.max(1);

    // decode → preprocess: (row, frame); preprocess → model: (row, input); model → preprocess: spent inputs.
    let (frames_tx, frames_rx) = sync_channel::<(u64, frame::Video)>(queue);
    let (inputs_tx, inputs_rx) = sync_channel::<(u64, Vec<f32>)>(queue);
    let (spent_tx, spent_rx) = sync_channel::<Vec<f32>>(queue + batch + workers);
    let stop = AtomicBool::new(false);

    std::thread::scope(|s| {
        // Inside the scope, so that only the preprocessing threads hold the receivers: when they have all
        // stopped (the model failed, nobody takes their inputs), the decoder's send fails instead of
        // blocking forever on a full queue.
        let frames_rx = Arc::new(Mutex::new(frames_rx));
        let spent_rx = Arc::new(Mutex::new(spent_rx));
        let decoder = s.spawn(|| decode(path, decode_threads, step, frames_tx, counters, cancel, &stop));
        let preprocessors: Vec<_> = (0..workers)
            .map(|_| {
                let (frames_rx, spent_rx, inputs_tx) = (frames_rx.clone(), spent_rx.clone(), inputs_tx.clone());
                let (contract, stop) = (&contract, &stop);
                s.spawn(move || {
                    let r = preprocess(contract, region, per_frame, &frames_rx, &spent_rx, &inputs_tx);
                    if r.is_err() {
                        // Frames after a gap could never be batched: stop decoding them.
                        stop.store(true, Ordering::Relaxed);
                    }
                    r
                })
            })
            .collect();
        drop((inputs_tx, frames_rx, spent_rx));
        let result = infer(run_batch, batch, per_frame, inputs_rx, spent_tx, counters);
        if result.is_err() {
            // The threads notice the closed channels; the decoder also checks this between frames.
            stop.store(true, Ordering::Relaxed);
        }
        let decoded = decoder.join().map_err(|_| PipelineError::Internal("the decoder thread panicked".into()))?;
        let mut preprocess_error = None;
        for p in preprocessors {
            if let Err(e) = p.join().map_err(|_| PipelineError::Internal("a preprocessing thread panicked".into()))? {
                preprocess_error.get_or_insert(e);
            }
        }
        // The first cause wins: a decoding error closes the channels and makes the later stages see less.
        let (decoded, reached_end) = decoded?;
        if let Some(e) = preprocess_error {
            return Err(e);
        }
        let (values, predicted, model_seconds) = result?;
        // A stop that came after the last frame was decoded loses nothing: the result is whole.
        if cancel() && !reached_end {
            return Err(PipelineError::Cancelled);
        }
        if decoded == 0 {
            return Err(MediaError::NoFrames.into());
        }
        let expected_rows = decoded.div_ceil(step);
        if predicted != expected_rows {
            return Err(PipelineError::Internal(format!("{predicted} frames predicted, {expected_rows} expected")));
        }
        let header = Header {
            model: contract.name.clone(),
            version: contract.version.clone(),
            labels: contract.labels.clone(),
            step: cfg.step.max(1),
            fps: probe.fps,
            frames: decoded,
            rows: predicted,
            source: None,
        };
        let stats = RunStats { decoded, predicted, seconds: started.elapsed().as_secs_f64(), model_seconds };
        Ok((Probabilities { header, values }, stats))
    })
}

fn decode(
    path: &Path,
    threads: usize,
    step: u64,
    out: SyncSender<(u64, frame::Video)>,
    counters: &Counters,
    cancel: &Cancel<'_>,
    stop: &AtomicBool,
) -> Result<(u64, bool), PipelineError> {
    let mut src = FrameSource::open(path, threads)?;
    let mut index = 0u64;
    loop {
        if cancel() || stop.load(Ordering::Relaxed) {
            return Ok((index, false));
        }
        let mut f = frame::Video::empty();
        if !src.next(&mut f)? {
            return Ok((index, true));
        }
        Counters::add(&counters.decoded, 1);
        if index.is_multiple_of(step) && out.send((index / step, f)).is_err() {
            // The model stage stopped; its error is the one to report.
            return Ok((index + 1, false));
        }
        index += 1;
    }
}

fn preprocess(
    contract: &Contract,
    region: Region,
    per_frame: usize,
    frames: &Mutex<Receiver<(u64, frame::Video)>>,
    spent: &Mutex<Receiver<Vec<f32>>>,
    out: &SyncSender<(u64, Vec<f32>)>,
) -> Result<(), PipelineError> {
    let mut p = Preprocessor::new(contract);
    loop {
        let next = frames.lock().map_err(|_| PipelineError::Internal("the frame queue lock is poisoned".into()))?.recv();
        let Ok((row, mut picture)) = next else { return Ok(()) };
        let recycled = spent.lock().ok().and_then(|r| r.try_recv().ok());
        let mut input = recycled.unwrap_or_else(|| vec![0.0; per_frame]);
        p.run(&mut picture, region, &mut input)?;
        if out.send((row, input)).is_err() {
            return Ok(());
        }
    }
}

/// Collects inputs in frame order into batches and runs them; returns the probabilities, the rows
/// predicted and the seconds inside the model.
fn infer(
    model: &mut RunBatch<'_>,
    batch: usize,
    per_frame: usize,
    inputs: Receiver<(u64, Vec<f32>)>,
    spent: SyncSender<Vec<f32>>,
    counters: &Counters,
) -> Result<(Vec<f32>, u64, f64), PipelineError> {
    let mut pending: BTreeMap<u64, Vec<f32>> = BTreeMap::new();
    let mut next_row = 0u64;
    let mut buffer: Vec<f32> = Vec::with_capacity(batch * per_frame);
    let mut filled = 0usize;
    let mut values = Vec::new();
    let mut model_seconds = 0.0;
    let mut run_batch = |buffer: &mut Vec<f32>, filled: &mut usize, values: &mut Vec<f32>| -> Result<(), PipelineError> {
        if *filled == 0 {
            return Ok(());
        }
        let t = Instant::now();
        let probs = model(buffer, *filled)?;
        let took = t.elapsed();
        model_seconds += took.as_secs_f64();
        Counters::add(&counters.frames, *filled as u64);
        Counters::add(&counters.batches, 1);
        Counters::add(&counters.inference_us, u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
        values.extend_from_slice(&probs);
        buffer.clear();
        *filled = 0;
        Ok(())
    };
    for (row, input) in inputs {
        pending.insert(row, input);
        while let Some(input) = pending.remove(&next_row) {
            buffer.extend_from_slice(&input);
            let _ = spent.try_send(input);
            filled += 1;
            next_row += 1;
            if filled == batch {
                run_batch(&mut buffer, &mut filled, &mut values)?;
            }
        }
    }
    if !pending.is_empty() {
        // A gap: a frame never arrived (its preprocessing failed); the caller reports that error.
        return Ok((values, next_row, model_seconds));
    }
    run_batch(&mut buffer, &mut filled, &mut values)?;
    Ok((values, next_row, model_seconds))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use endoreg_media::video::demo::{self, DemoSpec};

    use super::*;

    /// The model failing mid-video, while every queue is full, ends the run with the model's error (it
    /// used to leave the decoder blocked on a full queue forever, the job hanging with its lease renewed).
    #[test]
    fn a_model_failing_mid_video_ends_the_run_with_its_error() {
        let dir = tempfile::tempdir().unwrap();
        let video = dir.path().join("demo.mp4");
        demo::generate(&video, &DemoSpec::olympus(320, 180, 120)).unwrap();
        let contract = Contract::parse("name = \"m\"\nversion = \"1\"\nlabels = [\"a\"]\n[input]\nwidth = 16\nheight = 16\n").unwrap();
        let (done_tx, done) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut calls = 0;
            let mut run_batch = |_: &[f32], n: usize| {
                calls += 1;
                if calls < 2 {
                    return Ok(vec![0.5; n]);
                }
                // Long enough for the decoder and the preprocessing thread to fill their queues.
                std::thread::sleep(Duration::from_millis(300));
                Err(PipelineError::Model(ModelError::Run("CUDA out of memory".into())))
            };
            let stage = ModelStage { contract, batch: 4, per_frame: 3 * 16 * 16, run: &mut run_batch };
            let cfg = PipelineConfig { step: 1, decode_threads: 1, preprocess_threads: 1, queue_frames: 1 };
            let r = run_stages(&video, Region::Whole, stage, &cfg, &Counters::default(), &|| false);
            let _ = done_tx.send(r.map(|(p, _)| p.header.rows));
        });
        let r = done.recv_timeout(Duration::from_secs(60)).expect("the pipeline hung after the model failed");
        assert!(matches!(&r, Err(PipelineError::Model(ModelError::Run(m))) if m.contains("out of memory")), "{r:?}");
    }
}
