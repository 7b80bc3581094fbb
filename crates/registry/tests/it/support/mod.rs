//! The test harness: a real database of either backend, the real router, a token per role, and request
//! helpers. `backends!(name)` runs `async fn name(app: TestApp)` once on SQLite and once on PostgreSQL.
//! Every response that passes through [`TestApp::raw`] is checked against the API description
//! ([`description`]).

pub mod description;
pub mod postgres;

use std::collections::HashMap;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use endoreg_common::access::Role;
use endoreg_common::api::TokenCreate;
use endoreg_registry::config::RegistryConfig;
use endoreg_registry::db::{ConnectOptions, Db};
use endoreg_registry::service::tokens;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs the named test function on both backends.
#[macro_export]
macro_rules! backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::support::TestApp::new($crate::support::Backend::Sqlite).await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::support::TestApp::new($crate::support::Backend::Postgres).await).await
            }
        }
    )*};
}

/// A migrated, empty database of `backend`; the guard keeps a SQLite file's directory alive.
pub async fn database(backend: Backend) -> (Db, Option<tempfile::TempDir>) {
    let (url, dir) = match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            (format!("sqlite://{}", dir.path().join("registry.db").display()), Some(dir))
        }
        Backend::Postgres => (postgres::new_database().await, None),
    };
    let db = Db::connect(&url, &ConnectOptions { max_connections: 8, ..Default::default() }).await.expect("connect");
    db.migrate().await.expect("migrate");
    (db, dir)
}

pub struct TestApp {
    pub backend: Backend,
    pub db: Db,
    pub router: Router,
    pub tokens: HashMap<Role, String>,
    pub config: RegistryConfig,
    _dir: Option<tempfile::TempDir>,
    _data: tempfile::TempDir,
}

pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Response {
    /// The version in the ETag header.
    pub fn etag(&self) -> String {
        self.headers.get(header::ETAG).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
    }

    pub fn problem_code(&self) -> String {
        self.body["type"].as_str().unwrap_or_default().rsplit(':').next().unwrap_or_default().to_owned()
    }
}

impl TestApp {
    /// A database with the built-in knowledge base, a token per role, and the router.
    pub async fn new(backend: Backend) -> Self {
        Self::with_config(backend, |_| {}).await
    }

    /// Like [`TestApp::new`], with the registry configuration adjusted by `adjust`.
    pub async fn with_config(backend: Backend, adjust: impl FnOnce(&mut RegistryConfig)) -> Self {
        // Internal errors are logged with their incident id; a failing test shows them.
        endoreg_common::logging::init(log::LevelFilter::Warn);
        let (db, dir) = database(backend).await;
        endoreg_registry::kb::load(&db, &endoreg_registry::kb::ours::Files::builtin()).await.expect("load the knowledge base");
        let mut tokens_by_role = HashMap::new();
        for role in Role::ALL {
            let t = tokens::create(&db, &TokenCreate { name: format!("test {role}"), role, expires_in_days: None }).await.expect("token");
            tokens_by_role.insert(role, t.token);
        }
        let data = tempfile::tempdir().expect("data dir");
        let mut config = RegistryConfig { data_dir: data.path().to_owned(), ..RegistryConfig::default() };
        adjust(&mut config);
        let router = endoreg_registry::http::router(db.clone(), &config).expect("router");
        TestApp { backend, db, router, tokens: tokens_by_role, config, _dir: dir, _data: data }
    }

    /// Sends `req` through the router. A response the API description does not describe fails the test.
    pub async fn raw(&self, req: Request<Body>) -> Response {
        let (method, path) = (req.method().clone(), req.uri().path().to_owned());
        let res = self.router.clone().oneshot(req).await.expect("the router never fails");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        if let Err(e) = description::registry().check(&method, &path, status, &headers, &bytes) {
            panic!("the response does not match the API description: {e}\nbody: {}", String::from_utf8_lossy(&bytes));
        }
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Response { status, headers, body }
    }

    /// A request as `role` (or anonymous), with an optional JSON body and `If-Match` version.
    pub async fn call(&self, role: Option<Role>, method: Method, path: &str, body: Option<Value>, if_match: Option<&str>) -> Response {
        self.call_with(role.map(|r| self.tokens[&r].as_str()), method, path, body, if_match).await
    }

    /// A request with `token` (any token, not only the one per role), like [`TestApp::call`].
    pub async fn call_with(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
        if_match: Option<&str>,
    ) -> Response {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        if let Some(v) = if_match {
            req = req.header(header::IF_MATCH, v);
        }
        let req = match body {
            Some(b) => req.header(header::CONTENT_TYPE, "application/json").body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        };
        self.raw(req.expect("request")).await
    }

    /// A multipart upload as `role`: the `metadata` part, then the `file` part.
    pub async fn upload(&self, role: Role, metadata: &Value, file: &[u8]) -> Response {
        let boundary = "endoreg-test-boundary-7f3a";
        let mut body = Vec::new();
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"metadata\"\r\nContent-Type: application/json\r\n\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(metadata.to_string().as_bytes());
        body.extend_from_slice(format!("\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
        body.extend_from_slice(file);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let req = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/uploads")
            .header(header::AUTHORIZATION, format!("Bearer {}", self.tokens[&role]))
            .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}"))
            .body(Body::from(body))
            .expect("request");
        self.raw(req).await
    }

    /// Files under the media storage directory.
    pub fn stored_files(&self) -> Vec<std::path::PathBuf> {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                if e.path().is_dir() {
                    walk(&e.path(), out);
                } else {
                    out.push(e.path());
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.config.data_dir.join("storage"), &mut out);
        out.sort();
        out
    }

    pub async fn get(&self, path: &str) -> Response {
        self.call(Some(Role::Admin), Method::GET, path, None, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.call(Some(Role::Admin), Method::POST, path, Some(body), None).await
    }

    /// Creates a patient and returns its id.
    pub async fn patient(&self) -> i64 {
        let r = self.post("/api/v1/patients", serde_json::json!({"center": "demo_center", "gender": "female", "birth_year": 1961})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["id"].as_i64().expect("id")
    }

    /// Creates a colonoscopy with one classified polyp and returns the examination.
    pub async fn colonoscopy(&self, patient: i64, date: &str) -> Value {
        let r = self
            .post(
                "/api/v1/patient-examinations",
                serde_json::json!({
                    "patient_id": patient,
                    "examination": "colonoscopy",
                    "date": date,
                    "indications": [{"indication": "screening_colonoscopy"}],
                    "findings": [{
                        "finding": "colon_polyp",
                        "classifications": [
                            {"classification": "paris", "choice": "paris_0_is"},
                            {"classification": "nice", "choice": "nice_type_2"},
                            {"classification": "lesion_size", "choice": "lesion_size_5_9_mm"}
                        ],
                        "interventions": [{"intervention": "cold_snare_polypectomy", "state": "performed"}]
                    }]
                }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body
    }
}

/// EndoregDB's base-data tree: `$ENDOREG_BASE_DATA` (`.ci/setup` sets it, fetching the tree where there is
/// no shared copy), else the shared folder beside the checkout (`../shared/endoreg-base-data`).
pub fn endoreg_base_data() -> std::path::PathBuf {
    if let Ok(p) = std::env::var("ENDOREG_BASE_DATA") {
        return p.into();
    }
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/endoreg-base-data");
    assert!(
        p.is_dir(),
        "no EndoregDB base data at {} (the shared/ folder beside the checkout) and no $ENDOREG_BASE_DATA: `source .ci/setup` fetches it and sets the variable",
        p.display()
    );
    p
}
