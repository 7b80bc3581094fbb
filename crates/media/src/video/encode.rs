//! Writing H.264 (libx264) into MP4, the format of every anonymised video.

use std::path::Path;

use ffmpeg::codec::threading;
use ffmpeg::util::color;
use ffmpeg::{Dictionary, Packet, Rational, format, frame};
use ffmpeg_next as ffmpeg;
use serde::{Deserialize, Serialize};

use super::MediaError;

/// libx264 settings: the same names and values as `ffmpeg -c:v libx264 -preset P -crf C`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct H264Settings {
    /// Constant rate factor: 0 (lossless) to 51; 18–23 keeps endoscopic detail.
    pub crf: u8,
    /// ultrafast … veryslow: speed against size.
    pub preset: String,
    /// Encoder threads; 0 lets x264 choose (1.5 per core).
    pub threads: usize,
    /// Extra x264 parameters (`key=value:key=value`). The default drops x264's frame buffer between its
    /// lookahead and its encoder threads: about 70 MB less memory at 1080p for a few per cent of speed.
    pub x264_params: String,
}

impl Default for H264Settings {
    fn default() -> Self {
        Self { crf: 20, preset: "veryfast".into(), threads: 2, x264_params: "sync-lookahead=0".into() }
    }
}

impl H264Settings {
    pub fn check(&self) -> Result<(), String> {
        const PRESETS: [&str; 10] =
            ["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo"];
        if self.crf > 51 {
            return Err(format!("crf {} is outside 0..=51", self.crf));
        }
        if !PRESETS.contains(&self.preset.as_str()) {
            return Err(format!("preset `{}` is not one of {}", self.preset, PRESETS.join(", ")));
        }
        if !self.x264_params.is_empty() && !self.x264_params.split(':').all(|kv| kv.split_once('=').is_some_and(|(k, _)| !k.is_empty())) {
            return Err(format!("x264_params `{}` must be key=value pairs joined by `:`", self.x264_params));
        }
        Ok(())
    }
}

/// How the YUV values handed to the writer are to be read, as the stream says to players.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Colour {
    pub range: color::Range,
    pub space: color::Space,
    pub primaries: color::Primaries,
    pub transfer: color::TransferCharacteristic,
}

impl Default for Colour {
    /// Limited range, the rest unspecified (players assume by picture size).
    fn default() -> Self {
        Colour {
            range: color::Range::MPEG,
            space: color::Space::Unspecified,
            primaries: color::Primaries::Unspecified,
            transfer: color::TransferCharacteristic::Unspecified,
        }
    }
}

impl Colour {
    /// Luma of black: 16 in limited range, 0 in full range.
    pub fn black(&self) -> u8 {
        if self.range == color::Range::JPEG { 0 } else { 16 }
    }
}

pub struct H264Writer {
    output: format::context::Output,
    encoder: ffmpeg::encoder::Video,
    encoder_time_base: Rational,
    stream_time_base: Rational,
    pub frames: u64,
}

fn internal(context: &str) -> impl FnOnce(ffmpeg::Error) -> MediaError + '_ {
    move |e| MediaError::internal(context, e)
}

/// Why libx264 did not open.
enum OpenError {
    /// This FFmpeg has no libx264.
    Missing,
    Refused(ffmpeg::Error),
}

fn open_encoder(
    width: u32,
    height: u32,
    time_base: Rational,
    frame_rate: Rational,
    colour: Colour,
    global_header: bool,
    settings: &H264Settings,
) -> Result<(ffmpeg::Codec, ffmpeg::encoder::Video), OpenError> {
    let codec = ffmpeg::encoder::find_by_name("libx264").ok_or(OpenError::Missing)?;
    let mut ctx = ffmpeg::codec::context::Context::new_with_codec(codec);
    ctx.set_threading(threading::Config { kind: threading::Type::Frame, count: settings.threads, ..Default::default() });
    let mut enc = ctx.encoder().video().map_err(OpenError::Refused)?;
    enc.set_width(width);
    enc.set_height(height);
    enc.set_format(format::Pixel::YUV420P);
    enc.set_time_base(time_base);
    enc.set_frame_rate(Some(frame_rate));
    enc.set_color_range(colour.range);
    enc.set_colorspace(colour.space);
    enc.set_color_primaries(colour.primaries);
    enc.set_color_transfer_characteristic(colour.transfer);
    if global_header {
        enc.set_flags(ffmpeg::codec::Flags::GLOBAL_HEADER);
    }
    let mut opts = Dictionary::new();
    opts.set("crf", &settings.crf.to_string());
    opts.set("preset", &settings.preset);
    if !settings.x264_params.is_empty() {
        opts.set("x264-params", &settings.x264_params);
    }
    let encoder = enc.open_as_with(codec, opts).map_err(OpenError::Refused)?;
    Ok((codec, encoder))
}

