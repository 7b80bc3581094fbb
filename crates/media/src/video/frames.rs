//! Frame extraction: every `step`-th frame as a JPEG, decoded on one thread and encoded on several, with
//! bounded channels between them so memory stays flat whatever the video's length.

use std::path::Path;
use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, Mutex};

use ffmpeg::format::Pixel;
use ffmpeg::software::scaling;
use ffmpeg::{Packet, frame};
use ffmpeg_next as ffmpeg;
use serde::{Deserialize, Serialize};

use super::MediaError;
use super::decode::FrameSource;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FrameSettings {
    /// Every `step`-th frame (1: every frame).
    pub step: u64,
    /// JPEG quantiser as in `ffmpeg -q:v`: 2 (best) to 31.
    pub jpeg_qscale: u8,
    /// Encoding threads; 0: one per core.
    pub workers: usize,
}

impl Default for FrameSettings {
    fn default() -> Self {
        Self { step: 1, jpeg_qscale: 3, workers: 0 }
    }
}

impl FrameSettings {
    pub fn check(&self) -> Result<(), String> {
        if self.step == 0 {
            return Err("frames.step must be at least 1".into());
        }
        if !(2..=31).contains(&self.jpeg_qscale) {
            return Err(format!("frames.jpeg_qscale {} is outside 2..=31", self.jpeg_qscale));
        }
        Ok(())
    }
}

/// FFmpeg's lambda per quantiser step (FF_QP2LAMBDA).
const QP2LAMBDA: i32 = 118;

/// One thread's JPEG encoder: converts to full-range YUV and encodes with FFmpeg's MJPEG encoder.
struct JpegEncoder {
    scaler: Option<(Pixel, scaling::Context)>,
    yuvj: frame::Video,
    encoder: ffmpeg::encoder::Video,
    packet: Packet,
}

impl JpegEncoder {
    fn new(width: u32, height: u32, qscale: u8) -> Result<Self, MediaError> {
        let codec = ffmpeg::encoder::find(ffmpeg::codec::Id::MJPEG)
            .ok_or_else(|| MediaError::internal("mjpeg", "this FFmpeg has no MJPEG encoder"))?;
        let mut enc =
            ffmpeg::codec::context::Context::new_with_codec(codec).encoder().video().map_err(|e| MediaError::internal("mjpeg", e))?;
        enc.set_width(width);
        enc.set_height(height);
        enc.set_format(Pixel::YUVJ420P);
        enc.set_time_base(ffmpeg::Rational::new(1, 25));
        enc.set_flags(ffmpeg::codec::Flags::QSCALE);
        enc.set_global_quality(i32::from(qscale) * QP2LAMBDA);
        // The fixed quantiser is read from each frame's `quality`, which the bindings cannot set: without
        // these bounds every frame got the encoder's lowest (best) quantiser, whatever `jpeg_qscale` said.
        enc.set_qmin(i32::from(qscale));
        enc.set_qmax(i32::from(qscale));
        let encoder = enc.open_as(codec).map_err(|e| MediaError::internal("cannot open the MJPEG encoder", e))?;
        Ok(JpegEncoder { scaler: None, yuvj: frame::Video::new(Pixel::YUVJ420P, width, height), encoder, packet: Packet::empty() })
    }

    fn encode(&mut self, src: &frame::Video) -> Result<Vec<u8>, MediaError> {
        let (w, h) = (src.width(), src.height());
        let format = src.format();
        if self.scaler.as_ref().is_none_or(|(f, _)| *f != format) {
            let sc = scaling::Context::get(format, w, h, Pixel::YUVJ420P, w, h, scaling::Flags::FAST_BILINEAR)
                .map_err(|e| MediaError::Unsupported(format!("pixel format {format:?} cannot be converted: {e}")))?;
            self.scaler = Some((format, sc));
        }
        if let Some((_, sc)) = self.scaler.as_mut() {
            sc.run(src, &mut self.yuvj).map_err(|e| MediaError::internal("pixel conversion", e))?;
        }
        self.yuvj.set_pts(src.pts());
        self.encoder.send_frame(&self.yuvj).map_err(|e| MediaError::internal("JPEG encoding", e))?;
        self.encoder.receive_packet(&mut self.packet).map_err(|e| MediaError::internal("JPEG encoding", e))?;
        Ok(self.packet.data().map(<[u8]>::to_vec).unwrap_or_default())
    }
}

