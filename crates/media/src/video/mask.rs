//! Which pixels of a frame survive anonymisation: those inside the processor's endoscope image and outside
//! every region where the processor prints patient or device information.

use endoreg_common::api::Region;

use super::MediaError;

/// A rectangle in pixels, `[x, x + w) × [y, y + h)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

impl Rect {
    pub fn right(&self) -> u32 {
        self.x + self.w
    }
    pub fn bottom(&self) -> u32 {
        self.y + self.h
    }
}

/// The anonymisation mask of a video: keep `keep`, then blank every rectangle in `blank`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mask {
    pub keep: Rect,
    pub blank: Vec<Rect>,
}

/// The layout of a processor's output, as the registry describes it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    pub processor: String,
    pub width: u32,
    pub height: u32,
    pub regions: Vec<Region>,
}

impl Mask {
    /// The mask for a `width`×`height` video recorded by a processor with `layout`. A video of another
    /// size but the same aspect ratio (a scaled recording) gets the regions scaled; any other mismatch,
    /// and regions outside the picture, are refused: blanking the wrong pixels would leak a name.
    pub fn for_video(layout: &Layout, width: u32, height: u32) -> Result<Mask, MediaError> {
        let err = |m: String| MediaError::Regions(m);
        if layout.width == 0 || layout.height == 0 {
            return Err(err(format!("processor `{}` has no image size", layout.processor)));
        }
        for r in &layout.regions {
            if r.x < 0
                || r.y < 0
                || r.width <= 0
                || r.height <= 0
                || r.x + r.width > i64::from(layout.width)
                || r.y + r.height > i64::from(layout.height)
            {
                return Err(err(format!(
                    "region `{}` of processor `{}` ({}x{} at {},{}) lies outside its {}x{} picture",
                    r.name, layout.processor, r.width, r.height, r.x, r.y, layout.width, layout.height
                )));
            }
        }
        let same_aspect = (u64::from(width) * u64::from(layout.height)).abs_diff(u64::from(height) * u64::from(layout.width))
            <= u64::from(layout.width) * u64::from(layout.height) / 100;
        if !same_aspect {
            return Err(err(format!(
                "the video is {width}x{height} but processor `{}` produces {}x{}; check the processor named at upload",
                layout.processor, layout.width, layout.height
            )));
        }
        let sx = f64::from(width) / f64::from(layout.width);
        let sy = f64::from(height) / f64::from(layout.height);
        let scale = |r: &Region, grow: bool| -> Rect {
            // Rounding outward for blanked regions (never leave a pixel of text), inward for the kept image.
            let (x0, y0) = (r.x as f64 * sx, r.y as f64 * sy);
            let (x1, y1) = ((r.x + r.width) as f64 * sx, (r.y + r.height) as f64 * sy);
            let (x0, y0, x1, y1) =
                if grow { (x0.floor(), y0.floor(), x1.ceil(), y1.ceil()) } else { (x0.ceil(), y0.ceil(), x1.floor(), y1.floor()) };
            let clamp = |v: f64, max: u32| v.clamp(0.0, f64::from(max)) as u32;
            let (x0, y0, x1, y1) = (clamp(x0, width), clamp(y0, height), clamp(x1, width), clamp(y1, height));
            Rect { x: x0, y: y0, w: x1.saturating_sub(x0), h: y1.saturating_sub(y0) }
        };
        let images: Vec<&Region> = layout.regions.iter().filter(|r| r.kind == "endoscope_image").collect();
        let [image] = images.as_slice() else {
            return Err(err(format!(
                "processor `{}` must have exactly one endoscope_image region, has {}",
                layout.processor,
                images.len()
            )));
        };
        let keep = scale(image, false);
        if keep.w == 0 || keep.h == 0 {
            return Err(err(format!("the endoscope image of processor `{}` is empty at {width}x{height}", layout.processor)));
        }
        let blank =
            layout.regions.iter().filter(|r| r.kind != "endoscope_image").map(|r| scale(r, true)).filter(|r| r.w > 0 && r.h > 0).collect();
        Ok(Mask { keep, blank })
    }

    /// Whether pixel (x, y) survives.
    pub fn keeps(&self, x: u32, y: u32) -> bool {
        let inside = |r: &Rect| x >= r.x && x < r.right() && y >= r.y && y < r.bottom();
        inside(&self.keep) && !self.blank.iter().any(inside)
    }

    /// For each row `y`, the kept horizontal spans `[x0, x1)`: what anonymisation copies.
    pub fn spans(&self, y: u32) -> Vec<(u32, u32)> {
        if y < self.keep.y || y >= self.keep.bottom() {
            return Vec::new();
        }
        let mut spans = vec![(self.keep.x, self.keep.right())];
        for b in self.blank.iter().filter(|b| y >= b.y && y < b.bottom()) {
            let mut next = Vec::with_capacity(spans.len() + 1);
            for (x0, x1) in spans {
                if b.right() <= x0 || b.x >= x1 {
                    next.push((x0, x1));
                    continue;
                }
                if b.x > x0 {
                    next.push((x0, b.x));
                }
                if b.right() < x1 {
                    next.push((b.right(), x1));
                }
            }
            spans = next;
        }
        spans
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(name: &str, kind: &str, x: i64, y: i64, width: i64, height: i64) -> Region {
        Region { name: name.into(), kind: kind.into(), x, y, width, height }
    }

    fn layout() -> Layout {
        Layout {
            processor: "p".into(),
            width: 1920,
            height: 1080,
            regions: vec![
                region("endoscope_image", "endoscope_image", 600, 0, 1300, 1080),
                region("name", "patient_information", 20, 40, 500, 40),
                region("overlap", "patient_information", 1800, 1000, 120, 80),
            ],
        }
    }

    #[test]
    fn pixels_outside_the_image_or_inside_overlays_are_blanked() {
        let m = Mask::for_video(&layout(), 1920, 1080).unwrap();
        assert!(m.keeps(1000, 500));
        assert!(!m.keeps(100, 50), "patient name area");
        assert!(!m.keeps(599, 500), "left of the image");
        assert!(!m.keeps(1850, 1050), "overlay inside the image");
        assert_eq!(m.spans(500), vec![(600, 1900)]);
        assert_eq!(m.spans(1050), vec![(600, 1800)]);
    }

    #[test]
    fn a_scaled_recording_gets_scaled_regions_rounded_safely() {
        let m = Mask::for_video(&layout(), 1280, 720).unwrap();
        assert_eq!(m.keep, Rect { x: 400, y: 0, w: 866, h: 720 });
        assert_eq!(m.blank[0], Rect { x: 13, y: 26, w: 334, h: 28 });
    }

    #[test]
    fn mismatches_and_bad_regions_are_refused() {
        let e = Mask::for_video(&layout(), 1024, 1024).unwrap_err().to_string();
        assert!(e.contains("1024x1024") && e.contains("1920x1080"), "{e}");
        let mut l = layout();
        l.regions.push(region("far", "patient_information", 1900, 1000, 100, 100));
        let e = Mask::for_video(&l, 1920, 1080).unwrap_err().to_string();
        assert!(e.contains("region `far`") && e.contains("outside"), "{e}");
        let mut l = layout();
        l.regions.retain(|r| r.kind != "endoscope_image");
        assert!(Mask::for_video(&l, 1920, 1080).unwrap_err().to_string().contains("exactly one endoscope_image"));
    }
}
