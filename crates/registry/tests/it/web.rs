//! The web app's files: served at `web.path` from the binary with the security headers (a CSP without
//! inline script or style), revalidated by ETag; switched off or moved by the configuration; the API's
//! answers carry `nosniff` and `no-referrer` too. (What the app does is tested in a real browser:
//! crates/web-tests.)

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

use endoreg_common::access::Role;
use endoreg_registry::config::WebConfig;
use endoreg_registry::http::web::CONTENT_SECURITY_POLICY;

use crate::support::{Backend, TestApp};

/// A GET outside the API (the app's files are no API operations, so the description does not check them).
async fn get(app: &TestApp, path: &str, extra: Option<(header::HeaderName, &str)>) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut req = Request::builder().method(Method::GET).uri(path);
    if let Some((name, value)) = extra {
        req = req.header(name, value);
    }
    let res = app.router.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    (status, headers, res.into_body().collect().await.unwrap().to_bytes().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_is_served_with_its_security_headers_and_revalidated() {
    let app = TestApp::new(Backend::Sqlite).await;
    let (status, headers, body) = get(&app, "/", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
    assert_eq!(headers[header::CONTENT_SECURITY_POLICY], CONTENT_SECURITY_POLICY);
    assert!(CONTENT_SECURITY_POLICY.contains("script-src 'self';") && !CONTENT_SECURITY_POLICY.contains("unsafe"));
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(headers[header::REFERRER_POLICY], "no-referrer");
    assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
    let html = String::from_utf8(body).unwrap();
    assert!(html.contains("<script type=\"module\" src=\"js/app.js\"></script>"), "{html}");
    assert!(!html.contains("http://") && !html.contains("https://"), "every asset is ours: {html}");

    // Every file the pages load, with its type; revalidation answers 304 without the bytes.
    for (path, kind) in [
        ("/js/app.js", "text/javascript; charset=utf-8"),
        ("/app.css", "text/css; charset=utf-8"),
        ("/js/pages/video.js", "text/javascript; charset=utf-8"),
        ("/favicon.svg", "image/svg+xml"),
    ] {
        let (status, headers, body) = get(&app, path, None).await;
        assert_eq!((status, headers[header::CONTENT_TYPE].to_str().unwrap()), (StatusCode::OK, kind), "{path}");
        assert!(!body.is_empty());
        let etag = headers[header::ETAG].to_str().unwrap().to_owned();
        let (status, headers, body) = get(&app, path, Some((header::IF_NONE_MATCH, &etag))).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED, "{path}");
        assert!(body.is_empty());
        assert_eq!(headers[header::CONTENT_SECURITY_POLICY], CONTENT_SECURITY_POLICY);
    }
    // Nothing else: no directory listing, no source maps, no path tricks.
    for path in ["/js/", "/js/app.js.map", "/../Cargo.toml", "/js/../index.html", "/index.html.bak", "/web/index.html"] {
        let (status, headers, body) = get(&app, path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("application/problem+json"), "{path}");
        assert!(!String::from_utf8_lossy(&body).contains("<html"));
    }
    // The API's answers carry the common headers too, and the app's files need no token.
    let r = app.call(Some(Role::Researcher), Method::GET, "/api/v1/videos", None, None).await;
    assert_eq!(r.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(r.headers[header::REFERRER_POLICY], "no-referrer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_can_be_moved_or_switched_off() {
    let moved = TestApp::with_config(Backend::Sqlite, |c| c.web = WebConfig { path: "/endoreg".into(), ..WebConfig::default() }).await;
    let (status, headers, _) = get(&moved, "/endoreg/", None).await;
    assert_eq!((status, headers[header::CONTENT_TYPE].to_str().unwrap()), (StatusCode::OK, "text/html; charset=utf-8"));
    assert_eq!(get(&moved, "/endoreg/js/app.js", None).await.0, StatusCode::OK);
    let (status, headers, _) = get(&moved, "/endoreg", None).await;
    assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(headers[header::LOCATION], "/endoreg/");
    assert_eq!(get(&moved, "/", None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(&moved, "/js/app.js", None).await.0, StatusCode::NOT_FOUND);

    let off = TestApp::with_config(Backend::Sqlite, |c| c.web.enabled = false).await;
    for path in ["/", "/js/app.js", "/app.css"] {
        assert_eq!(get(&off, path, None).await.0, StatusCode::NOT_FOUND, "{path}");
    }
    // The API is there either way, sessions included.
    let r = off.call(None, Method::POST, "/api/v1/sessions", Some(serde_json::json!({"token": off.tokens[&Role::Admin]})), None).await;
    assert_eq!(r.status, StatusCode::CREATED);
}
