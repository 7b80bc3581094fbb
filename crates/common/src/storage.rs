//! Object storage for media: one abstraction over the `object_store` crate, the local filesystem by
//! default and any S3-compatible service (MinIO, Ceph, AWS) by configuration.
//!
//! - **Content-addressed keys**: an object's key is derived from the SHA-256 of its plaintext
//!   ([`keys`]), so the same upload stored twice is one object.
//! - **Atomic writes**: an object is written under `staging/` and moved to its key only when complete; a
//!   failed or aborted write leaves nothing under the content key (and removes its staging object).
//! - **Encryption**: raw uploads are encrypted with age, streaming, to the configured recipients
//!   (`age1…` or `ssh-ed25519 …` public keys); only a holder of an identity file can read them back.
//!   Anonymised products are stored in the clear.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use futures::{AsyncWriteExt as _, TryStreamExt};
use object_store::buffered::BufWriter;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt as _;
use tokio_util::compat::{FuturesAsyncReadCompatExt, TokioAsyncWriteCompatExt};

use crate::secret::Secret;

/// Where objects live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "backend", rename_all = "snake_case", deny_unknown_fields)]
pub enum StorageConfig {
    /// A directory; relative to the service's data directory unless absolute (default `storage`).
    Local { root: PathBuf },
    /// An S3-compatible bucket. Credentials come from files (systemd credentials).
    S3 {
        bucket: String,
        /// e.g. `http://127.0.0.1:9000` for MinIO; unset for AWS.
        endpoint: Option<String>,
        #[serde(default = "default_region")]
        region: String,
        /// Plain HTTP to the endpoint (a local MinIO); never for remote services.
        #[serde(default)]
        allow_http: bool,
        access_key_id_file: PathBuf,
        secret_access_key_file: PathBuf,
    },
}

