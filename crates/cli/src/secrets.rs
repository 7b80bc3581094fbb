//! `endoreg secrets check` and `endoreg secrets rekey`: the age-encrypted secrets of the repository
//! (`secrets/<host>/<name>.age`) against what the Nix side says they must be.
//!
//! The Nix side is read with `nix-instantiate` (no nixpkgs needed): `secrets/secrets.nix` gives every file's
//! recipients, `hosts/inventory.nix` the hosts with their roles and secret names, `secrets/roles.nix` the
//! secrets each role needs. The files are read by their age header only: recipient stanzas say to whom a
//! file is encrypted without decrypting it. `ssh-ed25519` and `ssh-rsa` stanzas carry a key tag (the first 4
//! bytes of SHA-256 of the SSH public key's wire encoding); `X25519` stanzas carry nothing that identifies
//! the key, so only their number can be compared.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::str::FromStr;

use age::secrecy::{ExposeSecret, ExposeSecretMut, SecretBox};
use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use clap::Subcommand;
use serde::Deserialize;
use sha2::{Digest, Sha256};

#[derive(Subcommand)]
pub enum SecretsCommand {
    /// Check every secret: each file listed in secrets/secrets.nix exists, each .age file under secrets/ is
    /// listed, each is encrypted to exactly its recipients, and each host has the secrets its roles need.
    /// Prints one line per problem; exits 0 only when there is none.
    Check {
        /// The endoreg checkout (the directory with hosts/, roles/ and secrets/).
        #[arg(long, default_value = ".")]
        repo: PathBuf,
    },
    /// Re-encrypt, after an inventory change, every secret whose recipients no longer match
    /// secrets/secrets.nix. Files that match are left untouched; nothing secret is printed.
    Rekey {
        /// An identity that can decrypt the secrets: an age identity file (AGE-SECRET-KEY-1…) or an
        /// unencrypted SSH private key of an administrator.
        #[arg(long)]
        identity: PathBuf,
        /// The endoreg checkout (the directory with hosts/, roles/ and secrets/).
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        /// Say what would be re-encrypted (decrypting each to prove it can be), write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Re-encrypt every listed file, also those whose stanzas match. Needed after an `age1…` recipient was
        /// replaced by another: X25519 stanzas do not say which key they are for, so a swap cannot be seen.
        #[arg(long)]
        all: bool,
    },
}

pub fn run(command: SecretsCommand) -> Result<ExitCode> {
    match command {
        SecretsCommand::Check { repo } => {
            let report = check(&repo)?;
            for p in &report.problems {
                println!("{p}");
            }
            if report.problems.is_empty() {
                println!(
                    "secrets check: {} host(s), {} secret(s): every file present, listed and encrypted to exactly its recipients; every host has the secrets its roles need",
                    report.hosts, report.files
                );
                Ok(ExitCode::SUCCESS)
            } else {
                println!("secrets check: {} problem(s)", report.problems.len());
                Ok(ExitCode::FAILURE)
            }
        }
        SecretsCommand::Rekey { identity, repo, dry_run, all } => rekey(&repo, &identity, dry_run, all),
    }
}

// ---------------------------------------------------------------------------------------------------------
// What the Nix side says

