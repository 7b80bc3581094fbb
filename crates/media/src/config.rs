//! The media worker's configuration: defaults for the embedded setup (registry on 127.0.0.1:8080, storage
//! and keys under `./endoreg-data`), a TOML file, `ENDOREG_*` environment overrides.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use endoreg_common::config::ConfigError;
use endoreg_common::storage::StorageConfig;

use crate::video::encode::H264Settings;
use crate::video::frames::FrameSettings;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// Shared with the registry on one machine: storage and the local key live here; work files go to
    /// `<data_dir>/media-work`.
    pub data_dir: PathBuf,
    /// The registry's base URL.
    pub registry_url: String,
    /// A file holding a `service` token (a systemd credential). Default: `<data_dir>/keys/media.token`.
    pub token_file: Option<PathBuf>,
    /// The age identity that decrypts raw uploads. Default: `<data_dir>/keys/raw.agekey`.
    pub identity_file: Option<PathBuf>,
    /// This worker's name in job leases. Default: host name and process id.
    pub worker_name: Option<String>,
    /// Seconds between polls when there is no work.
    pub poll_secs: u64,
    /// Lease per job, renewed by heartbeats at a third of it.
    pub lease_secs: i64,
    /// Job kinds this worker takes.
    pub kinds: Vec<String>,
    pub storage: StorageConfig,
    pub anonymise: H264Settings,
    pub frames: FrameSettings,
    pub reports: ReportsConfig,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportsConfig {
    /// A TOML file of report templates; the built-in ones when unset.
    pub templates_file: Option<PathBuf>,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./endoreg-data"),
            registry_url: "http://127.0.0.1:8080".into(),
            token_file: None,
            identity_file: None,
            worker_name: None,
            poll_secs: 2,
            lease_secs: 120,
            kinds: vec!["process_video".into(), "process_report".into()],
            storage: StorageConfig::default(),
            anonymise: H264Settings::default(),
            frames: FrameSettings::default(),
            reports: ReportsConfig::default(),
        }
    }
}

impl MediaConfig {
    pub fn load(file: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        let cfg: Self = endoreg_common::config::load(file)?;
        cfg.check()?;
        Ok(cfg)
    }

    pub fn check(&self) -> Result<(), ConfigError> {
        self.anonymise.check().map_err(|e| ConfigError::Check(format!("anonymise: {e}")))?;
        self.frames.check().map_err(ConfigError::Check)?;
        if !(30..=3600).contains(&self.lease_secs) {
            return Err(ConfigError::Check("lease_secs must be between 30 and 3600".into()));
        }
        if !self.registry_url.starts_with("http://") && !self.registry_url.starts_with("https://") {
            return Err(ConfigError::Check(format!("registry_url `{}` must start with http:// or https://", self.registry_url)));
        }
        for k in &self.kinds {
            if !["process_video", "process_report"].contains(&k.as_str()) {
                return Err(ConfigError::Check(format!("kinds: unknown job kind `{k}`")));
            }
        }
        Ok(())
    }

    pub fn token_file(&self) -> PathBuf {
        self.token_file.clone().unwrap_or_else(|| self.data_dir.join("keys").join("media.token"))
    }

    pub fn identity_file(&self) -> PathBuf {
        self.identity_file.clone().unwrap_or_else(|| self.data_dir.join("keys").join("raw.agekey"))
    }

    pub fn work_dir(&self) -> PathBuf {
        self.data_dir.join("media-work")
    }

    pub fn worker_name(&self) -> String {
        self.worker_name.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_else(|_| "localhost".into());
            format!("{host}-{}", std::process::id())
        })
    }
}