fn default_region() -> String {
    "us-east-1".into()
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig::Local { root: PathBuf::from("storage") }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage configuration: {0}")]
    Config(String),
    /// A key that is not a plain relative path inside the store.
    #[error("invalid object key `{key}`: {reason}")]
    InvalidKey { key: String, reason: String },
    #[error("the upload exceeds the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("object {key} not found")]
    NotFound { key: String },
    #[error("cannot decrypt {key}: {reason}")]
    Decrypt { key: String, reason: String },
    #[error("encryption: {0}")]
    Encrypt(String),
    #[error("storage: {0}")]
    Store(#[from] object_store::Error),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> StorageError {
    let context = context.into();
    move |source| StorageError::Io { context, source }
}

/// Content-addressed keys, by kind of object. The registry and the workers make every key with these
/// functions; a key that arrives from outside (an API request) is accepted only in exactly one of these
/// forms (see [`keys::is_sha256`], [`keys::is_anonymised_video`]).
pub mod keys {
    /// Whether `s` is a SHA-256 in lowercase hex: the content address keys are made of.
    pub fn is_sha256(s: &str) -> bool {
        s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }
    /// Whether `key` is an anonymised video's key, `anonymised/<first two of sha>/<sha>.mp4`, of any content.
    pub fn is_anonymised_video(key: &str) -> bool {
        key.strip_prefix("anonymised/")
            .and_then(|rest| rest.strip_suffix(".mp4"))
            .and_then(|rest| rest.split_once('/'))
            .is_some_and(|(dir, sha)| is_sha256(sha) && dir == &sha[..2])
    }
    /// An encrypted raw upload.
    pub fn raw(sha256: &str) -> String {
        format!("raw/{}/{sha256}.age", &sha256[..2.min(sha256.len())])
    }
    /// An anonymised video.
    pub fn anonymised_video(sha256: &str) -> String {
        format!("anonymised/{}/{sha256}.mp4", &sha256[..2.min(sha256.len())])
    }
    /// The folder of a video's extracted frames from one source (`raw`, `anonymised`).
    pub fn frames(video_sha256: &str, source: &str) -> String {
        format!("frames/{video_sha256}/{source}")
    }
    /// A video's per-frame probabilities from one model version (the registry's id of the version).
    pub fn predictions(video_sha256: &str, model_version_id: i64) -> String {
        format!("predictions/{}/{video_sha256}/{model_version_id}.eprb", &video_sha256[..2.min(video_sha256.len())])
    }
    /// One frame in that folder.
    pub fn frame(prefix: &str, number: u64, extension: &str) -> String {
        format!("{prefix}/{number:06}.{extension}")
    }
}

/// age recipients raw uploads are encrypted to.
#[derive(Clone)]
pub struct Recipients(Arc<Vec<Box<dyn age::Recipient + Send + Sync>>>);

impl Recipients {
    /// Parses `age1…` (X25519) and `ssh-ed25519 …` / `ssh-rsa …` public keys.
    pub fn parse(keys: &[String]) -> Result<Self, StorageError> {
        if keys.is_empty() {
            return Err(StorageError::Config("no age recipients configured for raw uploads".into()));
        }
        let mut out: Vec<Box<dyn age::Recipient + Send + Sync>> = Vec::new();
        for k in keys {
            let k = k.trim();
            if k.starts_with("age1") {
                let r = age::x25519::Recipient::from_str(k).map_err(|e| StorageError::Config(format!("recipient `{k}`: {e}")))?;
                out.push(Box::new(r));
            } else if k.starts_with("ssh-") {
                let r = age::ssh::Recipient::from_str(k).map_err(|e| StorageError::Config(format!("recipient `{k}`: {e:?}")))?;
                out.push(Box::new(r));
            } else {
                return Err(StorageError::Config(format!("recipient `{k}` is neither an age1… nor an ssh- public key")));
            }
        }
        Ok(Recipients(Arc::new(out)))
    }

    fn encryptor(&self) -> Result<age::Encryptor, StorageError> {
        age::Encryptor::with_recipients(self.0.iter().map(|r| r.as_ref() as &dyn age::Recipient))
            .map_err(|e| StorageError::Encrypt(e.to_string()))
    }
}

/// age identities that can decrypt raw uploads, read from a file (an age identity file or an SSH private
/// key).
#[derive(Clone)]
pub struct Identities(Arc<Vec<Box<dyn age::Identity + Send + Sync>>>);

impl Identities {
    pub fn read(path: &Path) -> Result<Self, StorageError> {
        let secret = Secret::read(path).map_err(|e| StorageError::Config(e.to_string()))?;
        let text = secret.expose();
        if text.contains("AGE-SECRET-KEY-") {
            let file = age::IdentityFile::from_buffer(text.as_bytes())
                .map_err(|e| StorageError::Config(format!("identity file {}: {e}", path.display())))?;
            let ids = file.into_identities().map_err(|e| StorageError::Config(format!("identity file {}: {e}", path.display())))?;
            return Ok(Identities(Arc::new(ids.into_iter().map(|i| i as Box<dyn age::Identity + Send + Sync>).collect())));
        }
        match age::ssh::Identity::from_buffer(text.as_bytes(), Some(path.display().to_string())) {
            Ok(id @ age::ssh::Identity::Unencrypted(_)) => Ok(Identities(Arc::new(vec![Box::new(id)]))),
            Ok(_) => Err(StorageError::Config(format!(
                "{}: passphrase-protected or unsupported SSH keys cannot be used unattended",
                path.display()
            ))),
            Err(e) => Err(StorageError::Config(format!("{} is neither an age identity file nor an SSH private key: {e}", path.display()))),
        }
    }
}

/// The key pair kept at `path` (an age identity file), created with mode 0600 when missing: the embedded
/// default, where the registry and the media worker share a machine. Returns its recipient and identity.
pub fn local_key(path: &Path) -> Result<(Recipients, Identities), StorageError> {
    if !path.exists() {
        use age::secrecy::ExposeSecret;
        let dir = path.parent().unwrap_or(Path::new("."));
        crate::process::create_private_dir(dir).map_err(io(format!("cannot create {}", dir.display())))?;
        let identity = age::x25519::Identity::generate();
        let text = format!(
            "# endoreg: key of raw uploads on this machine; without it they cannot be read.\n# public key: {}\n{}\n",
            identity.to_public(),
            identity.to_string().expose_secret()
        );
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        match opts.open(path) {
            Ok(mut f) => std::io::Write::write_all(&mut f, text.as_bytes()).map_err(io(format!("cannot write {}", path.display())))?,
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(format!("cannot create {}", path.display()))(e)),
        }
    }
    let identities = Identities::read(path)?;
    let text = Secret::read(path).map_err(|e| StorageError::Config(e.to_string()))?;
    let public = text
        .expose()
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .ok_or_else(|| StorageError::Config(format!("{} lacks its `# public key:` line", path.display())))?
        .trim()
        .to_owned();
    Ok((Recipients::parse(&[public])?, identities))
}

