//! "Is there any text here?": the check of anonymised frames. Regions that blanking should have made black
//! are first checked pixel by pixel (almost every frame ends there); only a region with something brighter
//! than black in it goes to Tesseract, which reads the whole area as sparse text. The OCR text is searched
//! for the identity candidate's tokens; the result names tokens by index and counts characters, so it never
//! carries identifying text itself.

use crate::engine::{Engine, Layout, OcrError};
use crate::plane::{LumaPlane, Rect};
use crate::prepare::{Prepared, prepare_region_scaled};
use crate::read::{Charset, tidy};
use crate::tokens::TokenSet;

/// Thresholds of the check.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InspectOptions {
    /// Pixels up to this luma count as black. Limited-range video is 16 for black and compression moves flat
    /// areas by a few levels; overlay text is far brighter.
    pub black_level: u8,
    /// Enlargement before OCR; `None`: none for frames at least 900 px tall, 2 below (a 540p overlay's
    /// capitals are about 10–16 px high), as for single fields.
    pub scale: Option<u32>,
    /// OCR output counts as text with at least this many letters or digits ...
    pub min_text_chars: usize,
    /// ... at this mean word confidence (0..1) or more. Below, it is reported as non-black structure.
    pub min_text_confidence: f32,
}

impl Default for InspectOptions {
    fn default() -> Self {
        InspectOptions { black_level: 40, scale: None, min_text_chars: 2, min_text_confidence: 0.5 }
    }
}

impl InspectOptions {
    fn scale_for(&self, frame_height: u32) -> u32 {
        self.scale.unwrap_or(if frame_height >= 900 { 1 } else { 2 }).clamp(1, 8)
    }
}

/// What a region holds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Finding {
    /// Every pixel at or below the black level: the fast path, no OCR.
    Black,
    /// Something brighter than black, but OCR found no text in it.
    Structure { bright_pixels: u64 },
    /// OCR found text: `characters` letters and digits at a mean word confidence of `confidence`.
    Text { bright_pixels: u64, characters: usize, confidence: f32 },
}

impl Finding {
    /// Whether the region is anything but black.
    pub fn is_black(&self) -> bool {
        matches!(self, Finding::Black)
    }
}

/// The verdict on one region.
#[derive(Clone, Debug, PartialEq)]
pub struct Inspection {
    pub finding: Finding,
    /// Indices into the [`TokenSet`] of the tokens found in the region's OCR text, ascending.
    pub matched_tokens: Vec<usize>,
}

/// Pixels in `rect` (clipped) brighter than `black_level`; an error when the rectangle misses the plane.
pub fn count_bright(plane: &LumaPlane<'_>, rect: Rect, black_level: u8) -> Result<u64, OcrError> {
    let r = rect.clip_to(plane.width(), plane.height()).ok_or(OcrError::RegionOutside {
        rect,
        width: plane.width(),
        height: plane.height(),
    })?;
    let mut n = 0u64;
    for y in r.y..r.y + r.height {
        n += plane.row(y, r.x, r.width).iter().filter(|&&p| p > black_level).count() as u64;
    }
    Ok(n)
}

impl Engine {
    /// Checks one region of an anonymised frame: black, non-black structure, or text; and which `tokens`
    /// its text contains.
    pub fn inspect(
        &mut self,
        plane: &LumaPlane<'_>,
        rect: Rect,
        tokens: &TokenSet,
        options: &InspectOptions,
    ) -> Result<Inspection, OcrError> {
        let bright_pixels = count_bright(plane, rect, options.black_level)?;
        if bright_pixels == 0 {
            return Ok(Inspection { finding: Finding::Black, matched_tokens: Vec::new() });
        }
        let scale = options.scale_for(plane.height());
        let structure = Inspection { finding: Finding::Structure { bright_pixels }, matched_tokens: Vec::new() };
        let image = match prepare_region_scaled(plane, rect, self.preprocess(), scale) {
            Prepared::Ready(image) => image,
            Prepared::Blank | Prepared::Outside => return Ok(structure),
        };
        let whitelist = Charset::ANY.to_cstring()?;
        let r = self.recognise(&image, Layout::Sparse, &whitelist)?;
        let text = tidy(&r.text);
        let characters = text.chars().filter(|c| c.is_alphanumeric()).count();
        let matched_tokens = tokens.find_in(&text);
        let finding = if characters >= options.min_text_chars && r.confidence >= options.min_text_confidence {
            Finding::Text { bright_pixels, characters, confidence: r.confidence }
        } else {
            Finding::Structure { bright_pixels }
        };
        Ok(Inspection { finding, matched_tokens })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plane::LumaImage;

    #[test]
    fn bright_pixels_are_counted_inside_the_clipped_region_only() {
        let mut img = LumaImage::filled(10, 10, 16).expect("image");
        img.fill_rect(Rect::new(0, 0, 2, 2), 200);
        img.fill_rect(Rect::new(8, 8, 2, 2), 41);
        let p = img.as_plane();
        assert_eq!(count_bright(&p, Rect::new(0, 0, 10, 10), 40).ok(), Some(8));
        assert_eq!(count_bright(&p, Rect::new(1, 1, 20, 20), 40).ok(), Some(5));
        assert_eq!(count_bright(&p, Rect::new(2, 2, 6, 6), 40).ok(), Some(0));
        assert!(matches!(count_bright(&p, Rect::new(10, 0, 1, 1), 40), Err(OcrError::RegionOutside { .. })));
    }

    #[test]
    fn automatic_scale_follows_the_frame_height() {
        let o = InspectOptions::default();
        assert_eq!(o.scale_for(1080), 1);
        assert_eq!(o.scale_for(540), 2);
        let fixed = InspectOptions { scale: Some(1), ..o };
        assert_eq!(fixed.scale_for(540), 1);
    }
}
