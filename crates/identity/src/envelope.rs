//! Envelope encryption of identifying values (names, birth dates, report text, overlay crops).
//!
//! - Each key **generation** has a random 256-bit data key. It is stored only *wrapped*: age-encrypted to the
//!   configured recipients (age X25519 `age1…` and SSH `ssh-ed25519`/`ssh-rsa` public keys), together with its
//!   generation number, so a wrapped key cannot be passed off as another generation's. A process that may
//!   decrypt reads an age identity (or an unencrypted SSH private key) from a credential file and unwraps the
//!   generations into a [`Keyring`], which zeroes them when dropped.
//! - A value is sealed with XChaCha20-Poly1305 (random 192-bit nonce) under the current generation. The
//!   associated data binds it to its place: the generation, the table, the column and the row's key
//!   ([`Binding`]). A sealed value copied to another row or column does not open there, and the error says so
//!   ([`EnvelopeError::WrongBinding`]) apart from damage ([`EnvelopeError::Tampered`]): a short keyed tag of
//!   the binding travels with the value. The binding must be known before the value is written: use a key the
//!   row has before its insert (a UUID, a content hash), or insert first and seal in the same transaction.
//! - The sealed form is versioned and self-describing: text `ev1:<generation>:<base64url>` for a TEXT column
//!   (the generation is readable, so `LIKE 'ev1:3:%'` finds what a rotation still has to re-seal), or the same
//!   content as bytes for a BYTEA/BLOB column: version `0x01`, generation (u32 big-endian), binding tag (8
//!   bytes), nonce (24 bytes), ciphertext with its 16-byte authentication tag.
//! - Rotation: [`Keyring::rotate`] makes the next generation (returned wrapped, to be stored) and makes it
//!   current; [`Keyring::reseal`] re-encrypts a value to the current generation. Old generations stay in the
//!   keyring until nothing sealed under them is left. [`Keyring::rewrap`] wraps every generation to a new set
//!   of recipients (an administrator joins or leaves) without touching the values.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use endoreg_common::secret::{Secret, SecretError};
use zeroize::Zeroizing;

use crate::Generation;
use crate::salt::hmac_sha256;

const VERSION: u8 = 1;
const TEXT_PREFIX: &str = "ev1";
const TAG_LEN: usize = 8;
const NONCE_LEN: usize = 24;
const AEAD_TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + 4 + TAG_LEN + NONCE_LEN;
const WRAP_MAGIC: &[u8] = b"endoreg-data-key-v1";

#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("no age recipients are configured for the identity data keys")]
    NoRecipients,
    #[error("recipient `{0}` is neither an age (age1…) nor an SSH (ssh-ed25519, ssh-rsa) public key")]
    BadRecipient(String),
    #[error("cannot read the identity key file: {0}")]
    ReadIdentity(#[from] SecretError),
    #[error("the identity key file {path} {reason}")]
    BadIdentity { path: PathBuf, reason: String },
    #[error("cannot wrap the data key of generation {generation}: {reason}")]
    Wrap { generation: Generation, reason: String },
    #[error("no configured identity can unwrap the data key of generation {0}: it is wrapped to other recipients")]
    NoIdentity(Generation),
    #[error("the wrapped data key of generation {0} is damaged or belongs to another generation")]
    BadWrappedKey(Generation),
    #[error("no wrapped data keys were given, so nothing can be sealed or opened")]
    NoKeys,
    #[error("the data key of generation {0} is given twice")]
    DuplicateGeneration(Generation),
    #[error("the value is sealed with key generation {0}, which this keyring does not hold")]
    UnknownGeneration(Generation),
    #[error("the value was sealed for another table, column or row and is refused here")]
    WrongBinding,
    #[error("the sealed value was altered or damaged: it does not authenticate")]
    Tampered,
    #[error("not a sealed value: {0}")]
    Malformed(&'static str),
    #[error("sealed format version {0} is not known to this build, which reads version {VERSION}")]
    UnknownVersion(String),
    #[error("cannot encrypt the value (too large for one sealed value)")]
    Encrypt,
    #[error("no generation number is left after {0}")]
    GenerationsExhausted(Generation),
}

/// Where a value lives. Part of the associated data: a value opens only where it was sealed.
#[derive(Clone, Copy, Debug)]
pub struct Binding<'a> {
    pub table: &'a str,
    pub column: &'a str,
    /// The row's stable key, as text (an id, a UUID, a content hash).
    pub row: &'a str,
}