/// An open object store.
#[derive(Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    describe: String,
    /// The local backend's root, resolved (symbolic links followed): no key may lead outside it.
    local_root: Option<PathBuf>,
}

/// Keys are at most this long (S3 allows 1024 bytes).
const MAX_KEY_BYTES: usize = 1024;

/// Checks that `key` is a plain relative path: segments of ASCII letters, digits, `-`, `_` and `.`
/// separated by single `/`, none of them `.` or `..`. Every key the registry and the workers make has this
/// form; anything else (`/etc/shadow`, `../../etc/passwd`, `raw/%2e%2e/x`) is refused before it reaches a
/// backend, whatever that backend would make of it.
pub fn check_key(key: &str) -> Result<(), StorageError> {
    let refuse = |reason: &str| Err(StorageError::InvalidKey { key: key.chars().take(200).collect(), reason: reason.to_owned() });
    if key.is_empty() {
        return refuse("it is empty");
    }
    if key.len() > MAX_KEY_BYTES {
        return refuse("it is longer than 1024 bytes");
    }
    if key.starts_with('/') {
        return refuse("it is absolute; keys are relative to the store");
    }
    for segment in key.split('/') {
        if segment.is_empty() {
            return refuse("it has an empty segment (`//` or a trailing `/`)");
        }
        if segment == "." || segment == ".." {
            return refuse("it has a `.` or `..` segment");
        }
        if !segment.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
            return refuse("segments may hold only ASCII letters, digits, `-`, `_` and `.`");
        }
    }
    Ok(())
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.describe)
    }
}

/// What an ingest stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingested {
    /// SHA-256 of the plaintext, lowercase hex.
    pub sha256: String,
    /// Plaintext size in bytes.
    pub size: u64,
    pub key: String,
    /// The content was already stored (this upload was a duplicate).
    pub existed: bool,
}

enum Sink {
    Plain(Box<BufWriter>),
    Encrypted(Box<age::stream::StreamWriter<tokio_util::compat::Compat<BufWriter>>>),
}

/// A streaming write in progress: plaintext in, hashed, optionally encrypted, staged.
pub struct Ingest {
    store: Store,
    staging: ObjectPath,
    sink: Option<Sink>,
    hash: Sha256,
    size: u64,
    limit: u64,
}

impl Store {
    /// Opens the configured store; a relative local root is taken relative to `base`.
    pub fn open(cfg: &StorageConfig, base: &Path) -> Result<Self, StorageError> {
        match cfg {
            StorageConfig::Local { root } => {
                let root = if root.is_absolute() { root.clone() } else { base.join(root) };
                crate::process::create_private_dir(&root).map_err(io(format!("cannot create storage directory {}", root.display())))?;
                let fs = object_store::local::LocalFileSystem::new_with_prefix(&root)?;
                let resolved = root.canonicalize().map_err(io(format!("cannot resolve storage directory {}", root.display())))?;
                Ok(Store { inner: Arc::new(fs), describe: format!("local {}", root.display()), local_root: Some(resolved) })
            }
            StorageConfig::S3 { bucket, endpoint, region, allow_http, access_key_id_file, secret_access_key_file } => {
                let key_id = Secret::read(access_key_id_file).map_err(|e| StorageError::Config(e.to_string()))?;
                let secret = Secret::read(secret_access_key_file).map_err(|e| StorageError::Config(e.to_string()))?;
                let mut b = object_store::aws::AmazonS3Builder::new()
                    .with_bucket_name(bucket)
                    .with_region(region)
                    .with_access_key_id(key_id.expose())
                    .with_secret_access_key(secret.expose())
                    .with_allow_http(*allow_http);
                if let Some(e) = endpoint {
                    b = b.with_endpoint(e).with_virtual_hosted_style_request(false);
                }
                let s3 = b.build()?;
                Ok(Store {
                    inner: Arc::new(s3),
                    describe: format!("s3 {bucket}{}", endpoint.as_ref().map(|e| format!(" at {e}")).unwrap_or_default()),
                    local_root: None,
                })
            }
        }
    }

