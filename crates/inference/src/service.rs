//! The inference service's shared state and logic: the loaded model, its registered version, the counters,
//! and the two things it does — predict a video (a job, [`crate::worker`]) and predict one image
//! ([`crate::http`]). Both crop, pad, resize and normalise the same way ([`crate::preprocess`]).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::json;

use endoreg_common::api::{AiModelVersion, AiModelVersionIn};
use endoreg_media::client::{Client, ClientError};
use endoreg_media::video::mask::{Layout, Mask, Rect};

use crate::config::InferenceConfig;
use crate::contract::{Contract, ContractError};
use crate::preprocess::{PreprocessError, Preprocessor, Region, decode_image};
use crate::runtime::{Model, ModelError};
use crate::telemetry::{Counters, Gpus, ModelInfo};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] endoreg_common::config::ConfigError),
    #[error(transparent)]
    Contract(#[from] ContractError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("cannot register the model version with the registry: {0}")]
    Registry(#[from] ClientError),
    #[error(
        "the registry has {model} version {version} from another ONNX file (sha256 {registered}, this file {ours}); give a changed model a new version"
    )]
    ChangedFile { model: String, version: String, registered: String, ours: String },
    #[error(
        "the registry has {model} version {version} without the hash of its ONNX file (registered by hand), so which weights it names is unknown; serve this model under a new version"
    )]
    UnknownFile { model: String, version: String },
}

/// Reads the contract and loads the model the configuration names (blocking: a session takes a while).
pub fn load_model(cfg: &InferenceConfig) -> Result<Model, StartError> {
    let (onnx, sidecar) = cfg.model_files()?;
    // The model first: without it, a missing sidecar next to it is not the news.
    if !onnx.is_file() {
        return Err(ModelError::Missing(onnx).into());
    }
    let library = cfg.library()?;
    let contract = Contract::read(&sidecar)?;
    Ok(Model::load(&library, &onnx, contract, &cfg.runtime)?)
}

/// Registers the model's version (idempotent) and refuses a version the registry knows from another file.
pub async fn register(client: &Client, model: &Model) -> Result<AiModelVersion, StartError> {
    let c = &model.contract;
    let input = AiModelVersionIn {
        model: c.name.clone(),
        version: c.version.clone(),
        label_set: c.label_set.clone(),
        metadata: json!({
            "onnx_sha256": model.sha256,
            "onnx_file": model.path.file_name().map(|n| n.to_string_lossy().into_owned()),
            "contract": c,
        }),
    };
    let v = client.register_model_version(&input).await?;
    match v.metadata.get("onnx_sha256").and_then(|s| s.as_str()) {
        Some(registered) if registered == model.sha256 => Ok(v),
        Some(registered) => Err(StartError::ChangedFile {
            model: c.name.clone(),
            version: c.version.clone(),
            registered: registered.into(),
            ours: model.sha256.clone(),
        }),
        // A version registered through the API without the file's hash.
        None => Err(StartError::UnknownFile { model: c.name.clone(), version: c.version.clone() }),
    }
}

pub struct Service {
    pub model: Mutex<Model>,
    /// A copy, so that readers do not wait for a running batch.
    pub contract: Contract,
    pub info: ModelInfo,
    pub counters: Counters,
    pub gpus: Gpus,
    pub cfg: InferenceConfig,
    layouts: Mutex<HashMap<String, Layout>>,
}

/// One image's answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImagePrediction {
    pub model: String,
    pub version: String,
    /// `endoscope_image` when the picture was cropped to a processor's region, `none` otherwise.
    pub crop: String,
    pub labels: Vec<LabelProbability>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LabelProbability {
    pub label: String,
    pub probability: f32,
    /// Whether it reaches the label's threshold.
    pub present: bool,
}

impl Service {
    pub fn new(model: Model, cfg: InferenceConfig, gpus: Gpus) -> Self {
        let contract = model.contract.clone();
        let info = ModelInfo { name: contract.name.clone(), version: contract.version.clone(), provider: model.provider.as_str().into() };
        Service { model: Mutex::new(model), contract, info, counters: Counters::default(), gpus, cfg, layouts: Mutex::new(HashMap::new()) }
    }

    /// A processor's layout, asked of the registry once per process (layouts change with a knowledge base
    /// release, which restarts the services).
    pub async fn layout(&self, client: &Client, processor: &str) -> Result<Layout, ClientError> {
        if let Some(l) = self.layouts.lock().ok().and_then(|m| m.get(processor).cloned()) {
            return Ok(l);
        }
        let l = client.layout(processor).await?;
        if let Ok(mut m) = self.layouts.lock() {
            m.insert(processor.to_owned(), l.clone());
        }
        Ok(l)
    }

    /// Where a `width`×`height` picture recorded by a processor with `layout` is cropped to.
    pub fn region(&self, layout: Option<&Layout>, width: u32, height: u32) -> Result<Region, endoreg_media::video::MediaError> {
        let rect: Option<Rect> = match layout {
            Some(l) => Some(Mask::for_video(l, width, height)?.keep),
            None => None,
        };
        Ok(Region::for_contract(&self.contract, rect))
    }

    /// Predicts one encoded image (PNG or JPEG), cropped to the processor's region when a layout is given.
    pub fn predict_image(&self, bytes: &[u8], layout: Option<&Layout>) -> Result<ImagePrediction, ImageError> {
        let mut picture = decode_image(bytes)?;
        let region = self.region(layout, picture.width(), picture.height()).map_err(|e| ImageError::Region(e.to_string()))?;
        let mut pre = Preprocessor::new(&self.contract);
        let mut input = vec![0.0; pre.len()];
        pre.run(&mut picture, region, &mut input)?;
        let started = std::time::Instant::now();
        let probs =
            self.model.lock().map_err(|_| ImageError::Model(ModelError::Run("the model lock is poisoned".into())))?.run(&input, 1)?;
        Counters::add(&self.counters.inference_us, u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));
        Counters::add(&self.counters.frames, 1);
        Counters::add(&self.counters.batches, 1);
        Counters::add(&self.counters.images, 1);
        let labels = self
            .contract
            .labels
            .iter()
            .zip(probs)
            .map(|(l, p)| LabelProbability { label: l.clone(), probability: p, present: p >= self.contract.threshold(l) })
            .collect();
        Ok(ImagePrediction {
            model: self.contract.name.clone(),
            version: self.contract.version.clone(),
            crop: if matches!(region, Region::Rect(_)) { "endoscope_image".into() } else { "none".into() },
            labels,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Preprocess(#[from] PreprocessError),
    #[error("{0}")]
    Region(String),
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// Reads a layout file (`processor`, `width`, `height`, `regions`) for local runs without a registry.
pub fn read_layout(file: &Path) -> Result<Layout, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    toml::from_str::<Layout>(&text).map_err(|e| format!("{} is not a layout: {e}", file.display()))
}