/// Evaluated in the checkout by `nix-instantiate`. Plain builtins only: the check must run where there is
/// Nix but no nixpkgs (CI, an administrator's laptop).
const MODEL_NIX: &str = r#"
let
  inventory = import ./hosts/inventory.nix;
  roleSecrets = import ./secrets/roles.nix;
  test = inventory.test or { admins = { }; hosts = { }; };

  # endoreg.roles as hosts/<host>/default.nix sets it, when that file is plain data. A module that is a
  # function cannot be read without nixpkgs; then each role setting has its default (secrets/roles.nix).
  hostFile = name: ./hosts + "/${name}/default.nix";
  hostModule = name: if builtins.pathExists (hostFile name) then import (hostFile name) else { };
  readable = name: builtins.isAttrs (hostModule name);
  settingsOf = name: if readable name then (hostModule name).endoreg.roles or { } else { };

  lookup = path: attrs: builtins.foldl' (acc: k: if builtins.isAttrs acc && acc ? ${k} then acc.${k} else null) attrs path;
  split = s: builtins.filter builtins.isString (builtins.split "\\." s);

  needsOf = name: host:
    builtins.concatMap
      (role:
        let
          settings = (settingsOf name).${role} or { };
          entries = roleSecrets.${role} or { };
        in
        builtins.concatMap
          (secret:
            let
              s = entries.${secret};
              v = if s.when == null then null else lookup (split s.when) settings;
              known = builtins.isBool v || builtins.isInt v;
              needed =
                if s.when == null then true
                else if builtins.isBool v then v
                else if builtins.isInt v then v > 0
                else s.default;
            in
            if needed then [{
              inherit role secret;
              purpose = s.for;
              inherit (s) when;
              # the host's own setting (JSON), or null where the default applies
              setting = if known then builtins.toJSON v else null;
            }] else [ ])
          (builtins.attrNames entries))
      host.roles;

  named = what: keys: map (n: { key = keys.${n}; name = "${what} ${n}"; }) (builtins.attrNames keys);
  hostKeys = what: hosts: map (n: { key = hosts.${n}.hostKey; name = "${what} ${n}"; })
    (builtins.filter (n: hosts.${n} ? hostKey) (builtins.attrNames hosts));
in
{
  recipients = builtins.mapAttrs (_: r: r.publicKeys) (import ./secrets/secrets.nix);
  roles = builtins.attrNames roleSecrets;
  keys = named "administrator" inventory.admins ++ hostKeys "host" inventory.hosts
    ++ named "test administrator" (test.admins or { }) ++ hostKeys "test host" (test.hosts or { });
  hosts = builtins.mapAttrs
    (name: host: {
      roles = host.roles or [ ];
      secrets = host.secrets or [ ];
      needs = needsOf name host;
      settingsReadable = readable name;
    })
    inventory.hosts;
}
"#;

#[derive(Debug, Deserialize)]
struct Model {
    /// `<host>/<name>.age` (relative to secrets/) → its recipients' public keys.
    recipients: BTreeMap<String, Vec<String>>,
    /// The roles secrets/roles.nix knows.
    roles: Vec<String>,
    /// Every public key of the inventory with who it is, for messages.
    keys: Vec<KeyName>,
    hosts: BTreeMap<String, Host>,
}

