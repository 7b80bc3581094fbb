//! What a region goes through before Tesseract sees it: crop, polarity, contrast stretch, enlarging, border,
//! and optionally Otsu binarisation.
//!
//! Processor overlays are light text on black; Tesseract's models are trained on dark text on a light page,
//! so the crop is turned dark-on-light (the text is the minority of an Otsu split) and stretched so that the
//! text's mean grey is black and the background's white. Small text is enlarged. The image stays grey:
//! Tesseract's LSTM reads grey values (only its layout analysis thresholds), and on compressed 540p overlays
//! the anti-aliased edges are most of what is left of thin strokes (binarising here cost 15 points of
//! accuracy there, docs/ocr.md). A margin of background goes around it, because text touching the image
//! edge is often lost.

use crate::plane::{LumaImage, LumaPlane, Rect};
use image::imageops::FilterType;

/// How a crop is enlarged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResizeFilter {
    /// Linear interpolation: the cheapest filter that does not make stair-stepped strokes.
    Bilinear,
    /// Cubic (Catmull-Rom).
    CatmullRom,
    /// Lanczos with a 3-lobe window: sharpest edges, slowest.
    Lanczos3,
}

impl ResizeFilter {
    fn filter_type(self) -> FilterType {
        match self {
            ResizeFilter::Bilinear => FilterType::Triangle,
            ResizeFilter::CatmullRom => FilterType::CatmullRom,
            ResizeFilter::Lanczos3 => FilterType::Lanczos3,
        }
    }
}

/// Preprocessing settings. The defaults are what the benchmark (`cargo bench -p endoreg-ocr`) measured best
/// for 1080p and 540p overlays, clean and degraded (docs/ocr.md).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Preprocess {
    /// The crop is enlarged so that its height is at least this many pixels, by an integer factor between
    /// 1 and `max_scale`. Tesseract scales every line to a fixed height itself, so enlarging only helps the
    /// smallest text: 24 px measured best (docs/ocr.md), which leaves 1080p fields as they are and doubles
    /// 540p fields with capitals under about 13 px.
    pub target_height: u32,
    /// Upper bound of the enlargement factor.
    pub max_scale: u32,
    pub filter: ResizeFilter,
    /// Below this difference between the mean grey of the two Otsu classes the crop counts as blank and
    /// Tesseract is not asked at all.
    pub min_contrast: u8,
    /// Margin of background added on every side after scaling, in pixels.
    pub border: u32,
    /// Threshold with Otsu here; `false` hands Tesseract the enlarged grey image: its LSTM reads the grey
    /// values (only its layout analysis thresholds), and the anti-aliased edges carry what compression left
    /// of thin strokes.
    pub binarise: bool,
    /// Before enlarging, map the text's mean grey to black and the background's to white.
    pub stretch: bool,
}

impl Default for Preprocess {
    fn default() -> Self {
        Preprocess {
            target_height: 24,
            max_scale: 4,
            filter: ResizeFilter::Bilinear,
            min_contrast: 40,
            border: 16,
            binarise: false,
            stretch: true,
        }
    }
}

/// What preprocessing made of a region.
#[derive(Debug)]
pub enum Prepared {
    /// The region lies entirely outside the plane.
    Outside,
    /// One tone only (contrast below [`Preprocess::min_contrast`]): nothing to read.
    Blank,
    /// A binary image, black text on white, ready for Tesseract.
    Ready(LumaImage),
}

/// Otsu's threshold over a histogram, with the mean grey of both classes and the pixel count above the
/// threshold. Pixels `<= threshold` form the dark class.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Otsu {
    pub threshold: u8,
    pub dark_mean: f64,
    pub light_mean: f64,
    pub light_count: u64,
    pub total: u64,
}

pub(crate) fn histogram(pixels: &[u8]) -> [u64; 256] {
    let mut hist = [0u64; 256];
    for &p in pixels {
        hist[p as usize] += 1;
    }
    hist
}

pub(crate) fn otsu(hist: &[u64; 256]) -> Otsu {
    let total: u64 = hist.iter().sum();
    let sum_all: f64 = hist.iter().enumerate().map(|(i, &n)| i as f64 * n as f64).sum();
    let mut best =
        Otsu { threshold: 0, dark_mean: if total > 0 { sum_all / total as f64 } else { 0.0 }, light_mean: 0.0, light_count: 0, total };
    let mut best_var = -1.0f64;
    let mut dark_n = 0u64;
    let mut dark_sum = 0.0f64;
    // The last level cannot split: everything would be dark.
    for (t, &n) in hist.iter().enumerate().take(255) {
        dark_n += n;
        dark_sum += t as f64 * n as f64;
        let light_n = total - dark_n;
        if dark_n == 0 || light_n == 0 {
            continue;
        }
        let dark_mean = dark_sum / dark_n as f64;
        let light_mean = (sum_all - dark_sum) / light_n as f64;
        let var = dark_n as f64 * light_n as f64 * (dark_mean - light_mean).powi(2);
        if var > best_var {
            best_var = var;
            best = Otsu { threshold: t as u8, dark_mean, light_mean, light_count: light_n, total };
        }
    }
    best
}

