//! Successful responses: JSON bodies with an `ETag` carrying the record's version, and `201 Created` with
//! a `Location`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use endoreg_common::api::{LabelSegment, Patient, PatientExamination, PatientFinding, PatientIdentity, Report, Video};

/// A record with an optimistic-concurrency version.
pub trait HasVersion {
    fn version(&self) -> i64;
}

macro_rules! has_version {
    ($($t:ty),*) => {$(impl HasVersion for $t { fn version(&self) -> i64 { self.version } })*};
}
has_version!(Patient, PatientIdentity, PatientExamination, PatientFinding, Video, LabelSegment, Report);

fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut res = (status, body).into_response();
            res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            res
        }
        Err(e) => {
            log::error!("cannot serialise a response: {e}");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn etag(res: &mut Response, version: i64) {
    if let Ok(v) = HeaderValue::from_str(&format!("\"{version}\"")) {
        res.headers_mut().insert(header::ETAG, v);
    }
}

/// `200 OK` with the record and its `ETag`.
pub struct Versioned<T>(pub T);

impl<T: Serialize + HasVersion> IntoResponse for Versioned<T> {
    fn into_response(self) -> Response {
        let mut res = json(StatusCode::OK, &self.0);
        etag(&mut res, self.0.version());
        res
    }
}

/// `201 Created` with the record, its `ETag` and its `Location`.
pub struct Created<T>(pub T, pub String);

impl<T: Serialize + HasVersion> IntoResponse for Created<T> {
    fn into_response(self) -> Response {
        let mut res = json(StatusCode::CREATED, &self.0);
        etag(&mut res, self.0.version());
        if let Ok(v) = HeaderValue::from_str(&self.1) {
            res.headers_mut().insert(header::LOCATION, v);
        }
        res
    }
}

/// `200 OK` with a JSON body, for unversioned data (lists, terminology).
pub struct JsonOk<T>(pub T);

impl<T: Serialize> IntoResponse for JsonOk<T> {
    fn into_response(self) -> Response {
        json(StatusCode::OK, &self.0)
    }
}

/// `201 Created` for unversioned data.
pub struct JsonCreated<T>(pub T);

impl<T: Serialize> IntoResponse for JsonCreated<T> {
    fn into_response(self) -> Response {
        json(StatusCode::CREATED, &self.0)
    }
}
