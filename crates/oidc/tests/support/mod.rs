//! A real OpenID provider for the tests: `oidc-provider` from npm (tests/provider/), installed once with
//! `npm ci` into a cache under the target directory, started on loopback with a port the kernel picks.
//! Also: forging tokens with the provider's own keys (and with keys it does not publish), and a
//! minimal browser (cookies, manual redirects) to drive the sign-in.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use endoreg_oidc::OidcConfig;
use reqwest::Url;
use serde::Deserialize;
use serde_json::{Value, json};

const PROVIDER_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/provider");

/// The directory holding node_modules (installed once per package-lock.json) and provider.js.
fn installed() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let lock = std::fs::read(Path::new(PROVIDER_DIR).join("package-lock.json")).expect("package-lock.json");
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &lock);
        let tag: String = digest.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("oidc-provider-{tag}"));
        if !dir.join("node_modules/oidc-provider/package.json").exists() {
            // Install beside, then rename: a half-finished install is never mistaken for a finished one.
            let staging = dir.with_extension(format!("staging-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&staging);
            std::fs::create_dir_all(&staging).unwrap();
            for f in ["package.json", "package-lock.json"] {
                std::fs::copy(Path::new(PROVIDER_DIR).join(f), staging.join(f)).unwrap();
            }
            let out = Command::new("npm")
                .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"])
                .current_dir(&staging)
                .output()
                .expect("the tests need node and npm on PATH (Debian: apt-get install nodejs npm)");
            assert!(out.status.success(), "npm ci failed: {}", String::from_utf8_lossy(&out.stderr));
            if std::fs::rename(&staging, &dir).is_err() {
                // Another process finished first; its install serves.
                let _ = std::fs::remove_dir_all(&staging);
            }
        }
        // The script is resolved beside node_modules; copy it in (atomically) at every run so an edit counts.
        let tmp = dir.join(format!("provider.js.{}", std::process::id()));
        std::fs::copy(Path::new(PROVIDER_DIR).join("provider.js"), &tmp).unwrap();
        std::fs::rename(&tmp, dir.join("provider.js")).unwrap();
        dir
    })
}

