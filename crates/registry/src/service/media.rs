//! The anonymised products of videos and reports as clients read them (the web app's player, frames and
//! thumbnails, a report's text): which stored object answers a request. Only anonymised products are
//! ever named here: a video's raw upload and frames of a `raw` frame set are never served by these
//! functions, whatever the caller's role.

use endoreg_common::storage::keys;

use crate::db::Db;
use crate::params;

use super::{Result, ServiceError, is_sha256};

/// A video's anonymised file in storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnonymisedVideo {
    pub key: String,
    /// The SHA-256 of the anonymised file (its content address): the version a client caches.
    pub sha256: String,
}

/// Checks a client's pinned version (`?v=`, the SHA-256 of the anonymised video it read from the video
/// record) against the current one. `Ok(true)` when pinned: the answer may then be cached for good.
pub fn check_pin(pin: Option<&str>, current: &AnonymisedVideo, video_id: i64) -> Result<bool> {
    let Some(pin) = pin else { return Ok(false) };
    if !is_sha256(pin) {
        return Err(ServiceError::invalid("/v", "must be the SHA-256 of the anonymised video (64 lowercase hexadecimal characters)"));
    }
    if pin != current.sha256 {
        return Err(ServiceError::not_found(format!(
            "anonymised version {pin} of video {video_id} (its anonymised video is now {}; read the video again)",
            current.sha256
        )));
    }
    Ok(true)
}

/// The anonymised file of video `id`; not found while the video has none (before anonymisation).
pub async fn anonymised_video(db: &Db, id: i64) -> Result<AnonymisedVideo> {
    let row: Option<(Option<String>, String)> =
        db.fetch_optional("SELECT anonymised_key, state FROM video WHERE id = $1", params![id]).await?;
    let Some((key, state)) = row else {
        return Err(ServiceError::not_found(format!("video {id}")));
    };
    parse_anonymised(id, key, &state)
}

fn parse_anonymised(id: i64, key: Option<String>, state: &str) -> Result<AnonymisedVideo> {
    let Some(key) = key else {
        return Err(ServiceError::not_found(format!("an anonymised file of video {id} (it is {state}; it has not been anonymised yet)")));
    };
    // Keys are checked when recorded; one of another form is never served.
    if !keys::is_anonymised_video(&key) {
        return Err(ServiceError::Conflict(format!("video {id} records an anonymised key of an unknown form")));
    }
    let sha256 = key.trim_end_matches(".mp4").rsplit('/').next().unwrap_or_default().to_owned();
    Ok(AnonymisedVideo { key, sha256 })
}

/// The frames stored of a video's anonymised version: `first + k × step` for `k < count`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFrames {
    pub video: AnonymisedVideo,
    pub first: i64,
    pub count: i64,
    pub step: i64,
    pub format: String,
    pub prefix: String,
}

/// One stored frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFrame {
    pub key: String,
    pub number: i64,
    /// `image/jpeg` or `image/png`.
    pub content_type: &'static str,
}

impl StoredFrames {
    /// Whether frame `n` (of the video, counted from 0) is stored.
    pub fn contains(&self, n: i64) -> bool {
        n >= self.first && (n - self.first) % self.step == 0 && (n - self.first) / self.step < self.count
    }

    /// The stored frame nearest to frame `n` (the earlier one on a tie); `None` when none is stored.
    pub fn nearest(&self, n: i64) -> Option<i64> {
        if self.count == 0 {
            return None;
        }
        let k = if n <= self.first {
            0
        } else {
            let below = (n - self.first) / self.step;
            let rest = (n - self.first) % self.step;
            let k = if rest * 2 > self.step { below + 1 } else { below };
            k.min(self.count - 1)
        };
        Some(self.first + k * self.step)
    }

    /// The frame a list shows for the video: 40 % into the stored frames (past the insertion, in the
    /// examination), or the only one.
    pub fn poster(&self) -> Option<i64> {
        (self.count > 0).then(|| self.first + (self.count * 2 / 5) * self.step)
    }

    /// Frame `n`, if stored; not found naming the nearest stored frame otherwise.
    pub fn frame(&self, video_id: i64, n: i64) -> Result<StoredFrame> {
        if !self.contains(n) {
            let hint = match self.nearest(n) {
                Some(near) => format!(
                    "frames {} to {} are stored, every {}; the nearest is {near}",
                    self.first,
                    self.first + (self.count - 1) * self.step,
                    ordinal(self.step)
                ),
                None => "no frame is stored".to_owned(),
            };
            return Err(ServiceError::not_found(format!("frame {n} of video {video_id} ({hint})")));
        }
        let (extension, content_type) = match self.format.as_str() {
            "png" => ("png", "image/png"),
            _ => ("jpg", "image/jpeg"),
        };
        let number = u64::try_from(n).map_err(|_| ServiceError::invalid("/frame", "must not be negative"))?;
        Ok(StoredFrame { key: keys::frame(&self.prefix, number, extension), number: n, content_type })
    }
}

fn ordinal(step: i64) -> String {
    match step {
        1 => "frame".to_owned(),
        2 => "2nd".to_owned(),
        3 => "3rd".to_owned(),
        n => format!("{n}th"),
    }
}

