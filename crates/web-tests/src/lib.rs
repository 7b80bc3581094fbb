//! What the browser tests share: a registry served on loopback (SQLite, our knowledge base, a token per
//! role) with the demo video processed by the real media worker, and headless Chromium driven through
//! its WebDriver (`chromedriver`, W3C protocol over HTTP: a few JSON requests, spoken here directly).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test reports failure

use std::collections::HashMap;
use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

use endoreg_common::access::Role;
use endoreg_common::api::{JobClaim, TokenCreate, UploadMetadata, Video};
use endoreg_common::secret::Secret;
use endoreg_common::storage::{Identities, Store};
use endoreg_media::client::Client;
use endoreg_media::config::MediaConfig;
use endoreg_media::video::demo::{self, DemoSpec};
use endoreg_media::video::encode::H264Settings;
use endoreg_media::video::frames::FrameSettings;
use endoreg_media::worker::Worker;
use endoreg_registry::config::RegistryConfig;
use endoreg_registry::db::{ConnectOptions, Db};

/// How long a condition in the page may take to come true.
pub const WAIT: Duration = Duration::from_secs(20);

/// A registry on `http://127.0.0.1:<port>`.
pub struct Registry {
    pub url: String,
    pub db: Db,
    pub config: RegistryConfig,
    pub tokens: HashMap<Role, String>,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
    _server: tokio::task::JoinHandle<()>,
}

impl Registry {
    /// A new registry: migrated SQLite, the built-in knowledge base, one token per role, served by the
    /// registry's own server (connection limits, timeouts) on a free loopback port.
    pub async fn start() -> Registry {
        // Internal errors are logged with their incident id; a failing test shows them.
        endoreg_common::logging::init(log::LevelFilter::Warn);
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let db = Db::connect(&format!("sqlite://{}", data.join("registry.db").display()), &ConnectOptions::default()).await.unwrap();
        db.migrate().await.unwrap();
        endoreg_registry::kb::load(&db, &endoreg_registry::kb::ours::Files::builtin()).await.unwrap();
        let mut tokens = HashMap::new();
        for role in Role::ALL {
            let t = endoreg_registry::service::tokens::create(
                &db,
                &TokenCreate { name: format!("browser {role}"), role, expires_in_days: None },
            )
            .await
            .unwrap();
            tokens.insert(role, t.token);
        }
        let config = RegistryConfig { data_dir: data, ..RegistryConfig::default() };
        let app = endoreg_registry::http::router(db.clone(), &config).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let http_config = config.http.clone();
        let server = tokio::spawn(async move {
            endoreg_registry::server::serve_on(listener, app, &http_config, std::future::pending()).await;
        });
        Registry { url, db, config, tokens, http: reqwest::Client::new(), _dir: dir, _server: server }
    }

    /// An API call as `role`; the answer's status and JSON body.
    pub async fn api(&self, role: Role, method: reqwest::Method, path: &str, body: Option<Value>, if_match: Option<i64>) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.url)).bearer_auth(&self.tokens[&role]);
        if let Some(b) = body {
            req = req.json(&b);
        }
        if let Some(v) = if_match {
            req = req.header("If-Match", format!("\"{v}\""));
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// The media worker of this registry (a service token of its own).
    pub async fn media_worker(&self) -> Worker {
        let token = endoreg_registry::service::tokens::create(
            &self.db,
            &TokenCreate { name: "media worker".into(), role: Role::Service, expires_in_days: None },
        )
        .await
        .unwrap();
        let cfg = MediaConfig {
            data_dir: self.config.data_dir.clone(),
            registry_url: self.url.clone(),
            lease_secs: 60,
            anonymise: H264Settings { crf: 28, preset: "ultrafast".into(), threads: 0, ..H264Settings::default() },
            frames: FrameSettings { step: 5, jpeg_qscale: 5, workers: 2 },
            ..MediaConfig::default()
        };
        Worker {
            client: Client::new(&cfg.registry_url, Secret::new(token.token)).unwrap(),
            store: Store::open(&cfg.storage, &self.config.data_dir).unwrap(),
            identities: Identities::read(&self.config.local_key_file()).unwrap(),
            cfg,
            name: "browser-test-media".into(),
            templates: endoreg_media::report::default_templates(),
        }
    }

    /// Generates the demo video (`frames` frames, 480×270, the fake patient in the overlay), uploads it
    /// and lets the real media worker anonymise it and extract its frames. Returns the processed video.
    pub async fn process_demo_video(&self, worker: &Worker, frames: u64) -> Video {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("demo.mp4");
        let spec_path = path.clone();
        tokio::task::spawn_blocking(move || demo::generate(&spec_path, &DemoSpec::olympus(480, 270, frames))).await.unwrap().unwrap();
        let meta = UploadMetadata {
            center: "demo_center".into(),
            processor: Some("olympus_cv_1500".into()),
            patient_examination_id: None,
            pdf_type: None,
            identity: None,
        };
        let video = worker.client.upload(&path, &meta).await.unwrap().video.unwrap();
        let claim = JobClaim { worker: worker.name.clone(), kinds: vec!["process_video".into()], lease_secs: 60 };
        while let Some(job) = worker.client.claim(&claim).await.unwrap() {
            worker.handle_job(job).await;
        }
        let video = worker.client.video(video.id).await.unwrap();
        assert_eq!(video.state, "frames_extracted", "the demo video was not processed: {:?}", video.state_detail);
        video
    }
}

