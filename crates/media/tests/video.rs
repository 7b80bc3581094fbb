//! The video pipeline on generated videos: probe, anonymise (verified pixel by pixel where it matters),
//! extract frames, and every kind of bad input failing with a reason.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test reports failure

mod support;

use std::path::{Path, PathBuf};

use endoreg_common::api::Region;
use endoreg_media::video::demo::{self, DemoSpec, FakePatient};
use endoreg_media::video::encode::H264Settings;
use endoreg_media::video::frames::{self, FrameSettings};
use endoreg_media::video::mask::{Layout, Mask};
use endoreg_media::video::{MediaError, anonymise, probe};
use ffmpeg_next::format::Pixel;
use support::synthetic::{self, Spec};

fn region(name: &str, kind: &str, x: i64, y: i64, width: i64, height: i64) -> Region {
    Region { name: name.into(), kind: kind.into(), x, y, width, height }
}

/// A 1920×1080 processor layout like the knowledge base's.
pub fn layout() -> Layout {
    Layout {
        processor: "test_processor".into(),
        width: 1920,
        height: 1080,
        regions: vec![
            region("endoscope_image", "endoscope_image", 580, 30, 1320, 1020),
            region("patient_name", "patient_information", 20, 76, 540, 44),
            region("patient_birth_date", "patient_information", 20, 168, 540, 44),
            region("examination_date", "patient_information", 20, 240, 360, 44),
            region("endoscope_model", "device_information", 20, 890, 540, 44),
        ],
    }
}

fn generate(dir: &Path, w: u32, h: u32, frames: u64) -> PathBuf {
    let path = dir.join("demo.mp4");
    let spec = DemoSpec {
        width: w,
        height: h,
        fps: 25,
        frames,
        layout: layout(),
        patient: FakePatient::default(),
        noise: 0,
        encoding: H264Settings { crf: 18, preset: "ultrafast".into(), threads: 0, ..H264Settings::default() },
    };
    assert_eq!(demo::generate(&path, &spec).unwrap(), frames);
    path
}

/// Luma of the frame `index` of `video` (via PNG snapshot, decoded back).
fn luma_of_frame(video: &Path, index: u64, dir: &Path) -> (u32, u32, Vec<u8>) {
    let png = dir.join(format!("f{index}.png"));
    frames::snapshot_png(video, index, &png).unwrap();
    let decoded = image_rgb(&png);
    let luma = decoded.2.chunks(3).map(|p| ((u32::from(p[0]) * 77 + u32::from(p[1]) * 150 + u32::from(p[2]) * 29) >> 8) as u8).collect();
    (decoded.0, decoded.1, luma)
}

/// Decodes a PNG written by FFmpeg's encoder using FFmpeg itself (through the video module's reader).
fn image_rgb(png: &Path) -> (u32, u32, Vec<u8>) {
    use ffmpeg_next as ffmpeg;
    let mut input = ffmpeg::format::input(&png).unwrap();
    let stream = input.streams().best(ffmpeg::media::Type::Video).unwrap();
    let idx = stream.index();
    let mut dec = ffmpeg::codec::context::Context::from_parameters(stream.parameters()).unwrap().decoder().video().unwrap();
    let mut frame = ffmpeg::frame::Video::empty();
    for (s, p) in input.packets() {
        if s.index() == idx {
            dec.send_packet(&p).unwrap();
        }
    }
    dec.send_eof().unwrap();
    dec.receive_frame(&mut frame).unwrap();
    let (w, h) = (frame.width(), frame.height());
    let stride = frame.stride(0);
    let mut out = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h as usize {
        out.extend_from_slice(&frame.data(0)[y * stride..y * stride + (w * 3) as usize]);
    }
    (w, h, out)
}

fn bright_pixels(luma: &[u8], w: u32, rect: endoreg_media::video::mask::Rect) -> usize {
    (rect.y..rect.bottom())
        .flat_map(|y| (rect.x..rect.right()).map(move |x| (x, y)))
        .filter(|(x, y)| luma[(y * w + x) as usize] > 100)
        .count()
}