#[derive(Debug, Deserialize)]
struct KeyName {
    key: String,
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Host {
    roles: Vec<String>,
    secrets: Vec<String>,
    needs: Vec<Need>,
    settings_readable: bool,
}

#[derive(Debug, Deserialize)]
struct Need {
    role: String,
    secret: String,
    purpose: String,
    when: Option<String>,
    /// The value of `when` in hosts/<host>/default.nix (JSON); None where the role's default applies.
    setting: Option<String>,
}

fn evaluate(repo: &Path) -> Result<Model> {
    for file in ["hosts/inventory.nix", "secrets/secrets.nix", "secrets/roles.nix"] {
        if !repo.join(file).is_file() {
            bail!("{} is not an endoreg checkout: {file} is missing (give the checkout with --repo DIR)", repo.display());
        }
    }
    let out =
        Command::new("nix-instantiate").args(["--eval", "--strict", "--json", "--expr", MODEL_NIX]).current_dir(repo).output().map_err(
            |e| match e.kind() {
                std::io::ErrorKind::NotFound => anyhow!(
                    "nix-instantiate was not found on PATH: it reads hosts/inventory.nix and secrets/secrets.nix. Install Nix \
                 (Debian/Ubuntu: apt-get install nix-bin) or run inside `nix develop`"
                ),
                _ => anyhow!("cannot run nix-instantiate: {e}"),
            },
        )?;
    if !out.status.success() {
        bail!(
            "nix-instantiate could not evaluate hosts/inventory.nix, secrets/secrets.nix and secrets/roles.nix in {}:\n{}",
            repo.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    serde_json::from_slice(&out.stdout).context("unexpected output of nix-instantiate (the inventory's shape changed?)")
}

// ---------------------------------------------------------------------------------------------------------
// The age header

/// One recipient stanza of an age header: `-> type args...` (the body, wrapped key material, is not kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stanza {
    pub kind: String,
    pub args: Vec<String>,
}

/// Headers are a few hundred bytes; a limit keeps a large non-age file from being read whole.
const HEADER_LIMIT: u64 = 1 << 20;

/// Reads the recipient stanzas of an age v1 file (<https://age-encryption.org/v1>), without decrypting.
pub fn read_stanzas(mut input: impl Read) -> Result<Vec<Stanza>, String> {
    let mut bytes = Vec::new();
    input.by_ref().take(HEADER_LIMIT).read_to_end(&mut bytes).map_err(|e| format!("cannot read it: {e}"))?;
    parse_header(&bytes)
}

fn parse_header(bytes: &[u8]) -> Result<Vec<Stanza>, String> {
    let mut lines = bytes.split(|b| *b == b'\n');
    match lines.next() {
        Some(b"age-encryption.org/v1") => {}
        Some(l) if l.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----") => {
            return Err(
                "is ASCII-armored (age -a), which this check does not read: re-create it with `agenix -e`, which writes binary age files"
                    .into(),
            );
        }
        _ => return Err("is not an age file (no `age-encryption.org/v1` header)".into()),
    }
    let mut stanzas = Vec::new();
    let mut in_body = false;
    for line in lines {
        let line = std::str::from_utf8(line).map_err(|_| "has a header that is not text".to_string())?;
        if in_body {
            // A body is base64 in lines of 64 characters, ended by a shorter (possibly empty) line.
            if line.len() > 64 || STANDARD_NO_PAD.decode(line).is_err() {
                return Err(format!("has a malformed body in its `{}` stanza", stanzas.last().map_or("", |s: &Stanza| &s.kind)));
            }
            in_body = line.len() == 64;
        } else if let Some(rest) = line.strip_prefix("-> ") {
            let mut words = rest.split(' ');
            let kind = words.next().unwrap_or_default();
            if kind.is_empty() {
                return Err("has a stanza without a type".into());
            }
            stanzas.push(Stanza { kind: kind.to_owned(), args: words.map(str::to_owned).collect() });
            in_body = true;
        } else if line.starts_with("--- ") {
            return Ok(stanzas);
        } else {
            return Err("has a malformed header (a line that is neither a stanza nor the MAC)".into());
        }
    }
    Err("has no end of header (truncated, or not an age file)".into())
}

/// The key tag an `ssh-ed25519` or `ssh-rsa` stanza carries for an SSH public key line
/// (`ssh-ed25519 AAAA… comment`): the first 4 bytes of SHA-256 of the key's wire encoding, base64 without
/// padding.
pub fn ssh_key_tag(public_key: &str) -> Result<String, String> {
    let mut words = public_key.split_whitespace();
    let (Some(kind), Some(encoded)) = (words.next(), words.next()) else {
        return Err("is not an SSH public key (`type base64 [comment]`)".into());
    };
    let wire = STANDARD.decode(encoded).map_err(|_| "has an SSH public key that is not base64".to_string())?;
    // The wire encoding begins with the key type again (a length-prefixed string); a mismatch is a damaged key.
    let embedded = wire.get(4..).and_then(|rest| rest.get(..kind.len()));
    if wire.len() < 4 + kind.len() || embedded != Some(kind.as_bytes()) {
        return Err(format!("is an SSH public key whose encoding is not of type {kind}"));
    }
    Ok(STANDARD_NO_PAD.encode(&Sha256::digest(&wire)[..4]))
}

/// A recipient from secrets/secrets.nix, as stanzas can show it.
#[derive(Debug, Clone)]
enum Expected {
    /// `ssh-ed25519` or `ssh-rsa` (the stanza type), with the key tag.
    Ssh { kind: String, tag: String, label: String },
    /// An `age1…` X25519 recipient.
    X25519,
}

fn expected(recipient: &str, names: &BTreeMap<String, String>) -> Result<Expected, String> {
    let label = names.get(recipient).cloned().unwrap_or_else(|| short_key(recipient));
    if recipient.starts_with("ssh-") {
        age::ssh::Recipient::from_str(recipient).map_err(|e| format!("recipient {label} is not a usable SSH key ({e:?})"))?;
        let kind = recipient.split_whitespace().next().unwrap_or_default().to_owned();
        let tag = ssh_key_tag(recipient).map_err(|e| format!("recipient {label} {e}"))?;
        Ok(Expected::Ssh { kind, tag, label })
    } else if age::x25519::Recipient::from_str(recipient).is_ok() {
        Ok(Expected::X25519)
    } else {
        Err(format!(
            "recipient {label} is of a kind this check does not know (ssh-ed25519, ssh-rsa and age1… X25519 keys are; plugin recipients are not)"
        ))
    }
}

fn short_key(key: &str) -> String {
    let mut words = key.split_whitespace();
    match (words.next(), words.next()) {
        (Some(kind), Some(b64)) => format!("{kind} {}…", b64.get(..24).unwrap_or(b64)),
        _ => key.get(..24).unwrap_or(key).to_owned(),
    }
}

/// What is wrong with a file's stanzas against its recipients; empty when they match exactly.
fn compare(stanzas: &[Stanza], recipients: &[Expected], names_by_tag: &BTreeMap<String, String>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut ssh_stanzas: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut x25519 = 0;
    for s in stanzas {
        match s.kind.as_str() {
            "ssh-ed25519" | "ssh-rsa" => match s.args.first() {
                Some(tag) => *ssh_stanzas.entry((s.kind.clone(), tag.clone())).or_default() += 1,
                None => problems.push(format!("has a {} stanza without a key tag", s.kind)),
            },
            "X25519" => x25519 += 1,
            // age implementations add a random stanza ending in -grease to every file so that readers keep
            // ignoring unknown stanzas; it is nobody's key.
            k if k.ends_with("-grease") => {}
            "scrypt" => problems.push("is passphrase-encrypted (an scrypt stanza); agenix secrets are encrypted to keys".into()),
            k => problems.push(format!("has a `{k}` stanza that no recipient in secrets/secrets.nix explains")),
        }
    }
    let mut x25519_expected = 0;
    for r in recipients {
        match r {
            Expected::Ssh { kind, tag, label } => match ssh_stanzas.remove(&(kind.clone(), tag.clone())) {
                None | Some(0) => problems.push(format!("is not encrypted to {label} ({kind} key tag {tag})")),
                Some(1) => {}
                Some(n) => problems.push(format!("is encrypted {n} times to {label} ({kind} key tag {tag})")),
            },
            Expected::X25519 => x25519_expected += 1,
        }
    }
    for ((kind, tag), n) in ssh_stanzas {
        let who = names_by_tag.get(&tag).map(|n| format!(", {n}")).unwrap_or_default();
        let times = if n > 1 { format!(" ({n} stanzas)") } else { String::new() };
        problems.push(format!("is encrypted to an {kind} key that is not one of its recipients (key tag {tag}{who}){times}"));
    }
    if x25519 != x25519_expected {
        problems.push(format!(
            "has {x25519} X25519 stanza(s) but secrets/secrets.nix lists {x25519_expected} age1… recipient(s) \
             (X25519 stanzas do not say whose key they are, so only their number is compared)"
        ));
    }
    problems
}

// ---------------------------------------------------------------------------------------------------------
// Checking

/// One problem, named by the file or host it is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    pub subject: String,
    pub message: String,
    /// A file encrypted to other keys than its recipients: what `secrets rekey` fixes.
    pub rekey_fixes: bool,
}

