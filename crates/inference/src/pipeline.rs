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
    #[error("stopped before the end of the video")]
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

/// Runs `model` on every `cfg.step`-th frame of the video at `path`, cropped to `region`.
pub fn run(
    path: &Path,
    region: Region,
    model: &Mutex<Model>,
    cfg: &PipelineConfig,
    counters: &Counters,
    cancel: &AtomicBool,
) -> Result<(Probabilities, RunStats), PipelineError> {
    let started = Instant::now();
    let probe = endoreg_media::video::probe::probe(path)?;
    let (contract, batch, per_frame) = {
        let m = model.lock().map_err(|_| PipelineError::Internal("the model lock is poisoned".into()))?;
        (m.contract.clone(), m.batch_size, m.frame_len())
    };
    let cores = endoreg_media::video::cores();
    let decode_threads = if cfg.decode_threads == 0 { cores } else { cfg.decode_threads };
    let workers = if cfg.preprocess_threads == 0 { (cores / 2).max(1) } else { cfg.preprocess_threads };
    let step = u64::from(cfg.step.max(1));
    let queue = cfg.queue_frames.max(1);

    // decode → preprocess: (row, frame); preprocess → model: (row, input); model → preprocess: spent inputs.
    let (frames_tx, frames_rx) = sync_channel::<(u64, frame::Video)>(queue);
    let (inputs_tx, inputs_rx) = sync_channel::<(u64, Vec<f32>)>(queue);
    let (spent_tx, spent_rx) = sync_channel::<Vec<f32>>(queue + batch + workers);
    let frames_rx = Arc::new(Mutex::new(frames_rx));
    let spent_rx = Arc::new(Mutex::new(spent_rx));
    let stop = AtomicBool::new(false);

    std::thread::scope(|s| {
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
        drop(inputs_tx);
        let result = infer(model, batch, per_frame, inputs_rx, spent_tx, counters);
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
        let decoded = decoded?;
        if let Some(e) = preprocess_error {
            return Err(e);
        }
        let (values, predicted, model_seconds) = result?;
        if cancel.load(Ordering::Relaxed) {
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
    cancel: &AtomicBool,
    stop: &AtomicBool,
) -> Result<u64, PipelineError> {
    let mut src = FrameSource::open(path, threads)?;
    let mut index = 0u64;
    loop {
        if cancel.load(Ordering::Relaxed) || stop.load(Ordering::Relaxed) {
            return Ok(index);
        }
        let mut f = frame::Video::empty();
        if !src.next(&mut f)? {
            return Ok(index);
        }
        Counters::add(&counters.decoded, 1);
        if index.is_multiple_of(step) && out.send((index / step, f)).is_err() {
            // The model stage stopped; its error is the one to report.
            return Ok(index + 1);
        }
        index += 1;
    }
}

fn preprocess(
    contract: &crate::contract::Contract,
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
    model: &Mutex<Model>,
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
        let probs = model.lock().map_err(|_| PipelineError::Internal("the model lock is poisoned".into()))?.run(buffer, *filled)?;
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
