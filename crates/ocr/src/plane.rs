//! 8-bit grey (luma) images: a borrowed view with a stride (what FFmpeg hands the media worker), an owned
//! image, and rectangles on them.

use thiserror::Error;

/// A rectangle in pixel coordinates of a plane: `x`, `y` is the top-left corner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Rect {
    pub const fn new(x: u32, y: u32, width: u32, height: u32) -> Rect {
        Rect { x, y, width, height }
    }

    pub fn is_empty(&self) -> bool {
        self.width == 0 || self.height == 0
    }

    /// The part of this rectangle inside a `width` × `height` plane; `None` when nothing of it is. Regions
    /// scaled from another recording size round to a pixel past the edge now and then, so a rectangle that
    /// overhangs is cut rather than refused.
    pub fn clip_to(&self, width: u32, height: u32) -> Option<Rect> {
        let x1 = self.x.saturating_add(self.width).min(width);
        let y1 = self.y.saturating_add(self.height).min(height);
        if self.x >= x1 || self.y >= y1 {
            return None;
        }
        Some(Rect::new(self.x, self.y, x1 - self.x, y1 - self.y))
    }
}

/// Why a buffer is not the plane its caller described. Only sizes, never pixel values.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PlaneError {
    #[error("a plane needs a width and a height above zero (got {width}x{height})")]
    Empty { width: u32, height: u32 },
    #[error("the stride ({stride} bytes) is smaller than the width ({width} pixels)")]
    StrideTooSmall { stride: usize, width: u32 },
    #[error("the buffer holds {len} bytes but a {width}x{height} plane with stride {stride} needs {needed}")]
    BufferTooSmall { len: usize, needed: usize, width: u32, height: u32, stride: usize },
    #[error("a {width}x{height} plane is too large to address")]
    TooLarge { width: u32, height: u32 },
}

/// Bytes a plane needs: every row but the last at full stride, the last only as wide as the image (FFmpeg
/// does not promise padding after the last row).
fn needed_len(width: u32, height: u32, stride: usize) -> Option<usize> {
    let rows_before_last = usize::try_from(height).ok()?.checked_sub(1)?;
    rows_before_last.checked_mul(stride)?.checked_add(usize::try_from(width).ok()?)
}

fn validate(len: usize, width: u32, height: u32, stride: usize) -> Result<(), PlaneError> {
    if width == 0 || height == 0 {
        return Err(PlaneError::Empty { width, height });
    }
    if stride < width as usize {
        return Err(PlaneError::StrideTooSmall { stride, width });
    }
    let needed = needed_len(width, height, stride).ok_or(PlaneError::TooLarge { width, height })?;
    if len < needed {
        return Err(PlaneError::BufferTooSmall { len, needed, width, height, stride });
    }
    Ok(())
}

/// A borrowed 8-bit grey plane: row `r` starts at `r * stride`.
#[derive(Clone, Copy)]
pub struct LumaPlane<'a> {
    data: &'a [u8],
    width: u32,
    height: u32,
    stride: usize,
}

impl<'a> LumaPlane<'a> {
    pub fn new(data: &'a [u8], width: u32, height: u32, stride: usize) -> Result<LumaPlane<'a>, PlaneError> {
        validate(data.len(), width, height, stride)?;
        Ok(LumaPlane { data, width, height, stride })
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Row `y` from column `x`, `len` pixels; the caller keeps within the plane (all callers clip first).
    pub(crate) fn row(&self, y: u32, x: u32, len: u32) -> &'a [u8] {
        let start = y as usize * self.stride + x as usize;
        &self.data[start..start + len as usize]
    }

    /// A copy of `rect` (clipped to the plane) as a tight image, or `None` when the rectangle misses the plane.
    pub fn crop(&self, rect: Rect) -> Option<LumaImage> {
        let r = rect.clip_to(self.width, self.height)?;
        let mut data = Vec::with_capacity(r.width as usize * r.height as usize);
        for y in r.y..r.y + r.height {
            data.extend_from_slice(self.row(y, r.x, r.width));
        }
        Some(LumaImage::from_parts(data, r.width, r.height))
    }
}

impl std::fmt::Debug for LumaPlane<'_> {
    // Pixels can show a patient's name: only the geometry is printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LumaPlane").field("width", &self.width).field("height", &self.height).field("stride", &self.stride).finish()
    }
}

/// An owned 8-bit grey image without padding (stride = width).
#[derive(Clone, PartialEq, Eq)]
pub struct LumaImage {
    data: Vec<u8>,
    width: u32,
    height: u32,
}

