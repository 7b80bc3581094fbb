//! Videos of any codec, pixel format, size and container, written here with FFmpeg's encoders: what
//! recorders and exports produce besides H.264 4:2:0 (odd sizes, 4:4:4, RGB), and MP4s made without an
//! index at the front.

use std::path::Path;

use ffmpeg::format::Pixel;
use ffmpeg::software::scaling;
use ffmpeg::{Dictionary, Packet, Rational, frame};
use ffmpeg_next as ffmpeg;

pub struct Spec<'a> {
    /// The muxer (`mp4`, `matroska`, `nut`).
    pub container: &'a str,
    /// The encoder (`libx264`, `ffv1`, `rawvideo`).
    pub codec: &'a str,
    pub pixel: Pixel,
    pub width: u32,
    pub height: u32,
    pub frames: u64,
}

/// Writes `spec.frames` frames of the RGB picture `paint(x, y)`, converted to `spec.pixel`.
pub fn write(path: &Path, spec: &Spec<'_>, paint: &dyn Fn(u32, u32) -> [u8; 3]) {
    endoreg_media::video::init();
    let (w, h) = (spec.width, spec.height);
    let mut output = ffmpeg::format::output_as(&path, spec.container).unwrap();
    let codec = ffmpeg::encoder::find_by_name(spec.codec).unwrap_or_else(|| panic!("no {} encoder", spec.codec));
    let mut enc = ffmpeg::codec::context::Context::new_with_codec(codec).encoder().video().unwrap();
    let tb = Rational::new(1, 25);
    enc.set_width(w);
    enc.set_height(h);
    enc.set_format(spec.pixel);
    enc.set_time_base(tb);
    enc.set_frame_rate(Some(Rational::new(25, 1)));
    if output.format().flags().contains(ffmpeg::format::Flags::GLOBAL_HEADER) {
        enc.set_flags(ffmpeg::codec::Flags::GLOBAL_HEADER);
    }
    let mut opts = Dictionary::new();
    if spec.codec == "libx264" {
        opts.set("preset", "ultrafast");
    }
    let mut encoder = enc.open_as_with(codec, opts).unwrap_or_else(|e| panic!("{} {:?} {w}x{h}: {e}", spec.codec, spec.pixel));
    {
        let mut stream = output.add_stream(codec).unwrap();
        stream.set_parameters(&encoder);
        stream.set_time_base(tb);
        stream.set_rate(Rational::new(25, 1));
        stream.set_avg_frame_rate(Rational::new(25, 1));
    }
    output.write_header().unwrap();
    let stream_tb = output.stream(0).unwrap().time_base();

    let mut rgb = frame::Video::new(Pixel::RGB24, w, h);
    let stride = rgb.stride(0);
    for y in 0..h {
        for x in 0..w {
            let at = y as usize * stride + 3 * x as usize;
            rgb.data_mut(0)[at..at + 3].copy_from_slice(&paint(x, y));
        }
    }
    let mut picture = frame::Video::new(spec.pixel, w, h);
    scaling::Context::get(Pixel::RGB24, w, h, spec.pixel, w, h, scaling::Flags::BILINEAR | scaling::Flags::ACCURATE_RND)
        .unwrap()
        .run(&rgb, &mut picture)
        .unwrap();
    let mut packet = Packet::empty();
    let mut drain = |encoder: &mut ffmpeg::encoder::Video, output: &mut ffmpeg::format::context::Output| {
        while encoder.receive_packet(&mut packet).is_ok() {
            packet.set_stream(0);
            // Every frame lasts one tick: without a duration the MP4 muxer's edit list drops the last one.
            if packet.duration() == 0 {
                packet.set_duration(1);
            }
            packet.rescale_ts(tb, stream_tb);
            packet.write_interleaved(output).unwrap();
        }
    };
    for i in 0..spec.frames {
        picture.set_pts(Some(i as i64));
        encoder.send_frame(&picture).unwrap();
        drain(&mut encoder, &mut output);
    }
    encoder.send_eof().unwrap();
    drain(&mut encoder, &mut output);
    output.write_trailer().unwrap();
}

/// The pixel format, size and colour range of `path`'s video stream, as its decoder reports them.
pub fn stream_of(path: &Path) -> (Pixel, u32, u32, ffmpeg::color::Range) {
    endoreg_media::video::init();
    let input = ffmpeg::format::input(&path).unwrap();
    let stream = input.streams().best(ffmpeg::media::Type::Video).unwrap();
    let dec = ffmpeg::codec::context::Context::from_parameters(stream.parameters()).unwrap().decoder().video().unwrap();
    (dec.format(), dec.width(), dec.height(), dec.color_range())
}
