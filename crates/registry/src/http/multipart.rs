//! `multipart/form-data` read with its limits enforced while the bytes arrive. The parser (multer) takes
//! whatever the body has ready in one go and searches it for the next boundary; fed directly, a part or a
//! header without an end would be held in memory whole. Here it gets one chunk at a time, the bytes before
//! a part's data (preamble, boundary, part headers) have a budget, and a small part is read only up to its
//! limit: a request over a limit is refused having read at most the limit and two chunks (what the parser
//! holds at most: the rest of the chunk that ended a part's headers, and one more).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};

use axum::body::{Body, BodyDataStream, Bytes};
use axum::http::{HeaderMap, header};
use futures::Stream;

use endoreg_common::problem::Problem;

use crate::http::error::{ApiError, ApiResult, bad_request};

/// The most the parser is handed at once.
pub const CHUNK_BYTES: usize = 64 * 1024;
/// The most bytes before a part's data: anything before the first boundary, the boundary, the part's
/// headers. Real clients send a few hundred.
pub const MAX_PART_HEADER_BYTES: usize = 16 * 1024;

/// A `multipart/form-data` request body, read part by part.
pub struct Form {
    parts: multer::Multipart<'static>,
    meter: Arc<Meter>,
}

/// One part; read it to its end (or drop it) before asking for the next.
pub type Part = multer::Field<'static>;

impl Form {
    pub fn new(headers: &HeaderMap, body: Body) -> ApiResult<Self> {
        let boundary =
            headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).and_then(|ct| multer::parse_boundary(ct).ok()).ok_or_else(
                || {
                    ApiError::from(bad_request(
                        "invalid_multipart",
                        "send multipart/form-data with a boundary (Content-Type: multipart/form-data; boundary=...)",
                    ))
                },
            )?;
        let meter = Arc::new(Meter::default());
        let body = Metered { inner: body.into_data_stream(), rest: Bytes::new(), paused: false, meter: meter.clone() };
        Ok(Form { parts: multer::Multipart::new(body, boundary), meter })
    }

    /// The next part, or `None` after the closing boundary.
    pub async fn next_part(&mut self) -> ApiResult<Option<Part>> {
        self.meter.start_headers();
        let next = self.parts.next_field().await;
        self.meter.headers.store(false, Ordering::Relaxed);
        next.map_err(|e| self.error(e))
    }

    /// The next piece of `part`'s content.
    pub async fn chunk(&self, part: &mut Part) -> ApiResult<Option<Bytes>> {
        part.chunk().await.map_err(|e| self.error(e))
    }

    /// The whole content of a small part, refused with 413 as soon as it exceeds `limit` bytes.
    pub async fn read_small(&self, part: &mut Part, limit: usize) -> ApiResult<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(chunk) = self.chunk(part).await? {
            if out.len() + chunk.len() > limit {
                let name = part.name().unwrap_or("unnamed");
                return Err(Problem::new("payload_too_large", "Payload too large", 413)
                    .with_detail(format!("the `{name}` part is larger than {} KiB", limit / 1024))
                    .into());
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    fn error(&self, e: multer::Error) -> ApiError {
        if self.meter.exceeded.load(Ordering::Relaxed) {
            return bad_request(
                "invalid_multipart",
                format!(
                    "a part's headers (with anything before the first boundary) are larger than {} KiB, or the boundary never comes",
                    MAX_PART_HEADER_BYTES / 1024
                ),
            )
            .into();
        }
        let text = match &e {
            multer::Error::StreamReadFailed(cause) => format!("the upload was interrupted: {cause}"),
            other => format!("the upload is not valid multipart/form-data: {other}"),
        };
        bad_request("invalid_multipart", text).into()
    }
}

/// Counts what is read before a part's data begins.
#[derive(Default)]
struct Meter {
    headers: AtomicBool,
    read: AtomicUsize,
    exceeded: AtomicBool,
}

impl Meter {
    fn start_headers(&self) {
        self.read.store(0, Ordering::Relaxed);
        self.headers.store(true, Ordering::Relaxed);
    }

    /// Whether `n` more bytes may be read. While headers are read, at most one chunk beyond the budget:
    /// the chunk that ends the headers may carry the start of the part's data.
    fn admit(&self, n: usize) -> bool {
        if !self.headers.load(Ordering::Relaxed) {
            return true;
        }
        if self.read.fetch_add(n, Ordering::Relaxed) >= MAX_PART_HEADER_BYTES {
            self.exceeded.store(true, Ordering::Relaxed);
            return false;
        }
        true
    }
}

#[derive(Debug, thiserror::Error)]
#[error("more than {MAX_PART_HEADER_BYTES} bytes before a part's data")]
struct HeadersTooLarge;

/// The body as the parser sees it: at most [`CHUNK_BYTES`] at a time, and not ready again until the parser
/// has looked at what it got (it reads until the body is not ready).
struct Metered {
    inner: BodyDataStream,
    rest: Bytes,
    paused: bool,
    meter: Arc<Meter>,
}

impl Stream for Metered {
    type Item = Result<Bytes, Box<dyn std::error::Error + Send + Sync>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.paused {
            self.paused = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if self.rest.is_empty() {
            match Pin::new(&mut self.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(bytes))) => self.rest = bytes,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(Box::new(e)))),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
        let n = self.rest.len().min(CHUNK_BYTES);
        let chunk = self.rest.split_to(n);
        if !self.meter.admit(n) {
            return Poll::Ready(Some(Err(Box::new(HeadersTooLarge))));
        }
        self.paused = true;
        Poll::Ready(Some(Ok(chunk)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(body: Vec<u8>) -> Form {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, "multipart/form-data; boundary=XB".parse().unwrap());
        Form::new(&headers, Body::from(body)).ok().unwrap()
    }

    #[tokio::test]
    async fn the_parser_never_holds_more_than_two_chunks() {
        let data = vec![7u8; 5 * CHUNK_BYTES + 5];
        let mut body = b"--XB\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n".to_vec();
        body.extend_from_slice(&data);
        body.extend_from_slice(b"\r\n--XB--\r\n");
        let mut f = form(body);
        let mut part = f.next_part().await.ok().flatten().unwrap();
        let mut got = Vec::new();
        while let Some(c) = f.chunk(&mut part).await.ok().unwrap() {
            assert!(c.len() <= 2 * CHUNK_BYTES, "{}", c.len());
            got.extend_from_slice(&c);
        }
        assert_eq!(got, data);
        drop(part);
        assert!(f.next_part().await.ok().unwrap().is_none());
    }
}