impl Problem {
    fn new(subject: String, message: String) -> Self {
        Self { subject, message, rekey_fixes: false }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.subject, self.message)
    }
}

pub struct Report {
    pub hosts: usize,
    pub files: usize,
    pub problems: Vec<Problem>,
}

/// A listed file as the check found it.
struct Listed {
    rel: String,
    recipients: Vec<String>,
    /// The recipients as stanzas show them, or why one cannot be used.
    expected: Result<Vec<Expected>, String>,
    /// Its stanzas; None when the file does not exist.
    stanzas: Option<Result<Vec<Stanza>, String>>,
    /// What is wrong with its stanzas (empty: they match).
    mismatch: Vec<String>,
}

struct State {
    model: Model,
    listed: Vec<Listed>,
    problems: Vec<Problem>,
}

fn file_subject(rel: &str) -> String {
    format!("secrets/{rel}")
}

fn inspect(repo: &Path) -> Result<State> {
    let model = evaluate(repo)?;
    let secrets_dir = repo.join("secrets");
    let names: BTreeMap<String, String> = model.keys.iter().map(|k| (k.key.clone(), k.name.clone())).collect();
    let names_by_tag: BTreeMap<String, String> =
        model.keys.iter().filter_map(|k| ssh_key_tag(&k.key).ok().map(|t| (t, k.name.clone()))).collect();
    let mut problems = Vec::new();

    let mut listed = Vec::new();
    for (rel, recipients) in &model.recipients {
        // rekey writes where secrets.nix points: only below secrets/
        if !Path::new(rel).components().all(|c| matches!(c, std::path::Component::Normal(_))) {
            problems.push(Problem::new(format!("secrets.nix entry {rel:?}"), "is not a path below secrets/".into()));
            continue;
        }
        let expected: Result<Vec<Expected>, String> = recipients.iter().map(|r| expected(r, &names)).collect();
        let path = secrets_dir.join(rel);
        let stanzas = match std::fs::File::open(&path) {
            Ok(f) => Some(read_stanzas(f)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => Some(Err(format!("cannot be read: {e}"))),
        };
        let mut mismatch = Vec::new();
        match (&stanzas, &expected) {
            (None, _) => {
                let owner = rel.split('/').next().unwrap_or_default();
                problems.push(Problem::new(
                    file_subject(rel),
                    format!(
                        "is listed in secrets/secrets.nix (a secret of {owner} in hosts/inventory.nix) but does not exist: \
                         create it with `cd secrets && agenix -e {rel}`"
                    ),
                ));
            }
            (Some(Err(e)), _) => problems.push(Problem::new(file_subject(rel), e.clone())),
            (Some(Ok(_)), Err(e)) => problems.push(Problem::new(file_subject(rel), e.clone())),
            (Some(Ok(stanzas)), Ok(expected)) => {
                mismatch = compare(stanzas, expected, &names_by_tag);
                let fix = "re-encrypt it: endoreg secrets rekey --identity ADMIN-KEY";
                for m in &mismatch {
                    problems.push(Problem { subject: file_subject(rel), message: format!("{m}; {fix}"), rekey_fixes: true });
                }
            }
        }
        listed.push(Listed { rel: rel.clone(), recipients: recipients.clone(), expected, stanzas, mismatch });
    }

    for rel in age_files(&secrets_dir)? {
        if !model.recipients.contains_key(&rel) {
            problems.push(Problem::new(
                file_subject(&rel),
                "is not listed in secrets/secrets.nix (no `secrets` entry of a host in hosts/inventory.nix names it), \
                          so nobody knows its recipients: add its name to the host's `secrets`, or delete it"
                    .into(),
            ));
        }
    }

    for (name, host) in &model.hosts {
        let subject = format!("host {name}");
        for role in &host.roles {
            if !model.roles.contains(role) {
                problems.push(Problem::new(
                    subject.clone(),
                    format!(
                        "has the unknown role `{role}` in hosts/inventory.nix (roles: {}; their secrets are in secrets/roles.nix)",
                        model.roles.join(", ")
                    ),
                ));
            }
        }
        let mut seen = BTreeSet::new();
        for need in &host.needs {
            if host.secrets.contains(&need.secret) || !seen.insert(&need.secret) {
                continue;
            }
            let because = match (&need.when, &need.setting) {
                (Some(when), Some(setting)) => {
                    format!(" because hosts/{name}/default.nix sets endoreg.roles.{}.{when} = {setting}", need.role)
                }
                (Some(when), None) => {
                    let hint = if host.settings_readable {
                        String::new()
                    } else {
                        format!("; hosts/{name}/default.nix is a function, which this check cannot read")
                    };
                    format!(" while endoreg.roles.{}.{when} is on, as it is by default{hint}", need.role)
                }
                (None, _) => String::new(),
            };
            problems.push(Problem::new(
                subject.clone(),
                format!(
                    "takes the role {}, which needs the secret {} ({}){because}, but it is not in the host's `secrets` in \
                     hosts/inventory.nix: add it there and create it with `cd secrets && agenix -e {name}/{}.age`",
                    need.role, need.secret, need.purpose, need.secret
                ),
            ));
        }
    }

    problems.sort();
    problems.dedup();
    Ok(State { model, listed, problems })
}

/// Every `.age` file below `dir`, relative to it with `/` separators. Links are not followed: a secret is a
/// file in the repository.
fn age_files(dir: &Path) -> Result<Vec<String>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("cannot list {}", d.display()))? {
            let entry = entry.with_context(|| format!("cannot list {}", d.display()))?;
            let kind = entry.file_type()?;
            let path = entry.path();
            if kind.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "age")
                && let Ok(rel) = path.strip_prefix(dir)
            {
                found.push(rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/"));
            }
        }
    }
    found.sort();
    Ok(found)
}