    pub fn describe(&self) -> &str {
        &self.describe
    }

    /// The backend's path of `key`, after [`check_key`]. On the local backend the key must also stay
    /// inside the root once symbolic links below it are followed.
    fn path(&self, key: &str) -> Result<ObjectPath, StorageError> {
        check_key(key)?;
        if let Some(root) = &self.local_root {
            // The deepest part of the path that exists decides where the rest will be written.
            let mut existing = root.join(key);
            while !existing.exists() {
                if !existing.pop() {
                    break;
                }
            }
            let resolved = existing.canonicalize().map_err(io(format!("cannot resolve {}", existing.display())))?;
            if !resolved.starts_with(root) {
                return Err(StorageError::InvalidKey {
                    key: key.to_owned(),
                    reason: format!("it leads outside the storage directory (to {})", resolved.display()),
                });
            }
        }
        ObjectPath::parse(key).map_err(|e| StorageError::InvalidKey { key: key.to_owned(), reason: e.to_string() })
    }

    /// Starts a streaming write of at most `limit` bytes, encrypted to `recipients` if given.
    pub async fn ingest(&self, recipients: Option<&Recipients>, limit: u64) -> Result<Ingest, StorageError> {
        let staging = self.path(&format!("staging/{:032x}", rand::random::<u128>()))?;
        let writer = BufWriter::with_capacity(self.inner.clone(), staging.clone(), 8 * 1024 * 1024);
        let sink = match recipients {
            None => Sink::Plain(Box::new(writer)),
            Some(r) => {
                let w = r.encryptor()?.wrap_async_output(writer.compat_write()).await.map_err(io("starting encryption"))?;
                Sink::Encrypted(Box::new(w))
            }
        };
        Ok(Ingest { store: self.clone(), staging, sink: Some(sink), hash: Sha256::new(), size: 0, limit })
    }