impl Binding<'_> {
    fn associated_data(&self, generation: Generation) -> Vec<u8> {
        crate::pseudonym::json_array(&["endoreg-envelope-v1", &generation.to_string(), self.table, self.column, self.row])
    }
}

/// The age recipients data keys are wrapped to.
pub struct Recipients(Vec<Box<dyn age::Recipient + Send + Sync>>);

impl Recipients {
    /// Parses `age1…` (X25519) and `ssh-ed25519 …` / `ssh-rsa …` public keys.
    pub fn parse(keys: &[String]) -> Result<Recipients, EnvelopeError> {
        let mut out: Vec<Box<dyn age::Recipient + Send + Sync>> = Vec::new();
        for key in keys.iter().map(|k| k.trim()) {
            let bad = || EnvelopeError::BadRecipient(short(key));
            if key.starts_with("age1") {
                out.push(Box::new(age::x25519::Recipient::from_str(key).map_err(|_| bad())?));
            } else if key.starts_with("ssh-") {
                out.push(Box::new(age::ssh::Recipient::from_str(key).map_err(|_| bad())?));
            } else {
                return Err(bad());
            }
        }
        if out.is_empty() {
            return Err(EnvelopeError::NoRecipients);
        }
        Ok(Recipients(out))
    }
}

fn short(key: &str) -> String {
    let mut s: String = key.chars().take(24).collect();
    if key.chars().count() > 24 {
        s.push('…');
    }
    s
}

/// The age identities that unwrap data keys, from a credential file.
pub struct Identities(Vec<Box<dyn age::Identity + Send + Sync>>);

impl Identities {
    /// Reads an age identity file (`AGE-SECRET-KEY-1…` lines) or an unencrypted SSH private key. A relative
    /// path is looked up in systemd's `$CREDENTIALS_DIRECTORY`.
    pub fn read(path: &Path) -> Result<Identities, EnvelopeError> {
        let secret = Secret::read(path)?;
        Identities::parse(secret.expose(), path)
    }

    fn parse(text: &str, path: &Path) -> Result<Identities, EnvelopeError> {
        let bad = |reason: &str| EnvelopeError::BadIdentity { path: path.to_owned(), reason: reason.to_owned() };
        if text.contains("AGE-SECRET-KEY-") {
            let file = age::IdentityFile::from_buffer(text.as_bytes()).map_err(|_| bad("is not a valid age identity file"))?;
            let ids = file.into_identities().map_err(|_| bad("has an age identity that cannot be used"))?;
            if ids.is_empty() {
                return Err(bad("holds no age identity"));
            }
            return Ok(Identities(ids.into_iter().map(|i| i as Box<dyn age::Identity + Send + Sync>).collect()));
        }
        match age::ssh::Identity::from_buffer(text.as_bytes(), Some(path.display().to_string())) {
            Ok(id @ age::ssh::Identity::Unencrypted(_)) => Ok(Identities(vec![Box::new(id)])),
            Ok(age::ssh::Identity::Encrypted(_)) => Err(bad("is a passphrase-protected SSH key, which a service cannot unlock")),
            Ok(age::ssh::Identity::Unsupported(_)) => Err(bad("is an SSH key of a kind age does not support (use ed25519 or RSA)")),
            Err(_) => Err(bad("is neither an age identity file (AGE-SECRET-KEY-1…) nor an SSH private key")),
        }
    }

    #[cfg(test)]
    fn from_text(text: &str) -> Result<Identities, EnvelopeError> {
        Identities::parse(text, Path::new("<test>"))
    }
}

/// A data key as stored: its generation and the age-encrypted key.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey {
    pub generation: Generation,
    pub wrapped: Vec<u8>,
}

impl fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WrappedKey").field("generation", &self.generation).field("bytes", &self.wrapped.len()).finish()
    }
}

