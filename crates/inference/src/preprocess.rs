//! From a picture to the model's input, the same way for a video frame and for a single image: crop to the
//! endoscope's region, pad to a square with black, resize, convert to RGB (an FFmpeg filter graph: any
//! pixel format, the crop costs no copy, the pad is applied to the resized picture), then scale to 0..1
//! and normalise per channel into planar floats.

use ffmpeg::format::Pixel;
use ffmpeg::frame;
use ffmpeg_next as ffmpeg;

use endoreg_media::video::mask::Rect;

use crate::contract::{Contract, Crop};

#[derive(Debug, thiserror::Error)]
pub enum PreprocessError {
    #[error("the crop region {w}x{h} at {x},{y} does not fit in the {width}x{height} picture")]
    Region { x: u32, y: u32, w: u32, h: u32, width: u32, height: u32 },
    #[error("cannot prepare the picture ({0})")]
    Filter(String),
    #[error("the image cannot be read: {0}")]
    Image(String),
}

/// What a picture is cropped to before it is scaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    /// The whole picture (contract `crop = "none"`, or an image that is the endoscope region already).
    Whole,
    Rect(Rect),
}

impl Region {
    /// The region `contract` asks for: `endoscope_image` (the processor's, scaled to the picture) when the
    /// contract crops and one is known.
    pub fn for_contract(contract: &Contract, endoscope_image: Option<Rect>) -> Region {
        match (contract.preprocessing.crop, endoscope_image) {
            (Crop::EndoscopeImage, Some(r)) => Region::Rect(r),
            _ => Region::Whole,
        }
    }
}

/// One preprocessing stage: a filter graph for pictures of one size and format, rebuilt when those change.
pub struct Preprocessor {
    width: u32,
    height: u32,
    /// `(v / 255 - mean) / std` as `v * scale + offset`, per channel.
    scale: [f32; 3],
    offset: [f32; 3],
    pad_to_square: bool,
    resize_flag: &'static str,
    graph: Option<(GraphKey, ffmpeg::filter::Graph)>,
    rgb: frame::Video,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct GraphKey {
    format: Pixel,
    width: u32,
    height: u32,
    region: Region,
}

impl Preprocessor {
    pub fn new(contract: &Contract) -> Self {
        endoreg_media::video::init();
        let p = &contract.preprocessing;
        let scale = [0, 1, 2].map(|c| 1.0 / (255.0 * p.std[c]));
        let offset = [0, 1, 2].map(|c| -p.mean[c] / p.std[c]);
        Preprocessor {
            width: contract.input.width,
            height: contract.input.height,
            scale,
            offset,
            pad_to_square: p.pad_to_square,
            resize_flag: p.resize.sws_flag(),
            graph: None,
            rgb: frame::Video::empty(),
        }
    }

