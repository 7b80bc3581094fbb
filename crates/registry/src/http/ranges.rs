//! Conditional and ranged GET (RFC 9110 §13, §14) for stored media: `If-None-Match` → 304, `Range` →
//! 206 with `Content-Range` (a `<video>` seeks with these), `If-Range` → the whole object when it changed,
//! 416 for a range that lies outside the object.

use std::ops::Range;

use axum::http::{HeaderMap, HeaderValue, header};

/// `Cache-Control` of an answer whose URL names its content's version (`?v=<sha256>`): it never changes.
pub const IMMUTABLE: &str = "private, max-age=31536000, immutable";
/// `Cache-Control` of an answer whose URL may come to name other content: kept, but revalidated (by ETag,
/// a 304 without a body) before each use. `private`: these are patient media, never for shared caches.
pub const REVALIDATE: &str = "private, no-cache";

/// What a `Range` header asks of an object of `size` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// No range, or one this server ignores (another unit, several ranges, bad syntax): the whole object.
    Whole,
    /// One satisfiable range, clipped to the object.
    Part(Range<u64>),
    /// A range that starts beyond the object (or a suffix of 0 bytes): 416.
    Unsatisfiable,
}

/// Reads a `Range` header. Syntax errors make it ignored, as RFC 9110 §14.2 asks; several ranges are
/// answered with the whole object (which §14.2 allows), since browsers ask for one.
pub fn wanted(range: Option<&str>, size: u64) -> Wanted {
    let Some(spec) = range.map(str::trim).and_then(|r| r.strip_prefix("bytes=")) else {
        return Wanted::Whole;
    };
    if spec.contains(',') {
        return Wanted::Whole;
    }
    let Some((start, end)) = spec.trim().split_once('-') else {
        return Wanted::Whole;
    };
    let number = |s: &str| if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) { s.parse::<u64>().ok() } else { None };
    match (start.trim(), end.trim()) {
        ("", suffix) => match number(suffix) {
            None => Wanted::Whole,
            Some(0) => Wanted::Unsatisfiable,
            Some(_) if size == 0 => Wanted::Unsatisfiable,
            Some(n) => Wanted::Part(size - n.min(size)..size),
        },
        (first, "") => match number(first) {
            None => Wanted::Whole,
            Some(a) if a >= size => Wanted::Unsatisfiable,
            Some(a) => Wanted::Part(a..size),
        },
        (first, last) => match (number(first), number(last)) {
            (Some(a), Some(b)) if a <= b => {
                if a >= size {
                    Wanted::Unsatisfiable
                } else {
                    Wanted::Part(a..b.min(size - 1) + 1)
                }
            }
            _ => Wanted::Whole,
        },
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &header::HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Whether `If-None-Match` holds `etag` (or `*`): the client's copy is current, answer 304. Compared
/// weakly, as §13.1.2 asks.
pub fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    let Some(list) = header(headers, &header::IF_NONE_MATCH) else { return false };
    let ours = etag.trim_start_matches("W/");
    list.split(',').map(str::trim).any(|t| t == "*" || t.trim_start_matches("W/") == ours)
}

/// What a GET of an object of `size` bytes with strong `etag` should send: `Range` honoured only when
/// `If-Range`, if sent, still names this object (strong comparison; a date never matches: our objects
/// carry no modification date).
pub fn wanted_from(headers: &HeaderMap, etag: &str, size: u64) -> Wanted {
    if let Some(if_range) = header(headers, &header::IF_RANGE)
        && if_range.trim() != etag
    {
        return Wanted::Whole;
    }
    wanted(header(headers, &header::RANGE), size)
}

/// Sets `ETag` and `Cache-Control`.
pub fn cache_headers(headers: &mut HeaderMap, etag: &str, pinned: bool) {
    if let Ok(v) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(if pinned { IMMUTABLE } else { REVALIDATE }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_read_as_rfc_9110_says() {
        let size = 1000;
        assert_eq!(wanted(None, size), Wanted::Whole);
        assert_eq!(wanted(Some("bytes=0-0"), size), Wanted::Part(0..1));
        assert_eq!(wanted(Some("bytes=0-"), size), Wanted::Part(0..1000));
        assert_eq!(wanted(Some("bytes=500-999"), size), Wanted::Part(500..1000));
        assert_eq!(wanted(Some("bytes=500-5000"), size), Wanted::Part(500..1000), "the end is clipped");
        assert_eq!(wanted(Some("bytes=-100"), size), Wanted::Part(900..1000));
        assert_eq!(wanted(Some("bytes=-5000"), size), Wanted::Part(0..1000));
        assert_eq!(wanted(Some("bytes=1000-"), size), Wanted::Unsatisfiable);
        assert_eq!(wanted(Some("bytes=1000-1001"), size), Wanted::Unsatisfiable);
        assert_eq!(wanted(Some("bytes=-0"), size), Wanted::Unsatisfiable);
        assert_eq!(wanted(Some("bytes=0-"), 0), Wanted::Unsatisfiable);
        // Ignored: bad syntax, other units, several ranges.
        for ignored in
            ["bytes=5-1", "bytes=a-", "bytes=-", "bytes=1", "items=0-1", "bytes=0-1,5-6", "bytes=+1-2", "bytes=18446744073709551616-"]
        {
            assert_eq!(wanted(Some(ignored), size), Wanted::Whole, "{ignored}");
        }
    }

    #[test]
    fn if_range_and_if_none_match_compare_the_etag() {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_static("bytes=10-19"));
        assert_eq!(wanted_from(&h, "\"abc\"", 100), Wanted::Part(10..20));
        h.insert(header::IF_RANGE, HeaderValue::from_static("\"abc\""));
        assert_eq!(wanted_from(&h, "\"abc\"", 100), Wanted::Part(10..20));
        h.insert(header::IF_RANGE, HeaderValue::from_static("\"old\""));
        assert_eq!(wanted_from(&h, "\"abc\"", 100), Wanted::Whole, "changed since: the whole object");
        h.insert(header::IF_RANGE, HeaderValue::from_static("W/\"abc\""));
        assert_eq!(wanted_from(&h, "\"abc\"", 100), Wanted::Whole, "a weak validator never matches If-Range");
        assert!(!not_modified(&h, "\"abc\""));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"x\", W/\"abc\""));
        assert!(not_modified(&h, "\"abc\""));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(not_modified(&h, "\"abc\""));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"x\""));
        assert!(!not_modified(&h, "\"abc\""));
    }
}