#[test]
fn a_demo_video_is_probed_anonymised_and_split_into_frames() {
    let dir = tempfile::tempdir().unwrap();
    let (w, h) = (640, 360);
    let raw = generate(dir.path(), w, h, 60);
    let p = probe::probe(&raw).unwrap();
    assert_eq!((p.width, p.height), (w, h));
    assert_eq!(p.codec, "h264");
    assert_eq!(p.container, "mov");
    assert!((p.fps - 25.0).abs() < 0.01, "{p:?}");
    assert_eq!(p.frame_count, 60);
    assert!((p.duration_s - 2.4).abs() < 0.1, "{p:?}");
    assert_eq!(p.rotation, 0);

    let mask = Mask::for_video(&layout(), w, h).unwrap();
    // The raw video shows the fake name in its overlay.
    let (_, _, before) = luma_of_frame(&raw, 30, dir.path());
    assert!(bright_pixels(&before, w, mask.blank[0]) > 50, "the demo draws a name");

    let out = dir.path().join("anon.mp4");
    let mut seen = 0;
    let done = anonymise::anonymise(
        &raw,
        &out,
        &p,
        &mask,
        &H264Settings { crf: 20, preset: "ultrafast".into(), threads: 0, ..H264Settings::default() },
        &mut |n| {
            seen = n;
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(done.frames, 60);
    assert_eq!(seen, 60);
    anonymise::verify(&out, 60, &mut |_| Ok(())).unwrap();
    let e = anonymise::verify(&out, 61, &mut |_| Ok(())).unwrap_err().to_string();
    assert!(e.contains("61 frames were written but 60 decode"), "{e}");
    let (_, _, after) = luma_of_frame(&out, 30, dir.path());
    for rect in &mask.blank {
        assert_eq!(bright_pixels(&after, w, *rect), 0, "overlay {rect:?} must be blank");
    }
    // Everything outside the endoscope image is black; the image itself still shows.
    let outside = (0..h).flat_map(|y| (0..mask.keep.x).map(move |x| (x, y))).filter(|(x, y)| after[(y * w + x) as usize] > 30).count();
    assert_eq!(outside, 0);
    assert!(bright_pixels(&after, w, mask.keep) > 10_000, "the endoscope image survives");

    let mut got = Vec::new();
    let (n, total) = frames::extract(&out, &FrameSettings { step: 7, jpeg_qscale: 3, workers: 2 }, &mut |i, bytes| {
        assert!(bytes.starts_with(&[0xFF, 0xD8]), "JPEG");
        got.push(i);
        Ok(())
    })
    .unwrap();
    got.sort();
    assert_eq!(total, 60);
    assert_eq!(n, 9);
    assert_eq!(got, (0..60).step_by(7).collect::<Vec<u64>>());
}

#[test]
fn a_scaled_recording_is_anonymised_with_scaled_regions() {
    let dir = tempfile::tempdir().unwrap();
    let raw = generate(dir.path(), 480, 270, 10);
    let p = probe::probe(&raw).unwrap();
    let mask = Mask::for_video(&layout(), 480, 270).unwrap();
    let out = dir.path().join("anon.mp4");
    anonymise::anonymise(&raw, &out, &p, &mask, &H264Settings::default(), &mut |_| Ok(())).unwrap();
    let (_, _, after) = luma_of_frame(&out, 5, dir.path());
    for rect in &mask.blank {
        assert_eq!(bright_pixels(&after, 480, *rect), 0);
    }
}

fn expect_err(path: &Path) -> MediaError {
    match probe::probe(path) {
        Err(e) => e,
        Ok(p) => {
            let mask = Mask::for_video(&layout(), p.width, p.height).unwrap();
            let out = path.with_extension("anon.mp4");
            let r = anonymise::anonymise(
                path,
                &out,
                &p,
                &mask,
                &H264Settings { crf: 30, preset: "ultrafast".into(), threads: 0, ..H264Settings::default() },
                &mut |_| Ok(()),
            );
            r.expect_err("bad input must fail")
        }
    }
}

#[test]
fn bad_videos_fail_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let good = generate(dir.path(), 320, 180, 50);
    let bytes = std::fs::read(&good).unwrap();

    let empty = dir.path().join("empty.mp4");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(expect_err(&empty), MediaError::Empty));

    let text = dir.path().join("notes.mp4");
    std::fs::write(&text, "Befund: unauffällig\n".repeat(500)).unwrap();
    let e = expect_err(&text);
    assert!(matches!(e, MediaError::NotMedia(_)), "{e}");

    let truncated = dir.path().join("truncated.mp4");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let e = expect_err(&truncated);
    assert!(matches!(e, MediaError::Truncated(_) | MediaError::Corrupt(_)), "{e}");

    // Damage in the middle of the picture data.
    let mut damaged = bytes.clone();
    let start = damaged.len() / 2;
    for b in &mut damaged[start..start + 2000] {
        *b ^= 0x5A;
    }
    let corrupt = dir.path().join("corrupt.mp4");
    std::fs::write(&corrupt, &damaged).unwrap();
    let e = expect_err(&corrupt);
    assert!(matches!(e, MediaError::Corrupt(_) | MediaError::Truncated(_)), "{e}");
    assert!(e.is_permanent());

    // Declared sizes that cannot be real.
    for (w, h) in [(0, 0), (100_000, 100_000)] {
        let y4m = dir.path().join(format!("size{w}.y4m"));
        let mut f = format!("YUV4MPEG2 W{w} H{h} F25:1 Ip A1:1 C420jpeg\nFRAME\n").into_bytes();
        f.extend(vec![0u8; 1000]);
        std::fs::write(&y4m, f).unwrap();
        let e = expect_err(&y4m);
        assert!(matches!(e, MediaError::BadDimensions { .. } | MediaError::NotMedia(_)), "{w}x{h}: {e}");
    }

    // No video stream (an audio-only container) is named as such.
    let wav = dir.path().join("sound.wav");
    let mut f = b"RIFF".to_vec();
    f.extend(36u32.to_le_bytes());
    f.extend(b"WAVEfmt ");
    f.extend(16u32.to_le_bytes());
    f.extend(1u16.to_le_bytes());
    f.extend(1u16.to_le_bytes());
    f.extend(8000u32.to_le_bytes());
    f.extend(16000u32.to_le_bytes());
    f.extend(2u16.to_le_bytes());
    f.extend(16u16.to_le_bytes());
    f.extend(b"data");
    f.extend(0u32.to_le_bytes());
    std::fs::write(&wav, f).unwrap();
    assert!(matches!(expect_err(&wav), MediaError::NoVideoStream));
}