    /// Floats per picture.
    pub fn len(&self) -> usize {
        3 * self.width as usize * self.height as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes `picture`, cropped to `region`, as the model's input into `out` (`len()` floats, CHW).
    /// The picture's data moves into the filter graph (FFmpeg's buffer source takes the reference without a
    /// copy): `picture` is left empty.
    pub fn run(&mut self, picture: &mut frame::Video, region: Region, out: &mut [f32]) -> Result<(), PreprocessError> {
        let key = GraphKey { format: picture.format(), width: picture.width(), height: picture.height(), region };
        if self.graph.as_ref().map(|(k, _)| *k) != Some(key) {
            self.graph = Some((key, self.build(key)?));
        }
        let filter = |e: ffmpeg::Error| PreprocessError::Filter(e.to_string());
        let Some((_, graph)) = self.graph.as_mut() else {
            return Err(PreprocessError::Filter("no filter graph".into()));
        };
        graph.get("in").ok_or_else(|| PreprocessError::Filter("no source".into()))?.source().add(picture).map_err(filter)?;
        graph.get("out").ok_or_else(|| PreprocessError::Filter("no sink".into()))?.sink().frame(&mut self.rgb).map_err(filter)?;
        self.normalise(out)
    }

    fn build(&self, key: GraphKey) -> Result<ffmpeg::filter::Graph, PreprocessError> {
        let filter = |e: ffmpeg::Error| PreprocessError::Filter(e.to_string());
        let (cw, ch, crop) = match key.region {
            Region::Whole => (key.width, key.height, String::new()),
            Region::Rect(r) => {
                if r.w == 0 || r.h == 0 || r.right() > key.width || r.bottom() > key.height {
                    return Err(PreprocessError::Region { x: r.x, y: r.y, w: r.w, h: r.h, width: key.width, height: key.height });
                }
                // exact: the processor's region to the pixel, not rounded to the chroma grid.
                (r.w, r.h, format!("crop={}:{}:{}:{}:exact=1,", r.w, r.h, r.x, r.y))
            }
        };
        // Scale first, then pad the small picture: the same as padding the region to a square and scaling that,
        // without copying a full-size padded picture, and padding in RGB, where any offset is allowed (YUV
        // rounds pads to its chroma grid and refuses odd sizes).
        let (w, h) = (self.width, self.height);
        let spec = if self.pad_to_square && cw != ch {
            let side = f64::from(cw.max(ch));
            let sw = ((f64::from(cw) * f64::from(w) / side).round() as u32).clamp(1, w);
            let sh = ((f64::from(ch) * f64::from(h) / side).round() as u32).clamp(1, h);
            format!(
                "{crop}scale={sw}:{sh}:flags={},format=rgb24,pad={w}:{h}:{}:{}:color=black",
                self.resize_flag,
                (w - sw) / 2,
                (h - sh) / 2
            )
        } else {
            format!("{crop}scale={w}:{h}:flags={},format=rgb24", self.resize_flag)
        };
        let mut graph = ffmpeg::filter::Graph::new();
        let buffer = ffmpeg::filter::find("buffer").ok_or_else(|| PreprocessError::Filter("FFmpeg has no buffer filter".into()))?;
        let sink = ffmpeg::filter::find("buffersink").ok_or_else(|| PreprocessError::Filter("FFmpeg has no buffersink filter".into()))?;
        let format: ffmpeg::ffi::AVPixelFormat = key.format.into();
        let args = format!("video_size={}x{}:pix_fmt={}:time_base=1/25:pixel_aspect=1/1", key.width, key.height, format as i32);
        graph.add(&buffer, "in", &args).map_err(filter)?;
        graph.add(&sink, "out", "").map_err(filter)?;
        graph.get("out").ok_or_else(|| PreprocessError::Filter("no sink".into()))?.set_pixel_format(Pixel::RGB24);
        graph.output("in", 0).and_then(|p| p.input("out", 0)).and_then(|p| p.parse(&spec)).map_err(filter)?;
        graph.validate().map_err(filter)?;
        Ok(graph)
    }

    fn normalise(&self, out: &mut [f32]) -> Result<(), PreprocessError> {
        let (w, h) = (self.width as usize, self.height as usize);
        if out.len() != 3 * w * h || self.rgb.width() as usize != w || self.rgb.height() as usize != h {
            return Err(PreprocessError::Filter(format!("the scaled picture is {}x{}, not {w}x{h}", self.rgb.width(), self.rgb.height())));
        }
        let stride = self.rgb.stride(0);
        let data = self.rgb.data(0);
        let plane = w * h;
        let (r, rest) = out.split_at_mut(plane);
        let (g, b) = rest.split_at_mut(plane);
        for y in 0..h {
            let row = &data[y * stride..y * stride + 3 * w];
            let at = y * w;
            for (x, px) in row.chunks_exact(3).enumerate() {
                r[at + x] = f32::from(px[0]) * self.scale[0] + self.offset[0];
                g[at + x] = f32::from(px[1]) * self.scale[1] + self.offset[1];
                b[at + x] = f32::from(px[2]) * self.scale[2] + self.offset[2];
            }
        }
        Ok(())
    }
}

/// The largest image side accepted.
const MAX_SIDE: u32 = 8192;

/// Decodes a PNG or JPEG into an RGB frame for [`Preprocessor::run`]. The size is checked from the header,
/// before anything is allocated for the pixels: a small file can declare an enormous picture.
pub fn decode_image(bytes: &[u8]) -> Result<frame::Video, PreprocessError> {
    let reader =
        image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().map_err(|e| PreprocessError::Image(e.to_string()))?;
    let (w, h) = reader.into_dimensions().map_err(|e| PreprocessError::Image(e.to_string()))?;
    if w == 0 || h == 0 || w > MAX_SIDE || h > MAX_SIDE {
        return Err(PreprocessError::Image(format!("{w}x{h} is not a size between 1x1 and {MAX_SIDE}x{MAX_SIDE}")));
    }
    let mut reader =
        image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().map_err(|e| PreprocessError::Image(e.to_string()))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    // An 8192x8192 RGBA picture at 16 bits per channel, the most a permitted size can take.
    limits.max_alloc = Some(u64::from(MAX_SIDE) * u64::from(MAX_SIDE) * 8);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| PreprocessError::Image(e.to_string()))?.into_rgb8();
    let (w, h) = img.dimensions();
    let mut f = frame::Video::new(Pixel::RGB24, w, h);
    let stride = f.stride(0);
    let row = 3 * w as usize;
    let src = img.as_raw();
    let dst = f.data_mut(0);
    for y in 0..h as usize {
        dst[y * stride..y * stride + row].copy_from_slice(&src[y * row..(y + 1) * row]);
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::Contract;

    fn contract(extra: &str) -> Contract {
        Contract::parse(&format!("name = \"m\"\nversion = \"1\"\nlabels = [\"a\"]\n[input]\nwidth = 8\nheight = 8\n{extra}")).unwrap()
    }

    /// An RGB picture: `fill` everywhere, `inner` in rectangle `r`.
    fn picture(w: u32, h: u32, fill: [u8; 3], r: Rect, inner: [u8; 3]) -> frame::Video {
        let mut f = frame::Video::new(Pixel::RGB24, w, h);
        let stride = f.stride(0);
        let d = f.data_mut(0);
        for y in 0..h {
            for x in 0..w {
                let inside = x >= r.x && x < r.right() && y >= r.y && y < r.bottom();
                let px = if inside { inner } else { fill };
                let at = y as usize * stride + 3 * x as usize;
                d[at..at + 3].copy_from_slice(&px);
            }
        }
        f
    }

    #[test]
    fn only_the_region_reaches_the_model_normalised() {
        for resize in ["bilinear", "bicubic", "lanczos", "area", "nearest"] {
            let c = contract(&format!("[preprocessing]\nmean = [0.5, 0.5, 0.5]\nstd = [0.5, 0.5, 0.5]\nresize = \"{resize}\""));
            let mut p = Preprocessor::new(&c);
            let r = Rect { x: 20, y: 10, w: 40, h: 40 };
            // White overlay around a pure red endoscope image.
            let pic = picture(100, 60, [255, 255, 255], r, [255, 0, 0]);
            let mut out = vec![0.0; p.len()];
            p.run(&mut pic.clone(), Region::Rect(r), &mut out).unwrap();
            // (1 - 0.5) / 0.5 = 1 for red, (0 - 0.5) / 0.5 = -1 for green and blue: nothing of the overlay,
            // whichever filter (a filter reaching past the crop would bring white in at the edges).
            assert!(out[..64].iter().all(|v| (v - 1.0).abs() < 0.02), "{resize}: {out:?}");
            assert!(out[64..].iter().all(|v| (v + 1.0).abs() < 0.02), "{resize}: {out:?}");
            // The whole picture instead: the overlay's white shows in green.
            p.run(&mut pic.clone(), Region::Whole, &mut out).unwrap();
            assert!(out[64..128].iter().any(|v| *v > 0.0), "{resize}: {out:?}");
        }
    }

    #[test]
    fn a_wide_region_is_padded_with_black_to_a_square() {
        let c = contract("[preprocessing]\nresize = \"area\"");
        let mut p = Preprocessor::new(&c);
        let r = Rect { x: 0, y: 0, w: 80, h: 40 };
        let mut pic = picture(80, 40, [0, 0, 0], r, [255, 255, 255]);
        let mut out = vec![0.0; p.len()];
        p.run(&mut pic, Region::Rect(r), &mut out).unwrap();
        // Rows 0-1 and 6-7 of the 8x8 input are padding (black), rows 2-5 the white picture.
        let red = &out[..64];
        assert!(red[..16].iter().all(|v| *v < 0.1) && red[48..].iter().all(|v| *v < 0.1), "{red:?}");
        assert!(red[16..48].iter().all(|v| *v > 0.9), "{red:?}");
    }

    #[test]
    fn a_region_outside_the_picture_is_an_error_not_a_crash() {
        let mut p = Preprocessor::new(&contract(""));
        let mut pic = picture(32, 32, [0, 0, 0], Rect { x: 0, y: 0, w: 1, h: 1 }, [0, 0, 0]);
        let mut out = vec![0.0; p.len()];
        let e = p.run(&mut pic, Region::Rect(Rect { x: 20, y: 0, w: 20, h: 10 }), &mut out).unwrap_err();
        assert!(e.to_string().contains("does not fit"), "{e}");
    }

    #[test]
    fn images_decode_and_garbage_is_refused() {
        let mut png = Vec::new();
        let img = image::RgbImage::from_pixel(7, 5, image::Rgb([10, 200, 30]));
        img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
        let f = decode_image(&png).unwrap();
        assert_eq!((f.width(), f.height(), f.format()), (7, 5, Pixel::RGB24));
        assert_eq!(&f.data(0)[..3], &[10, 200, 30]);
        assert!(decode_image(b"not an image").err().is_some_and(|e| e.to_string().contains("cannot be read")));
        // A PNG header declaring 16000x10000 pixels: refused from the header, nothing allocated for them.
        let mut huge = png.clone();
        huge[16..20].copy_from_slice(&16000u32.to_be_bytes());
        huge[20..24].copy_from_slice(&10000u32.to_be_bytes());
        let crc = huge[12..29]
            .iter()
            .fold(!0u32, |c, &b| (0..8).fold(c ^ u32::from(b), |c, _| if c & 1 == 1 { (c >> 1) ^ 0xEDB8_8320 } else { c >> 1 }));
        huge[29..33].copy_from_slice(&(!crc).to_be_bytes());
        let e = decode_image(&huge).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("16000x10000 is not a size"), "{e}");
    }
}
