//! The registry's configuration: defaults that work on a laptop (SQLite under `./endoreg-data`, HTTP on
//! loopback), a TOML file for servers, `ENDOREG_*` environment variables on top (see
//! [`endoreg_common::config`]). Secrets are paths to files, never values.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use endoreg_common::config::ConfigError;
use endoreg_common::secret::Secret;
use endoreg_common::storage::{Recipients, StorageConfig, Store};

use crate::db::ConnectOptions;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    /// Where the embedded database (and, later, media) live. `ENDOREG_DATA_DIR`.
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://...`; unset means SQLite at `<data_dir>/registry.db`.
    /// `ENDOREG_DATABASE_URL`. Put no password here: use `database.password_file`.
    pub database_url: Option<String>,
    pub database: DatabaseConfig,
    pub http: HttpConfig,
    pub auth: AuthConfig,
    /// Where uploaded media are stored (`backend = "local"` under the data directory by default, or `"s3"`).
    pub storage: StorageConfig,
    pub upload: UploadConfig,
    pub jobs: JobsConfig,
    /// The web app and its browser sessions.
    pub web: WebConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// Serve the web app (the API is served either way).
    pub enabled: bool,
    /// Where the app is served: `/` by default, or a path of its own (`/endoreg/`) when a reverse proxy
    /// serves other things beside it. Not under `/api/`, `/healthz` or `/readyz`.
    pub path: String,
    /// A browser session not used for this many minutes ends (sign in again).
    pub session_idle_minutes: u64,
    /// A browser session ends this many hours after sign-in, used or not.
    pub session_max_hours: u64,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self { enabled: true, path: "/".into(), session_idle_minutes: 60, session_max_hours: 12 }
    }
}

impl WebConfig {
    /// The app's path with one trailing slash (`/`, `/endoreg/`).
    pub fn base(&self) -> String {
        format!("{}/", self.path.trim_end_matches('/'))
    }

    pub fn session_limits(&self) -> crate::service::sessions::Limits {
        let minutes = |m: u64| chrono::Duration::minutes(i64::try_from(m).unwrap_or(i64::MAX / 60_000).min(i64::MAX / 60_000));
        crate::service::sessions::Limits {
            idle: minutes(self.session_idle_minutes),
            absolute: minutes(self.session_max_hours.saturating_mul(60)),
        }
    }