/// One generation's data key (kept to re-wrap it) and the keys derived from it: one for the AEAD, one for the
/// binding tag, so neither primitive uses the other's key.
struct GenerationKeys {
    data_key: Zeroizing<[u8; 32]>,
    aead: Zeroizing<[u8; 32]>,
    binding: Zeroizing<[u8; 32]>,
}

impl GenerationKeys {
    fn derive(data_key: &[u8; 32]) -> GenerationKeys {
        GenerationKeys {
            data_key: Zeroizing::new(*data_key),
            aead: Zeroizing::new(hmac_sha256(data_key, &[b"endoreg-envelope-v1 aead"]).0),
            binding: Zeroizing::new(hmac_sha256(data_key, &[b"endoreg-envelope-v1 binding"]).0),
        }
    }

    fn cipher(&self) -> Result<XChaCha20Poly1305, EnvelopeError> {
        // Cannot fail: the key has the cipher's length.
        XChaCha20Poly1305::new_from_slice(self.aead.as_slice()).map_err(|_| EnvelopeError::Encrypt)
    }

    fn binding_tag(&self, associated_data: &[u8]) -> [u8; TAG_LEN] {
        let full = hmac_sha256(self.binding.as_ref(), &[associated_data]);
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&full.0[..TAG_LEN]);
        tag
    }
}

/// A sealed value: which generation sealed it, the binding tag, the nonce and the ciphertext.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    generation: Generation,
    binding_tag: [u8; TAG_LEN],
    nonce: [u8; NONCE_LEN],
    ciphertext: Vec<u8>,
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealed").field("generation", &self.generation).field("ciphertext_bytes", &self.ciphertext.len()).finish()
    }
}

impl Sealed {
    pub fn generation(&self) -> Generation {
        self.generation
    }

    /// `ev1:<generation>:<base64url of tag, nonce, ciphertext>`, for a TEXT column.
    pub fn to_text(&self) -> String {
        let mut body = Vec::with_capacity(TAG_LEN + NONCE_LEN + self.ciphertext.len());
        body.extend_from_slice(&self.binding_tag);
        body.extend_from_slice(&self.nonce);
        body.extend_from_slice(&self.ciphertext);
        format!("{TEXT_PREFIX}:{}:{}", self.generation, URL_SAFE_NO_PAD.encode(body))
    }

    pub fn parse_text(text: &str) -> Result<Sealed, EnvelopeError> {
        let mut parts = text.splitn(3, ':');
        let (Some(version), Some(generation), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(EnvelopeError::Malformed("expected `ev1:<generation>:<data>`"));
        };
        if version != TEXT_PREFIX {
            return Err(if version.starts_with("ev") && version.len() <= 8 {
                EnvelopeError::UnknownVersion(version.to_owned())
            } else {
                EnvelopeError::Malformed("expected `ev1:<generation>:<data>`")
            });
        }
        let generation = generation
            .parse::<u32>()
            .ok()
            .filter(|_| generation.bytes().all(|b| b.is_ascii_digit()))
            .map(Generation)
            .ok_or(EnvelopeError::Malformed("the generation is not a number"))?;
        let body = URL_SAFE_NO_PAD.decode(body).map_err(|_| EnvelopeError::Malformed("the data is not base64url"))?;
        Sealed::from_parts(generation, &body)
    }

    /// Version byte, generation, tag, nonce, ciphertext: for a BYTEA/BLOB column.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.ciphertext.len());
        out.push(VERSION);
        out.extend_from_slice(&self.generation.0.to_be_bytes());
        out.extend_from_slice(&self.binding_tag);
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.ciphertext);
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Sealed, EnvelopeError> {
        let Some((&version, rest)) = bytes.split_first() else {
            return Err(EnvelopeError::Malformed("it is empty"));
        };
        if version != VERSION {
            return Err(EnvelopeError::UnknownVersion(version.to_string()));
        }
        let Some((generation, body)) = rest.split_first_chunk::<4>() else {
            return Err(EnvelopeError::Malformed("it is too short"));
        };
        Sealed::from_parts(Generation(u32::from_be_bytes(*generation)), body)
    }

    fn from_parts(generation: Generation, body: &[u8]) -> Result<Sealed, EnvelopeError> {
        let Some((binding_tag, rest)) = body.split_first_chunk::<TAG_LEN>() else {
            return Err(EnvelopeError::Malformed("it is too short"));
        };
        let Some((nonce, ciphertext)) = rest.split_first_chunk::<NONCE_LEN>() else {
            return Err(EnvelopeError::Malformed("it is too short"));
        };
        if ciphertext.len() < AEAD_TAG_LEN {
            return Err(EnvelopeError::Malformed("it is too short"));
        }
        Ok(Sealed { generation, binding_tag: *binding_tag, nonce: *nonce, ciphertext: ciphertext.to_vec() })
    }
}

