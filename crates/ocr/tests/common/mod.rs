//! Overlays rendered for the tests and the benchmark: real fonts (Debian fonts-dejavu-core), white on black,
//! at the sizes 1080p and 540p processors use, and the blur, noise and lossy compression a recording adds.
#![allow(dead_code)] // each test binary uses part of it

use std::path::Path;

use endoreg_ocr::render::{Font, TextStyle, draw_text};
use endoreg_ocr::{LumaImage, Rect};
use rand::{Rng, SeedableRng};

pub const DEJAVU_SANS_MONO: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf";
pub const DEJAVU_SANS: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

pub fn font(path: &str) -> Font {
    match Font::from_path(Path::new(path)) {
        Ok(f) => f,
        Err(e) => panic!("{e} (fonts-dejavu-core, installed by .ci/setup)"),
    }
}

/// Overlay text grey: processors draw near-white, not 255.
pub const TEXT_LUMA: u8 = 235;
/// Limited-range video black.
pub const BLACK: u8 = 16;

/// Draws `text` with capitals `cap` px high at (`x`, `y`) and returns the field a processor layout would
/// define around it: a fixed box wider than the text, with room above for umlaut dots and below for
/// descenders.
pub fn draw_field(frame: &mut LumaImage, font: &Font, text: &str, x: u32, y: u32, cap: f32) -> Rect {
    draw_text(&mut frame.as_plane_mut(), font, text, x as f32, y as f32, TextStyle { cap_height: cap, luma: TEXT_LUMA });
    let pad_x = (cap * 0.4).round() as u32;
    let above = (cap * 0.5).round() as u32;
    let width = font.text_width(text, cap).ceil() as u32 + 2 * pad_x + (cap * 3.0) as u32;
    Rect::new(x.saturating_sub(pad_x), y.saturating_sub(above), width, (cap * 1.9).round() as u32)
}

/// A frame of `width` × `height` black with `fields` drawn one below the other from (`x`, `y`), each line
/// 1.8 cap heights apart. Returns the frame and each field's rectangle.
pub fn overlay(width: u32, height: u32, font: &Font, fields: &[&str], x: u32, y: u32, cap: f32) -> (LumaImage, Vec<Rect>) {
    let mut frame = LumaImage::filled(width, height, BLACK).expect("frame");
    let line = (cap * 1.8).round() as u32;
    let rects = fields.iter().enumerate().map(|(i, text)| draw_field(&mut frame, font, text, x, y + i as u32 * line, cap)).collect();
    (frame, rects)
}

/// What a recording does to an overlay: blur (scaling, the encoder's loop filter), sensor-free but
/// encoder-made noise, and blocky lossy compression (JPEG at a low quality standing in for H.264 at a high
/// CRF).
#[derive(Clone, Copy, Debug)]
pub struct Degradation {
    pub blur_sigma: f32,
    pub noise_sigma: f32,
    pub jpeg_quality: u8,
}

pub const DEGRADED: Degradation = Degradation { blur_sigma: 0.8, noise_sigma: 4.0, jpeg_quality: 30 };

pub fn degrade(img: &LumaImage, d: Degradation, seed: u64) -> LumaImage {
    let (w, h) = (img.width(), img.height());
    let gray = image::GrayImage::from_raw(w, h, img.as_bytes().to_vec()).expect("sizes match");
    let blurred = if d.blur_sigma > 0.0 { image::imageops::blur(&gray, d.blur_sigma) } else { gray };
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut noisy = blurred.into_raw();
    if d.noise_sigma > 0.0 {
        for p in &mut noisy {
            // Box-Muller: one normal sample per pixel.
            let u1: f32 = rng.random::<f32>().max(1e-7);
            let u2: f32 = rng.random();
            let n = (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos();
            *p = (f32::from(*p) + n * d.noise_sigma).round().clamp(0.0, 255.0) as u8;
        }
    }
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, d.jpeg_quality)
        .encode(&noisy, w, h, image::ExtendedColorType::L8)
        .expect("JPEG encoding");
    let decoded = image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg).expect("JPEG decoding").to_luma8();
    LumaImage::from_vec(decoded.into_raw(), w, h).expect("sizes match")
}

/// A 1080p frame scaled to 960x540 (a recorder capturing a 1080p processor at half size), with the field
/// rectangles scaled like the media worker scales blanking masks.
pub fn half_size(img: &LumaImage, rects: &[Rect]) -> (LumaImage, Vec<Rect>) {
    let (w, h) = (img.width(), img.height());
    let gray = image::GrayImage::from_raw(w, h, img.as_bytes().to_vec()).expect("sizes match");
    let small = image::imageops::resize(&gray, w / 2, h / 2, image::imageops::FilterType::Triangle);
    let img = LumaImage::from_vec(small.into_raw(), w / 2, h / 2).expect("sizes match");
    let rects = rects.iter().map(|r| Rect::new(r.x / 2, r.y / 2, r.width.div_ceil(2), r.height.div_ceil(2))).collect();
    (img, rects)
}

/// Names, dates and times like those a processor shows: German names with umlauts, ß, hyphens, both
/// name orders.
pub const NAMES: &[&str] = &[
    "MUSTERMANN, ERIKA",
    "Straßburger-Öztürk, Jörg-Ünal",
    "Müller-Lüdenscheidt, Hans",
    "Jürgen Weiß",
    "D'Angelo, Anne-Marie",
    "GRÜNEBERG, KÄTHE",
];
pub const DATES: &[&str] = &["12.08.1961", "29.02.1948", "03.02.2024", "31.12.1999"];
pub const TIMES: &[&str] = &["14:32:07", "08:05", "23:59:59"];
/// Endoscope types and serial numbers.
pub const DEVICES: &[&str] = &["CF-HQ190L", "GIF-H190", "SN 2812345", "EC-760ZP-V/L"];
