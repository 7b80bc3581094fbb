//! Layered configuration: a service's typed config struct starts from its `Default`, is overlaid by an
//! optional TOML file, then by environment variables.
//!
//! Environment variables are named `ENDOREG_<KEY>`, with `__` separating nested tables:
//! `ENDOREG_DATA_DIR` sets `data_dir`, `ENDOREG_HTTP__LISTEN` sets `http.listen`. A value is read as the
//! type the key has in the defaults (so `ENDOREG_HTTP__MAX_BODY_BYTES=1048576` becomes an integer while a
//! string-typed key keeps `"0123"` as text); keys without a default value are read as a TOML literal when
//! they parse as one and as text otherwise.
//!
//! Unknown keys in a file are an error: a typo must not silently fall back to a default. The environment
//! is shared by every endoreg program on a host (the registry, the media worker, the CLI), so an
//! `ENDOREG_*` variable that names a key this program does not have is left alone.

use std::path::{Path, PathBuf};

use serde::{Serialize, de::DeserializeOwned};
use toml::{Table, Value};

/// The prefix of every environment variable the services read.
pub const ENV_PREFIX: &str = "ENDOREG_";

/// Environment variables that are not configuration keys (they select the file, or are read elsewhere).
const RESERVED_ENV: &[&str] = &["ENDOREG_CONFIG", "ENDOREG_LOG", "ENDOREG_TOKEN", "ENDOREG_URL"];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path} is not valid TOML: {source}")]
    Parse { path: PathBuf, source: toml::de::Error },
    #[error("environment variable {var}: {reason}")]
    Env { var: String, reason: String },
    #[error("invalid configuration ({origin}): {source}")]
    Invalid { origin: String, source: toml::de::Error },
    #[error("invalid configuration: {0}")]
    Check(String),
}

/// Loads `T` from its defaults, the TOML file at `file` (if any) and the process environment.
pub fn load<T>(file: Option<&Path>) -> Result<T, ConfigError>
where
    T: Serialize + DeserializeOwned + Default,
{
    load_from(file, std::env::vars())
}

/// Like [`load`], with the environment given explicitly (tests use this instead of mutating the process
/// environment).
pub fn load_from<T, I>(file: Option<&Path>, env: I) -> Result<T, ConfigError>
where
    T: Serialize + DeserializeOwned + Default,
    I: IntoIterator<Item = (String, String)>,
{
    let defaults = Value::try_from(T::default()).map_err(|e| ConfigError::Check(format!("defaults do not serialise: {e}")))?;
    let Value::Table(mut merged) = defaults.clone() else {
        return Err(ConfigError::Check("a config struct must serialise to a table".into()));
    };
    let mut origin = vec!["defaults".to_string()];

    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        let overlay: Table = toml::from_str(&text).map_err(|source| ConfigError::Parse { path: path.to_owned(), source })?;
        merge(&mut merged, overlay);
        origin.push(path.display().to_string());
    }

    let mut env: Vec<(String, String)> =
        env.into_iter().filter(|(k, _)| k.starts_with(ENV_PREFIX) && !RESERVED_ENV.contains(&k.as_str())).collect();
    // A variant key first (`ENDOREG_STORAGE__BACKEND`): choosing another variant clears its table, and the
    // new variant's keys must land after that, whatever their names.
    env.sort_by_key(|(k, _)| (!k.to_ascii_lowercase().ends_with(&format!("__{VARIANT_KEY}")), k.clone()));
    let Value::Table(default_table) = &defaults else { unreachable!("checked above") };
    let mut from_env: Vec<(String, Vec<String>)> = Vec::new();
    for (var, raw) in env {
        let path: Vec<String> = var[ENV_PREFIX.len()..].split("__").map(str::to_ascii_lowercase).collect();
        if path.iter().any(String::is_empty) {
            continue;
        }
        let value = typed_env_value(default_table, &path, &raw).map_err(|reason| ConfigError::Env { var: var.clone(), reason })?;
        if set_path(&mut merged, &path, value).is_ok() {
            from_env.push((var, path));
        }
    }

    // Drop environment keys this program does not know (another endoreg program's), one at a time, as the
    // deserialiser names them; an unknown key from the file stays an error.
    loop {
        match T::deserialize(Value::Table(merged.clone())) {
            Ok(cfg) => return Ok(cfg),
            Err(source) => {
                let msg = source.to_string();
                // The deserialiser names the first unknown segment: `anonymise` for ENDOREG_ANONYMISE__CRF.
                let unknown = from_env
                    .iter()
                    .enumerate()
                    .find_map(|(i, (_, path))| path.iter().position(|k| msg.contains(&format!("unknown field `{k}`"))).map(|j| (i, j)));
                match unknown {
                    Some((i, j)) => {
                        let (_, path) = from_env.remove(i);
                        remove_path(&mut merged, &path[..=j]);
                    }
                    None => {
                        origin.extend(from_env.into_iter().map(|(v, _)| v));
                        return Err(ConfigError::Invalid { origin: origin.join(" + "), source });
                    }
                }
            }
        }
    }
}