/// The unwrapped data keys of every generation this process may use; the newest is current.
pub struct Keyring {
    keys: BTreeMap<Generation, GenerationKeys>,
    current: Generation,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring").field("generations", &self.keys.keys().collect::<Vec<_>>()).field("current", &self.current).finish()
    }
}

impl Keyring {
    /// A new keyring with generation 1; store the returned wrapped key.
    pub fn create(recipients: &Recipients) -> Result<(Keyring, WrappedKey), EnvelopeError> {
        let generation = Generation(1);
        let (keys, wrapped) = new_generation(generation, recipients)?;
        Ok((Keyring { keys: BTreeMap::from([(generation, keys)]), current: generation }, wrapped))
    }

    /// Unwraps every stored generation with `identities`. Each must unwrap: a generation this identity cannot
    /// open means values this process could not read, which is named rather than found out later.
    pub fn unwrap(wrapped: &[WrappedKey], identities: &Identities) -> Result<Keyring, EnvelopeError> {
        let mut keys = BTreeMap::new();
        for w in wrapped {
            if keys.contains_key(&w.generation) {
                return Err(EnvelopeError::DuplicateGeneration(w.generation));
            }
            keys.insert(w.generation, unwrap_key(w, identities)?);
        }
        let current = *keys.keys().next_back().ok_or(EnvelopeError::NoKeys)?;
        Ok(Keyring { keys, current })
    }

    pub fn current(&self) -> Generation {
        self.current
    }

    pub fn generations(&self) -> impl Iterator<Item = Generation> + '_ {
        self.keys.keys().copied()
    }

    /// Seals `plaintext` for `binding` with the current generation.
    pub fn seal(&self, binding: &Binding<'_>, plaintext: &[u8]) -> Result<Sealed, EnvelopeError> {
        let keys = self.keys.get(&self.current).ok_or(EnvelopeError::UnknownGeneration(self.current))?;
        let aad = binding.associated_data(self.current);
        let cipher = keys.cipher()?;
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ciphertext = cipher.encrypt(&nonce, Payload { msg: plaintext, aad: &aad }).map_err(|_| EnvelopeError::Encrypt)?;
        Ok(Sealed { generation: self.current, binding_tag: keys.binding_tag(&aad), nonce: nonce.into(), ciphertext })
    }

    pub fn seal_str(&self, binding: &Binding<'_>, plaintext: &str) -> Result<Sealed, EnvelopeError> {
        self.seal(binding, plaintext.as_bytes())
    }

    /// Opens a value sealed for `binding` under any generation this keyring holds.
    pub fn open(&self, binding: &Binding<'_>, sealed: &Sealed) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
        let keys = self.keys.get(&sealed.generation).ok_or(EnvelopeError::UnknownGeneration(sealed.generation))?;
        let aad = binding.associated_data(sealed.generation);
        let expected = keys.binding_tag(&aad);
        if expected.iter().zip(sealed.binding_tag.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) != 0 {
            return Err(EnvelopeError::WrongBinding);
        }
        let cipher = keys.cipher()?;
        let nonce = XNonce::from(sealed.nonce);
        cipher.decrypt(&nonce, Payload { msg: &sealed.ciphertext, aad: &aad }).map(Zeroizing::new).map_err(|_| EnvelopeError::Tampered)
    }

    /// [`Keyring::open`] for values sealed from text.
    pub fn open_str(&self, binding: &Binding<'_>, sealed: &Sealed) -> Result<Zeroizing<String>, EnvelopeError> {
        let bytes = self.open(binding, sealed)?;
        match std::str::from_utf8(&bytes) {
            Ok(s) => Ok(Zeroizing::new(s.to_owned())),
            Err(_) => Err(EnvelopeError::Malformed("the opened value is not UTF-8 text")),
        }
    }

    /// Makes the next generation current and returns it wrapped to `recipients`, to be stored before anything
    /// is sealed with it (a value sealed under a generation whose wrapped key was lost is lost).
    pub fn rotate(&mut self, recipients: &Recipients) -> Result<WrappedKey, EnvelopeError> {
        let newest = *self.keys.keys().next_back().ok_or(EnvelopeError::NoKeys)?;
        let generation = newest.next().ok_or(EnvelopeError::GenerationsExhausted(newest))?;
        let (keys, wrapped) = new_generation(generation, recipients)?;
        self.keys.insert(generation, keys);
        self.current = generation;
        Ok(wrapped)
    }

    /// The value re-sealed under the current generation for the same binding (unchanged when it already is).
    pub fn reseal(&self, binding: &Binding<'_>, sealed: &Sealed) -> Result<Sealed, EnvelopeError> {
        let plaintext = self.open(binding, sealed)?;
        if sealed.generation == self.current {
            return Ok(sealed.clone());
        }
        self.seal(binding, &plaintext)
    }

    /// Every generation wrapped anew to `recipients`: for a change of who may decrypt, values untouched.
    pub fn rewrap(&self, recipients: &Recipients) -> Result<Vec<WrappedKey>, EnvelopeError> {
        self.keys.iter().map(|(g, k)| wrap(*g, &k.data_key, recipients)).collect()
    }
}

