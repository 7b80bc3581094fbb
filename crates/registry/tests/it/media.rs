//! Media delivery: the anonymised video in byte ranges (what a browser's `<video>` asks for when it
//! seeks), stored frames and thumbnails, a report's anonymised text; caching validators; and that
//! nothing but anonymised products is served. The stored objects are written here the way the media
//! worker writes them (the worker itself runs against these routes in the browser tests).

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::json;
use sha2::{Digest, Sha256};
use tower::ServiceExt;

use endoreg_common::access::Role;
use endoreg_common::storage::keys;

use crate::backends;
use crate::support::{TestApp, description};

backends!(
    the_anonymised_video_is_served_in_ranges_with_validators,
    frames_and_thumbnails_are_served_only_from_the_anonymised_set,
    a_reports_anonymised_text_is_served
);

struct Fetched {
    status: StatusCode,
    headers: HeaderMap,
    bytes: Vec<u8>,
}

impl Fetched {
    fn header(&self, name: header::HeaderName) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }
}

/// A GET as `role` with extra headers; the answer is checked against the API description.
async fn fetch(app: &TestApp, role: Role, path: &str, extra: &[(header::HeaderName, &str)]) -> Fetched {
    let mut req = Request::builder().method(Method::GET).uri(path).header(header::AUTHORIZATION, format!("Bearer {}", app.tokens[&role]));
    for (name, value) in extra {
        req = req.header(name, *value);
    }
    let res = app.router.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    let route = path.split('?').next().unwrap();
    if let Err(e) = description::registry().check(&Method::GET, route, status, &headers, &bytes) {
        panic!("the response does not match the API description: {e}");
    }
    Fetched { status, headers, bytes }
}

fn sha(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

fn jpeg(width: u32, height: u32, shade: u8) -> Vec<u8> {
    let picture = image::RgbImage::from_fn(width, height, |x, _| image::Rgb([shade, (x % 256) as u8, 255 - shade]));
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85).encode_image(&picture).unwrap();
    out
}