impl LumaImage {
    /// A `width` × `height` image filled with `luma`.
    pub fn filled(width: u32, height: u32, luma: u8) -> Result<LumaImage, PlaneError> {
        if width == 0 || height == 0 {
            return Err(PlaneError::Empty { width, height });
        }
        let len = (width as usize).checked_mul(height as usize).ok_or(PlaneError::TooLarge { width, height })?;
        Ok(LumaImage { data: vec![luma; len], width, height })
    }

    /// Takes a tight buffer of `width * height` bytes.
    pub fn from_vec(data: Vec<u8>, width: u32, height: u32) -> Result<LumaImage, PlaneError> {
        validate(data.len(), width, height, width as usize)?;
        let mut data = data;
        data.truncate(width as usize * height as usize);
        Ok(LumaImage { data, width, height })
    }

    /// For buffers this crate made itself: the length is forced to `width * height` rather than checked.
    pub(crate) fn from_parts(mut data: Vec<u8>, width: u32, height: u32) -> LumaImage {
        data.resize(width as usize * height as usize, 0);
        LumaImage { data, width, height }
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }

    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }

    pub fn into_vec(self) -> Vec<u8> {
        self.data
    }

    pub fn as_plane_mut(&mut self) -> LumaPlaneMut<'_> {
        LumaPlaneMut { data: &mut self.data, width: self.width, height: self.height, stride: self.width as usize }
    }

    pub fn as_plane(&self) -> LumaPlane<'_> {
        LumaPlane { data: &self.data, width: self.width, height: self.height, stride: self.width as usize }
    }

    /// Sets every pixel of `rect` (clipped) to `luma`, as blanking does.
    pub fn fill_rect(&mut self, rect: Rect, luma: u8) {
        if let Some(r) = rect.clip_to(self.width, self.height) {
            for y in r.y..r.y + r.height {
                let start = y as usize * self.width as usize + r.x as usize;
                self.data[start..start + r.width as usize].fill(luma);
            }
        }
    }
}

/// A mutable 8-bit grey plane with a stride, for drawing into a frame FFmpeg decoded or will encode.
pub struct LumaPlaneMut<'a> {
    data: &'a mut [u8],
    width: u32,
    height: u32,
    stride: usize,
}

impl<'a> LumaPlaneMut<'a> {
    pub fn new(data: &'a mut [u8], width: u32, height: u32, stride: usize) -> Result<LumaPlaneMut<'a>, PlaneError> {
        validate(data.len(), width, height, stride)?;
        Ok(LumaPlaneMut { data, width, height, stride })
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    /// The pixel at (`x`, `y`), which the caller keeps inside the plane.
    #[cfg(feature = "render")]
    pub(crate) fn pixel_mut(&mut self, x: u32, y: u32) -> &mut u8 {
        &mut self.data[y as usize * self.stride + x as usize]
    }

    pub fn as_plane(&self) -> LumaPlane<'_> {
        LumaPlane { data: self.data, width: self.width, height: self.height, stride: self.stride }
    }
}

impl std::fmt::Debug for LumaImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LumaImage").field("width", &self.width).field("height", &self.height).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plane_geometry_is_checked() {
        let buf = vec![0u8; 10 * 3];
        assert!(LumaPlane::new(&buf, 8, 3, 10).is_ok());
        // The last row needs no padding after the image.
        assert!(LumaPlane::new(&buf[..28], 8, 3, 10).is_ok());
        assert_eq!(
            LumaPlane::new(&buf[..27], 8, 3, 10).err(),
            Some(PlaneError::BufferTooSmall { len: 27, needed: 28, width: 8, height: 3, stride: 10 })
        );
        assert_eq!(LumaPlane::new(&buf, 11, 2, 10).err(), Some(PlaneError::StrideTooSmall { stride: 10, width: 11 }));
        assert_eq!(LumaPlane::new(&buf, 0, 2, 10).err(), Some(PlaneError::Empty { width: 0, height: 2 }));
        assert!(matches!(LumaPlane::new(&buf, 8, u32::MAX, usize::MAX), Err(PlaneError::TooLarge { .. })));
    }

    #[test]
    fn crop_respects_stride_and_clips() {
        // 4x3 image in a stride of 6, padding bytes 99 that must never show up.
        let mut buf = Vec::new();
        for y in 0..3u8 {
            buf.extend_from_slice(&[10 * y, 10 * y + 1, 10 * y + 2, 10 * y + 3, 99, 99]);
        }
        let plane = LumaPlane::new(&buf, 4, 3, 6).expect("plane");
        let c = plane.crop(Rect::new(2, 1, 5, 5)).expect("overlaps");
        assert_eq!((c.width(), c.height()), (2, 2));
        assert_eq!(c.as_bytes(), &[12, 13, 22, 23]);
        assert!(plane.crop(Rect::new(4, 0, 2, 2)).is_none());
        assert!(plane.crop(Rect::new(0, 0, 0, 2)).is_none());
    }
}
