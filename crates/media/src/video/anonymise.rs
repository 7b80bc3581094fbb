//! Anonymisation: every frame keeps only the endoscope image, minus the regions where the processor prints
//! patient or device information; the result is re-encoded to H.264 MP4 (YUV420P, even sides) and verified
//! by decoding it.

use std::path::Path;

use ffmpeg::format::Pixel;
use ffmpeg::frame;
use ffmpeg::software::scaling;
use ffmpeg_next as ffmpeg;

use super::MediaError;
use super::decode::{FrameSource, count_frames};
use super::encode::{Colour, H264Settings, H264Writer};
use super::mask::Mask;
use super::output::PartialFile;
use super::probe::Probe;

/// What anonymisation wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anonymised {
    pub frames: u64,
    /// The anonymised picture's size: the input's, each side rounded up to an even number (H.264 in 4:2:0
    /// needs even sides; see [`output_size`]).
    pub width: u32,
    pub height: u32,
}

/// Neutral chroma (no colour) in either range.
const NEUTRAL_C: u8 = 128;

/// The size anonymisation writes for a `width`×`height` input: an odd side gets one more column or row
/// (right, bottom) repeating the last one as anonymised (black where that is blanked), so no pixel of the
/// picture is lost, nothing blanked shows, and the regions keep their coordinates.
pub fn output_size(width: u32, height: u32) -> (u32, u32) {
    (width + width % 2, height + height % 2)
}

/// Copies the kept pixels of `src` (YUV420P) into `dst` (YUV420P, `src`'s size or one pixel more per side,
/// see [`output_size`]) and blackens the rest; an added column or row repeats the last one as anonymised.
/// Black is read from `dst`'s colour range.
pub fn apply_mask(src: &frame::Video, dst: &mut frame::Video, mask: &Mask) {
    let black = if dst.color_range() == ffmpeg::color::Range::JPEG { 0 } else { 16 };
    let (w, h) = (src.width() as usize, src.height() as usize);
    let (dw, dh) = (dst.width() as usize, dst.height() as usize);
    // Luma.
    let (s_stride, d_stride) = (src.stride(0), dst.stride(0));
    let s = src.data(0);
    let d = dst.data_mut(0);
    for y in 0..h {
        let row = &mut d[y * d_stride..y * d_stride + dw];
        row.fill(black);
        for (x0, x1) in mask.spans(y as u32) {
            let (x0, x1) = (x0 as usize, (x1 as usize).min(w));
            if x1 > x0 {
                row[x0..x1].copy_from_slice(&s[y * s_stride + x0..y * s_stride + x1]);
            }
        }
        // The added column repeats the last one as anonymised (black where that is blanked).
        if dw > w && w > 0 {
            row[w] = row[w - 1];
        }
    }
    for y in h..dh {
        // The added row likewise.
        if h > 0 {
            d.copy_within((h - 1) * d_stride..(h - 1) * d_stride + dw, y * d_stride);
        }
    }
    // Chroma: a chroma sample covers 2×2 luma pixels; keep it only if all four are kept, so no colour from
    // a blanked area survives at the edges. A sample half over the added column or row is decided by its
    // pixels of the picture alone (the added ones repeat them).
    let (cw, ch) = (dw.div_ceil(2), dh.div_ceil(2));
    for plane in 1..=2 {
        let (s_stride, d_stride) = (src.stride(plane), dst.stride(plane));
        let s = src.data(plane);
        let d = dst.data_mut(plane);
        for cy in 0..ch {
            let row = &mut d[cy * d_stride..cy * d_stride + cw];
            row.fill(NEUTRAL_C);
            if 2 * cy >= h {
                continue;
            }
            let upper = mask.spans((2 * cy) as u32);
            let lower = mask.spans((2 * cy + 1).min(h - 1) as u32);
            for (a0, a1) in &upper {
                for (b0, b1) in &lower {
                    let (x0, x1) = ((*a0).max(*b0) as usize, ((*a1).min(*b1) as usize).min(w));
                    let c0 = x0.div_ceil(2);
                    let c1 = if x1 == w { x1.div_ceil(2) } else { x1 / 2 };
                    if c1 > c0 {
                        row[c0..c1].copy_from_slice(&s[cy * s_stride + c0..cy * s_stride + c1]);
                    }
                }
            }
        }
    }
}

/// Whether swscale reads `format` as full range whatever the frame says (and so writes limited-range
/// YUV420P from it): RGB and paletted pictures, grey, and the `yuvj` formats of JPEG-style sources.
fn converted_to_limited(format: Pixel) -> bool {
    let name = format.descriptor().map(|d| d.name()).unwrap_or_default();
    ["rgb", "bgr", "gbr", "pal", "gray", "ya", "yuvj", "mono"].iter().any(|p| name.contains(p))
}

fn is_rgb(format: Pixel) -> bool {
    let name = format.descriptor().map(|d| d.name()).unwrap_or_default();
    ["rgb", "bgr", "gbr", "pal"].iter().any(|p| name.contains(p))
}

/// Turns decoded pictures of any pixel format into YUV420P of the same size, and says how the result is
/// to be read. YUV420P is taken as it is (its colour description passed on); everything else goes through
/// swscale: RGB becomes BT.601 limited range (swscale's matrix), full-range sources become limited range,
/// other YUV keeps its matrix and range and loses chroma resolution.
struct ToYuv420 {
    format: Pixel,
    scaler: Option<scaling::Context>,
    converted: frame::Video,
    colour: Colour,
}

