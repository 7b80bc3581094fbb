//! The web app: static files (HTML, ES modules, one stylesheet) embedded in the binary from
//! `crates/registry/web/`, served at `web.path` with a strict Content-Security-Policy. The files hold no
//! data: every page fetches what it shows from the API, through the same permission checks as any
//! other client (see docs/web.md).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use include_dir::{Dir, include_dir};
use sha2::{Digest, Sha256};

use super::AppState;

static FILES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/web");

/// The policy of every app response: our own scripts, styles, pictures and media only; no inline script
/// or style; not framed; no `<base>`; forms only to us.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
     media-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// One embedded file, ready to serve.
struct Asset {
    bytes: &'static [u8],
    content_type: &'static str,
    etag: String,
}

fn content_type(path: &str) -> Option<&'static str> {
    let extension = path.rsplit_once('.').map(|(_, e)| e)?;
    Some(match extension {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        _ => return None,
    })
}

fn assets() -> Vec<(String, Asset)> {
    let mut out = Vec::new();
    let mut dirs = vec![&FILES];
    while let Some(dir) = dirs.pop() {
        for entry in dir.entries() {
            if let Some(d) = entry.as_dir() {
                dirs.push(d);
            } else if let Some(f) = entry.as_file() {
                let path = f.path().to_string_lossy().replace('\\', "/");
                // Only files of the kinds above are served (no editor backups, no notes).
                let Some(content_type) = content_type(&path) else { continue };
                let hash: String = Sha256::digest(f.contents()).iter().take(12).map(|b| format!("{b:02x}")).collect();
                out.push((path, Asset { bytes: f.contents(), content_type, etag: format!("\"{hash}\"") }));
            }
        }
    }
    out
}

/// The app's routes under `base` (`/`, `/endoreg/`): `base` itself is `index.html`, every other file
/// its path below it. Each file is a route of its own, so nothing else under `base` is answered here.
pub fn router(base: &str) -> Router<Arc<AppState>> {
    let mut router = Router::new();
    let mut by_path: HashMap<String, Arc<Asset>> = HashMap::new();
    for (path, asset) in assets() {
        let asset = Arc::new(asset);
        if path == "index.html" {
            by_path.insert(base.to_owned(), asset.clone());
        }
        by_path.insert(format!("{base}{path}"), asset);
    }
    for (route, asset) in by_path {
        router = router.route(&route, get(move |headers: HeaderMap| async move { serve(&asset, &headers) }));
    }
    if base != "/" {
        let bare = base.trim_end_matches('/').to_owned();
        let target = base.to_owned();
        router = router.route(&bare, get(move || async move { Redirect::permanent(&target) }));
    }
    router.layer(middleware::from_fn(security_headers))
}

/// Revalidated on every load (`no-cache` with an ETag: a 304 costs a round trip, not the bytes), so an
/// upgraded registry serves its new app at once without file names that change with each build.
fn serve(asset: &Asset, headers: &HeaderMap) -> Response {
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim().trim_start_matches("W/") == asset.etag));
    let mut res = if fresh { StatusCode::NOT_MODIFIED.into_response() } else { (StatusCode::OK, asset.bytes).into_response() };
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&asset.etag) {
        h.insert(header::ETAG, v);
    }
    res
}

async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    res
}

/// Headers on every response of the registry, app and API alike: content types are what they say, and
/// no URL leaves in a `Referer`.
pub async fn common_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_app_is_embedded_and_every_file_has_a_type() {
        let files = assets();
        let names: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
        for needed in ["index.html", "app.css", "js/app.js"] {
            assert!(names.contains(&needed), "{needed} missing from {names:?}");
        }
    }

    #[test]
    fn no_page_carries_inline_script_or_style() {
        for (path, asset) in assets() {
            if !path.ends_with(".html") {
                continue;
            }
            let text = std::str::from_utf8(asset.bytes).unwrap_or_default();
            assert!(!text.contains(" style="), "{path} has a style attribute");
            assert!(!text.contains("<style"), "{path} has a style element");
            for script in text.split("<script").skip(1) {
                let tag = script.split('>').next().unwrap_or_default();
                assert!(tag.contains("src="), "{path} has an inline script");
            }
            let handler = text.match_indices(" on").any(|(i, _)| {
                let rest = &text[i + 3..];
                let name_len = rest.bytes().take_while(u8::is_ascii_lowercase).count();
                name_len > 0 && rest[name_len..].starts_with('=')
            });
            assert!(!handler, "{path} has an inline event handler");
        }
    }
}