    fn check(&self) -> Result<(), ConfigError> {
        let base = self.base();
        let plain = base.starts_with('/')
            && base.split('/').all(|s| s != "." && s != "..")
            && base.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.'))
            && !base.contains("//");
        if !plain {
            return Err(ConfigError::Check(format!(
                "web.path `{}` must be an absolute path of letters, digits, `-`, `_` and `.` segments, like `/` or `/endoreg/`",
                self.path
            )));
        }
        if ["/api/", "/healthz/", "/readyz/"].iter().any(|p| base.starts_with(p)) {
            return Err(ConfigError::Check(format!("web.path `{}` lies under a path of the API (/api/, /healthz, /readyz)", self.path)));
        }
        // At most a year: the arithmetic on these stays far from overflowing.
        if !(1..=525_600).contains(&self.session_idle_minutes) || !(1..=8_760).contains(&self.session_max_hours) {
            return Err(ConfigError::Check("web.session_idle_minutes must be 1 to 525600 and web.session_max_hours 1 to 8760".into()));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UploadConfig {
    /// Largest accepted upload.
    pub max_bytes: u64,
    /// age public keys (`age1…`, `ssh-ed25519 …`) raw uploads are encrypted to. Empty: a key pair kept in
    /// `<data_dir>/keys/raw.agekey` (created on first use), for the embedded default where the media worker
    /// runs on the same machine.
    pub raw_recipients: Vec<String>,
    /// An upload that takes longer is cut off (503) and nothing of it is kept.
    pub timeout_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// Attempts before a job stays failed.
    pub max_attempts: i64,
    /// The first retry waits this long; each further one twice as long, up to `backoff_max_secs`.
    pub backoff_secs: i64,
    pub backoff_max_secs: i64,
    /// Longest lease a worker may ask for.
    pub max_lease_secs: i64,
    /// Queue a prediction job when a video has been processed (for the inference workers).
    pub predict_after_processing: bool,
}

impl Default for UploadConfig {
    fn default() -> Self {
        Self { max_bytes: 20 * 1024 * 1024 * 1024, raw_recipients: Vec::new(), timeout_secs: 4 * 3600 }
    }
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self { max_attempts: 5, backoff_secs: 30, backoff_max_secs: 3600, max_lease_secs: 3600, predict_after_processing: true }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    pub max_connections: u32,
    pub acquire_timeout_secs: u64,
    /// A file holding the PostgreSQL password (a systemd credential); not needed with peer
    /// authentication over the local socket.
    pub password_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address to listen on. Loopback by default: exposing the registry is a deliberate act.
    pub listen: String,
    /// Largest accepted JSON request body.
    pub max_body_bytes: usize,
    /// A request that takes longer is answered 503.
    pub request_timeout_secs: u64,
    /// A connection that has not sent a request's complete headers within this time is closed (also an
    /// idle kept-alive connection, counted from its last response).
    pub header_read_timeout_secs: u64,
    /// A request whose body stops arriving for this long is answered 408 (a client that announced more
    /// than it sends). Shorter than `request_timeout_secs`, or that answers first.
    pub body_read_timeout_secs: u64,
    /// Open connections one client address may hold; further ones are answered 429 and closed. Behind a
    /// reverse proxy every client has the proxy's address: raise it there.
    pub max_connections_per_client: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Files holding API tokens to register at startup, as `ROLE:NAME` → file. For deployments where a
    /// token is provisioned as an (age-encrypted) secret rather than created by hand.
    pub token_files: Vec<TokenFile>,
    /// How long a verified token is trusted before it is looked up again (revocation takes at most this).
    pub token_cache_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TokenFile {
    pub name: String,
    pub role: String,
    pub file: PathBuf,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./endoreg-data"),
            database_url: None,
            database: DatabaseConfig::default(),
            http: HttpConfig::default(),
            auth: AuthConfig::default(),
            storage: StorageConfig::default(),
            upload: UploadConfig::default(),
            jobs: JobsConfig::default(),
            web: WebConfig::default(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self { max_connections: 16, acquire_timeout_secs: 10, password_file: None }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            max_body_bytes: 1024 * 1024,
            request_timeout_secs: 30,
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 15,
            max_connections_per_client: 128,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self { token_files: Vec::new(), token_cache_secs: 10 }
    }
}

impl RegistryConfig {
    /// Loads defaults, then `file`, then the environment.
    pub fn load(file: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        let cfg: Self = endoreg_common::config::load(file)?;
        cfg.check()?;
        Ok(cfg)
    }

    pub fn check(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.database_url {
            crate::db::Backend::from_url(url).map_err(|e| ConfigError::Check(e.to_string()))?;
            if url.contains("://")
                && url.split("://").nth(1).is_some_and(|rest| rest.split('@').next().is_some_and(|u| u.contains(':') && rest.contains('@')))
            {
                return Err(ConfigError::Check(
                    "database_url contains a password; put it in a file and set database.password_file instead".into(),
                ));
            }
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError::Check("database.max_connections must be at least 1".into()));
        }
        if self.jobs.max_attempts < 1 || self.jobs.backoff_secs < 0 || self.jobs.max_lease_secs < 10 {
            return Err(ConfigError::Check("jobs: max_attempts >= 1, backoff_secs >= 0, max_lease_secs >= 10".into()));
        }
        if !self.upload.raw_recipients.is_empty() {
            Recipients::parse(&self.upload.raw_recipients).map_err(|e| ConfigError::Check(format!("upload.raw_recipients: {e}")))?;
        }
        if self.http.max_body_bytes < 1024 {
            return Err(ConfigError::Check("http.max_body_bytes must be at least 1024".into()));
        }
        if self.http.header_read_timeout_secs == 0 || self.http.body_read_timeout_secs == 0 || self.http.max_connections_per_client == 0 {
            return Err(ConfigError::Check(
                "http.header_read_timeout_secs, http.body_read_timeout_secs and http.max_connections_per_client must be at least 1".into(),
            ));
        }
        self.web.check()?;
        for t in &self.auth.token_files {
            t.role
                .parse::<endoreg_common::access::Role>()
                .map_err(|e| ConfigError::Check(format!("auth.token_files `{}`: {e}", t.name)))?;
        }
        Ok(())
    }

    /// The media store.
    pub fn open_storage(&self) -> Result<Store, ConfigError> {
        Store::open(&self.storage, &self.data_dir).map_err(|e| ConfigError::Check(e.to_string()))
    }

    /// The recipients raw uploads are encrypted to: the configured ones, or the local key pair.
    pub fn raw_recipients(&self) -> Result<Recipients, ConfigError> {
        let result = if self.upload.raw_recipients.is_empty() {
            endoreg_common::storage::local_key(&self.local_key_file()).map(|(r, _)| r)
        } else {
            Recipients::parse(&self.upload.raw_recipients)
        };
        result.map_err(|e| ConfigError::Check(format!("upload.raw_recipients: {e}")))
    }

    /// The key pair of the embedded default (see `upload.raw_recipients`).
    pub fn local_key_file(&self) -> PathBuf {
        self.data_dir.join("keys").join("raw.agekey")
    }

    /// The database URL in effect: the configured one, or SQLite in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("registry.db").display()),
        }
    }

    pub fn connect_options(&self) -> Result<ConnectOptions, ConfigError> {
        let password = match &self.database.password_file {
            Some(path) => Some(Secret::read(path).map_err(|e| ConfigError::Check(e.to_string()))?),
            None => None,
        };
        Ok(ConnectOptions {
            max_connections: self.database.max_connections,
            acquire_timeout: std::time::Duration::from_secs(self.database.acquire_timeout_secs),
            password,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_sqlite_in_the_data_directory() {
        let c = RegistryConfig::default();
        assert_eq!(c.database_url(), "sqlite://./endoreg-data/registry.db");
        assert!(c.http.listen.starts_with("127.0.0.1:"));
    }

    #[test]
    fn a_password_in_the_database_url_is_refused() {
        let c = RegistryConfig { database_url: Some("postgres://u:pw@h/db".into()), ..Default::default() };
        let err = c.check().unwrap_err().to_string();
        assert!(err.contains("password_file") && !err.contains("pw@"), "{err}");
        let ok = RegistryConfig { database_url: Some("postgres://u@h/db".into()), ..Default::default() };
        ok.check().unwrap();
    }

    #[test]
    fn the_web_path_is_checked() {
        for ok in ["/", "/endoreg", "/endoreg/", "/a/b-c_d.e/"] {
            let c = RegistryConfig { web: WebConfig { path: ok.into(), ..Default::default() }, ..Default::default() };
            c.check().unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in ["endoreg", "/api", "/api/web", "/healthz", "/a/../b", "/a//b", "/a b", "/a?x"] {
            let c = RegistryConfig { web: WebConfig { path: bad.into(), ..Default::default() }, ..Default::default() };
            let err = c.check().unwrap_err().to_string();
            assert!(err.contains("web.path"), "{bad}: {err}");
        }
        let c = RegistryConfig { web: WebConfig { session_idle_minutes: 0, ..Default::default() }, ..Default::default() };
        assert!(c.check().unwrap_err().to_string().contains("session_idle_minutes"));
        assert_eq!(WebConfig { path: "/endoreg".into(), ..Default::default() }.base(), "/endoreg/");
    }

    #[test]
    fn environment_overrides_reach_nested_keys() {
        let env = vec![
            ("ENDOREG_DATA_DIR".to_string(), "/var/lib/endoreg".to_string()),
            ("ENDOREG_HTTP__LISTEN".to_string(), "[::1]:9000".to_string()),
            ("ENDOREG_DATABASE__MAX_CONNECTIONS".to_string(), "4".to_string()),
        ];
        let c: RegistryConfig = endoreg_common::config::load_from(None, env).unwrap();
        assert_eq!(c.database_url(), "sqlite:///var/lib/endoreg/registry.db");
        assert_eq!(c.http.listen, "[::1]:9000");
        assert_eq!(c.database.max_connections, 4);
    }
}
