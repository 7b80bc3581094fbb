//! Extractors that answer bad input with problems instead of axum's plain-text rejections: JSON bodies
//! (content type, UTF-8, syntax, unknown fields, types — each named), query strings, path parameters and
//! the `If-Match` version.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use endoreg_common::problem::{FieldProblem, Problem};

use super::error::{ApiError, bad_request};

/// A JSON body, deserialised strictly.
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json =
            req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).and_then(|v| v.split(';').next()).is_some_and(|m| {
                let m = m.trim().to_ascii_lowercase();
                m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
            });
        if !is_json {
            return Err(Problem::new("unsupported_media_type", "Unsupported media type", 415)
                .with_detail("send the body with Content-Type: application/json")
                .into());
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e: BytesRejection| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                Problem::new("payload_too_large", "Payload too large", 413).with_detail("the request body exceeds the configured limit")
            } else {
                bad_request("unreadable_body", format!("the request body could not be read: {e}"))
            }
        })?;
        parse_json(&bytes).map(Json)
    }
}

/// Parses a JSON body: not UTF-8 or not JSON is 400; JSON of the wrong shape is 422 naming the field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if let Err(e) = std::str::from_utf8(bytes) {
        return Err(bad_request("invalid_encoding", format!("the request body is not valid UTF-8 (at byte {})", e.valid_up_to())).into());
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let result: Result<T, _> = serde_path_to_error::deserialize(&mut de);
    match result {
        Ok(v) => {
            // Trailing content after the document is malformed JSON too.
            if let Err(e) = de.end() {
                return Err(bad_request("malformed_json", format!("the request body is not valid JSON: {e}")).into());
            }
            Ok(v)
        }
        Err(e) => {
            let pointer = json_pointer(e.path());
            let inner = e.into_inner();
            match inner.classify() {
                serde_json::error::Category::Data => {
                    let detail = if pointer.is_empty() { inner.to_string() } else { format!("{pointer}: {inner}") };
                    Err(Problem::new("validation_failed", "Validation failed", 422)
                        .with_detail(detail)
                        .with_errors(vec![FieldProblem { pointer, detail: strip_position(&inner.to_string()) }])
                        .into())
                }
                _ => Err(bad_request("malformed_json", format!("the request body is not valid JSON: {inner}")).into()),
            }
        }
    }
}

/// The RFC 6901 pointer of a deserialisation path (`/findings/0/choice`).
fn json_pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        out.push('/');
        match segment {
            Segment::Seq { index } => out.push_str(&index.to_string()),
            Segment::Map { key } | Segment::Enum { variant: key } => out.push_str(&key.replace('~', "~0").replace('/', "~1")),
            Segment::Unknown => out.push('?'),
        }
    }
    out
}

fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

/// A query string, deserialised strictly (unknown parameters are an error).
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str(q).map(Query).map_err(|e| bad_request("invalid_query", format!("invalid query string: {e}")).into())
    }
}

/// Path parameters.
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Path(v))
            .map_err(|e| bad_request("invalid_path", format!("invalid path parameter: {}", e.body_text())).into())
    }
}

/// The version a client read, from `If-Match: "<version>"`. Required on every change to a versioned
/// record, so that two clients cannot overwrite each other's changes unnoticed.
pub struct IfMatch(pub i64);

/// Like [`IfMatch`], for requests where it is optional (creating a record that may not exist yet).
pub struct OptionalIfMatch(pub Option<i64>);

fn parse_if_match(parts: &Parts) -> Result<Option<i64>, ApiError> {
    let Some(value) = parts.headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("").trim();
    let tag = text.strip_prefix("W/").unwrap_or(text);
    tag.strip_prefix('"').and_then(|t| t.strip_suffix('"')).and_then(|t| t.parse::<i64>().ok()).filter(|v| *v >= 1).map(Some).ok_or_else(
        || bad_request("invalid_if_match", format!("If-Match must carry one version as an ETag, like \"3\" (got `{text}`)")).into(),
    )
}

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        match parse_if_match(parts)? {
            Some(v) => Ok(IfMatch(v)),
            None => Err(Problem::new("precondition_required", "Precondition required", 428)
                .with_detail("send If-Match with the ETag (version) of the record you read, so concurrent changes are detected")
                .into()),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for OptionalIfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parse_if_match(parts).map(OptionalIfMatch)
    }
}