/// Where the tests write screenshots: `target/web-screenshots/` of the workspace (or `$CARGO_TARGET_DIR`).
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("web-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A headless Chromium under chromedriver; both end with this value.
pub struct Browser {
    http: reqwest::Client,
    base: String,
    session: String,
    driver: Child,
    _profile: tempfile::TempDir,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// An element of the page.
#[derive(Debug, Clone)]
pub struct Element(pub String);

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium (Debian's `chromium` and `chromium-driver`, which
    /// `.ci/setup` installs) with a fresh profile and a 1366×900 window.
    pub async fn start() -> Browser {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is not installed: `source .ci/setup` installs Debian's chromium and chromium-driver");
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + WAIT;
        loop {
            let ready = http.get(format!("{base}/status")).send().await.ok().map(|r| r.status().is_success()).unwrap_or(false);
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start on port {port}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        // Debian's chromium (or one on PATH; chromedriver finds its own otherwise).
        let binary =
            ["/usr/bin/chromium", "/usr/bin/chromium-browser"].into_iter().find(|p| Path::new(p).exists()).map(str::to_owned).or_else(
                || {
                    std::env::var_os("PATH").and_then(|path| {
                        std::env::split_paths(&path).map(|d| d.join("chromium")).find(|p| p.exists()).map(|p| p.display().to_string())
                    })
                },
            );
        let mut options = json!({
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1366,900",
                     "--force-device-scale-factor=1", "--lang=en-US", "--mute-audio", "--autoplay-policy=no-user-gesture-required",
                     "--no-first-run", "--disable-extensions", format!("--user-data-dir={}", profile.path().display())],
        });
        if let Some(b) = binary {
            options["binary"] = json!(b);
        }
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}}});
        let res: Value = http.post(format!("{base}/session")).json(&caps).send().await.unwrap().json().await.unwrap();
        let session = res["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no browser session: {res}")).to_owned();
        Browser { http, base, session, driver, _profile: profile }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, Value> {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let ok = res.status().is_success();
        let value: Value = res.json().await.unwrap();
        if ok { Ok(value["value"].clone()) } else { Err(value["value"].clone()) }
    }

    async fn must(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        match self.call(method.clone(), path, body).await {
            Ok(v) => v,
            Err(e) => panic!("WebDriver {method} {path} failed: {e}"),
        }
    }

    pub async fn goto(&self, url: &str) {
        self.must(reqwest::Method::POST, "/url", Some(json!({"url": url}))).await;
    }

    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let v = self.must(reqwest::Method::POST, "/elements", Some(json!({"using": "css selector", "value": css}))).await;
        v.as_array().unwrap().iter().map(|e| Element(e[ELEMENT].as_str().unwrap().to_owned())).collect()
    }

    /// The first element matching `css`, once there is one.
    pub async fn wait(&self, css: &str) -> Element {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(e) = self.find_all(css).await.into_iter().next() {
                return e;
            }
            assert!(Instant::now() < deadline, "no `{css}` appeared within {WAIT:?}; the page says: {}", self.page_text().await);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the JavaScript expression `condition` is truthy; returns its value.
    pub async fn wait_until(&self, condition: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let v = self.script(&format!("return ({condition});"), vec![]).await;
            if !(v.is_null() || v == json!(false) || v == json!(0) || v == json!("")) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "`{condition}` did not come true within {WAIT:?}; the page says: {}",
                self.page_text().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn script(&self, js: &str, args: Vec<Value>) -> Value {
        self.must(reqwest::Method::POST, "/execute/sync", Some(json!({"script": js, "args": args}))).await
    }

    /// Runs `js`, whose last argument is the callback to call with the result.
    pub async fn async_script(&self, js: &str, args: Vec<Value>) -> Value {
        self.must(reqwest::Method::POST, "/execute/async", Some(json!({"script": js, "args": args}))).await
    }

    pub async fn click(&self, e: &Element) {
        self.must(reqwest::Method::POST, &format!("/element/{}/click", e.0), Some(json!({}))).await;
    }

    pub async fn type_into(&self, e: &Element, text: &str) {
        self.must(reqwest::Method::POST, &format!("/element/{}/value", e.0), Some(json!({"text": text}))).await;
    }

    pub async fn text(&self, e: &Element) -> String {
        self.must(reqwest::Method::GET, &format!("/element/{}/text", e.0), None).await.as_str().unwrap_or_default().to_owned()
    }

    pub async fn page_text(&self) -> String {
        match self
            .call(reqwest::Method::POST, "/execute/sync", Some(json!({"script": "return document.body.innerText;", "args": []})))
            .await
        {
            Ok(v) => v.as_str().unwrap_or_default().chars().take(2000).collect(),
            Err(e) => format!("(unreadable: {e})"),
        }
    }

    /// W3C actions (pointer drags, key chords).
    pub async fn actions(&self, actions: Value) {
        self.must(reqwest::Method::POST, "/actions", Some(json!({"actions": actions}))).await;
        let _ = self.call(reqwest::Method::DELETE, "/actions", None).await;
    }

    /// Presses `keys` (WebDriver key codes, e.g. "\u{E014}" for →) on the focused element.
    pub async fn keys(&self, keys: &[&str]) {
        let mut down = Vec::new();
        for k in keys {
            down.push(json!({"type": "keyDown", "value": k}));
        }
        for k in keys.iter().rev() {
            down.push(json!({"type": "keyUp", "value": k}));
        }
        self.actions(json!([{"type": "key", "id": "keyboard", "actions": down}])).await;
    }

    /// Drags with the mouse from viewport point `from` to `to`, in `steps` moves.
    pub async fn drag(&self, from: (f64, f64), to: (f64, f64), steps: u32) {
        let mut moves = vec![
            json!({"type": "pointerMove", "duration": 0, "x": from.0.round() as i64, "y": from.1.round() as i64, "origin": "viewport"}),
            json!({"type": "pointerDown", "button": 0}),
        ];
        for i in 1..=steps {
            let t = f64::from(i) / f64::from(steps);
            let (x, y) = (from.0 + (to.0 - from.0) * t, from.1 + (to.1 - from.1) * t);
            moves.push(json!({"type": "pointerMove", "duration": 20, "x": x.round() as i64, "y": y.round() as i64, "origin": "viewport"}));
        }
        moves.push(json!({"type": "pointerUp", "button": 0}));
        self.actions(json!([{"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"}, "actions": moves}])).await;
    }

    /// Clicks at viewport point `at`.
    pub async fn click_at(&self, at: (f64, f64), double: bool) {
        let mut moves =
            vec![json!({"type": "pointerMove", "duration": 0, "x": at.0.round() as i64, "y": at.1.round() as i64, "origin": "viewport"})];
        for _ in 0..if double { 2 } else { 1 } {
            moves.push(json!({"type": "pointerDown", "button": 0}));
            moves.push(json!({"type": "pointerUp", "button": 0}));
        }
        self.actions(json!([{"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"}, "actions": moves}])).await;
    }

    /// Writes a PNG of the viewport to `target/web-screenshots/<name>.png`; returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let b64 = self.must(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD.decode(b64.as_str().unwrap()).unwrap();
        let path = screenshot_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Replaces the browser's cookies with none (a new visitor).
    pub async fn forget_cookies(&self) {
        self.must(reqwest::Method::DELETE, "/cookie", None).await;
    }

    /// The cookies the browser holds for the current page, as WebDriver shows them (with their flags).
    pub async fn cookies(&self) -> Vec<Value> {
        self.must(reqwest::Method::GET, "/cookie", None).await.as_array().cloned().unwrap_or_default()
    }

    /// Signs in on the app's sign-in page with `token` and waits for the page that follows.
    pub async fn sign_in(&self, app: &str, token: &str) {
        self.goto(&format!("{app}/#/sign-in")).await;
        let field = self.wait("#token").await;
        self.type_into(&field, token).await;
        self.click(&self.wait("#sign-in button[type=submit]").await).await;
        self.wait_until("!location.hash.startsWith('#/sign-in')").await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ends the browser with the driver: chromedriver closes the Chromium it started when it stops.
        let url = format!("{}/session/{}", self.base, self.session);
        reqwest::blocking_delete(&url);
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

mod reqwest {
    pub use ::reqwest::*;

    /// A DELETE from a thread with no runtime (the session's end, in `Drop`).
    pub fn blocking_delete(url: &str) {
        let url = url.to_owned();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async {
                let client = ::reqwest::Client::builder().timeout(std::time::Duration::from_secs(5)).build();
                if let Ok(c) = client {
                    let _ = c.delete(url).send().await;
                }
            });
        })
        .join();
    }
}