/// The integer factor that brings `height` to at least `target`, within 1..=`max`.
pub(crate) fn scale_for(height: u32, p: &Preprocess) -> u32 {
    let max = p.max_scale.max(1);
    if height == 0 {
        return 1;
    }
    p.target_height.div_ceil(height).clamp(1, max)
}

/// Crop `rect` out of `plane` and prepare it for a single-line read, enlarged by the factor that brings the
/// crop's height to [`Preprocess::target_height`].
pub fn prepare_region(plane: &LumaPlane<'_>, rect: Rect, p: &Preprocess) -> Prepared {
    let height = rect.clip_to(plane.width(), plane.height()).map_or(0, |r| r.height);
    prepare_region_scaled(plane, rect, p, scale_for(height, p))
}

/// As [`prepare_region`], with the enlargement factor given (a whole area is much taller than its text).
pub(crate) fn prepare_region_scaled(plane: &LumaPlane<'_>, rect: Rect, p: &Preprocess, scale: u32) -> Prepared {
    let Some(mut crop) = plane.crop(rect) else {
        return Prepared::Outside;
    };
    let stats = otsu(&histogram(crop.as_bytes()));
    if stats.light_mean - stats.dark_mean < f64::from(p.min_contrast) {
        return Prepared::Blank;
    }
    // Text is the minority class; Tesseract wants it dark.
    let invert = stats.light_count * 2 < stats.total;
    let (text_grey, background_grey) =
        if invert { (255.0 - stats.light_mean, 255.0 - stats.dark_mean) } else { (stats.dark_mean, stats.light_mean) };
    let span = (background_grey - text_grey).max(1.0);
    let mut map = [0u8; 256];
    for (v, m) in map.iter_mut().enumerate() {
        let g = if invert { 255.0 - v as f64 } else { v as f64 };
        *m = if p.stretch { ((g - text_grey) / span * 255.0).round().clamp(0.0, 255.0) as u8 } else { g as u8 };
    }
    for px in crop.as_bytes_mut() {
        *px = map[*px as usize];
    }
    // Enlarging is for small text; a crop that would grow past this stays as it is (and no arithmetic
    // below can overflow).
    const MAX_SCALED_PIXELS: u64 = 1 << 26;
    let scaled_pixels = u64::from(crop.width()) * u64::from(crop.height()) * u64::from(scale) * u64::from(scale);
    let scaled = if scale > 1 && scaled_pixels <= MAX_SCALED_PIXELS { upscale(crop, scale, p.filter) } else { crop };
    let threshold = p.binarise.then(|| otsu(&histogram(scaled.as_bytes())).threshold);
    Prepared::Ready(with_border(&scaled, threshold, p.border))
}

fn upscale(img: LumaImage, scale: u32, filter: ResizeFilter) -> LumaImage {
    let (w, h) = (img.width(), img.height());
    let gray = image::GrayImage::from_fn(w, h, |x, y| image::Luma([img.as_bytes()[(y * w + x) as usize]]));
    let resized = image::imageops::resize(&gray, w * scale, h * scale, filter.filter_type());
    let (rw, rh) = resized.dimensions();
    LumaImage::from_parts(resized.into_raw(), rw, rh)
}

