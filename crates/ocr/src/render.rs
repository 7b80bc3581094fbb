//! Drawing text into a luma plane with a TrueType font (feature `render`): the tests' overlays, the
//! benchmark's, and the synthetic corpus and demo video the media crate generates. Pure Rust (`ab_glyph`),
//! anti-aliased like a processor's character generator after scaling.
//!
//! Sizes are given as cap height (the height of `H` in pixels), the measure one reads off a frame: a 1080p
//! processor overlay's capitals are about 20–32 px tall, a 540p one's 10–16 px.

use std::path::Path;

use ab_glyph::{Font as _, FontVec, PxScale, ScaleFont as _, point};
use thiserror::Error;

use crate::plane::{LumaPlaneMut, Rect};

#[derive(Debug, Error)]
pub enum RenderError {
    #[error("cannot read the font file {}: {source}", path.display())]
    Read { path: std::path::PathBuf, source: std::io::Error },
    #[error("not a usable TrueType/OpenType font: {0}")]
    Invalid(String),
    #[error("the font has no outline for 'H', so a cap height cannot be measured")]
    NoCapHeight,
}

/// A loaded font and its cap height in font units.
pub struct Font {
    font: FontVec,
    cap_units: f32,
}

impl std::fmt::Debug for Font {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Font").field("cap_units", &self.cap_units).finish_non_exhaustive()
    }
}

impl Font {
    /// Loads a font file, e.g. `/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf` (Debian
    /// `fonts-dejavu-core`).
    pub fn from_path(path: &Path) -> Result<Font, RenderError> {
        let bytes = std::fs::read(path).map_err(|source| RenderError::Read { path: path.to_owned(), source })?;
        Font::from_bytes(bytes)
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Result<Font, RenderError> {
        let font = FontVec::try_from_vec(bytes).map_err(|e| RenderError::Invalid(e.to_string()))?;
        let outline = font.outline(font.glyph_id('H')).ok_or(RenderError::NoCapHeight)?;
        let cap_units = (outline.bounds.max.y - outline.bounds.min.y).abs();
        if cap_units <= 0.0 || font.height_unscaled() <= 0.0 {
            return Err(RenderError::NoCapHeight);
        }
        Ok(Font { font, cap_units })
    }

    fn scale(&self, cap_height: f32) -> PxScale {
        PxScale::from(cap_height * self.font.height_unscaled() / self.cap_units)
    }

    /// Width of `text` in pixels at `cap_height` (advances and kerning, as [`draw_text`] places it).
    pub fn text_width(&self, text: &str, cap_height: f32) -> f32 {
        let scaled = self.font.as_scaled(self.scale(cap_height));
        let mut width = 0.0;
        let mut prev = None;
        for c in text.chars() {
            let id = scaled.glyph_id(c);
            if let Some(p) = prev {
                width += scaled.kern(p, id);
            }
            width += scaled.h_advance(id);
            prev = Some(id);
        }
        width
    }
}

/// How text is drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TextStyle {
    /// Height of capital letters in pixels.
    pub cap_height: f32,
    /// Grey of the text; the background keeps its pixels and is blended at glyph edges.
    pub luma: u8,
}

/// Draws `text` with the left end of its baseline pen at `x` and the top of its capitals at `y`. Glyphs
/// are clipped to the plane. Returns the rectangle of pixels actually touched (None if nothing was drawn):
/// the field a reader should look at, before any margin.
pub fn draw_text(target: &mut LumaPlaneMut<'_>, font: &Font, text: &str, x: f32, y: f32, style: TextStyle) -> Option<Rect> {
    let scale = font.scale(style.cap_height);
    let scaled = font.font.as_scaled(scale);
    let baseline = y + style.cap_height;
    let (w, h) = (target.width() as i64, target.height() as i64);
    let mut pen = x;
    let mut prev = None;
    let mut ink: Option<(i64, i64, i64, i64)> = None;
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        if let Some(p) = prev {
            pen += scaled.kern(p, id);
        }
        let glyph = id.with_scale_and_position(scale, point(pen, baseline));
        pen += scaled.h_advance(id);
        prev = Some(id);
        let Some(outlined) = font.font.outline_glyph(glyph) else {
            continue;
        };
        let b = outlined.px_bounds();
        let (ox, oy) = (b.min.x as i64, b.min.y as i64);
        outlined.draw(|gx, gy, coverage| {
            let (px, py) = (ox + i64::from(gx), oy + i64::from(gy));
            if coverage <= 0.0 || px < 0 || py < 0 || px >= w || py >= h {
                return;
            }
            let cov = coverage.min(1.0);
            let dst = target.pixel_mut(px as u32, py as u32);
            let blended = f32::from(*dst) + (f32::from(style.luma) - f32::from(*dst)) * cov;
            *dst = blended.round().clamp(0.0, 255.0) as u8;
            ink = Some(match ink {
                None => (px, py, px, py),
                Some((x0, y0, x1, y1)) => (x0.min(px), y0.min(py), x1.max(px), y1.max(py)),
            });
        });
    }
    ink.map(|(x0, y0, x1, y1)| Rect::new(x0 as u32, y0 as u32, (x1 - x0 + 1) as u32, (y1 - y0 + 1) as u32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plane::LumaImage;

    const MONO: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf";

    #[test]
    fn capitals_have_the_requested_height_and_stay_inside_the_plane() {
        let font = Font::from_path(Path::new(MONO)).expect("fonts-dejavu-core is installed (.ci/setup)");
        let mut img = LumaImage::filled(200, 60, 0).expect("image");
        let ink = draw_text(&mut img.as_plane_mut(), &font, "HE", 10.0, 20.0, TextStyle { cap_height: 24.0, luma: 235 }).expect("drawn");
        // Anti-aliasing may touch one pixel row above and below the cap height.
        assert!((24..=26).contains(&ink.height), "{ink:?}");
        assert!((19..=20).contains(&ink.y), "{ink:?}");
        let width = font.text_width("HE", 24.0);
        assert!(ink.width as f32 <= width + 1.0, "{ink:?} vs {width}");
        // Text running off the plane is clipped, not a panic.
        let clipped = draw_text(&mut img.as_plane_mut(), &font, "MUSTERMANN", 180.0, 50.0, TextStyle { cap_height: 24.0, luma: 235 })
            .expect("partly drawn");
        assert!(clipped.x + clipped.width <= 200 && clipped.y + clipped.height <= 60);
    }

    #[test]
    fn a_missing_or_broken_font_is_an_error() {
        assert!(matches!(Font::from_path(Path::new("/nonexistent/font.ttf")), Err(RenderError::Read { .. })));
        assert!(matches!(Font::from_bytes(b"not a font".to_vec()), Err(RenderError::Invalid(_))));
    }
}
