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
        ffmpeg::Error::Eof => MediaError::Truncated("it ends before its header is complete".into()),
        // A file that starts like a video but cannot be opened was mostly cut off, not something else.
        other => match read_start(path).map(|start| why_unreadable(&start, size, &mut |at| read_box_header(path, at))) {
            Ok(Some(e)) => e,
            _ if other == ffmpeg::Error::InvalidData => MediaError::NotMedia("no known container format recognises it".into()),
            _ => MediaError::NotMedia(other.to_string()),
        },
    })
}

fn read_start(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut start = Vec::with_capacity(16);
    std::fs::File::open(path)?.take(16).read_to_end(&mut start)?;
    Ok(start)
}

/// The 16 bytes at `at` (fewer at the end of the file).
fn read_box_header(path: &Path, at: u64) -> Option<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    f.seek(SeekFrom::Start(at)).ok()?;
    let mut header = Vec::with_capacity(16);
    f.take(16).read_to_end(&mut header).ok()?;
    Some(header)
}

/// Top-level boxes of MP4 and QuickTime files.
const MP4_BOXES: [&[u8; 4]; 16] = [
    b"ftyp", b"styp", b"moov", b"mdat", b"free", b"skip", b"wide", b"uuid", b"pdin", b"moof", b"mfra", b"meta", b"sidx", b"ssix", b"prft",
    b"emsg",
];

/// Why a file of `size` bytes that FFmpeg cannot open, starting with `start`, is unreadable, when its own
/// structure says so: an MP4 whose boxes run past the end or that has no `moov` (the index without which
/// no frame can be found; written last unless the file was made for streaming), or another container's
/// signature. `header_at(offset)` reads up to 16 bytes at `offset`. `None`: nothing to say beyond FFmpeg.
fn why_unreadable(start: &[u8], size: u64, header_at: &mut dyn FnMut(u64) -> Option<Vec<u8>>) -> Option<MediaError> {
    let incomplete = "the file is incomplete (an upload cut off, or a recording never finished); upload the complete file";
    if start.len() >= 8 && MP4_BOXES.contains(&<&[u8; 4]>::try_from(&start[4..8]).ok()?) {
        let (mut at, mut moov) = (0u64, false);
        while at < size {
            let h = header_at(at)?;
            if h.len() < 8 {
                return Some(MediaError::Truncated(format!("the MP4 file ends inside a box header at byte {at}: {incomplete}")));
            }
            let kind = <&[u8; 4]>::try_from(&h[4..8]).ok()?;
            if !MP4_BOXES.contains(&kind) {
                // Not MP4 structure past this point: damage, not something this can name.
                return None;
            }
            let name = String::from_utf8_lossy(kind);
            let declared = u64::from(u32::from_be_bytes([h[0], h[1], h[2], h[3]]));
            let len = match declared {
                // To the end of the file.
                0 => size - at,
                1 if h.len() >= 16 => u64::from_be_bytes([h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]]),
                1 => return Some(MediaError::Truncated(format!("the MP4 file ends inside the header of its `{name}` box: {incomplete}"))),
                n => n,
            };
            if len < 8 {
                return None;
            }
            moov |= kind == b"moov";
            if at.saturating_add(len) > size {
                let index = if moov { "" } else { " and has no `moov` index" };
                return Some(MediaError::Truncated(format!(
                    "the MP4 file ends inside its `{name}` box ({} of {len} bytes){index}: {incomplete}",
                    size - at
                )));
            }
            at += len;
        }
        return (!moov).then(|| {
            MediaError::Truncated(format!(
                "the MP4 file has no `moov` index (it says where the frames are, and is written when a recording ends): {incomplete}"
            ))
        });
    }
    let other = if start.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        "Matroska/WebM"
    } else if start.len() >= 12 && &start[..4] == b"RIFF" && &start[8..12] == b"AVI " {
        "AVI"
    } else if start.starts_with(&[0, 0, 1, 0xBA]) {
        "MPEG program stream"
    } else {
        return None;
    };
    Some(MediaError::Corrupt(format!("it starts as a {other} file but its header cannot be read: the file is damaged or incomplete")))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn mp4_box(kind: &[u8; 4], len: u32) -> Vec<u8> {
        let mut b = len.to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.resize(len as usize, 0);
        b
    }

    fn why(file: &[u8]) -> Option<String> {
        let header_at = &mut |at: u64| file.get(at as usize..).map(|rest| rest[..rest.len().min(16)].to_vec());
        why_unreadable(&file[..file.len().min(16)], file.len() as u64, header_at).map(|e| e.to_string())
    }

    #[test]
    fn an_mp4_cut_off_or_without_its_index_is_called_incomplete() {
        let mut whole = mp4_box(b"ftyp", 32);
        whole.extend(mp4_box(b"free", 8));
        whole.extend(mp4_box(b"mdat", 4000));
        let cut = &whole[..2000];
        let e = why(cut).unwrap();
        assert!(e.contains("cut off") && e.contains("`mdat` box (1960 of 4000 bytes) and has no `moov` index"), "{e}");
        let e = why(&whole).unwrap();
        assert!(e.contains("no `moov` index") && e.contains("incomplete"), "{e}");
        let e = why(&whole[..36]).unwrap();
        assert!(e.contains("inside a box header at byte 32"), "{e}");
        // With its index, the structure is whole: damage elsewhere is not named here.
        let mut indexed = whole.clone();
        indexed.extend(mp4_box(b"moov", 100));
        assert_eq!(why(&indexed), None);
    }

    #[test]
    fn what_does_not_look_like_a_container_is_left_to_ffmpeg() {
        let mut fake = mp4_box(b"ftyp", 32);
        fake.extend(b"xxxxxxxxxxxxxxxxxxxx");
        assert_eq!(why(&fake), None);
        assert_eq!(why(b"Befund: unauffaellig"), None);
        let e = why(&[0x1A, 0x45, 0xDF, 0xA3, 1, 2, 3, 4]).unwrap();
        assert!(e.contains("Matroska") && e.contains("damaged or incomplete"), "{e}");
    }
}