/// RGB of frame `index` of `video`.
fn rgb_of_frame(video: &Path, index: u64, dir: &Path) -> (u32, u32, Vec<u8>) {
    let png = dir.join(format!("rgb{index}.png"));
    frames::snapshot_png(video, index, &png).unwrap();
    image_rgb(&png)
}

/// A processor whose whole picture is the endoscope image, with one overlay at the top left and one
/// against the right and bottom edges: the kept image and an overlay both reach an odd video's edge.
fn edge_layout(w: u32, h: u32) -> Layout {
    let (w, h) = (i64::from(w), i64::from(h));
    Layout {
        processor: "edge_processor".into(),
        width: w as u32,
        height: h as u32,
        regions: vec![
            region("endoscope_image", "endoscope_image", 0, 0, w, h),
            region("patient_name", "patient_information", 20, 20, 400, 60),
            region("device", "device_information", w - 179, h - 39, 179, 39),
        ],
    }
}

const ORANGE: [u8; 3] = [200, 120, 60];

/// 1279×719 in the formats an outside test found failing (H.264 4:4:4, RGB FFV1), 10-bit and planar RGB
/// and raw RGB: each becomes
/// an even-sided YUV420P H.264 video with the colours of the picture and the overlays black, the column and
/// row added at the right and bottom repeating the last ones.
#[test]
fn odd_sizes_and_other_pixel_formats_become_even_yuv420p() {
    let dir = tempfile::tempdir().unwrap();
    let (w, h) = (1279, 719);
    let layout = edge_layout(w, h);
    let mask = Mask::for_video(&layout, w, h).unwrap();
    let paint = |x: u32, y: u32| if mask.keeps(x, y) { ORANGE } else { [255, 255, 255] };
    for (name, container, codec, pixel) in [
        ("h264-444.mp4", "mp4", "libx264", Pixel::YUV444P),
        ("ffv1-bgr0.mkv", "matroska", "ffv1", Pixel::BGRZ),
        ("ffv1-gbrp10.mkv", "matroska", "ffv1", Pixel::GBRP10LE),
        ("utvideo-gbrp.mkv", "matroska", "utvideo", Pixel::GBRP),
        ("raw-rgb24.nut", "nut", "rawvideo", Pixel::RGB24),
    ] {
        let input = dir.path().join(name);
        synthetic::write(&input, &Spec { container, codec, pixel, width: w, height: h, frames: 6 }, &paint);
        assert_eq!(synthetic::stream_of(&input).0, pixel, "{name}");
        let p = probe::probe(&input).unwrap();
        assert_eq!((p.width, p.height), (w, h), "{name}");
        let out = dir.path().join(format!("{name}.anon.mp4"));
        let done = anonymise::anonymise(&input, &out, &p, &mask, &H264Settings::default(), &mut |_| Ok(())).unwrap();
        assert_eq!((done.frames, done.width, done.height), (6, 1280, 720), "{name}");
        let (format, ow, oh, range) = synthetic::stream_of(&out);
        assert_eq!((format, ow, oh), (Pixel::YUV420P, 1280, 720), "{name}");
        // Limited range, as the values are (a stream that does not say is read so).
        assert_ne!(range, ffmpeg_next::color::Range::JPEG, "{name}");

        let (_, _, rgb) = rgb_of_frame(&out, 3, dir.path());
        let at = |x: u32, y: u32| -> [u8; 3] {
            let i = 3 * (y * 1280 + x) as usize;
            [rgb[i], rgb[i + 1], rgb[i + 2]]
        };
        let near = |got: [u8; 3], want: [u8; 3], tolerance: u8| got.iter().zip(want).all(|(g, w)| g.abs_diff(w) <= tolerance);
        // The picture keeps its colours, to its last column and row.
        for (x, y) in [(640, 360), (100, 600), (w - 1, 300), (600, h - 1), (w - 200, h - 1)] {
            assert!(near(at(x, y), ORANGE, 16), "{name}: ({x}, {y}) is {:?}", at(x, y));
        }
        // The added column and row repeat the last ones: the picture's colour, black beside an overlay.
        for y in 0..720 {
            let want = if mask.keeps(w - 1, y.min(h - 1)) { ORANGE } else { [0, 0, 0] };
            assert!(near(at(1279, y), want, 24), "{name}: the added column at y {y} is {:?}", at(1279, y));
        }
        for x in 0..1280 {
            let want = if mask.keeps(x.min(w - 1), h - 1) { ORANGE } else { [0, 0, 0] };
            assert!(near(at(x, 719), want, 24), "{name}: the added row at x {x} is {:?}", at(x, 719));
        }
        // Every overlay pixel is black.
        for r in &mask.blank {
            for y in r.y..r.bottom() {
                for x in r.x..r.right() {
                    assert!(near(at(x, y), [0, 0, 0], 24), "{name}: overlay pixel ({x}, {y}) is {:?}", at(x, y));
                }
            }
        }
    }
}