pub fn check(repo: &Path) -> Result<Report> {
    let state = inspect(repo)?;
    Ok(Report { hosts: state.model.hosts.len(), files: state.model.recipients.len(), problems: state.problems })
}

// ---------------------------------------------------------------------------------------------------------
// Re-encrypting

fn rekey(repo: &Path, identity: &Path, dry_run: bool, all: bool) -> Result<ExitCode> {
    let identities = load_identity(identity)?;
    let state = inspect(repo)?;
    let secrets_dir = repo.join("secrets");
    let (mut changed, mut unchanged, mut failed) = (0usize, 0usize, 0usize);
    let verb = if dry_run { "would re-encrypt" } else { "re-encrypted" };

    for listed in &state.listed {
        let subject = file_subject(&listed.rel);
        let (Some(Ok(_)), Ok(_)) = (&listed.stanzas, &listed.expected) else {
            // missing, unreadable, not age, or an unusable recipient: reported below, nothing to re-encrypt
            continue;
        };
        if listed.mismatch.is_empty() && !all {
            unchanged += 1;
            continue;
        }
        let path = secrets_dir.join(&listed.rel);
        match reencrypt(&path, &listed.recipients, &identities, identity, dry_run) {
            Ok(()) => {
                changed += 1;
                let why = if listed.mismatch.is_empty() {
                    "its stanzas matched; --all".to_owned()
                } else {
                    format!("before, it {}", listed.mismatch.join("; it "))
                };
                println!("{subject}: {verb} to its {} recipient(s) ({why})", listed.recipients.len());
            }
            Err(e) => {
                failed += 1;
                println!("{subject}: NOT re-encrypted: {e:#}");
            }
        }
    }

    // Problems a re-encryption cannot fix (a missing or stray file, a host without a secret its roles need).
    let other: Vec<&Problem> = state.problems.iter().filter(|p| !p.rekey_fixes).collect();
    for p in &other {
        println!("not fixed by rekey: {p}");
    }
    println!(
        "secrets rekey{}: {changed} {verb}, {unchanged} already encrypted to exactly their recipients (untouched), {failed} failed, {} other problem(s)",
        if dry_run { " (dry run, nothing written)" } else { "" },
        other.len()
    );
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

type Identities = Vec<Box<dyn age::Identity + Send + Sync>>;

/// An age identity file, or an unencrypted SSH private key.
fn load_identity(path: &Path) -> Result<Identities> {
    let shown = path.display();
    let bytes = SecretBox::new(Box::new(std::fs::read(path).with_context(|| format!("cannot read the identity {shown}"))?));
    if let Ok(file) = age::IdentityFile::from_buffer(bytes.expose_secret().as_slice()) {
        let identities = file.into_identities().map_err(|e| anyhow!("the identity file {shown}: {e}"))?;
        if !identities.is_empty() {
            return Ok(identities);
        }
    }
    match age::ssh::Identity::from_buffer(bytes.expose_secret().as_slice(), Some(shown.to_string())) {
        Ok(key @ age::ssh::Identity::Unencrypted(_)) => Ok(vec![Box::new(key)]),
        Ok(age::ssh::Identity::Encrypted(_)) => bail!(
            "{shown} is a passphrase-protected SSH key, which rekey cannot unlock: use an unprotected copy on a private tmpfs \
             (cp {shown} /dev/shm/k && ssh-keygen -p -N '' -f /dev/shm/k; then shred -u /dev/shm/k) or an age identity"
        ),
        Ok(age::ssh::Identity::Unsupported(_)) => bail!("{shown} is an SSH key of a kind age does not support (use ed25519 or RSA)"),
        Err(_) => bail!("{shown} is neither an age identity file (AGE-SECRET-KEY-1…) nor an SSH private key"),
    }
}

fn age_recipients(keys: &[String]) -> Result<Vec<Box<dyn age::Recipient + Send>>> {
    keys.iter()
        .map(|k| -> Result<Box<dyn age::Recipient + Send>> {
            if k.starts_with("ssh-") {
                let r =
                    age::ssh::Recipient::from_str(k).map_err(|e| anyhow!("recipient {} is not a usable SSH key: {e:?}", short_key(k)))?;
                Ok(Box::new(r))
            } else {
                let r = age::x25519::Recipient::from_str(k).map_err(|e| anyhow!("recipient {} is not an age key: {e}", short_key(k)))?;
                Ok(Box::new(r))
            }
        })
        .collect()
}

/// Decrypts `path` with `identities` and, unless `dry_run`, writes it again encrypted to `recipients`: to a
/// temporary file beside it, then renamed over it, so that the file is at every moment either the old or
/// the new one. The plaintext stays in memory (zeroed when dropped) and is never printed.
fn reencrypt(path: &Path, keys: &[String], identities: &Identities, identity: &Path, dry_run: bool) -> Result<()> {
    let encrypted = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let decryptor = age::Decryptor::new_buffered(encrypted.as_slice()).map_err(|e| anyhow!("cannot read it as age: {e}"))?;
    let mut reader = decryptor.decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity)).map_err(|e| match e {
        age::DecryptError::NoMatchingKeys => anyhow!(
            "{} cannot decrypt it (it is not one of the keys the file is encrypted to); use the key of an administrator it is encrypted to",
            identity.display()
        ),
        e => anyhow!("cannot decrypt it: {e}"),
    })?;
    let mut plain = SecretBox::new(Box::new(Vec::new()));
    reader.read_to_end(plain.expose_secret_mut()).map_err(|e| anyhow!("cannot decrypt it: {e}"))?;

    let recipients = age_recipients(keys)?;
    let encryptor = age::Encryptor::with_recipients(recipients.iter().map(|r| r.as_ref() as &dyn age::Recipient))
        .map_err(|e| anyhow!("cannot encrypt to its recipients: {e}"))?;
    let mut output = Vec::new();
    let mut writer = encryptor.wrap_output(&mut output)?;
    writer.write_all(plain.expose_secret())?;
    writer.finish()?;
    drop(plain);

    // What replaces the file must be what the check expects.
    let stanzas = parse_header(&output).map_err(|e| anyhow!("the re-encrypted file {e}"))?;
    let expected = keys.iter().map(|k| expected(k, &BTreeMap::new())).collect::<Result<Vec<_>, _>>().map_err(|e| anyhow!("{e}"))?;
    let left = compare(&stanzas, &expected, &BTreeMap::new());
    if !left.is_empty() {
        bail!("the re-encrypted file would still not match its recipients: {}", left.join("; "));
    }
    if dry_run {
        return Ok(());
    }
    write_atomically(path, &output)
}

