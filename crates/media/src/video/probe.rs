//! Probing: what a video file is (container, codec, size, frame rate, duration, frame count, rotation),
//! checked for plausibility before anything else touches it.

use std::path::Path;

use ffmpeg::codec::packet::side_data::Type as SideDataType;
use ffmpeg::media;
use ffmpeg_next as ffmpeg;

use super::MediaError;

/// Largest width or height accepted (8K is 7680; beyond is a damaged or hostile header).
pub const MAX_DIMENSION: u32 = 8192;

#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub container: String,
    pub codec: String,
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    pub duration_s: f64,
    /// From the container when it says; else estimated from duration and frame rate (anonymisation
    /// counts exactly).
    pub frame_count: u64,
    pub frame_count_exact: bool,
    /// Display rotation in degrees (0, 90, 180, 270).
    pub rotation: i64,
}

pub(crate) fn open_input(path: &Path) -> Result<ffmpeg::format::context::Input, MediaError> {
    let size = std::fs::metadata(path).map_err(|e| MediaError::internal(format!("cannot read {}", path.display()), e))?.len();
    if size == 0 {
        return Err(MediaError::Empty);
    }
    ffmpeg::format::input(&path).map_err(|e| match e {
        ffmpeg::Error::InvalidData => MediaError::NotMedia("no known container format recognises it".into()),
        ffmpeg::Error::Eof => MediaError::Truncated("it ends before its header is complete".into()),
        other => MediaError::NotMedia(other.to_string()),
    })
}

/// The best video stream's index.
pub(crate) fn video_stream(input: &ffmpeg::format::context::Input) -> Result<usize, MediaError> {
    input.streams().best(media::Type::Video).map(|s| s.index()).ok_or(MediaError::NoVideoStream)
}

fn rotation_of(stream: &ffmpeg::format::stream::Stream<'_>) -> i64 {
    for sd in stream.side_data() {
        if sd.kind() == SideDataType::DisplayMatrix {
            let d = sd.data();
            if d.len() >= 36 {
                let m = |i: usize| f64::from(i32::from_le_bytes([d[4 * i], d[4 * i + 1], d[4 * i + 2], d[4 * i + 3]]));
                // av_display_rotation_get: the matrix holds 16.16 fixed point; the angle is counter-clockwise.
                let angle = -m(1).atan2(m(0)).to_degrees();
                return ((angle / 90.0).round() as i64 * 90).rem_euclid(360);
            }
        }
    }
    stream.metadata().get("rotate").and_then(|r| r.parse::<i64>().ok()).map(|r| r.rem_euclid(360)).unwrap_or(0)
}

pub fn probe(path: &Path) -> Result<Probe, MediaError> {
    super::init();
    let input = open_input(path)?;
    let index = video_stream(&input)?;
    let stream = input.stream(index).ok_or(MediaError::NoVideoStream)?;
    let params = stream.parameters();
    let codec_id = params.id();
    let decoder = ffmpeg::codec::context::Context::from_parameters(params)
        .and_then(|c| c.decoder().video())
        .map_err(|_| MediaError::UnsupportedCodec(format!("{codec_id:?}").to_lowercase()))?;
    let (width, height) = (decoder.width(), decoder.height());
    if width == 0 || height == 0 || width > MAX_DIMENSION || height > MAX_DIMENSION {
        return Err(MediaError::BadDimensions { width, height, max: MAX_DIMENSION });
    }
    let rate = {
        let r = stream.avg_frame_rate();
        if r.numerator() > 0 && r.denominator() > 0 { r } else { stream.rate() }
    };
    let fps =
        if rate.numerator() > 0 && rate.denominator() > 0 { f64::from(rate.numerator()) / f64::from(rate.denominator()) } else { 0.0 };
    if !(fps > 0.0 && fps <= 1000.0) {
        return Err(MediaError::Corrupt(format!("the frame rate {fps:.3} is not plausible")));
    }
    let tb = stream.time_base();
    let duration_s = if stream.duration() > 0 {
        stream.duration() as f64 * f64::from(tb.numerator()) / f64::from(tb.denominator().max(1))
    } else if input.duration() > 0 {
        input.duration() as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE)
    } else {
        0.0
    };
    let (frame_count, exact) =
        if stream.frames() > 0 { (stream.frames() as u64, true) } else { ((duration_s * fps).round() as u64, false) };
    let container = input.format().name().split(',').next().unwrap_or("unknown").to_owned();
    let codec = decoder.codec().map(|c| c.name().to_owned()).unwrap_or_else(|| format!("{codec_id:?}").to_lowercase());
    Ok(Probe { container, codec, width, height, fps, duration_s, frame_count, frame_count_exact: exact, rotation: rotation_of(&stream) })
}