/// Extracts every `settings.step`-th frame of `input` as JPEG and hands `(frame number, bytes)` to `sink`
/// as they are ready (not necessarily in order). Returns the number of frames extracted and the number
/// of frames in the video. If `sink` fails, extraction stops and its error is returned.
pub fn extract(
    input: &Path,
    settings: &FrameSettings,
    sink: &mut dyn FnMut(u64, Vec<u8>) -> Result<(), MediaError>,
) -> Result<(u64, u64), MediaError> {
    settings.check().map_err(MediaError::Unsupported)?;
    let workers = if settings.workers == 0 { super::cores() } else { settings.workers };
    let mut src = FrameSource::open(input, super::cores())?;
    let (w, h) = (src.decoder.width(), src.decoder.height());
    let (frame_tx, frame_rx) = sync_channel::<(u64, frame::Video)>(workers * 2);
    let frame_rx: Arc<Mutex<Receiver<(u64, frame::Video)>>> = Arc::new(Mutex::new(frame_rx));
    let (jpeg_tx, jpeg_rx) = sync_channel::<Result<(u64, Vec<u8>), MediaError>>(workers * 2);
    let step = settings.step;
    let qscale = settings.jpeg_qscale;

    std::thread::scope(|scope| {
        let decoder = scope.spawn(move || -> Result<u64, MediaError> {
            let mut index = 0u64;
            loop {
                let mut f = frame::Video::empty();
                if !src.next(&mut f)? {
                    return Ok(src.frames);
                }
                if index.is_multiple_of(step) && frame_tx.send((index, f)).is_err() {
                    // The consumer stopped (a sink error): stop decoding.
                    return Ok(src.frames);
                }
                index += 1;
            }
        });
        for _ in 0..workers {
            let rx = Arc::clone(&frame_rx);
            let tx = jpeg_tx.clone();
            scope.spawn(move || {
                let mut encoder = match JpegEncoder::new(w, h, qscale) {
                    Ok(e) => e,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                loop {
                    let next = match rx.lock() {
                        Ok(guard) => guard.recv(),
                        Err(_) => return,
                    };
                    let Ok((index, f)) = next else { return };
                    let result = encoder.encode(&f).map(|bytes| (index, bytes));
                    let failed = result.is_err();
                    if tx.send(result).is_err() || failed {
                        return;
                    }
                }
            });
        }
        drop(jpeg_tx);
        let mut extracted = 0u64;
        let mut outcome = Ok(());
        for item in jpeg_rx.iter() {
            match item.and_then(|(i, bytes)| sink(i, bytes)) {
                Ok(()) => extracted += 1,
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            }
        }
        // Dropping the receiver ends the encoders, which ends the decoder.
        drop(jpeg_rx);
        let decoded = decoder.join().map_err(|_| MediaError::internal("frame extraction", "the decoding thread panicked"))?;
        outcome?;
        let total = decoded?;
        if total == 0 {
            return Err(MediaError::NoFrames);
        }
        Ok((extracted, total))
    })
}

/// Writes frame `index` of `input` as a PNG (for before/after pictures).
pub fn snapshot_png(input: &Path, index: u64, output: &Path) -> Result<(), MediaError> {
    let mut src = FrameSource::open(input, 1)?;
    let mut f = frame::Video::empty();
    let mut i = 0u64;
    loop {
        if !src.next(&mut f)? {
            return Err(MediaError::Unsupported(format!("the video has only {i} frames, not {}", index + 1)));
        }
        if i == index {
            break;
        }
        i += 1;
    }
    let (w, h) = (f.width(), f.height());
    let mut rgb = frame::Video::new(Pixel::RGB24, w, h);
    scaling::Context::get(f.format(), w, h, Pixel::RGB24, w, h, scaling::Flags::BILINEAR)
        .and_then(|mut sc| sc.run(&f, &mut rgb))
        .map_err(|e| MediaError::internal("pixel conversion", e))?;
    let codec =
        ffmpeg::encoder::find(ffmpeg::codec::Id::PNG).ok_or_else(|| MediaError::internal("png", "this FFmpeg has no PNG encoder"))?;
    let mut enc = ffmpeg::codec::context::Context::new_with_codec(codec).encoder().video().map_err(|e| MediaError::internal("png", e))?;
    enc.set_width(w);
    enc.set_height(h);
    enc.set_format(Pixel::RGB24);
    enc.set_time_base(ffmpeg::Rational::new(1, 25));
    let mut enc = enc.open_as(codec).map_err(|e| MediaError::internal("png", e))?;
    enc.send_frame(&rgb).map_err(|e| MediaError::internal("png", e))?;
    enc.send_eof().map_err(|e| MediaError::internal("png", e))?;
    let mut packet = Packet::empty();
    enc.receive_packet(&mut packet).map_err(|e| MediaError::internal("png", e))?;
    let partial = super::output::PartialFile::beside(output)?;
    std::fs::write(partial.path(), packet.data().unwrap_or_default())
        .map_err(|e| MediaError::internal(format!("cannot write {}", output.display()), e))?;
    partial.persist()
}