impl ToYuv420 {
    fn new(first: &frame::Video) -> Result<Self, MediaError> {
        let (format, w, h) = (first.format(), first.width(), first.height());
        let source = Colour {
            range: if first.color_range() == ffmpeg::color::Range::JPEG { ffmpeg::color::Range::JPEG } else { ffmpeg::color::Range::MPEG },
            space: first.color_space(),
            primaries: first.color_primaries(),
            transfer: first.color_transfer_characteristic(),
        };
        if format == Pixel::YUV420P {
            return Ok(ToYuv420 { format, scaler: None, converted: frame::Video::empty(), colour: source });
        }
        let flags = scaling::Flags::BILINEAR | scaling::Flags::ACCURATE_RND | scaling::Flags::FULL_CHR_H_INP;
        let scaler = scaling::Context::get(format, w, h, Pixel::YUV420P, w, h, flags)
            .map_err(|e| MediaError::Unsupported(format!("the pixel format {} cannot be converted: {e}", format_name(format))))?;
        let mut colour = source;
        if converted_to_limited(format) {
            colour.range = ffmpeg::color::Range::MPEG;
        }
        if is_rgb(format) {
            colour.space = ffmpeg::color::Space::SMPTE170M;
        }
        Ok(ToYuv420 { format, scaler: Some(scaler), converted: frame::Video::new(Pixel::YUV420P, w, h), colour })
    }

    fn convert<'a>(&'a mut self, decoded: &'a frame::Video, index: u64) -> Result<&'a frame::Video, MediaError> {
        if decoded.format() != self.format {
            return Err(MediaError::Unsupported(format!(
                "the pixel format changes mid-stream (from {} to {} at frame {index})",
                format_name(self.format),
                format_name(decoded.format())
            )));
        }
        match self.scaler.as_mut() {
            None => Ok(decoded),
            Some(sc) => {
                sc.run(decoded, &mut self.converted).map_err(|e| MediaError::internal("pixel conversion", e))?;
                Ok(&self.converted)
            }
        }
    }
}

fn format_name(format: Pixel) -> String {
    format.descriptor().map(|d| d.name().to_owned()).unwrap_or_else(|| format!("{format:?}").to_lowercase())
}

/// Anonymises `input` into `output` (MP4, H.264, YUV420P, even sides: see [`output_size`]) and verifies
/// the result by decoding it ([`verify`]). `probe` is the input's probe; `progress` is called after every
/// frame encoded and every frame verified with the number done, and an error from it stops the work and is
/// returned (how a stopping worker interrupts a long video). An input that yields fewer frames than its
/// container announces is refused as truncated.
///
/// `output` appears only when the result is complete and verified; whatever fails, nothing is left there
/// (an existing file stays as it was).
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
    let partial = PartialFile::beside(output)?;
    let done = encode(input, partial.path(), probe, mask, settings, progress)?;
    verify(partial.path(), done.frames, progress)?;
    partial.persist()?;
    Ok(done)
}

fn encode(
    input: &Path,
    output: &Path,
    probe: &Probe,
    mask: &Mask,
    settings: &H264Settings,
    progress: &mut dyn FnMut(u64) -> Result<(), MediaError>,
) -> Result<Anonymised, MediaError> {
    let mut src = FrameSource::open(input, super::cores())?;
    let (w, h) = (src.decoder.width(), src.decoder.height());
    if (w, h) != (probe.width, probe.height) {
        return Err(MediaError::Corrupt(format!("the stream is {w}x{h} but its header said {}x{}", probe.width, probe.height)));
    }
    let (ow, oh) = output_size(w, h);
    let time_base = src.time_base();
    let rate = ffmpeg::Rational::new((probe.fps * 1000.0).round() as i32, 1000);
    let mut decoded = frame::Video::empty();
    // The first frame says the pixel format and the colour description the output gets.
    if !src.next(&mut decoded)? {
        return Err(MediaError::NoFrames);
    }
    let mut to_yuv = ToYuv420::new(&decoded)?;
    let colour = to_yuv.colour;
    let mut out = frame::Video::new(Pixel::YUV420P, ow, oh);
    out.set_color_range(colour.range);
    out.set_color_space(colour.space);
    out.set_color_primaries(colour.primaries);
    out.set_color_transfer_characteristic(colour.transfer);
    let mut writer = H264Writer::create(output, ow, oh, time_base, rate, colour, settings)?;
    let ticks_per_frame = {
        let tb = f64::from(time_base.numerator()) / f64::from(time_base.denominator().max(1));
        (1.0 / (probe.fps * tb)).max(1.0)
    };
    let mut last_pts: Option<i64> = None;
    loop {
        if (decoded.width(), decoded.height()) != (w, h) {
            return Err(MediaError::Unsupported(format!(
                "the picture size changes mid-stream (from {w}x{h} to {}x{} at frame {})",
                decoded.width(),
                decoded.height(),
                src.frames
            )));
        }
        apply_mask(to_yuv.convert(&decoded, src.frames)?, &mut out, mask);
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
        if !src.next(&mut decoded)? {
            break;
        }
    }
    let frames = src.frames;
    if probe.frame_count_exact && frames < probe.frame_count {
        return Err(MediaError::Truncated(format!(
            "the container announces {} frames but only {frames} could be decoded",
            probe.frame_count
        )));
    }
    let written = writer.finish()?;
    Ok(Anonymised { frames: written, width: ow, height: oh })
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