/// Replaces `path` by `content` through a temporary file in the same directory and a rename, keeping the
/// file's permissions.
fn write_atomically(path: &Path, content: &[u8]) -> Result<()> {
    let dir = path.parent().ok_or_else(|| anyhow!("{} has no directory", path.display()))?;
    let permissions = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?.permissions();
    let mut tmp = tempfile::Builder::new()
        .prefix(".rekey-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    tmp.write_all(content).and_then(|()| tmp.as_file().sync_all()).with_context(|| format!("cannot write {}", tmp.path().display()))?;
    std::fs::set_permissions(tmp.path(), permissions).with_context(|| format!("cannot set the permissions of {}", tmp.path().display()))?;
    tmp.persist(path).map_err(|e| anyhow!("cannot replace {}: {}", path.display(), e.error))?;
    // the rename is durable only once the directory is
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILR9EofsWJMCKfTzFL4xA59jvXJmhXCfv1YCi6h6eSNh alice (example admin)";

    #[test]
    fn the_key_tag_is_the_one_age_writes() {
        // secrets/proc1/*.age are encrypted to alice; their stanzas carry this tag
        assert_eq!(ssh_key_tag(ALICE).unwrap(), "/coFKg");
        assert!(ssh_key_tag("ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAILR9EofsWJMCKfTzFL4xA59jvXJmhXCfv1YCi6h6eSNh").is_err());
        assert!(ssh_key_tag("nonsense").is_err());
    }

    #[test]
    fn headers_are_read_and_damage_is_named() {
        let file = b"age-encryption.org/v1\n-> ssh-ed25519 /coFKg abc\nAAAA\n-> X25519 xyz\n\n-> a-grease x y\n\n--- mac\n\x00\xff binary";
        let stanzas = parse_header(file).unwrap();
        assert_eq!(stanzas.iter().map(|s| s.kind.as_str()).collect::<Vec<_>>(), ["ssh-ed25519", "X25519", "a-grease"]);
        assert_eq!(stanzas[0].args, ["/coFKg", "abc"]);
        assert!(parse_header(b"hello").unwrap_err().contains("not an age file"));
        assert!(parse_header(b"-----BEGIN AGE ENCRYPTED FILE-----\n").unwrap_err().contains("armored"));
        assert!(parse_header(b"age-encryption.org/v1\n-> X25519 a\n").unwrap_err().contains("no end of header"));
    }

    #[test]
    fn stanzas_must_match_recipients_exactly() {
        let names = BTreeMap::from([(ALICE.to_owned(), "administrator alice".to_owned())]);
        let alice = expected(ALICE, &names).unwrap();
        let x = expected("age1gfhwr0e35ktqwl9yr7stu3a796mwmw09t7nj6kvquvf83edyx9cqcc8ltj", &names).unwrap();
        let st = |kind: &str, tag: &str| Stanza { kind: kind.into(), args: vec![tag.into(), "share".into()] };
        let none = BTreeMap::new();
        assert!(compare(&[st("ssh-ed25519", "/coFKg"), st("X25519", "s")], &[alice.clone(), x.clone()], &none).is_empty());
        let p = compare(&[st("ssh-ed25519", "AAAAAA")], std::slice::from_ref(&alice), &none);
        assert!(p[0].contains("not encrypted to administrator alice"), "{p:?}");
        assert!(p[1].contains("not one of its recipients (key tag AAAAAA)"), "{p:?}");
        let p = compare(&[st("ssh-ed25519", "/coFKg"), st("ssh-ed25519", "/coFKg")], std::slice::from_ref(&alice), &none);
        assert!(p[0].contains("encrypted 2 times"), "{p:?}");
        let p = compare(&[st("ssh-ed25519", "/coFKg"), st("piv-p256", "x")], &[alice.clone(), x], &none);
        assert!(p.iter().any(|m| m.contains("`piv-p256` stanza")) && p.iter().any(|m| m.contains("0 X25519 stanza(s)")), "{p:?}");
        assert!(expected("age1yubikey1qwerty", &names).unwrap_err().contains("does not know"));
    }
}
