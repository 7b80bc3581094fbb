//! The deployment's inventory, roles and secrets agree (read with nix-instantiate, as `.ci-nix/check.sh`
//! does), and `endoreg secrets check` / `secrets rekey` find and fix what an administrator can get wrong.
//!
//! These tests need the repository's Nix files and `nix-instantiate` (Debian: nix-bin, installed by
//! .ci/setup). Where the Nix files are absent (the sandbox of `nix flake check` builds from crates/ only),
//! they say so and pass.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test reports failure

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::str::FromStr;

use serde_json::Value;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// The checkout with its Nix side, or None (and a note) where the Nix files are not there.
fn checkout() -> Option<PathBuf> {
    let root = repo_root();
    if root.join("secrets/secrets.nix").is_file() && root.join("hosts/inventory.nix").is_file() {
        Some(root)
    } else {
        eprintln!("skipped: {} has no hosts/inventory.nix or secrets/secrets.nix (a build of crates/ only)", root.display());
        None
    }
}

fn nix_eval(dir: &Path, file: &str) -> Value {
    let out = Command::new("nix-instantiate").args(["--eval", "--strict", "--json", file]).current_dir(dir).output().unwrap_or_else(|e| {
        panic!("nix-instantiate is needed for this test (Debian: apt-get install nix-bin; .ci/setup installs it): {e}")
    });
    assert!(out.status.success(), "nix-instantiate {file}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn endoreg(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_endoreg")).args(args).env_remove("ENDOREG_CONFIG").output().unwrap()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect()
}