fn new_generation(generation: Generation, recipients: &Recipients) -> Result<(GenerationKeys, WrappedKey), EnvelopeError> {
    let data_key = Zeroizing::new(<[u8; 32]>::from(XChaCha20Poly1305::generate_key(&mut OsRng)));
    let wrapped = wrap(generation, &data_key, recipients)?;
    Ok((GenerationKeys::derive(&data_key), wrapped))
}

fn wrap(generation: Generation, data_key: &[u8; 32], recipients: &Recipients) -> Result<WrappedKey, EnvelopeError> {
    let fail = |reason: String| EnvelopeError::Wrap { generation, reason };
    let mut payload = Zeroizing::new(Vec::with_capacity(WRAP_MAGIC.len() + 4 + 32));
    payload.extend_from_slice(WRAP_MAGIC);
    payload.extend_from_slice(&generation.0.to_be_bytes());
    payload.extend_from_slice(data_key);
    let encryptor =
        age::Encryptor::with_recipients(recipients.0.iter().map(|r| r.as_ref() as &dyn age::Recipient)).map_err(|e| fail(e.to_string()))?;
    let mut out = Vec::new();
    let mut writer = encryptor.wrap_output(&mut out).map_err(|e| fail(e.to_string()))?;
    writer.write_all(&payload).map_err(|e| fail(e.to_string()))?;
    writer.finish().map_err(|e| fail(e.to_string()))?;
    Ok(WrappedKey { generation, wrapped: out })
}