#[derive(Debug, Clone, Deserialize)]
pub struct KeyInfo {
    pub kid: String,
    pub kty: String,
    pub alg: Option<String>,
    pub pkcs8: String,
    pub spki_pem: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Keys {
    pub issuer: String,
    pub audience: String,
    pub first: Vec<KeyInfo>,
    pub second: Vec<KeyInfo>,
    pub outsider: Vec<KeyInfo>,
}

impl Keys {
    /// The key of `kty` (RSA, EC, OKP) in a generation.
    pub fn of(generation: &[KeyInfo], kty: &str) -> KeyInfo {
        generation.iter().find(|k| k.kty == kty).cloned().unwrap()
    }
}

pub struct Provider {
    pub issuer: String,
    pub keys: Keys,
    child: Child,
    // Kept open: the provider exits when it closes (when this process ends, however it ends).
    _stdin: ChildStdin,
    _dir: tempfile::TempDir,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Provider {
    /// Starts a provider of its own (for tests that rotate its keys or count its key fetches).
    pub async fn start() -> Provider {
        let dir = installed();
        let state = tempfile::tempdir().unwrap();
        let mut child = Command::new("node")
            .arg(dir.join("provider.js"))
            .arg(state.path())
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the tests need node on PATH (Debian: apt-get install nodejs npm)");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        // The first line names the port; if the provider dies first, say why.
        let (line, stdout) = tokio::task::spawn_blocking(move || {
            let mut stdout = BufReader::new(stdout);
            let mut line = String::new();
            stdout.read_line(&mut line).unwrap();
            (line, stdout)
        })
        .await
        .unwrap();
        let Some(port) = line.trim().strip_prefix("port ") else {
            let mut err = String::new();
            let _ = stderr.read_to_string(&mut err);
            panic!("the provider did not start: {line:?}\n{err}");
        };
        // Keep reading both pipes: the provider never blocks on a full pipe nor fails writing to a closed
        // one, and what it says shows with the test's output.
        std::thread::spawn(move || stdout.lines().map_while(Result::ok).for_each(|line| eprintln!("[provider] {line}")));
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !line.contains("WARNING") {
                    eprintln!("[provider] {line}");
                }
            }
        });
        let issuer = format!("http://127.0.0.1:{port}");
        wait_for_discovery(&issuer).await;
        let keys: Keys = serde_json::from_slice(&std::fs::read(state.path().join("keys.json")).unwrap()).unwrap();
        assert_eq!(keys.issuer, issuer);
        Provider { issuer, keys, child, _stdin: stdin, _dir: state }
    }

    /// One provider for every test that only reads from it (no rotation, no counting).
    pub async fn shared() -> &'static Provider {
        static SHARED: tokio::sync::OnceCell<Provider> = tokio::sync::OnceCell::const_new();
        SHARED.get_or_init(Provider::start).await
    }

    pub fn config(&self) -> OidcConfig {
        OidcConfig {
            issuer: Some(self.issuer.clone()),
            client_id: "registry-web".into(),
            audience: Some(self.keys.audience.clone()),
            ..OidcConfig::default()
        }
    }

    /// The config with the client secret in a file (the browser sign-in needs it).
    pub fn config_with_secret(&self, dir: &Path, secret: &str) -> OidcConfig {
        let path = dir.join("client-secret");
        std::fs::write(&path, format!("{secret}\n")).unwrap();
        OidcConfig { client_secret_file: Some(path), ..self.config() }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// An access token for a machine client (client credentials grant).
    pub async fn client_credentials(&self, client: &str) -> String {
        let response = reqwest::Client::new()
            .post(self.url("/token"))
            .basic_auth(client, Some(format!("{client}-secret")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials&scope=api")
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert!(status.is_success(), "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn rotate(&self) {
        let r = reqwest::Client::new().post(self.url("/__test/rotate")).send().await.unwrap();
        assert_eq!(r.status(), 204);
    }

    /// How often the provider has served its key set.
    pub async fn jwks_hits(&self) -> u64 {
        reqwest::get(self.url("/__test/jwks-hits")).await.unwrap().text().await.unwrap().parse().unwrap()
    }
}

async fn wait_for_discovery(issuer: &str) {
    let url = format!("{issuer}/.well-known/openid-configuration");
    let deadline = Instant::now() + Duration::from_secs(30);
    let client = reqwest::Client::new();
    loop {
        if let Ok(r) = client.get(&url).send().await
            && r.status().is_success()
        {
            return;
        }
        assert!(Instant::now() < deadline, "the provider's discovery document did not appear at {url}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The claims of a token, unverified (to copy a real token's claims into a forged one).
pub fn payload(token: &str) -> serde_json::Map<String, Value> {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

pub fn header(token: &str) -> Value {
    let part = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// A JWS over `header` and `claims`, signed with `key` under `alg` (RS256, PS256, ES256, EdDSA).
pub fn sign(key: &KeyInfo, alg: &str, header: Value, claims: &Value) -> String {
    let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let der = STANDARD.decode(&key.pkcs8).unwrap();
    let rng = SystemRandom::new();
    let sig: Vec<u8> = match alg {
        "RS256" | "PS256" => {
            let pair = RsaKeyPair::from_pkcs8(&der).unwrap();
            let mut out = vec![0; pair.public_modulus_len()];
            let enc: &dyn signature::RsaEncoding = if alg == "RS256" { &signature::RSA_PKCS1_SHA256 } else { &signature::RSA_PSS_SHA256 };
            pair.sign(enc, &rng, input.as_bytes(), &mut out).unwrap();
            out
        }
        "ES256" => {
            let pair = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &der).unwrap();
            pair.sign(&rng, input.as_bytes()).unwrap().as_ref().to_vec()
        }
        "EdDSA" => {
            let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).unwrap();
            pair.sign(input.as_bytes()).as_ref().to_vec()
        }
        other => panic!("no signer for {other}"),
    };
    format!("{input}.{}", b64(&sig))
}

/// A token with the provider's registered claims, valid now by the given clock reading.
pub fn claims_at(keys: &Keys, now: i64, extra: Value) -> Value {
    let mut c = json!({
        "iss": keys.issuer,
        "aud": keys.audience,
        "sub": "svc-forged",
        "iat": now,
        "exp": now + 300,
        "realm_access": {"roles": ["researcher"]},
        "groups": ["/centers/uni_wuerzburg"],
    });
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// A browser: keeps cookies (by name; the provider's paths do not matter here) and follows redirects
/// by hand, so the test sees where it is sent.
pub struct Browser {
    client: reqwest::Client,
    cookies: BTreeMap<String, String>,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Self {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { client, cookies: BTreeMap::new() }
    }

    /// GET `url`; returns the status and the `Location` (resolved against `url`).
    pub async fn get(&mut self, url: &Url) -> (u16, Option<Url>, String) {
        let cookie = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
        let mut req = self.client.get(url.clone());
        if !cookie.is_empty() {
            req = req.header("cookie", cookie);
        }
        let r = req.send().await.unwrap();
        for set in r.headers().get_all("set-cookie") {
            let pair = set.to_str().unwrap().split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let status = r.status().as_u16();
        let location = r.headers().get("location").map(|l| url.join(l.to_str().unwrap()).unwrap());
        (status, location, r.text().await.unwrap())
    }

    /// Follows the sign-in from the authorization URL to the redirect back to `redirect_uri`, logging in
    /// as `account` at the provider's (scripted) interaction. Returns the callback URL.
    pub async fn sign_in(&mut self, authorization_url: &Url, account: &str, redirect_uri: &str) -> Url {
        let mut url = authorization_url.clone();
        for _ in 0..10 {
            if url.as_str().starts_with(redirect_uri) {
                return url;
            }
            if url.path().starts_with("/interaction/") && !url.query_pairs().any(|(k, _)| k == "login") {
                url.query_pairs_mut().append_pair("login", account);
            }
            let (status, location, body) = self.get(&url).await;
            url = location.unwrap_or_else(|| panic!("{url} answered {status} without a redirect: {body}"));
        }
        panic!("the sign-in did not come back to {redirect_uri}");
    }
}