/// Copies `img` into a white frame `border` pixels wide, thresholded when a threshold is given.
fn with_border(img: &LumaImage, threshold: Option<u8>, border: u32) -> LumaImage {
    let (w, h) = (img.width(), img.height());
    let border = border.min(1024);
    let fits = w.checked_add(2 * border).is_some() && h.checked_add(2 * border).is_some();
    let border = if fits { border } else { 0 };
    let (ow, oh) = (w + 2 * border, h + 2 * border);
    let mut out = LumaImage::from_parts(vec![255; ow as usize * oh as usize], ow, oh);
    let src = img.as_bytes();
    let dst = out.as_bytes_mut();
    for y in 0..h as usize {
        let row = &src[y * w as usize..(y + 1) * w as usize];
        let start = (y + border as usize) * ow as usize + border as usize;
        let dst_row = &mut dst[start..start + w as usize];
        match threshold {
            Some(t) => {
                for (d, &s) in dst_row.iter_mut().zip(row) {
                    *d = if s > t { 255 } else { 0 };
                }
            }
            None => dst_row.copy_from_slice(row),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otsu_separates_two_tones() {
        let mut px = vec![10u8; 900];
        px.extend(std::iter::repeat_n(230u8, 100));
        let o = otsu(&histogram(&px));
        assert!((10..230).contains(&o.threshold), "{o:?}");
        assert_eq!(o.light_count, 100);
        assert!((o.dark_mean - 10.0).abs() < 1e-9 && (o.light_mean - 230.0).abs() < 1e-9);
    }

    #[test]
    fn light_text_on_black_becomes_black_on_white_with_border() {
        // 8x4 black field with a 2x2 white "glyph".
        let mut img = LumaImage::filled(8, 4, 0).expect("image");
        img.fill_rect(Rect::new(3, 1, 2, 2), 240);
        let p = Preprocess { target_height: 4, max_scale: 1, border: 2, binarise: true, ..Preprocess::default() };
        let Prepared::Ready(out) = prepare_region(&img.as_plane(), Rect::new(0, 0, 8, 4), &p) else {
            panic!("a two-tone crop must be prepared");
        };
        assert_eq!((out.width(), out.height()), (12, 8));
        let dark: Vec<(usize, usize)> =
            out.as_bytes().iter().enumerate().filter(|(_, v)| **v == 0).map(|(i, _)| (i % 12, i / 12)).collect();
        assert_eq!(dark, vec![(5, 3), (6, 3), (5, 4), (6, 4)]);
    }

    #[test]
    fn dark_text_on_light_keeps_its_polarity() {
        let mut img = LumaImage::filled(8, 4, 250).expect("image");
        img.fill_rect(Rect::new(1, 1, 1, 2), 5);
        let p = Preprocess { target_height: 4, max_scale: 1, border: 0, binarise: true, ..Preprocess::default() };
        let Prepared::Ready(out) = prepare_region(&img.as_plane(), Rect::new(0, 0, 8, 4), &p) else {
            panic!("a two-tone crop must be prepared");
        };
        assert_eq!(out.as_bytes().iter().filter(|v| **v == 0).count(), 2);
    }

    #[test]
    fn grey_output_is_inverted_and_stretched_to_full_range() {
        // Grey 200 text on grey 40, with an anti-aliased pixel of 120 between them.
        let mut img = LumaImage::filled(6, 2, 40).expect("image");
        img.fill_rect(Rect::new(0, 0, 1, 1), 200);
        img.fill_rect(Rect::new(1, 0, 1, 1), 120);
        let p = Preprocess { target_height: 2, max_scale: 1, border: 1, ..Preprocess::default() };
        assert!(!p.binarise && p.stretch, "the defaults hand Tesseract stretched grey");
        let Prepared::Ready(out) = prepare_region(&img.as_plane(), Rect::new(0, 0, 6, 2), &p) else {
            panic!("a two-tone crop must be prepared");
        };
        // Otsu puts 40 and 120 in the dark class (mean 56) and 200 in the light one.
        let row1 = &out.as_bytes()[8..16];
        assert_eq!(row1[0], 255, "border");
        assert_eq!(row1[1], 0, "text at its class mean becomes black");
        assert_eq!(row1[3], 255, "background at its class mean becomes white");
        assert!(row1[2] > 0 && row1[2] < 255, "anti-aliasing survives: {}", row1[2]);
        let unstretched = Preprocess { stretch: false, ..p };
        let Prepared::Ready(out) = prepare_region(&img.as_plane(), Rect::new(0, 0, 6, 2), &unstretched) else {
            panic!("a two-tone crop must be prepared");
        };
        assert_eq!(&out.as_bytes()[8..12], &[255, 55, 135, 215]);
    }

    #[test]
    fn uniform_or_faint_crops_are_blank_and_misses_are_outside() {
        let mut img = LumaImage::filled(16, 8, 16).expect("image");
        let p = Preprocess::default();
        assert!(matches!(prepare_region(&img.as_plane(), Rect::new(0, 0, 16, 8), &p), Prepared::Blank));
        // Compression noise a few grey levels above black is not text.
        img.fill_rect(Rect::new(2, 2, 3, 3), 30);
        assert!(matches!(prepare_region(&img.as_plane(), Rect::new(0, 0, 16, 8), &p), Prepared::Blank));
        assert!(matches!(prepare_region(&img.as_plane(), Rect::new(16, 0, 4, 4), &p), Prepared::Outside));
    }

    #[test]
    fn scale_reaches_the_target_within_bounds() {
        let p = Preprocess { target_height: 96, max_scale: 4, ..Preprocess::default() };
        assert_eq!(scale_for(40, &p), 3);
        assert_eq!(scale_for(20, &p), 4);
        assert_eq!(scale_for(200, &p), 1);
        assert_eq!(scale_for(32, &p), 3);
    }
}