    /// Stores a local file under `key` (in the clear), atomically.
    pub async fn put_file(&self, file: &Path, key: &str) -> Result<u64, StorageError> {
        let mut ingest = self.ingest(None, u64::MAX).await?;
        let mut f = tokio::fs::File::open(file).await.map_err(io(format!("cannot open {}", file.display())))?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = tokio::io::AsyncReadExt::read(&mut f, &mut buf).await.map_err(io(format!("cannot read {}", file.display())))?;
            if n == 0 {
                break;
            }
            if let Err(e) = ingest.write(&buf[..n]).await {
                ingest.abort().await;
                return Err(e);
            }
        }
        let done = ingest.finish(|_| key.to_owned()).await?;
        Ok(done.size)
    }

    /// Stores a small object (a frame) under `key`; a single PUT is atomic.
    pub async fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> Result<(), StorageError> {
        self.inner.put(&self.path(key)?, PutPayload::from(bytes)).await?;
        Ok(())
    }

    pub async fn exists(&self, key: &str) -> Result<bool, StorageError> {
        match self.inner.head(&self.path(key)?).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn get_bytes(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        match self.inner.get(&self.path(key)?).await {
            Ok(r) => Ok(r.bytes().await?.to_vec()),
            Err(object_store::Error::NotFound { .. }) => Err(StorageError::NotFound { key: key.to_owned() }),
            Err(e) => Err(e.into()),
        }
    }

    /// The size in bytes of the object at `key`.
    pub async fn size(&self, key: &str) -> Result<u64, StorageError> {
        match self.inner.head(&self.path(key)?).await {
            Ok(meta) => Ok(meta.size),
            Err(object_store::Error::NotFound { .. }) => Err(StorageError::NotFound { key: key.to_owned() }),
            Err(e) => Err(e.into()),
        }
    }

    /// Bytes `range` of the object at `key` (in the clear, as stored), streamed: what a ranged HTTP
    /// response sends without holding a video in memory. `range` must lie within the object.
    pub async fn read_range(
        &self,
        key: &str,
        range: std::ops::Range<u64>,
    ) -> Result<futures::stream::BoxStream<'static, Result<bytes::Bytes, StorageError>>, StorageError> {
        let options = object_store::GetOptions::new().with_range(Some(range));
        match self.inner.get_opts(&self.path(key)?, options).await {
            Ok(r) => Ok(Box::pin(r.into_stream().map_err(StorageError::from))),
            Err(object_store::Error::NotFound { .. }) => Err(StorageError::NotFound { key: key.to_owned() }),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match self.inner.delete(&self.path(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes every object under `prefix` (a failed frame extraction's partial output).
    pub async fn delete_prefix(&self, prefix: &str) -> Result<usize, StorageError> {
        let p = self.path(prefix)?;
        let objects: Vec<_> = self.inner.list(Some(&p)).try_collect().await?;
        let n = objects.len();
        for o in objects {
            match self.inner.delete(&o.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(n)
    }

    /// Keys under `prefix`, sorted.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let p = self.path(prefix)?;
        let mut keys: Vec<String> = self.inner.list(Some(&p)).map_ok(|m| m.location.to_string()).try_collect().await?;
        keys.sort();
        Ok(keys)
    }

    /// Copies the object at `key` into the local file `dest`, decrypting with `identities` if given. The
    /// file appears only when complete.
    pub async fn download(&self, key: &str, dest: &Path, identities: Option<&Identities>) -> Result<u64, StorageError> {
        let result = match self.inner.get(&self.path(key)?).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Err(StorageError::NotFound { key: key.to_owned() }),
            Err(e) => return Err(e.into()),
        };
        let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let tmp = tempfile::NamedTempFile::new_in(dir).map_err(io(format!("cannot create a file in {}", dir.display())))?;
        let (std_file, tmp_path) = tmp.into_parts();
        let mut file = tokio::fs::File::from_std(std_file);
        let stream = result.into_stream().map_err(std::io::Error::other);
        let reader = tokio_util::io::StreamReader::new(stream);
        let written = match identities {
            None => {
                let mut reader = reader;
                tokio::io::copy(&mut reader, &mut file).await.map_err(io(format!("cannot write {}", dest.display())))?
            }
            Some(ids) => {
                let decrypt_err = |reason: String| StorageError::Decrypt { key: key.to_owned(), reason };
                let decryptor = age::Decryptor::new_async(tokio_util::compat::TokioAsyncReadCompatExt::compat(reader))
                    .await
                    .map_err(|e| decrypt_err(e.to_string()))?;
                let plain = decryptor
                    .decrypt_async(ids.0.iter().map(|i| i.as_ref() as &dyn age::Identity))
                    .map_err(|e| decrypt_err(e.to_string()))?;
                let mut plain = plain.compat();
                tokio::io::copy(&mut plain, &mut file).await.map_err(|e| decrypt_err(e.to_string()))?
            }
        };
        file.flush().await.map_err(io(format!("cannot write {}", dest.display())))?;
        file.sync_all().await.map_err(io(format!("cannot write {}", dest.display())))?;
        drop(file);
        tmp_path
            .persist(dest)
            .map_err(|e| StorageError::Io { context: format!("cannot move into {}", dest.display()), source: e.error })?;
        Ok(written)
    }
}

impl Ingest {
    /// Appends plaintext.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), StorageError> {
        self.size += chunk.len() as u64;
        if self.size > self.limit {
            return Err(StorageError::TooLarge { limit: self.limit });
        }
        self.hash.update(chunk);
        match self.sink.as_mut() {
            Some(Sink::Plain(w)) => w.write_all(chunk).await.map_err(io("writing to storage")),
            Some(Sink::Encrypted(w)) => w.write_all(chunk).await.map_err(io("writing to storage")),
            None => Err(StorageError::Encrypt("write after the ingest ended".into())),
        }
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Completes the write and moves it to `key_for(sha256)`. If that key already holds the content, the
    /// staged copy is dropped and `existed` is set.
    pub async fn finish(mut self, key_for: impl FnOnce(&str) -> String) -> Result<Ingested, StorageError> {
        let closed = match self.sink.take() {
            Some(Sink::Plain(mut w)) => w.shutdown().await.map_err(io("completing the upload")),
            Some(Sink::Encrypted(mut w)) => w.close().await.map_err(io("completing the encrypted upload")),
            None => Ok(()),
        };
        if let Err(e) = closed {
            let _ = self.store.inner.delete(&self.staging).await;
            return Err(e);
        }
        let sha256: String = self.hash.finalize_reset().iter().map(|b| format!("{b:02x}")).collect();
        let key = key_for(&sha256);
        let target = self.store.path(&key)?;
        let existed = self.store.inner.head(&target).await.is_ok();
        let moved = if existed {
            Ok(())
        } else {
            // Content-addressed: a concurrent writer of the same key writes the same bytes.
            self.store.inner.rename(&self.staging, &target).await
        };
        let _ = self.store.inner.delete(&self.staging).await;
        moved?;
        Ok(Ingested { sha256, size: self.size, key, existed })
    }

    /// Abandons the write: nothing stays in storage.
    pub async fn abort(mut self) {
        if let Some(Sink::Plain(mut w)) = self.sink.take() {
            let _ = w.abort().await;
        }
        // An encrypted sink is dropped: the buffered writer abandons its multipart upload, and the local
        // store removes the staged file on drop.
        let _ = self.store.inner.delete(&self.staging).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keypair() -> (String, String) {
        let id = age::x25519::Identity::generate();
        let public = id.to_public().to_string();
        use age::secrecy::ExposeSecret;
        (public, id.to_string().expose_secret().to_owned())
    }

    #[tokio::test]
    async fn an_encrypted_ingest_round_trips_and_is_content_addressed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StorageConfig::default(), dir.path()).unwrap();
        let (public, secret) = keypair();
        let recipients = Recipients::parse(&[public]).unwrap();
        let id_file = dir.path().join("identity.txt");
        std::fs::write(&id_file, format!("# test only\n{secret}\n")).unwrap();
        let identities = Identities::read(&id_file).unwrap();

        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut ingest = store.ingest(Some(&recipients), 10_000_000).await.unwrap();
        for chunk in data.chunks(65_537) {
            ingest.write(chunk).await.unwrap();
        }
        let done = ingest.finish(keys::raw).await.unwrap();
        assert_eq!(done.size, data.len() as u64);
        assert_eq!(done.sha256, format!("{:x}", Sha256::digest(&data)));
        assert!(!done.existed);
        // Stored encrypted: the object is not the plaintext.
        let stored = store.get_bytes(&done.key).await.unwrap();
        assert!(stored.starts_with(b"age-encryption.org/v1"));
        assert!(!stored.windows(64).any(|w| w == &data[1000..1064]));
        // Read back with the identity.
        let out = dir.path().join("out.bin");
        store.download(&done.key, &out, Some(&identities)).await.unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), data);
        // The same content again is recognised and not stored twice; no staging leftovers.
        let mut again = store.ingest(Some(&recipients), 10_000_000).await.unwrap();
        again.write(&data).await.unwrap();
        let second = again.finish(keys::raw).await.unwrap();
        assert!(second.existed);
        assert_eq!(store.list("staging").await.unwrap(), Vec::<String>::new());
        assert_eq!(store.list("raw").await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_range_of_an_object_is_read_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StorageConfig::default(), dir.path()).unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
        store.put_bytes("anonymised/aa/x.mp4", data.clone()).await.unwrap();
        assert_eq!(store.size("anonymised/aa/x.mp4").await.unwrap(), 100_000);
        for range in [0..1, 0..100_000, 8191..8193, 99_999..100_000, 12_345..67_890] {
            let parts: Vec<bytes::Bytes> =
                store.read_range("anonymised/aa/x.mp4", range.clone()).await.unwrap().try_collect().await.unwrap();
            let got: Vec<u8> = parts.concat();
            assert_eq!(got, data[range.start as usize..range.end as usize], "{range:?}");
        }
        assert!(matches!(store.size("anonymised/aa/none.mp4").await, Err(StorageError::NotFound { .. })));
        assert!(matches!(store.read_range("anonymised/aa/none.mp4", 0..1).await, Err(StorageError::NotFound { .. })));
    }

    #[tokio::test]
    async fn an_oversized_or_aborted_ingest_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StorageConfig::default(), dir.path()).unwrap();
        let mut ingest = store.ingest(None, 100).await.unwrap();
        ingest.write(&[1u8; 60]).await.unwrap();
        let err = ingest.write(&[1u8; 60]).await.unwrap_err();
        assert!(err.to_string().contains("limit of 100 bytes"), "{err}");
        ingest.abort().await;
        let mut big = store.ingest(None, u64::MAX).await.unwrap();
        big.write(&vec![7u8; 20 * 1024 * 1024]).await.unwrap();
        big.abort().await;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let leftovers: Vec<_> = walk(dir.path());
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            if e.path().is_dir() {
                out.extend(walk(&e.path()));
            } else {
                out.push(e.path());
            }
        }
        out
    }

    #[tokio::test]
    async fn decrypting_with_the_wrong_identity_fails_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StorageConfig::default(), dir.path()).unwrap();
        let (public, _) = keypair();
        let (_, other_secret) = keypair();
        let mut ingest = store.ingest(Some(&Recipients::parse(&[public]).unwrap()), 1000).await.unwrap();
        ingest.write(b"secret video").await.unwrap();
        let done = ingest.finish(keys::raw).await.unwrap();
        let id_file = dir.path().join("other.txt");
        std::fs::write(&id_file, other_secret).unwrap();
        let err = store.download(&done.key, &dir.path().join("x"), Some(&Identities::read(&id_file).unwrap())).await.unwrap_err();
        assert!(err.to_string().contains("cannot decrypt"), "{err}");
        assert!(!dir.path().join("x").exists());
    }

    #[tokio::test]
    async fn keys_outside_the_store_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        let store = Store::open(&StorageConfig::Local { root: root.clone() }, dir.path()).unwrap();
        for key in ["/etc/shadow", "../../etc/passwd", "raw/../../x", "raw//x", "raw/x/", "raw/%2e%2e/x", "raw/a b", "", "./x"] {
            let err = store.put_bytes(key, b"x".to_vec()).await.unwrap_err();
            assert!(matches!(err, StorageError::InvalidKey { .. }), "{key}: {err}");
            assert!(store.get_bytes(key).await.is_err(), "{key}");
            assert!(store.exists(key).await.is_err(), "{key}");
            assert!(store.delete(key).await.is_err(), "{key}");
            assert!(store.download(key, &dir.path().join("out"), None).await.is_err(), "{key}");
        }
        // A symbolic link below the root does not lead out of it either.
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&outside, root.join("frames")).unwrap();
            let err = store.put_bytes("frames/x/000001.jpg", b"x".to_vec()).await.unwrap_err();
            assert!(err.to_string().contains("leads outside the storage directory"), "{err}");
        }
        assert!(std::fs::read_dir(&outside).unwrap().next().is_none(), "nothing is written outside the root");
        assert!(!dir.path().join("etc").exists() && !root.join("etc").exists());
        // Keys as the registry and the workers make them pass.
        let sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        for key in
            [keys::raw(sha), keys::anonymised_video(sha), keys::frame(&keys::frames(sha, "raw"), 7, "jpg"), keys::predictions(sha, 3)]
        {
            check_key(&key).unwrap();
        }
        store.put_bytes(&keys::raw(sha), b"x".to_vec()).await.unwrap();
        assert!(store.exists(&keys::raw(sha)).await.unwrap());
    }

    #[test]
    fn anonymised_video_keys_are_recognised_exactly() {
        let sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        assert!(keys::is_anonymised_video(&keys::anonymised_video(sha)));
        for bad in
            [keys::raw(sha), format!("anonymised/00/{sha}.mp4"), format!("anonymised/9f/{}.mp4", &sha[1..]), "../../etc/passwd".into()]
        {
            assert!(!keys::is_anonymised_video(&bad), "{bad}");
        }
    }

    #[test]
    fn bad_recipients_and_identities_are_named() {
        assert!(Recipients::parse(&[]).is_err());
        let err = Recipients::parse(&["hello".into()]).err().unwrap().to_string();
        assert!(err.contains("hello"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("id");
        std::fs::write(&f, "not a key").unwrap();
        let err = Identities::read(&f).err().unwrap().to_string();
        assert!(err.contains("neither an age identity file nor an SSH private key"), "{err}");
    }
}