/// libx264 refuses an odd-sized 4:2:0 picture; that refusal is a fault of the video (retrying cannot
/// help), named with the size.
#[test]
fn the_encoder_refusing_a_picture_is_a_permanent_fault() {
    let dir = tempfile::tempdir().unwrap();
    let r = endoreg_media::video::encode::H264Writer::create(
        &dir.path().join("odd.mp4"),
        1279,
        719,
        ffmpeg_next::Rational::new(1, 25),
        ffmpeg_next::Rational::new(25, 1),
        endoreg_media::video::encode::Colour::default(),
        &H264Settings::default(),
    );
    let e = r.err().expect("libx264 takes no odd 4:2:0 size");
    assert!(e.is_permanent(), "{e:?}");
    assert!(e.to_string().contains("1279x719"), "{e}");
}

/// Anonymisation that fails half-way leaves nothing at its output (an outside test found a 0-byte file
/// there), from the library and from `endoreg-media anonymise`.
#[test]
fn a_failed_anonymisation_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let good = generate(dir.path(), 320, 180, 50);
    let bytes = std::fs::read(&good).unwrap();
    // The index is at the front: the cut-off file opens, and fails only after frames were written.
    let cut = dir.path().join("cut.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let p = probe::probe(&cut).unwrap();
    let mask = Mask::for_video(&layout(), p.width, p.height).unwrap();
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("anon.mp4");
    let e = anonymise::anonymise(&cut, &out, &p, &mask, &H264Settings::default(), &mut |_| Ok(())).unwrap_err();
    assert!(matches!(e, MediaError::Truncated(_) | MediaError::Corrupt(_)), "{e}");
    assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), 0, "something was left in the output directory");

    let layout_file = dir.path().join("layout.toml");
    std::fs::write(&layout_file, toml_layout(&layout())).unwrap();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_endoreg-media"))
        .current_dir(dir.path())
        .env("ENDOREG_DATA_DIR", dir.path())
        .args(["anonymise", cut.to_str().unwrap(), out.to_str().unwrap(), "--layout-file", layout_file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!run.status.success(), "{run:?}");
    assert!(String::from_utf8_lossy(&run.stderr).contains("cut off"), "{run:?}");
    assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), 0, "the command left something in the output directory");

    // Frames of the cut-off video: some are written before the end shows it is cut off; none stay.
    let frames_dir = dir.path().join("frames");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_endoreg-media"))
        .current_dir(dir.path())
        .env("ENDOREG_DATA_DIR", dir.path())
        .args(["extract-frames", cut.to_str().unwrap(), frames_dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!run.status.success(), "{run:?}");
    assert_eq!(std::fs::read_dir(&frames_dir).unwrap().count(), 0, "extract-frames left frames of a failed run");
}