/// A copy of the Nix side of the checkout (hosts/, roles/, secrets/) to tamper with.
fn copy_of(root: &Path) -> tempfile::TempDir {
    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy_dir(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    for sub in ["hosts", "roles", "secrets"] {
        copy_dir(&root.join(sub), &dir.path().join(sub));
    }
    dir
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} does not contain {from:?}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

/// Every `.age` file below `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "age") {
                files.insert(path.strip_prefix(dir).unwrap().to_owned(), std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

fn decrypt(file: &Path, identity: &dyn age::Identity) -> Vec<u8> {
    let bytes = std::fs::read(file).unwrap();
    let mut plain = Vec::new();
    age::Decryptor::new_buffered(bytes.as_slice())
        .unwrap()
        .decrypt(std::iter::once(identity))
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .read_to_end(&mut plain)
        .unwrap();
    plain
}

fn ssh_identity(path: &Path) -> age::ssh::Identity {
    age::ssh::Identity::from_buffer(std::fs::read(path).unwrap().as_slice(), None).unwrap()
}

fn admin_identity(root: &Path) -> Box<dyn age::Identity + Send + Sync> {
    let file = age::IdentityFile::from_file(root.join("secrets/test/keys/TEST-ONLY-admin.agekey").display().to_string()).unwrap();
    file.into_identities().unwrap().pop().unwrap()
}

#[test]
fn inventory_roles_and_secrets_agree() {
    let Some(root) = checkout() else { return };
    let inventory = nix_eval(&root, "hosts/inventory.nix");
    let rules = nix_eval(&root, "secrets/secrets.nix");
    let role_secrets = nix_eval(&root, "secrets/roles.nix");
    let roles_default = std::fs::read_to_string(root.join("roles/default.nix")).unwrap();
    // flake.nix builds for these systems
    let systems = ["x86_64-linux", "aarch64-linux"];

    let admins: BTreeSet<String> = inventory["admins"].as_object().unwrap().values().map(|k| k.as_str().unwrap().to_owned()).collect();
    let test_admins: BTreeSet<String> =
        inventory["test"]["admins"].as_object().unwrap().values().map(|k| k.as_str().unwrap().to_owned()).collect();
    assert!(!admins.is_empty(), "hosts/inventory.nix names no administrator: nobody could edit a secret");
    for key in admins.iter().chain(&test_admins) {
        let ok = age::ssh::Recipient::from_str(key).is_ok() || age::x25519::Recipient::from_str(key).is_ok();
        assert!(ok, "administrator key {key:?} is neither an SSH nor an age public key");
    }

    /// A host or test host, as the secrets see it.
    struct Owner<'a> {
        key: String,
        secrets: Vec<String>,
        /// whom its secrets are encrypted to besides itself
        admins: &'a BTreeSet<String>,
        test: bool,
    }
    let mut owners: BTreeMap<String, Owner> = BTreeMap::new();
    for (name, host) in inventory["hosts"].as_object().unwrap() {
        let system = host["system"].as_str().unwrap_or_default();
        assert!(systems.contains(&system), "host {name}: system {system:?} is not one of {systems:?}");
        let roles = strs(&host["roles"]);
        assert!(!roles.is_empty(), "host {name} has no role");
        for role in &roles {
            assert!(root.join(format!("roles/{role}.nix")).is_file(), "host {name}: role {role} has no roles/{role}.nix");
            assert!(roles_default.contains(&format!("./{role}.nix")), "host {name}: roles/default.nix does not import {role}");
            assert!(role_secrets.get(role).is_some(), "host {name}: role {role} is missing from secrets/roles.nix");
        }
        let key = host["hostKey"].as_str().unwrap_or_else(|| panic!("host {name} has no hostKey"));
        assert!(
            key.starts_with("ssh-ed25519 ") && age::ssh::Recipient::from_str(key).is_ok(),
            "host {name}: hostKey {key:?} is not an ed25519 key"
        );
        assert!(host["stateVersion"].is_string(), "host {name} has no stateVersion");
        owners.insert(name.clone(), Owner { key: key.to_owned(), secrets: strs(&host["secrets"]), admins: &admins, test: false });
    }
    for (name, host) in inventory["test"]["hosts"].as_object().unwrap() {
        assert!(!owners.contains_key(name), "test host {name} has the name of a real host");
        let key = host["hostKey"].as_str().unwrap().to_owned();
        owners.insert(name.clone(), Owner { key, secrets: strs(&host["secrets"]), admins: &test_admins, test: true });
    }
    let test_keys: BTreeSet<&String> = test_admins.iter().chain(owners.values().filter(|o| o.test).map(|o| &o.key)).collect();

    let rules = rules.as_object().unwrap();
    for (file, rule) in rules {
        let (host, secret) =
            file.strip_suffix(".age").and_then(|f| f.split_once('/')).unwrap_or_else(|| panic!("{file} is not <host>/<name>.age"));
        let owner = owners.get(host).unwrap_or_else(|| panic!("secrets/{file}: {host} is neither a host nor a test host"));
        assert!(owner.secrets.iter().any(|s| s == secret), "secrets/{file}: {secret} is not a secret of {host}");
        let recipients = strs(&rule["publicKeys"]);
        let expected: BTreeSet<&String> = std::iter::once(&owner.key).chain(owner.admins.iter()).collect();
        assert_eq!(recipients.len(), expected.len(), "secrets/{file}: recipients {recipients:?} (duplicates?)");
        assert_eq!(
            recipients.iter().collect::<BTreeSet<_>>(),
            expected,
            "secrets/{file}: recipients are not {host}'s key plus the administrators"
        );
        if !owner.test {
            assert!(recipients.iter().all(|r| !test_keys.contains(r)), "secrets/{file}: a TEST-ONLY key is a recipient of a real secret");
        }
    }
    for (host, owner) in &owners {
        for s in &owner.secrets {
            assert!(rules.contains_key(&format!("{host}/{s}.age")), "{host}'s secret {s} has no entry in secrets/secrets.nix");
        }
    }
}

#[test]
fn secrets_check_passes_on_the_repository() {
    let Some(root) = checkout() else { return };
    let out = endoreg(&["secrets", "check", "--repo", root.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("encrypted to exactly its recipients"), "{}", text(&out));
}

#[test]
fn secrets_check_names_each_problem() {
    let Some(root) = checkout() else { return };
    let copy = copy_of(&root);
    let dir = copy.path();
    let secrets = dir.join("secrets");
    // tampered: proc1's media token replaced by the test one (encrypted to the test keys)
    std::fs::copy(secrets.join("test/media-token.age"), secrets.join("proc1/media-token.age")).unwrap();
    // missing
    std::fs::remove_file(secrets.join("allinone/registry-admin-token.age")).unwrap();
    // extra
    std::fs::copy(secrets.join("proc1/registry-admin-token.age"), secrets.join("proc1/stray.age")).unwrap();
    // not age
    std::fs::write(secrets.join("proc1/restic-repository.age"), "sftp:backup@example.org:/srv\n").unwrap();
    // a role's secret dropped from the inventory: once with the role's default setting, once with the setting
    // read from hosts/proc1/default.nix (offsiteBackup.enable = true)
    let inventory = dir.join("hosts/inventory.nix");
    edit(
        &inventory,
        r#"secrets = [ "registry-admin-token" "media-token" "inference-token" ];"#,
        r#"secrets = [ "registry-admin-token" "inference-token" ];"#,
    );
    edit(&inventory, r#""restic-repository" "restic-password" ]"#, r#""restic-repository" ]"#);
    edit(&inventory, r#"roles = [ "research-workstation" ];"#, r#"roles = [ "research-workstation" "mystery" ];"#);

    let out = endoreg(&["secrets", "check", "--repo", dir.to_str().unwrap()]);
    let report = text(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    let expected = [
        "secrets/proc1/media-token.age: is not encrypted to host proc1 (ssh-ed25519 key tag V8YtRQ)",
        "secrets/proc1/media-token.age: is not encrypted to administrator alice (ssh-ed25519 key tag /coFKg)",
        "secrets/proc1/media-token.age: is encrypted to an ssh-ed25519 key that is not one of its recipients (key tag 67i3Rg, test host test)",
        "secrets/proc1/media-token.age: has 1 X25519 stanza(s) but secrets/secrets.nix lists 0 age1… recipient(s)",
        "secrets/allinone/registry-admin-token.age: is listed in secrets/secrets.nix (a secret of allinone in hosts/inventory.nix) but does not exist",
        "secrets/proc1/stray.age: is not listed in secrets/secrets.nix",
        "secrets/allinone/media-token.age: is not listed in secrets/secrets.nix",
        "secrets/proc1/restic-password.age: is not listed in secrets/secrets.nix",
        "secrets/proc1/restic-repository.age: is not an age file",
        "host allinone: takes the role data-processing, which needs the secret media-token (the media workers' token `media` (role service), registered by the registry at every start) while endoreg.roles.data-processing.mediaWorkers is on, as it is by default, but it is not in the host's `secrets`",
        "host proc1: takes the role data-processing, which needs the secret restic-password (the key of the off-site copy's restic repository) because hosts/proc1/default.nix sets endoreg.roles.data-processing.offsiteBackup.enable = true",
        "host ws1: has the unknown role `mystery` in hosts/inventory.nix",
    ];
    for e in expected {
        assert!(report.lines().any(|l| l.starts_with(e)), "expected a line starting with\n  {e}\nin\n{report}");
    }
    let problems: Vec<&str> = report.lines().filter(|l| !l.starts_with("secrets check:")).collect();
    assert_eq!(problems.len(), expected.len(), "{report}");
    assert!(report.contains(&format!("secrets check: {} problem(s)", expected.len())), "{report}");
}

#[test]
fn secrets_check_says_what_it_needs() {
    let Some(root) = checkout() else { return };
    let empty = tempfile::tempdir().unwrap();
    let out = endoreg(&["secrets", "check", "--repo", empty.path().to_str().unwrap()]);
    assert!(!out.status.success() && text(&out).contains("is not an endoreg checkout"), "{}", text(&out));

    let out = Command::new(env!("CARGO_BIN_EXE_endoreg"))
        .args(["secrets", "check", "--repo", root.to_str().unwrap()])
        .env("PATH", empty.path())
        .output()
        .unwrap();
    assert!(!out.status.success() && text(&out).contains("nix-instantiate was not found"), "{}", text(&out));
}

#[test]
fn rekey_follows_a_changed_host_key_and_touches_nothing_else() {
    let Some(root) = checkout() else { return };
    let copy = copy_of(&root);
    let dir = copy.path();
    let repo = dir.to_str().unwrap();
    let keys = root.join("secrets/test/keys");
    let admin_key = keys.join("TEST-ONLY-admin.agekey");
    let admin = admin_identity(&root);
    let before = snapshot(dir);
    let plaintexts: BTreeMap<&str, Vec<u8>> = ["media-token", "registry-admin-token", "registry-admin-token-rotated"]
        .into_iter()
        .map(|n| (n, decrypt(&dir.join(format!("secrets/test/{n}.age")), admin.as_ref())))
        .collect();

    // The test host was reinstalled: its key is now the stranger's.
    let holder = std::fs::read_to_string(keys.join("TEST-ONLY-host-ed25519.pub")).unwrap();
    let stranger = std::fs::read_to_string(keys.join("TEST-ONLY-stranger-host-ed25519.pub")).unwrap();
    edit(&dir.join("hosts/inventory.nix"), holder.trim(), stranger.trim());
    let out = endoreg(&["secrets", "check", "--repo", repo]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("secrets/test/media-token.age: is not encrypted to test host test"), "{}", text(&out));

    // A dry run decrypts (so it can fail) but writes nothing.
    let out = endoreg(&["secrets", "rekey", "--identity", admin_key.to_str().unwrap(), "--repo", repo, "--dry-run"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("secrets/test/media-token.age: would re-encrypt to its 2 recipient(s)"), "{}", text(&out));
    assert!(text(&out).contains("6 would re-encrypt, 7 already encrypted"), "{}", text(&out));
    assert_eq!(snapshot(dir), before);

    let out = endoreg(&["secrets", "rekey", "--identity", admin_key.to_str().unwrap(), "--repo", repo]);
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    assert!(report.contains("6 re-encrypted, 7 already encrypted to exactly their recipients (untouched), 0 failed"), "{report}");
    for plain in plaintexts.values() {
        assert!(!report.contains(String::from_utf8_lossy(plain).trim()), "rekey printed a secret");
    }
    let after = snapshot(dir);
    for (file, bytes) in &before {
        let changed = after[file] != *bytes;
        assert_eq!(changed, file.starts_with("secrets/test"), "{}", file.display());
    }
    assert!(endoreg(&["secrets", "check", "--repo", repo]).status.success());
    // the new host key and the administrator read the same secrets as before
    let new_host = ssh_identity(&keys.join("TEST-ONLY-stranger-host-ed25519"));
    for (name, plain) in &plaintexts {
        let file = dir.join(format!("secrets/test/{name}.age"));
        assert_eq!(&decrypt(&file, &new_host), plain, "{name}");
        assert_eq!(&decrypt(&file, admin.as_ref()), plain, "{name}");
    }
    // nothing left to do
    let out = endoreg(&["secrets", "rekey", "--identity", admin_key.to_str().unwrap(), "--repo", repo]);
    assert!(text(&out).contains("0 re-encrypted, 13 already"), "{}", text(&out));
    assert_eq!(snapshot(dir), after);
}

#[test]
fn rekey_all_with_an_ssh_key_and_its_failures() {
    let Some(root) = checkout() else { return };
    let copy = copy_of(&root);
    let dir = copy.path();
    let repo = dir.to_str().unwrap();
    let keys = root.join("secrets/test/keys");
    let host_key = keys.join("TEST-ONLY-host-ed25519");
    let plain = decrypt(&dir.join("secrets/test/media-token.age"), admin_identity(&root).as_ref());

    // The test administrator's age key is replaced by a new one. X25519 stanzas do not say whose they are,
    // so the check cannot see the swap (their number is the same) ...
    let new_admin = age::x25519::Identity::generate();
    let inventory = nix_eval(dir, "hosts/inventory.nix");
    let old_admin = inventory["test"]["admins"]["test-admin"].as_str().unwrap().to_owned();
    edit(&dir.join("hosts/inventory.nix"), &old_admin, &new_admin.to_public().to_string());
    assert!(endoreg(&["secrets", "check", "--repo", repo]).status.success());

    // ... and `rekey --all` re-encrypts every file; the test host's SSH key opens the test secrets, not the
    // example hosts' ones, which fail by name and stay as they were.
    let before = snapshot(dir);
    let out = endoreg(&["secrets", "rekey", "--all", "--identity", host_key.to_str().unwrap(), "--repo", repo]);
    let report = text(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(report.contains("6 re-encrypted, 0 already encrypted to exactly their recipients (untouched), 7 failed"), "{report}");
    assert!(
        report.contains("secrets/proc1/media-token.age: NOT re-encrypted:")
            && report.contains("cannot decrypt it (it is not one of the keys"),
        "{report}"
    );
    let after = snapshot(dir);
    for (file, bytes) in &before {
        assert_eq!(after[file] != *bytes, file.starts_with("secrets/test"), "{}", file.display());
    }
    assert_eq!(decrypt(&dir.join("secrets/test/media-token.age"), &new_admin), plain);

    // identities that are none
    let junk = dir.join("junk");
    std::fs::write(&junk, "not a key\n").unwrap();
    let out = endoreg(&["secrets", "rekey", "--identity", junk.to_str().unwrap(), "--repo", repo]);
    assert!(!out.status.success() && text(&out).contains("neither an age identity file"), "{}", text(&out));
    let out = endoreg(&["secrets", "rekey", "--identity", dir.join("absent").to_str().unwrap(), "--repo", repo]);
    assert!(!out.status.success() && text(&out).contains("cannot read the identity"), "{}", text(&out));
}