/// What a failure to open libx264 means. The encoder is tried once more at a size every encoder takes: if
/// it opens there, the video's own parameters are what libx264 refuses, and no other attempt will differ
/// (a fault of the video, not retried); if it does not, this worker's encoder or settings are at fault.
fn refusal(e: OpenError, width: u32, height: u32, frame_rate: Rational, settings: &H264Settings) -> MediaError {
    let e = match e {
        OpenError::Missing => {
            return MediaError::internal("libx264", "this FFmpeg has no libx264 encoder (install an FFmpeg built with x264)");
        }
        OpenError::Refused(e) => e,
    };
    if matches!(e, ffmpeg::Error::Other { errno } if errno == ffmpeg::error::ENOMEM) {
        return MediaError::internal("cannot open libx264", e);
    }
    let (tb, rate) = (Rational::new(1, 25), Rational::new(25, 1));
    match open_encoder(64, 64, tb, rate, Colour::default(), false, settings) {
        Ok(_) => MediaError::Unsupported(format!(
            "the H.264 encoder refuses a {width}x{height} picture at {:.3} frames/s ({e})",
            f64::from(frame_rate.numerator()) / f64::from(frame_rate.denominator().max(1))
        )),
        Err(_) => MediaError::internal("cannot open libx264 (with these settings it opens for no video)", e),
    }
}

impl H264Writer {
    /// An MP4 at `path` for `width`×`height` YUV420P frames with timestamps in `time_base`, tagged with
    /// `colour`. H.264 in 4:2:0 needs even sides: an odd size is refused here, as a fault of the video.
    pub fn create(
        path: &Path,
        width: u32,
        height: u32,
        time_base: Rational,
        frame_rate: Rational,
        colour: Colour,
        settings: &H264Settings,
    ) -> Result<Self, MediaError> {
        super::init();
        settings.check().map_err(|e| MediaError::internal("libx264 settings", e))?;
        let mut output = format::output_as(&path, "mp4").map_err(internal("cannot create the MP4 output"))?;
        let global_header = output.format().flags().contains(format::Flags::GLOBAL_HEADER);
        let (codec, encoder) = match open_encoder(width, height, time_base, frame_rate, colour, global_header, settings) {
            Ok(opened) => opened,
            Err(e) => return Err(refusal(e, width, height, frame_rate, settings)),
        };
        {
            let mut stream = output.add_stream(codec).map_err(internal("cannot add the video stream"))?;
            stream.set_parameters(&encoder);
            stream.set_time_base(time_base);
            stream.set_rate(frame_rate);
            stream.set_avg_frame_rate(frame_rate);
        }
        let mut mux_opts = Dictionary::new();
        // The index at the front: the anonymised video streams in a browser without a full download.
        mux_opts.set("movflags", "+faststart");
        output.write_header_with(mux_opts).map_err(internal("cannot write the MP4 header"))?;
        let stream_time_base = output.stream(0).map(|s| s.time_base()).unwrap_or(time_base);
        Ok(H264Writer { output, encoder, encoder_time_base: time_base, stream_time_base, frames: 0 })
    }

    pub fn write(&mut self, frame: &frame::Video) -> Result<(), MediaError> {
        self.encoder.send_frame(frame).map_err(internal("libx264 refused a frame"))?;
        self.frames += 1;
        self.drain()
    }

    fn drain(&mut self) -> Result<(), MediaError> {
        let mut packet = Packet::empty();
        while self.encoder.receive_packet(&mut packet).is_ok() {
            packet.set_stream(0);
            packet.rescale_ts(self.encoder_time_base, self.stream_time_base);
            packet.write_interleaved(&mut self.output).map_err(internal("cannot write to the MP4"))?;
        }
        Ok(())
    }

    /// Flushes the encoder and completes the file.
    pub fn finish(mut self) -> Result<u64, MediaError> {
        self.encoder.send_eof().map_err(internal("libx264 flush"))?;
        self.drain()?;
        self.output.write_trailer().map_err(internal("cannot complete the MP4"))?;
        Ok(self.frames)
    }
}