/// The anonymised frames of video `id`; not found while none were extracted.
pub async fn anonymised_frames(db: &Db, id: i64) -> Result<StoredFrames> {
    type Row = (String, Option<String>, String, Option<i64>, Option<i64>, Option<i64>, Option<String>, Option<String>);
    let row: Option<Row> = db
        .fetch_optional(
            "SELECT v.sha256, v.anonymised_key, v.state, f.first_frame, f.frame_count, f.step, f.format, f.storage_prefix \
             FROM video v LEFT JOIN video_frame_set f ON f.video_id = v.id AND f.source = 'anonymised' WHERE v.id = $1",
            params![id],
        )
        .await?;
    let Some((sha, key, state, first, count, step, format, prefix)) = row else {
        return Err(ServiceError::not_found(format!("video {id}")));
    };
    let video = parse_anonymised(id, key, &state)?;
    let (Some(first), Some(count), Some(step), Some(format), Some(prefix)) = (first, count, step, format, prefix) else {
        return Err(ServiceError::not_found(format!("frames of video {id} (none have been extracted yet; it is {state})")));
    };
    // The prefix was checked when recorded; checked again so that nothing but anonymised frames is served.
    if prefix != keys::frames(&sha, "anonymised") || step < 1 {
        return Err(ServiceError::Conflict(format!("video {id} records a frame set of an unknown form")));
    }
    Ok(StoredFrames { video, first, count, step, format, prefix })
}

/// The anonymised text of report `id`; not found before the report has been anonymised.
pub async fn report_text(db: &Db, id: i64) -> Result<String> {
    let row: Option<(Option<String>, String)> =
        db.fetch_optional("SELECT anonymised_text, state FROM report_document WHERE id = $1", params![id]).await?;
    let Some((text, state)) = row else {
        return Err(ServiceError::not_found(format!("report {id}")));
    };
    text.ok_or_else(|| {
        ServiceError::not_found(format!("the anonymised text of report {id} (it is {state}; it has not been anonymised yet)"))
    })
}

/// Widths a thumbnail may have, in pixels.
pub const THUMBNAIL_WIDTHS: std::ops::RangeInclusive<u32> = 16..=640;

/// A JPEG of the frame `bytes` (JPEG or PNG) scaled down to `width` pixels (never up), its aspect kept.
pub fn thumbnail(bytes: &[u8], width: u32) -> std::result::Result<Vec<u8>, image::ImageError> {
    let frame = image::load_from_memory(bytes)?;
    let small = if frame.width() > width { frame.thumbnail(width, u32::MAX) } else { frame };
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80).encode_image(&small.to_rgb8())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(first: i64, count: i64, step: i64) -> StoredFrames {
        StoredFrames {
            video: AnonymisedVideo { key: String::new(), sha256: String::new() },
            first,
            count,
            step,
            format: "jpeg".into(),
            prefix: "frames/x/anonymised".into(),
        }
    }

    #[test]
    fn stored_frames_are_found_and_the_nearest_is_named() {
        let f = frames(0, 40, 5); // 0, 5, ..., 195
        assert!(f.contains(0) && f.contains(5) && f.contains(195));
        assert!(!f.contains(3) && !f.contains(200) && !f.contains(-5));
        assert_eq!(f.nearest(7), Some(5));
        assert_eq!(f.nearest(8), Some(10));
        assert_eq!(f.nearest(-3), Some(0));
        assert_eq!(f.nearest(10_000), Some(195));
        assert_eq!(f.poster(), Some(80));
        assert_eq!(f.frame(3, 10).unwrap().key, "frames/x/anonymised/000010.jpg");
        let err = f.frame(3, 7).unwrap_err().to_string();
        assert!(err.contains("frames 0 to 195 are stored, every 5th; the nearest is 5"), "{err}");
        assert_eq!(frames(0, 0, 1).nearest(3), None);
        assert_eq!(frames(0, 0, 1).poster(), None);
        assert!(frames(0, 0, 1).frame(1, 0).unwrap_err().to_string().contains("no frame is stored"));
    }

    #[test]
    fn a_pinned_version_must_be_the_current_one() {
        let v = AnonymisedVideo { key: String::new(), sha256: "a".repeat(64) };
        assert!(!check_pin(None, &v, 1).unwrap());
        assert!(check_pin(Some(&"a".repeat(64)), &v, 1).unwrap());
        assert!(matches!(check_pin(Some(&"b".repeat(64)), &v, 1), Err(ServiceError::NotFound { .. })));
        assert!(matches!(check_pin(Some("../x"), &v, 1), Err(ServiceError::Invalid(_))));
    }

    #[test]
    fn a_thumbnail_is_a_smaller_jpeg_of_the_same_picture() {
        let mut frame = image::RgbImage::new(640, 360);
        for (x, _, p) in frame.enumerate_pixels_mut() {
            *p = if x < 320 { image::Rgb([200, 30, 30]) } else { image::Rgb([20, 20, 220]) };
        }
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90).encode_image(&frame).unwrap();
        let thumb = image::load_from_memory(&thumbnail(&jpeg, 160).unwrap()).unwrap().to_rgb8();
        assert_eq!((thumb.width(), thumb.height()), (160, 90));
        let (left, right) = (thumb.get_pixel(20, 45), thumb.get_pixel(140, 45));
        assert!(left[0] > 150 && left[2] < 80, "{left:?}");
        assert!(right[2] > 150 && right[0] < 80, "{right:?}");
        // Never scaled up.
        let same = image::load_from_memory(&thumbnail(&jpeg, 640).unwrap()).unwrap();
        assert_eq!(same.width(), 640);
        assert!(thumbnail(b"not a picture", 160).is_err());
    }
}
