//! Anonymisation: every frame keeps only the endoscope image, minus the regions where the processor prints
//! patient or device information; the result is re-encoded to H.264 MP4 and verified by decoding it.

use std::path::Path;

use ffmpeg::format::Pixel;
use ffmpeg::frame;
use ffmpeg::software::scaling;
use ffmpeg_next as ffmpeg;

use super::MediaError;
use super::decode::{FrameSource, count_frames};
use super::encode::{H264Settings, H264Writer};
use super::mask::Mask;
use super::probe::Probe;

/// What anonymisation wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anonymised {
    pub frames: u64,
}

/// Luma and chroma of black in limited range (what H.264 in YUV420P carries).
const BLACK_Y: u8 = 16;
const NEUTRAL_C: u8 = 128;

/// Copies the kept pixels of `src` (YUV420P) into `dst` (YUV420P, same size) and blackens the rest.
pub fn apply_mask(src: &frame::Video, dst: &mut frame::Video, mask: &Mask) {
    let (w, h) = (src.width(), src.height());
    // Luma.
    let (s_stride, d_stride) = (src.stride(0), dst.stride(0));
    let s = src.data(0);
    let d = dst.data_mut(0);
    for y in 0..h as usize {
        let row = &mut d[y * d_stride..y * d_stride + w as usize];
        row.fill(BLACK_Y);
        for (x0, x1) in mask.spans(y as u32) {
            let (x0, x1) = (x0 as usize, x1 as usize);
            row[x0..x1].copy_from_slice(&s[y * s_stride + x0..y * s_stride + x1]);
        }
    }
    // Chroma: a chroma sample covers 2×2 luma pixels; keep it only if all four are kept, so no colour from
    // a blanked area survives at the edges.
    let (cw, ch) = (w.div_ceil(2) as usize, h.div_ceil(2) as usize);
    for plane in 1..=2 {
        let (s_stride, d_stride) = (src.stride(plane), dst.stride(plane));
        let s = src.data(plane);
        let d = dst.data_mut(plane);
        for cy in 0..ch {
            let row = &mut d[cy * d_stride..cy * d_stride + cw];
            row.fill(NEUTRAL_C);
            let upper = mask.spans((2 * cy) as u32);
            let lower = mask.spans((2 * cy + 1).min(h as usize - 1) as u32);
            for (a0, a1) in &upper {
                for (b0, b1) in &lower {
                    let (x0, x1) = ((*a0).max(*b0), (*a1).min(*b1));
                    let (c0, c1) = (x0.div_ceil(2) as usize, (x1 / 2) as usize);
                    if c1 > c0 {
                        row[c0..c1].copy_from_slice(&s[cy * s_stride + c0..cy * s_stride + c1]);
                    }
                }
            }
        }
    }
}

/// Anonymises `input` into `output` (MP4, H.264). `probe` is the input's probe; `progress` is called after
/// every frame with the number done, and an error from it stops the work and is returned (how a stopping
/// worker interrupts a long video). An input that yields fewer frames than its container announces is
/// refused as truncated. Check the result with [`verify`] before using it.
pub fn anonymise(
    input: &Path,
    output: &Path,
    probe: &Probe,
    mask: &Mask,
    settings: &H264Settings,
    progress: &mut dyn FnMut(u64) -> Result<(), MediaError>,
) -> Result<Anonymised, MediaError> {
    if probe.rotation != 0 {
        return Err(MediaError::Unsupported(format!(
            "the video carries a rotation of {}°; processor regions are defined for unrotated output, so it cannot be anonymised safely",
            probe.rotation
        )));
    }
    let mut src = FrameSource::open(input, super::cores())?;
    let (w, h) = (src.decoder.width(), src.decoder.height());
    if (w, h) != (probe.width, probe.height) {
        return Err(MediaError::Corrupt(format!("the stream is {w}x{h} but its header said {}x{}", probe.width, probe.height)));
    }
    let time_base = src.time_base();
    let rate = ffmpeg::Rational::new((probe.fps * 1000.0).round() as i32, 1000);
    let mut writer = H264Writer::create(output, w, h, time_base, rate, settings)?;
    let mut decoded = frame::Video::empty();
    let mut converted = frame::Video::new(Pixel::YUV420P, w, h);
    let mut out = frame::Video::new(Pixel::YUV420P, w, h);
    let mut scaler: Option<scaling::Context> = None;
    let ticks_per_frame = {
        let tb = f64::from(time_base.numerator()) / f64::from(time_base.denominator().max(1));
        (1.0 / (probe.fps * tb)).max(1.0)
    };
    let mut last_pts: Option<i64> = None;
    while src.next(&mut decoded)? {
        if (decoded.width(), decoded.height()) != (w, h) {
            return Err(MediaError::Unsupported(format!(
                "the picture size changes mid-stream (from {w}x{h} to {}x{} at frame {})",
                decoded.width(),
                decoded.height(),
                src.frames
            )));
        }
        let yuv = if decoded.format() == Pixel::YUV420P {
            &decoded
        } else {
            let sc = match scaler.as_mut() {
                Some(s) => s,
                None => scaler.insert(
                    scaling::Context::get(decoded.format(), w, h, Pixel::YUV420P, w, h, scaling::Flags::BILINEAR)
                        .map_err(|e| MediaError::Unsupported(format!("pixel format {:?} cannot be converted: {e}", decoded.format())))?,
                ),
            };
            sc.run(&decoded, &mut converted).map_err(|e| MediaError::internal("pixel conversion", e))?;
            &converted
        };
        apply_mask(yuv, &mut out, mask);
        // Monotonic timestamps: the muxer refuses anything else, and some recordings have gaps or none.
        let pts = match (decoded.timestamp(), last_pts) {
            (Some(t), Some(l)) if t > l => t,
            (Some(t), None) => t,
            (_, Some(l)) => l + ticks_per_frame.round() as i64,
            (None, None) => 0,
        };
        last_pts = Some(pts);
        out.set_pts(Some(pts));
        writer.write(&out)?;
        progress(src.frames)?;
    }
    let frames = src.frames;
    if frames == 0 {
        return Err(MediaError::NoFrames);
    }
    if probe.frame_count_exact && frames < probe.frame_count {
        return Err(MediaError::Truncated(format!(
            "the container announces {} frames but only {frames} could be decoded",
            probe.frame_count
        )));
    }
    let written = writer.finish()?;
    Ok(Anonymised { frames: written })
}

/// Decodes an anonymised video completely: it must yield exactly `expected` frames. `progress` as for
/// [`anonymise`].
pub fn verify(output: &Path, expected: u64, progress: &mut dyn FnMut(u64) -> Result<(), MediaError>) -> Result<(), MediaError> {
    let decoded = count_frames(output, progress).map_err(|e| match e {
        e @ MediaError::Cancelled(_) => e,
        e => MediaError::Verification(e.to_string()),
    })?;
    if decoded != expected {
        return Err(MediaError::Verification(format!("{expected} frames were written but {decoded} decode")));
    }
    Ok(())
}