fn remove_path(table: &mut Table, path: &[String]) {
    let Some((last, parents)) = path.split_last() else { return };
    let mut cur = table;
    for p in parents {
        match cur.get_mut(p).and_then(Value::as_table_mut) {
            Some(t) => cur = t,
            None => return,
        }
    }
    cur.remove(last);
}

/// The key that names the variant of an internally tagged enum (`[storage] backend = "s3"`). A table
/// whose variant changes is replaced, not merged: the other variant's keys (the local backend's `root`
/// from the defaults) do not belong to the new one and would be refused as unknown.
const VARIANT_KEY: &str = "backend";

fn changes_variant(base: &Table, overlay: &Table) -> bool {
    matches!((base.get(VARIANT_KEY), overlay.get(VARIANT_KEY)), (Some(b), Some(o)) if b != o)
}

fn merge(base: &mut Table, overlay: Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(b)), Value::Table(o)) if !changes_variant(b, &o) => merge(b, o),
            (_, v) => {
                base.insert(key, v);
            }
        }
    }
}

fn set_path(table: &mut Table, path: &[String], value: Value) -> Result<(), String> {
    let (last, parents) = path.split_last().ok_or("empty key")?;
    let mut cur = table;
    for p in parents {
        let entry = cur.entry(p.clone()).or_insert_with(|| Value::Table(Table::new()));
        cur = entry.as_table_mut().ok_or_else(|| format!("`{p}` is not a table"))?;
    }
    if last == VARIANT_KEY && cur.get(VARIANT_KEY).is_some_and(|v| *v != value) {
        // Another variant: what the table held belonged to the old one (see `changes_variant`). Variant
        // keys are applied before all others, so nothing set for the new variant is lost here.
        cur.clear();
    }
    cur.insert(last.clone(), value);
    Ok(())
}