/// A registered video of `frames` frames; returns its id, its raw SHA-256 and the version.
async fn video(app: &TestApp, seed: u8, frames: i64) -> (i64, String) {
    let raw_sha = sha(&[seed; 16]);
    let r = app.post("/api/v1/videos", json!({"center": "demo_center", "processor": "olympus_cv_1500", "sha256": raw_sha})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    let patch = json!({"metadata": {"frame_count": frames, "fps": 25.0, "width": 320, "height": 180}});
    let r = app.call(Some(Role::Admin), Method::PATCH, &format!("/api/v1/videos/{id}"), Some(patch), Some("\"1\"")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    (id, raw_sha)
}

/// Stores `content` as the video's anonymised file and records it; returns the file's SHA-256.
async fn anonymise(app: &TestApp, id: i64, content: &[u8]) -> String {
    let store = app.config.open_storage().unwrap();
    let anonymised_sha = sha(content);
    let key = keys::anonymised_video(&anonymised_sha);
    store.put_bytes(&key, content.to_vec()).await.unwrap();
    let v = app.get(&format!("/api/v1/videos/{id}")).await;
    let r = app
        .call(Some(Role::Admin), Method::PATCH, &format!("/api/v1/videos/{id}"), Some(json!({"anonymised_key": key})), Some(&v.etag()))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    anonymised_sha
}

async fn the_anonymised_video_is_served_in_ranges_with_validators(app: TestApp) {
    let (id, _) = video(&app, 1, 100).await;
    let path = format!("/api/v1/videos/{id}/anonymised");
    let r = fetch(&app, Role::Researcher, &path, &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "not anonymised yet");
    assert!(String::from_utf8_lossy(&r.bytes).contains("has not been anonymised yet"));

    let content: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let version = anonymise(&app, id, &content).await;
    let etag = format!("\"{version}\"");

    let whole = fetch(&app, Role::Researcher, &path, &[]).await;
    assert_eq!(whole.status, StatusCode::OK);
    assert_eq!(whole.bytes, content);
    assert_eq!(whole.header(header::CONTENT_TYPE), "video/mp4");
    assert_eq!(whole.header(header::ACCEPT_RANGES), "bytes");
    assert_eq!(whole.header(header::ETAG), etag);
    assert_eq!(whole.header(header::CACHE_CONTROL), "private, no-cache");
    assert_eq!(whole.header(header::CONTENT_LENGTH), "300000");

    // Seeking: one range, an open end, a suffix, an end beyond the file.
    for (range, expected, content_range) in [
        ("bytes=100-199", 100..200, "bytes 100-199/300000"),
        ("bytes=299990-", 299_990..300_000, "bytes 299990-299999/300000"),
        ("bytes=-10", 299_990..300_000, "bytes 299990-299999/300000"),
        ("bytes=0-999999", 0..300_000, "bytes 0-299999/300000"),
    ] {
        let r = fetch(&app, Role::Annotator, &path, &[(header::RANGE, range)]).await;
        assert_eq!(r.status, StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(r.bytes, content[expected.clone()], "{range}");
        assert_eq!(r.header(header::CONTENT_RANGE), content_range, "{range}");
        assert_eq!(r.header(header::CONTENT_LENGTH), (expected.end - expected.start).to_string(), "{range}");
    }
    // Beyond the end: 416 naming the size.
    let r = fetch(&app, Role::Annotator, &path, &[(header::RANGE, "bytes=300000-")]).await;
    assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(r.header(header::CONTENT_RANGE), "bytes */300000");
    // If-Range with another version: the whole (current) file; with this one: the range.
    let r = fetch(&app, Role::Annotator, &path, &[(header::RANGE, "bytes=0-9"), (header::IF_RANGE, "\"old\"")]).await;
    assert_eq!((r.status, r.bytes.len()), (StatusCode::OK, 300_000));
    let r = fetch(&app, Role::Annotator, &path, &[(header::RANGE, "bytes=0-9"), (header::IF_RANGE, &etag)]).await;
    assert_eq!((r.status, r.bytes.len()), (StatusCode::PARTIAL_CONTENT, 10));
    // A current copy: 304 without a body.
    let r = fetch(&app, Role::Service, &path, &[(header::IF_NONE_MATCH, &etag)]).await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    assert!(r.bytes.is_empty());
    // Pinned to its version: immutable; another version is gone; a malformed one is named.
    let r = fetch(&app, Role::Researcher, &format!("{path}?v={version}"), &[(header::RANGE, "bytes=0-0")]).await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.header(header::CACHE_CONTROL), "private, max-age=31536000, immutable");
    let r = fetch(&app, Role::Researcher, &format!("{path}?v={}", sha(b"other")), &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(String::from_utf8_lossy(&r.bytes).contains(&version), "names the current version");
    let r = fetch(&app, Role::Researcher, &format!("{path}?v=../../raw"), &[]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = fetch(&app, Role::Researcher, &format!("{path}?raw=1"), &[]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "unknown parameters are refused");
    let r = fetch(&app, Role::Researcher, "/api/v1/videos/999999/anonymised", &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

async fn frames_and_thumbnails_are_served_only_from_the_anonymised_set(app: TestApp) {
    let (id, raw_sha) = video(&app, 2, 100).await;
    let store = app.config.open_storage().unwrap();
    // Frames of the raw video, stored and recorded: never served by these routes.
    let raw_prefix = keys::frames(&raw_sha, "raw");
    let raw_frame = jpeg(320, 180, 250);
    for n in (0..100).step_by(10) {
        store.put_bytes(&keys::frame(&raw_prefix, n, "jpg"), raw_frame.clone()).await.unwrap();
    }
    let set = json!({"source": "raw", "first_frame": 0, "frame_count": 10, "step": 10, "format": "jpeg", "storage_prefix": raw_prefix});
    let r = app.call(Some(Role::Admin), Method::PUT, &format!("/api/v1/videos/{id}/frame-sets/raw"), Some(set), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    anonymise(&app, id, b"anonymised video bytes").await;
    for path in [
        format!("/api/v1/videos/{id}/frames/0"),
        format!("/api/v1/videos/{id}/thumbnail"),
        format!("/api/v1/videos/{id}/frames/0/thumbnail"),
    ] {
        let r = fetch(&app, Role::Admin, &path, &[]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: only a raw frame set exists");
        assert!(String::from_utf8_lossy(&r.bytes).contains("none have been extracted"), "{path}");
    }

    // The anonymised frames: every 5th of 100.
    let anon_prefix = keys::frames(&raw_sha, "anonymised");
    let mut stored = std::collections::HashMap::new();
    for n in (0..100u64).step_by(5) {
        let bytes = jpeg(320, 180, n as u8);
        store.put_bytes(&keys::frame(&anon_prefix, n, "jpg"), bytes.clone()).await.unwrap();
        stored.insert(n, bytes);
    }
    let set =
        json!({"source": "anonymised", "first_frame": 0, "frame_count": 20, "step": 5, "format": "jpeg", "storage_prefix": anon_prefix});
    let r = app.call(Some(Role::Service), Method::PUT, &format!("/api/v1/videos/{id}/frame-sets/anonymised"), Some(set), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let r = fetch(&app, Role::Researcher, &format!("/api/v1/videos/{id}/frames/35"), &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.bytes, stored[&35]);
    assert_ne!(r.bytes, raw_frame);
    assert_eq!(r.header(header::CONTENT_TYPE), "image/jpeg");
    assert_eq!(r.header(header::CACHE_CONTROL), "private, no-cache");
    let etag = r.header(header::ETAG).to_owned();
    let again = fetch(&app, Role::Researcher, &format!("/api/v1/videos/{id}/frames/35"), &[(header::IF_NONE_MATCH, &etag)]).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    let other = fetch(&app, Role::Researcher, &format!("/api/v1/videos/{id}/frames/40"), &[(header::IF_NONE_MATCH, &etag)]).await;
    assert_eq!(other.status, StatusCode::OK, "another frame has another validator");

    // A frame that is not stored names the nearest one; one beyond the video too.
    let r = fetch(&app, Role::Researcher, &format!("/api/v1/videos/{id}/frames/37"), &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let text = String::from_utf8_lossy(&r.bytes);
    assert!(text.contains("frames 0 to 95 are stored, every 5th; the nearest is 35"), "{text}");
    let r = fetch(&app, Role::Researcher, &format!("/api/v1/videos/{id}/frames/5000"), &[]).await;
    assert!(String::from_utf8_lossy(&r.bytes).contains("the nearest is 95"));
    let r = fetch(&app, Role::Researcher, &format!("/api/v1/videos/{id}/frames/-1"), &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Thumbnails: scaled down, aspect kept, never up; bounds named.
    let r = fetch(&app, Role::Annotator, &format!("/api/v1/videos/{id}/frames/35/thumbnail?width=80"), &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header(header::CONTENT_TYPE), "image/jpeg");
    let thumb = image::load_from_memory(&r.bytes).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (80, 45));
    let r = fetch(&app, Role::Annotator, &format!("/api/v1/videos/{id}/frames/35/thumbnail?width=5000"), &[]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(String::from_utf8_lossy(&r.bytes).contains("between 16 and 640"));
    // The list picture: 40 % into the stored frames (frame 40), default width.
    let poster = fetch(&app, Role::Researcher, &format!("/api/v1/videos/{id}/thumbnail"), &[]).await;
    assert_eq!(poster.status, StatusCode::OK);
    let picture = image::load_from_memory(&poster.bytes).unwrap().to_rgb8();
    assert_eq!(picture.width(), 160);
    let shade = picture.get_pixel(80, 45)[0];
    assert!((30..=50).contains(&shade), "frame 40's picture (shade 40), got {shade}");
    // Pinned: immutable.
    let v = app.get(&format!("/api/v1/videos/{id}")).await;
    let version = v.body["anonymised_key"].as_str().unwrap().trim_end_matches(".mp4").rsplit('/').next().unwrap().to_owned();
    let r = fetch(&app, Role::Researcher, &format!("/api/v1/videos/{id}/thumbnail?v={version}&width=64"), &[]).await;
    assert_eq!(r.header(header::CACHE_CONTROL), "private, max-age=31536000, immutable");
    // A stored frame missing from storage is a clear 404, not a 500.
    store.delete(&keys::frame(&anon_prefix, 50, "jpg")).await.unwrap();
    let r = fetch(&app, Role::Researcher, &format!("/api/v1/videos/{id}/frames/50"), &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(String::from_utf8_lossy(&r.bytes).contains("missing from storage"));
}

async fn a_reports_anonymised_text_is_served(app: TestApp) {
    let r = app.post("/api/v1/reports", json!({"center": "demo_center", "sha256": sha(b"report")})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    let path = format!("/api/v1/reports/{id}/text");
    let r = fetch(&app, Role::Researcher, &path, &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(String::from_utf8_lossy(&r.bytes).contains("has not been anonymised yet"));
    let text = "Patient: [PATIENT_NAME], geb. [BIRTH_DATE]\nBefund: Polyp im Sigma, 6 mm. Ärztin: [EXAMINER]";
    let patch = json!({"anonymised_text": text});
    let r = app.call(Some(Role::Service), Method::PATCH, &format!("/api/v1/reports/{id}"), Some(patch), Some("\"1\"")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = fetch(&app, Role::Researcher, &path, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(String::from_utf8(r.bytes.clone()).unwrap(), text);
    assert_eq!(r.header(header::CONTENT_TYPE), "text/plain; charset=utf-8");
    let etag = r.header(header::ETAG).to_owned();
    let r = fetch(&app, Role::Researcher, &path, &[(header::IF_NONE_MATCH, &etag)]).await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
}
