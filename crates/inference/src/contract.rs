//! The model contract: what an ONNX file's sidecar (`<model>.toml`) says about it, checked when it is read.
//! docs/inference.md describes every key; `models/endoreg-demo-multilabel.toml` is an example.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    #[error("cannot read the model's sidecar {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("the model's sidecar {path} is not valid: {detail}")]
    Invalid { path: PathBuf, detail: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contract {
    /// The `ai_model` the registry knows this model as.
    pub name: String,
    /// This model version; predictions and segments name it.
    pub version: String,
    /// The registry's `label_set` of the outputs.
    pub label_set: Option<String>,
    /// Label names, in the order of the model's outputs.
    pub labels: Vec<String>,
    pub input: Input,
    #[serde(default)]
    pub preprocessing: Preprocessing,
    #[serde(default)]
    pub output: Output,
    #[serde(default)]
    pub postprocessing: Postprocessing,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    pub width: u32,
    pub height: u32,
    /// The tensor's layout; only `nchw` (batch, RGB channels, rows, columns) for now.
    #[serde(default = "nchw")]
    pub layout: String,
}

fn nchw() -> String {
    "nchw".into()
}

/// What part of a frame the model sees, and how it is scaled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Preprocessing {
    /// `endoscope_image`: the processor's endoscope region (the rest of the frame is the processor's
    /// overlay); `none`: the whole frame.
    pub crop: Crop,
    /// Pad the crop with black to a square before resizing (keeps the aspect ratio).
    pub pad_to_square: bool,
    /// `bilinear`, `bicubic`, `lanczos` (EndoregDB's, PIL's `Image.LANCZOS`), `area` or `nearest`.
    pub resize: Resize,
    /// Per RGB channel, on values scaled to 0..1: `(v - mean) / std`.
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Default for Preprocessing {
    fn default() -> Self {
        Self { crop: Crop::EndoscopeImage, pad_to_square: true, resize: Resize::Bilinear, mean: [0.0; 3], std: [1.0; 3] }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Crop {
    EndoscopeImage,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resize {
    Bilinear,
    Bicubic,
    Lanczos,
    Area,
    Nearest,
}

impl Resize {
    /// The swscale flag name.
    pub fn sws_flag(self) -> &'static str {
        match self {
            Resize::Bilinear => "bilinear",
            Resize::Bicubic => "bicubic",
            Resize::Lanczos => "lanczos",
            Resize::Area => "area",
            Resize::Nearest => "neighbor",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Output {
    pub activation: Activation,
}

/// How the model's outputs become probabilities.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// Independent labels (multilabel): one sigmoid per output.
    #[default]
    Sigmoid,
    /// Exclusive labels: a softmax over the outputs.
    Softmax,
    /// The outputs are probabilities already.
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Postprocessing {
    /// A frame has a label when its smoothed probability reaches this.
    pub threshold: f32,
    /// Per-label thresholds, overriding `threshold`.
    pub thresholds: BTreeMap<String, f32>,
    /// Width of the centred moving average over the probabilities, in seconds of video (0: none).
    pub smoothing_window_s: f64,
    /// Segments shorter than this (seconds) are dropped.
    pub min_segment_s: f64,
    /// Labels that never become segments (e.g. a model's catch-all output).
    pub ignore: Vec<String>,
}

impl Default for Postprocessing {
    fn default() -> Self {
        Self { threshold: 0.5, thresholds: BTreeMap::new(), smoothing_window_s: 1.0, min_segment_s: 0.5, ignore: Vec::new() }
    }
}

impl Contract {
    pub fn read(path: &Path) -> Result<Self, ContractError> {
        let text = std::fs::read_to_string(path).map_err(|source| ContractError::Read { path: path.to_owned(), source })?;
        Self::parse(&text).map_err(|detail| ContractError::Invalid { path: path.to_owned(), detail })
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let c: Contract = toml::from_str(text).map_err(|e| e.to_string())?;
        c.check()?;
        Ok(c)
    }

    fn check(&self) -> Result<(), String> {
        if self.name.trim().is_empty() || self.version.trim().is_empty() {
            return Err("`name` and `version` must not be empty".into());
        }
        if self.labels.is_empty() {
            return Err("`labels` is empty: list the label of each model output, in output order".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        for l in &self.labels {
            if !seen.insert(l) {
                return Err(format!("label `{l}` is listed twice"));
            }
        }
        if !(8..=4096).contains(&self.input.width) || !(8..=4096).contains(&self.input.height) {
            return Err(format!("input size {}x{} is outside 8..4096", self.input.width, self.input.height));
        }
        if self.input.layout != "nchw" {
            return Err(format!("input layout `{}` is not supported (only nchw)", self.input.layout));
        }
        if self.preprocessing.std.iter().any(|s| !s.is_finite() || *s <= 0.0) || self.preprocessing.mean.iter().any(|m| !m.is_finite()) {
            return Err("preprocessing: `std` must be positive and `mean` finite".into());
        }
        let p = &self.postprocessing;
        let probability = |v: f32| v.is_finite() && (0.0..=1.0).contains(&v);
        if !probability(p.threshold) {
            return Err(format!("postprocessing.threshold {} is not between 0 and 1", p.threshold));
        }
        for (label, t) in &p.thresholds {
            if !self.labels.contains(label) {
                return Err(format!("postprocessing.thresholds names `{label}`, which is not one of the labels"));
            }
            if !probability(*t) {
                return Err(format!("postprocessing.thresholds.{label} = {t} is not between 0 and 1"));
            }
        }
        for label in &p.ignore {
            if !self.labels.contains(label) {
                return Err(format!("postprocessing.ignore names `{label}`, which is not one of the labels"));
            }
        }
        if !(p.smoothing_window_s.is_finite() && (0.0..=600.0).contains(&p.smoothing_window_s)) {
            return Err("postprocessing.smoothing_window_s must be between 0 and 600".into());
        }
        if !(p.min_segment_s.is_finite() && (0.0..=3600.0).contains(&p.min_segment_s)) {
            return Err("postprocessing.min_segment_s must be between 0 and 3600".into());
        }
        Ok(())
    }

    pub fn threshold(&self, label: &str) -> f32 {
        self.postprocessing.thresholds.get(label).copied().unwrap_or(self.postprocessing.threshold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEMO: &str = include_str!("../models/endoreg-demo-multilabel.toml");

    #[test]
    fn the_demo_sidecar_is_a_valid_contract() {
        let c = Contract::parse(DEMO).unwrap();
        assert_eq!(c.labels.len(), 14);
        assert_eq!(c.labels[9], "outside");
        assert_eq!(c.output.activation, Activation::Sigmoid);
        assert_eq!(c.threshold("outside"), 0.5);
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            ("labels = []", "`labels` is empty"),
            ("labels = [\"a\", \"a\"]", "listed twice"),
            ("[postprocessing]\nthreshold = 1.5", "threshold 1.5"),
            ("[postprocessing.thresholds]\nb = 0.3", "`b`, which is not one of the labels"),
            ("[preprocessing]\nstd = [1.0, 0.0, 1.0]", "`std` must be positive"),
            ("[preprocessing]\nresize = \"lanczos9\"", "unknown variant `lanczos9`"),
            ("colour = 1", "unknown field `colour`"),
        ];
        for (extra, expected) in cases {
            let mut text = String::from("name = \"m\"\nversion = \"1\"\n");
            if !extra.starts_with("labels") {
                text.push_str("labels = [\"a\"]\n");
            }
            if extra.starts_with('[') {
                text.push_str("[input]\nwidth = 64\nheight = 64\n");
                text.push_str(extra);
            } else {
                text.push_str(extra);
                text.push_str("\n[input]\nwidth = 64\nheight = 64\n");
            }
            let err = Contract::parse(&text).unwrap_err();
            assert!(err.contains(expected), "{extra}: {err}");
        }
    }
}