fn unwrap_key(wrapped: &WrappedKey, identities: &Identities) -> Result<GenerationKeys, EnvelopeError> {
    let generation = wrapped.generation;
    let decryptor = age::Decryptor::new_buffered(wrapped.wrapped.as_slice()).map_err(|_| EnvelopeError::BadWrappedKey(generation))?;
    let mut reader = decryptor.decrypt(identities.0.iter().map(|i| i.as_ref() as &dyn age::Identity)).map_err(|e| match e {
        age::DecryptError::NoMatchingKeys => EnvelopeError::NoIdentity(generation),
        _ => EnvelopeError::BadWrappedKey(generation),
    })?;
    let mut payload = Zeroizing::new(Vec::new());
    reader.read_to_end(&mut payload).map_err(|_| EnvelopeError::BadWrappedKey(generation))?;
    let rest = payload.strip_prefix(WRAP_MAGIC).ok_or(EnvelopeError::BadWrappedKey(generation))?;
    let Some((stored, key)) = rest.split_first_chunk::<4>() else {
        return Err(EnvelopeError::BadWrappedKey(generation));
    };
    if u32::from_be_bytes(*stored) != generation.0 {
        return Err(EnvelopeError::BadWrappedKey(generation));
    }
    let key: &[u8; 32] = key.try_into().map_err(|_| EnvelopeError::BadWrappedKey(generation))?;
    Ok(GenerationKeys::derive(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A throwaway ed25519 key made for these tests only.
    const SSH_PRIVATE: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACDgbTiWr9pzChw7SUnM+I4FE1LWx94T72qmE57IdAR8rgAAAJiJmRVdiZkV
XQAAAAtzc2gtZWQyNTUxOQAAACDgbTiWr9pzChw7SUnM+I4FE1LWx94T72qmE57IdAR8rg
AAAEBo6K/+JUuqEpZtZGFaBsYoq30q6S2VfFvyHmoWEvu2ceBtOJav2nMKHDtJScz4jgUT
UtbH3hPvaqYTnsh0BHyuAAAAFWVuZG9yZWctaWRlbnRpdHktdGVzdA==
-----END OPENSSH PRIVATE KEY-----
";
    const SSH_PUBLIC: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOBtOJav2nMKHDtJScz4jgUTUtbH3hPvaqYTnsh0BHyu endoreg-identity-test";

    struct AgeKey {
        recipient: String,
        identity_file: String,
    }

    fn age_key() -> AgeKey {
        use age::secrecy::ExposeSecret;
        let id = age::x25519::Identity::generate();
        AgeKey { recipient: id.to_public().to_string(), identity_file: format!("# test\n{}\n", id.to_string().expose_secret()) }
    }

    const ROW: Binding<'static> = Binding { table: "patient_identity", column: "first_name", row: "42" };

    #[test]
    fn seal_and_open_with_an_age_identity_from_a_file() {
        let key = age_key();
        let (ring, wrapped) = Keyring::create(&Recipients::parse(std::slice::from_ref(&key.recipient)).unwrap()).unwrap();
        let sealed = ring.seal_str(&ROW, "Jörg-Ünal").unwrap();
        let text = sealed.to_text();
        assert!(text.starts_with("ev1:1:"), "{text}");
        assert!(!sealed.to_bytes().windows(3).any(|w| w == b"rg-"), "no plain text");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.age");
        std::fs::write(&path, &key.identity_file).unwrap();
        let reopened = Keyring::unwrap(&[wrapped], &Identities::read(&path).unwrap()).unwrap();
        let parsed = Sealed::parse_text(&text).unwrap();
        assert_eq!(parsed, sealed);
        assert_eq!(&*reopened.open_str(&ROW, &parsed).unwrap(), "Jörg-Ünal");
        let from_bytes = Sealed::from_bytes(&sealed.to_bytes()).unwrap();
        assert_eq!(&*reopened.open(&ROW, &from_bytes).unwrap(), "Jörg-Ünal".as_bytes());
        // Two seals of one value differ (random nonce), so equal names are not visible as equal ciphertexts.
        assert_ne!(ring.seal_str(&ROW, "Jörg-Ünal").unwrap().to_text(), text);
    }

    #[test]
    fn ssh_recipients_and_several_recipients_work() {
        let admin = age_key();
        let recipients = Recipients::parse(&[admin.recipient.clone(), SSH_PUBLIC.to_owned()]).unwrap();
        let (ring, wrapped) = Keyring::create(&recipients).unwrap();
        let sealed = ring.seal(&ROW, b"12.08.1961").unwrap();
        for identity in [Identities::from_text(SSH_PRIVATE).unwrap(), Identities::from_text(&admin.identity_file).unwrap()] {
            let other = Keyring::unwrap(std::slice::from_ref(&wrapped), &identity).unwrap();
            assert_eq!(&*other.open(&ROW, &sealed).unwrap(), b"12.08.1961");
        }
    }

    #[test]
    fn a_value_moved_to_another_row_or_column_does_not_open() {
        let key = age_key();
        let (ring, _) = Keyring::create(&Recipients::parse(&[key.recipient]).unwrap()).unwrap();
        let sealed = ring.seal_str(&ROW, "Mustermann").unwrap();
        for elsewhere in [
            Binding { row: "43", ..ROW },
            Binding { column: "last_name", ..ROW },
            Binding { table: "media_identity", ..ROW },
            // Field boundaries are unambiguous: moving text between fields is another binding.
            Binding { table: "patient_identityfirst", column: "_name", row: "42" },
        ] {
            assert!(matches!(ring.open(&elsewhere, &sealed), Err(EnvelopeError::WrongBinding)), "{elsewhere:?}");
        }
    }

    #[test]
    fn tampering_is_detected_and_named() {
        let key = age_key();
        let (ring, _) = Keyring::create(&Recipients::parse(&[key.recipient]).unwrap()).unwrap();
        let sealed = ring.seal_str(&ROW, "Mustermann").unwrap();
        let bytes = sealed.to_bytes();
        // Every byte of the nonce and ciphertext is authenticated.
        for i in (1 + 4 + TAG_LEN)..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            let bad = Sealed::from_bytes(&bad).unwrap();
            assert!(matches!(ring.open(&ROW, &bad), Err(EnvelopeError::Tampered)), "byte {i}");
        }
        // A changed binding tag reads as a value from elsewhere; a changed generation as one this ring lacks.
        let mut bad = bytes.clone();
        bad[5] ^= 0x01;
        assert!(matches!(ring.open(&ROW, &Sealed::from_bytes(&bad).unwrap()), Err(EnvelopeError::WrongBinding)));
        let mut bad = bytes.clone();
        bad[4] = 9;
        assert!(matches!(ring.open(&ROW, &Sealed::from_bytes(&bad).unwrap()), Err(EnvelopeError::UnknownGeneration(Generation(9)))));
        // Truncation and garbage are malformed, not a panic.
        let mut short = bytes.clone();
        short.truncate(HEADER_LEN + 3);
        assert!(matches!(Sealed::from_bytes(&short), Err(EnvelopeError::Malformed(_))));
        assert!(matches!(Sealed::from_bytes(&[]), Err(EnvelopeError::Malformed(_))));
        assert!(matches!(Sealed::from_bytes(&[2, 0, 0]), Err(EnvelopeError::UnknownVersion(v)) if v == "2"));
        for text in ["", "ev1", "ev1:1", "ev1:x:AAAA", "ev1:1:!!", "ev1:-1:AAAA", "ev1:+1:AAAA", "ev2:1:AAAA", "Mustermann", "ev1:1:AAAA"] {
            assert!(Sealed::parse_text(text).is_err(), "{text}");
        }
        assert!(matches!(Sealed::parse_text("ev2:1:AAAA"), Err(EnvelopeError::UnknownVersion(_))));
    }

    #[test]
    fn rotation_makes_a_new_current_generation_and_reseals_old_values() {
        let key = age_key();
        let recipients = Recipients::parse(std::slice::from_ref(&key.recipient)).unwrap();
        let (mut ring, first) = Keyring::create(&recipients).unwrap();
        let old = ring.seal_str(&ROW, "Erika").unwrap();
        let second = ring.rotate(&recipients).unwrap();
        assert_eq!((second.generation, ring.current()), (Generation(2), Generation(2)));
        let new = ring.reseal(&ROW, &old).unwrap();
        assert_eq!(new.generation(), Generation(2));
        assert!(new.to_text().starts_with("ev1:2:"));
        assert_eq!(ring.reseal(&ROW, &new).unwrap(), new, "already current: unchanged");
        // Resealing keeps the binding: it still refuses another row.
        assert!(matches!(ring.reseal(&Binding { row: "7", ..ROW }, &old), Err(EnvelopeError::WrongBinding)));

        // Another process with both wrapped keys opens both; with only the new one, the old value is unknown.
        let ids = Identities::from_text(&key.identity_file).unwrap();
        let both = Keyring::unwrap(&[first.clone(), second.clone()], &ids).unwrap();
        assert_eq!(both.current(), Generation(2));
        assert_eq!(&*both.open_str(&ROW, &old).unwrap(), "Erika");
        assert_eq!(&*both.open_str(&ROW, &new).unwrap(), "Erika");
        let only_new = Keyring::unwrap(std::slice::from_ref(&second), &ids).unwrap();
        assert!(matches!(only_new.open(&ROW, &old), Err(EnvelopeError::UnknownGeneration(Generation(1)))));
        assert!(matches!(Keyring::unwrap(&[first.clone(), first], &ids), Err(EnvelopeError::DuplicateGeneration(Generation(1)))));
        assert!(matches!(Keyring::unwrap(&[], &ids), Err(EnvelopeError::NoKeys)));
    }

    #[test]
    fn a_wrong_identity_cannot_unwrap_and_a_swapped_generation_is_refused() {
        let key = age_key();
        let (_, wrapped) = Keyring::create(&Recipients::parse(&[key.recipient]).unwrap()).unwrap();
        let stranger = Identities::from_text(&age_key().identity_file).unwrap();
        assert!(matches!(Keyring::unwrap(std::slice::from_ref(&wrapped), &stranger), Err(EnvelopeError::NoIdentity(Generation(1)))));
        let ssh_stranger = Identities::from_text(SSH_PRIVATE).unwrap();
        assert!(matches!(Keyring::unwrap(std::slice::from_ref(&wrapped), &ssh_stranger), Err(EnvelopeError::NoIdentity(Generation(1)))));

        // Generation 1's wrapped key stored as generation 5: refused, not used as generation 5's key.
        let ids = Identities::from_text(&key.identity_file).unwrap();
        let swapped = WrappedKey { generation: Generation(5), wrapped: wrapped.wrapped.clone() };
        assert!(matches!(Keyring::unwrap(&[swapped], &ids), Err(EnvelopeError::BadWrappedKey(Generation(5)))));
        let mut damaged = wrapped.clone();
        let last = damaged.wrapped.len() - 1;
        damaged.wrapped[last] ^= 1;
        assert!(matches!(Keyring::unwrap(&[damaged], &ids), Err(EnvelopeError::BadWrappedKey(Generation(1)))));
    }

    #[test]
    fn rewrap_hands_every_generation_to_new_recipients() {
        let old_admin = age_key();
        let new_admin = age_key();
        let (mut ring, _) = Keyring::create(&Recipients::parse(std::slice::from_ref(&old_admin.recipient)).unwrap()).unwrap();
        let v1 = ring.seal_str(&ROW, "Erika").unwrap();
        ring.rotate(&Recipients::parse(std::slice::from_ref(&old_admin.recipient)).unwrap()).unwrap();
        let rewrapped = ring.rewrap(&Recipients::parse(&[new_admin.recipient]).unwrap()).unwrap();
        assert_eq!(rewrapped.iter().map(|w| w.generation.0).collect::<Vec<_>>(), [1, 2]);
        let theirs = Keyring::unwrap(&rewrapped, &Identities::from_text(&new_admin.identity_file).unwrap()).unwrap();
        assert_eq!(&*theirs.open_str(&ROW, &v1).unwrap(), "Erika");
        assert!(matches!(
            Keyring::unwrap(&rewrapped, &Identities::from_text(&old_admin.identity_file).unwrap()),
            Err(EnvelopeError::NoIdentity(_))
        ));
    }

    #[test]
    fn bad_recipients_and_identity_files_are_named() {
        assert!(matches!(Recipients::parse(&[]), Err(EnvelopeError::NoRecipients)));
        assert!(matches!(Recipients::parse(&["age1notakey".into()]), Err(EnvelopeError::BadRecipient(_))));
        assert!(matches!(Recipients::parse(&["pgp-key".into()]), Err(EnvelopeError::BadRecipient(_))));
        assert!(matches!(Recipients::parse(&["ssh-ed25519 AAAAnope".into()]), Err(EnvelopeError::BadRecipient(_))));
        let e = Identities::from_text("hello").err().unwrap().to_string();
        assert!(e.contains("neither an age identity file"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let e = Identities::read(&dir.path().join("nope")).err().unwrap().to_string();
        assert!(e.contains("nope"), "{e}");
    }

    #[test]
    fn nothing_secret_is_printed() {
        let key = age_key();
        let (ring, wrapped) = Keyring::create(&Recipients::parse(&[key.recipient]).unwrap()).unwrap();
        let sealed = ring.seal_str(&ROW, "Mustermann").unwrap();
        let shown = format!("{ring:?} {wrapped:?} {sealed:?}");
        assert!(!shown.contains("Mustermann"));
        assert!(shown.contains("generation"));
    }
}
