//! Extractors that answer bad input with problems instead of axum's plain-text rejections: JSON bodies
//! (content type, UTF-8, syntax, unknown fields, types — each named), query strings, path parameters and
//! the `If-Match` version. Text with control characters is refused here, whatever route it is sent to
//! (`service::text`): a 422 naming the field, the same on both database backends.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use endoreg_common::problem::{FieldProblem, Problem};

use super::error::{ApiError, bad_request};
use crate::service::text;

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

/// Parses a JSON body: not UTF-8 or not JSON is 400; JSON of the wrong shape, or text holding a control
/// character, is 422 naming the field.
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
            refuse_control_characters(bytes)?;
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

/// At most this many control-character problems are listed in one answer.
const MAX_LISTED: usize = 20;

/// Refuses a JSON document any of whose strings or object keys holds a control character other than
/// tab, line feed and carriage return (names and codes refuse those too, in the service layer). JSON
/// carries control characters only as escapes (`\u0000`, `\n`) or, for DEL and C1, raw: a body with
/// neither is not walked.
fn refuse_control_characters(bytes: &[u8]) -> Result<(), ApiError> {
    let c1 = bytes.windows(2).any(|w| w[0] == 0xC2 && (0x80..=0x9F).contains(&w[1]));
    if !(bytes.contains(&b'\\') || bytes.contains(&0x7F) || c1) {
        return Ok(());
    }
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Ok(()); // parsed as T a moment ago; cannot fail
    };
    let mut problems = Vec::new();
    walk(&doc, &mut String::new(), &mut problems);
    if problems.is_empty() {
        return Ok(());
    }
    Err(control_character_problem(problems))
}

fn walk(value: &serde_json::Value, pointer: &mut String, problems: &mut Vec<FieldProblem>) {
    use serde_json::Value;
    if problems.len() >= MAX_LISTED {
        return;
    }
    match value {
        Value::String(s) => check_text(pointer, "", s, JSON_RULE, text::forbidden_anywhere, problems),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = pointer.len();
                pointer.push_str(&format!("/{i}"));
                walk(item, pointer, problems);
                pointer.truncate(len);
            }
        }
        Value::Object(members) => {
            for (key, item) in members {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                check_text(pointer, "the name of this member ", key, JSON_RULE, text::forbidden_anywhere, problems);
                walk(item, pointer, problems);
                pointer.truncate(len);
            }
        }
        _ => {}
    }
}

const JSON_RULE: &str = "text must not contain control characters other than tab and line breaks";
const PARAMETER_RULE: &str = "parameters must not contain control characters";

fn check_text(pointer: &str, what: &str, value: &str, rule: &str, forbidden: impl Fn(char) -> bool, problems: &mut Vec<FieldProblem>) {
    if let Some((at, c)) = text::first_forbidden(value, forbidden) {
        problems.push(FieldProblem {
            pointer: pointer.to_owned(),
            detail: format!("{what}holds the control character {} at character {at}; {rule}", text::describe(c)),
        });
    }
}

fn control_character_problem(problems: Vec<FieldProblem>) -> ApiError {
    let detail = problems.iter().map(|p| format!("{}: {}", p.pointer, p.detail)).collect::<Vec<_>>().join("; ");
    Problem::new("validation_failed", "Validation failed", 422).with_detail(detail).with_errors(problems).into()
}

/// Query and path parameters are names, codes, numbers and dates: no control character at all.
fn check_parameters<'a>(kind: &str, params: impl Iterator<Item = (&'a str, &'a str)>) -> Result<(), ApiError> {
    let mut problems = Vec::new();
    for (name, value) in params {
        let pointer = format!("/{}", name.replace('~', "~0").replace('/', "~1"));
        check_text(&pointer, &format!("the name of {kind} parameter `{name}` "), name, PARAMETER_RULE, char::is_control, &mut problems);
        check_text(&pointer, &format!("{kind} parameter `{name}` "), value, PARAMETER_RULE, char::is_control, &mut problems);
        if problems.len() >= MAX_LISTED {
            break;
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(control_character_problem(problems)) }
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
        let invalid = |e: serde_urlencoded::de::Error| ApiError::from(bad_request("invalid_query", format!("invalid query string: {e}")));
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q).map_err(invalid)?;
        check_parameters("query", pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
        serde_urlencoded::from_str(q).map(Query).map_err(invalid)
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
        // Not UTF-8 after percent-decoding: the typed extraction below names that.
        if let Ok(raw) = axum::extract::RawPathParams::from_request_parts(parts, state).await {
            check_parameters("path", raw.iter())?;
        }
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