fn toml_layout(l: &Layout) -> String {
    let regions: Vec<String> = l
        .regions
        .iter()
        .map(|r| {
            format!(
                "{{ name = \"{}\", kind = \"{}\", x = {}, y = {}, width = {}, height = {} }}",
                r.name, r.kind, r.x, r.y, r.width, r.height
            )
        })
        .collect();
    format!("processor = \"{}\"\nwidth = {}\nheight = {}\nregions = [{}]\n", l.processor, l.width, l.height, regions.join(", "))
}

/// An MP4 whose index (`moov`) comes last, cut in half as an interrupted upload is: named as cut off and
/// incomplete, not as an unknown format.
#[test]
fn an_mp4_cut_off_before_its_index_is_called_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole.mp4");
    synthetic::write(
        &whole,
        &Spec { container: "mp4", codec: "libx264", pixel: Pixel::YUV420P, width: 320, height: 240, frames: 30 },
        &|x, y| [(x % 256) as u8, (y % 256) as u8, 90],
    );
    assert!(probe::probe(&whole).is_ok());
    let bytes = std::fs::read(&whole).unwrap();
    let cut = dir.path().join("cut.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let e = probe::probe(&cut).unwrap_err();
    assert!(matches!(e, MediaError::Truncated(_)), "{e:?}");
    let text = e.to_string();
    assert!(text.contains("cut off") && text.contains("incomplete") && text.contains("moov"), "{text}");
    assert!(e.is_permanent());
}

/// `jpeg_qscale` is the quantiser the frames get (it was ignored: every frame came out at the finest).
#[test]
fn frames_get_the_configured_jpeg_quantiser() {
    let dir = tempfile::tempdir().unwrap();
    let video = generate(dir.path(), 320, 180, 10);
    let size_at = |jpeg_qscale: u8| {
        let mut sizes = Vec::new();
        frames::extract(&video, &FrameSettings { step: 5, jpeg_qscale, workers: 1 }, &mut |i, bytes| {
            sizes.push((i, bytes.len()));
            Ok(())
        })
        .unwrap();
        sizes.sort();
        sizes.iter().map(|(_, n)| *n).sum::<usize>()
    };
    let (fine, default, coarse) = (size_at(2), size_at(3), size_at(31));
    assert!(fine > default && default > coarse, "quantiser 2: {fine} bytes, 3: {default}, 31: {coarse}");
}