/// Reads `raw` as the type the key has in the defaults.
fn typed_env_value(defaults: &Table, path: &[String], raw: &str) -> Result<Value, String> {
    let mut cur = Some(defaults);
    let mut template = None;
    for (i, p) in path.iter().enumerate() {
        let v = cur.and_then(|t| t.get(p));
        if i + 1 == path.len() {
            template = v;
        } else {
            cur = v.and_then(Value::as_table);
        }
    }
    let bad = |what: &str| format!("`{raw}` is not {what}");
    Ok(match template {
        Some(Value::String(_)) => Value::String(raw.to_owned()),
        Some(Value::Integer(_)) => Value::Integer(raw.trim().parse().map_err(|_| bad("an integer"))?),
        Some(Value::Float(_)) => Value::Float(raw.trim().parse().map_err(|_| bad("a number"))?),
        Some(Value::Boolean(_)) => Value::Boolean(match raw.trim() {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" => false,
            _ => return Err(bad("a boolean (true/false)")),
        }),
        Some(Value::Table(_)) => {
            return Err("names a table, not a key; use `__` to reach a key inside it".into());
        }
        Some(Value::Array(_)) | Some(Value::Datetime(_)) | None => toml::from_str::<Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| Value::String(raw.to_owned())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Http {
        listen: String,
        max_body_bytes: u64,
    }
    impl Default for Http {
        fn default() -> Self {
            Self { listen: "127.0.0.1:8080".into(), max_body_bytes: 1024 }
        }
    }

    #[derive(Debug, Serialize, Deserialize, PartialEq, Default)]
    #[serde(deny_unknown_fields, default)]
    struct Cfg {
        data_dir: String,
        database_url: Option<String>,
        http: Http,
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_apply_without_file_or_env() {
        let c: Cfg = load_from(None, env(&[])).unwrap();
        assert_eq!(c, Cfg::default());
    }

    #[test]
    fn file_then_env_override_in_that_order() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "data_dir = \"/from/file\"\n[http]\nlisten = \"0.0.0.0:1\"\n").unwrap();
        let c: Cfg = load_from(Some(&f), env(&[("ENDOREG_HTTP__LISTEN", "[::1]:9"), ("OTHER", "x")])).unwrap();
        assert_eq!(c.data_dir, "/from/file");
        assert_eq!(c.http.listen, "[::1]:9");
        assert_eq!(c.http.max_body_bytes, 1024);
    }

    #[test]
    fn env_values_take_the_type_of_the_default() {
        let c: Cfg = load_from(None, env(&[("ENDOREG_HTTP__MAX_BODY_BYTES", "4096"), ("ENDOREG_DATA_DIR", "0123")])).unwrap();
        assert_eq!(c.http.max_body_bytes, 4096);
        assert_eq!(c.data_dir, "0123");
    }

    #[test]
    fn optional_keys_are_set_from_env() {
        let c: Cfg = load_from(None, env(&[("ENDOREG_DATABASE_URL", "postgres:///endoreg?host=/run/postgresql")])).unwrap();
        assert_eq!(c.database_url.as_deref(), Some("postgres:///endoreg?host=/run/postgresql"));
    }

    #[test]
    fn a_malformed_env_value_names_the_variable() {
        let err = load_from::<Cfg, _>(None, env(&[("ENDOREG_HTTP__MAX_BODY_BYTES", "lots")])).unwrap_err();
        assert!(err.to_string().contains("ENDOREG_HTTP__MAX_BODY_BYTES"), "{err}");
    }

    #[test]
    fn an_unknown_file_key_is_rejected_and_another_programs_env_key_ignored() {
        let c: Cfg = load_from(
            None,
            env(&[
                ("ENDOREG_REGISTRY_URL", "http://x"),
                ("ENDOREG_HTTP__WORKERS", "3"),
                ("ENDOREG_ANONYMISE__CRF", "20"),
                ("ENDOREG_DATA_DIR", "/d"),
            ]),
        )
        .unwrap();
        assert_eq!(c.data_dir, "/d");
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "[http]\nlisten_addr = \"x\"\n").unwrap();
        let err = load_from::<Cfg, _>(Some(&f), env(&[])).unwrap_err();
        assert!(err.to_string().contains("listen_addr"), "{err}");
    }

    #[derive(Debug, Serialize, Deserialize, PartialEq, Default)]
    #[serde(deny_unknown_fields, default)]
    struct WithStorage {
        storage: crate::storage::StorageConfig,
    }

    fn s3_bucket(c: &WithStorage) -> Option<&str> {
        match &c.storage {
            crate::storage::StorageConfig::S3 { bucket, .. } => Some(bucket),
            crate::storage::StorageConfig::Local { .. } => None,
        }
    }

    #[test]
    fn a_file_choosing_another_storage_backend_replaces_the_default_one() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "[storage]\nbackend = \"s3\"\nbucket = \"media\"\naccess_key_id_file = \"/run/k\"\nsecret_access_key_file = \"/run/s\"\n",
        )
        .unwrap();
        let c: WithStorage = load_from(Some(&f), env(&[])).unwrap();
        assert_eq!(s3_bucket(&c), Some("media"));
        // The same backend in the file still merges with the defaults.
        std::fs::write(&f, "[storage]\nbackend = \"local\"\n").unwrap();
        let c: WithStorage = load_from(Some(&f), env(&[])).unwrap();
        assert_eq!(c.storage, crate::storage::StorageConfig::default());
    }

    #[test]
    fn the_environment_choosing_another_storage_backend_replaces_the_default_one() {
        let c: WithStorage = load_from(
            None,
            env(&[
                ("ENDOREG_STORAGE__SECRET_ACCESS_KEY_FILE", "/run/s"),
                ("ENDOREG_STORAGE__BUCKET", "media"),
                ("ENDOREG_STORAGE__BACKEND", "s3"),
                ("ENDOREG_STORAGE__ACCESS_KEY_ID_FILE", "/run/k"),
                ("ENDOREG_STORAGE__ALLOW_HTTP", "true"),
            ]),
        )
        .unwrap();
        assert_eq!(s3_bucket(&c), Some("media"));
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let err = load_from::<Cfg, _>(Some(Path::new("/nonexistent/endoreg.toml")), env(&[])).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/endoreg.toml"), "{err}");
    }
}
