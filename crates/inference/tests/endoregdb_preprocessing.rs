//! Our preprocessing against EndoregDB's (`scripts/endoregdb_preprocessing.py`: PIL crop, black padding to
//! a square, Lanczos resize, mean/std) on the same picture: a model trained in EndoregDB must get the input
//! it was trained on. The filters differ (FFmpeg's swscale Lanczos on the crop, then padding; PIL's Lanczos
//! on the padded square), so the values agree closely, not exactly; a wrong channel order, offset, scale,
//! normalisation or pad placement would be far outside the bounds below. Needs Python with Pillow
//! (`.ci/setup` installs it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use endoreg_inference::contract::Contract;
use endoreg_inference::preprocess::{Preprocessor, Region, decode_image};
use endoreg_media::video::mask::Rect;

const SIZE: usize = 716;
const MEAN: [f32; 3] = [0.452_112_23, 0.271_396_44, 0.192_649_49];
const STD: [f32; 3] = [0.314_180_97, 0.210_880_19, 0.160_594_52];

/// A 1920×1080 picture with an endoscope-like image in `r` (smooth colour, a vignette, fine detail and a
/// sharp-edged "instrument") and a bright overlay with text-like blocks around it.
fn picture(r: Rect) -> image::RgbImage {
    image::RgbImage::from_fn(1920, 1080, |x, y| {
        if x < r.x || x >= r.right() || y < r.y || y >= r.bottom() {
            let text = (x / 7 + y / 11) % 3 == 0;
            return image::Rgb(if text { [250, 250, 250] } else { [30, 30, 30] });
        }
        let (u, v) = (f64::from(x - r.x) / f64::from(r.w), f64::from(y - r.y) / f64::from(r.h));
        let d = ((u - 0.5).powi(2) + (v - 0.5).powi(2)).sqrt();
        let light = (1.0 - 1.4 * d).clamp(0.0, 1.0);
        let detail = 0.5 + 0.5 * (f64::from(x) * 0.31).sin() * (f64::from(y) * 0.23).cos();
        let instrument = u > 0.62 && u < 0.7 && v > 0.3;
        let c = |base: f64, amp: f64| ((base + amp * detail) * light * 255.0).clamp(0.0, 255.0) as u8;
        image::Rgb(if instrument { [200, 205, 210] } else { [c(0.7, 0.25), c(0.3, 0.15), c(0.2, 0.1)] })
    })
}

fn endoregdb(png: &Path, r: Rect, out: &Path) -> Vec<f32> {
    let join = |v: [f32; 3]| v.map(|x| x.to_string()).join(",");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/endoregdb_preprocessing.py");
    let status = std::process::Command::new(common::python())
        .arg(script)
        .arg(png)
        .args([r.x, r.y, r.w, r.h].map(|v| v.to_string()))
        .arg(SIZE.to_string())
        .args([join(MEAN), join(STD)])
        .arg(out)
        .output()
        .unwrap();
    assert!(status.status.success(), "endoregdb_preprocessing.py failed: {}", String::from_utf8_lossy(&status.stderr));
    std::fs::read(out).unwrap().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}

fn ours(png: &[u8], r: Rect, resize: &str) -> Vec<f32> {
    let contract = Contract::parse(&format!(
        "name = \"m\"\nversion = \"1\"\nlabels = [\"a\"]\n[input]\nwidth = {SIZE}\nheight = {SIZE}\n\
         [preprocessing]\ncrop = \"endoscope_image\"\npad_to_square = true\nresize = \"{resize}\"\nmean = {MEAN:?}\nstd = {STD:?}\n"
    ))
    .unwrap();
    let mut p = Preprocessor::new(&contract);
    let mut out = vec![0.0; p.len()];
    p.run(&mut decode_image(png).unwrap(), Region::Rect(r), &mut out).unwrap();
    out
}

/// Mean and 99th percentile of the absolute difference, in units of the 0..1 pixel scale (the normalised
/// difference times the channel's std; 1/255 is one grey level), over `rows` of the square.
fn difference(a: &[f32], b: &[f32], rows: std::ops::Range<usize>) -> (f32, f32) {
    let mut d: Vec<f32> = (0..3)
        .flat_map(|c| rows.clone().flat_map(move |y| (0..SIZE).map(move |x| (c, c * SIZE * SIZE + y * SIZE + x))))
        .map(|(c, i)| (a[i] - b[i]).abs() * STD[c])
        .collect();
    let mean = d.iter().map(|v| f64::from(*v)).sum::<f64>() / d.len() as f64;
    d.sort_by(f32::total_cmp);
    (mean as f32, d[d.len() * 99 / 100])
}

#[test]
fn our_preprocessing_matches_endoregdbs_on_the_same_picture() {
    let dir = tempfile::tempdir().unwrap();
    // Wider than high: EndoregDB pads top and bottom; 1160 -> 716 puts the picture in rows 78..695.
    let r = Rect { x: 700, y: 40, w: 1160, h: 1000 };
    let png_path = dir.path().join("frame.png");
    picture(r).save(&png_path).unwrap();
    let png = std::fs::read(&png_path).unwrap();
    let theirs = endoregdb(&png_path, r, &dir.path().join("endoregdb.f32"));
    assert_eq!(theirs.len(), 3 * SIZE * SIZE);

    let lanczos = ours(&png, r, "lanczos");
    // The picture's rows (1000 × 716 / 1160 = 617 of them, centred), away from the two edges where the
    // filters blend picture and padding differently. PIL places the picture at row 49.4 (it pads first),
    // we at row 49 or 50 (we pad after resizing, fewer pixels to scale): sharp horizontal edges land up to a
    // pixel apart, hence a percentile, not the largest difference.
    let (top, bottom) = (50, 50 + 617);
    let (mean, p99) = difference(&lanczos, &theirs, top + 3..bottom - 3);
    eprintln!("lanczos vs EndoregDB: mean {mean:.4}, 99th percentile {p99:.4} (0..1 pixel scale)");
    assert!(mean < 1.0 / 255.0 && p99 < 8.0 / 255.0, "lanczos: mean {mean}, 99th percentile {p99}");
    // The padding is black in both: (0 - mean) / std.
    let (pad, _) = difference(&lanczos, &theirs, 0..top - 2);
    assert!(pad < 0.5 / 255.0, "padding differs: {pad}");

    // The bounds are tight enough to notice a crop two pixels off (the region read from the wrong place).
    let shifted = ours(&png, Rect { x: r.x + 2, ..r }, "lanczos");
    let (off, _) = difference(&shifted, &theirs, top + 3..bottom - 3);
    eprintln!("crop 2 px off vs EndoregDB: mean {off:.4}");
    assert!(off > 2.0 / 255.0, "a crop 2 px off: mean {off}");
}
