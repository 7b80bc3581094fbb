//! A video's per-frame probabilities as one stored object (not one database row per frame):
//!
//! ```text
//! "EPRB" | format version (u8, 1) | header length (u32 LE) | header (JSON) | rows × labels u16 LE
//! ```
//!
//! The header names the model version, the labels in column order, the frame step and rate and the counts;
//! each value is a probability scaled to 0..65535 (resolution 1.5e-5). An hour at 50 frames per second
//! with 14 labels is 5 MB.

use serde::{Deserialize, Serialize};

const MAGIC: &[u8; 4] = b"EPRB";
const FORMAT: u8 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub model: String,
    pub version: String,
    pub labels: Vec<String>,
    /// Row `r` is video frame `r * step`.
    pub step: u32,
    pub fps: f64,
    /// Frames of the video (decoded).
    pub frames: u64,
    pub rows: u64,
    /// The object key of the video they are of (content-addressed: its hash), when it was a stored one.
    /// A rerun reuses the object only for that very video.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// Probabilities of `rows` predicted frames × `labels`, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Probabilities {
    pub header: Header,
    pub values: Vec<f32>,
}

#[derive(Debug, thiserror::Error)]
#[error("not a probabilities object: {0}")]
pub struct FormatError(String);

impl Probabilities {
    pub fn labels(&self) -> usize {
        self.header.labels.len()
    }

    /// Probabilities of label column `l`, one per row.
    pub fn column(&self, l: usize) -> impl Iterator<Item = f32> + '_ {
        self.values.iter().skip(l).step_by(self.labels().max(1)).copied()
    }

    pub fn encode(&self) -> Vec<u8> {
        let header = serde_json::to_vec(&self.header).unwrap_or_default();
        let mut out = Vec::with_capacity(9 + header.len() + 2 * self.values.len());
        out.extend_from_slice(MAGIC);
        out.push(FORMAT);
        out.extend_from_slice(&u32::try_from(header.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(&header);
        for v in &self.values {
            let q = (v.clamp(0.0, 1.0) * 65535.0).round() as u16;
            out.extend_from_slice(&q.to_le_bytes());
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, FormatError> {
        let bad = |m: &str| FormatError(m.into());
        if bytes.len() < 9 || &bytes[..4] != MAGIC {
            return Err(bad("it does not start with EPRB"));
        }
        if bytes[4] != FORMAT {
            return Err(FormatError(format!("format version {} is not supported", bytes[4])));
        }
        let len = u32::from_le_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]) as usize;
        let body = bytes.get(9..).ok_or_else(|| bad("no header"))?;
        let header = body.get(..len).ok_or_else(|| bad("the header is cut off"))?;
        let header: Header = serde_json::from_slice(header).map_err(|e| FormatError(format!("the header is not valid: {e}")))?;
        let data = &body[len..];
        let expected = usize::try_from(header.rows).unwrap_or(usize::MAX).saturating_mul(header.labels.len()).saturating_mul(2);
        if data.len() != expected {
            return Err(FormatError(format!("{} bytes of values, {expected} expected for the header's rows and labels", data.len())));
        }
        let values = data.chunks_exact(2).map(|c| f32::from(u16::from_le_bytes([c[0], c[1]])) / 65535.0).collect();
        Ok(Probabilities { header, values })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Probabilities {
        Probabilities {
            header: Header {
                model: "m".into(),
                version: "1".into(),
                labels: vec!["a".into(), "b".into()],
                step: 2,
                fps: 25.0,
                frames: 5,
                rows: 3,
                source: None,
            },
            values: vec![0.0, 1.0, 0.25, 0.5, 0.999, 0.1234],
        }
    }

    #[test]
    fn round_trip_within_the_resolution() {
        let p = sample();
        let bytes = p.encode();
        assert_eq!(bytes.len(), 9 + serde_json::to_vec(&p.header).unwrap().len() + 12);
        let q = Probabilities::decode(&bytes).unwrap();
        assert_eq!(q.header, p.header);
        for (a, b) in p.values.iter().zip(&q.values) {
            assert!((a - b).abs() < 1.0 / 65535.0, "{a} {b}");
        }
        assert_eq!(q.column(1).count(), 3);
    }

    #[test]
    fn damaged_objects_are_refused() {
        let bytes = sample().encode();
        assert!(Probabilities::decode(&bytes[..bytes.len() - 1]).unwrap_err().to_string().contains("bytes of values"));
        assert!(Probabilities::decode(b"PNG\0....").unwrap_err().to_string().contains("EPRB"));
        let mut v2 = bytes.clone();
        v2[4] = 2;
        assert!(Probabilities::decode(&v2).unwrap_err().to_string().contains("version 2"));
        assert!(Probabilities::decode(&bytes[..12]).unwrap_err().to_string().contains("cut off"));
    }
}
