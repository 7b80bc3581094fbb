//! RFC 9457 problem details: the body of every error the HTTP APIs return (`application/problem+json`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub const CONTENT_TYPE: &str = "application/problem+json";

/// An RFC 9457 problem. `type` is a stable URI per kind of problem (`urn:endoreg:problem:<code>`), `title`
/// is the same for every occurrence of that kind, `detail` says what went wrong this time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Field-level problems, for validation failures: one entry per offending field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldProblem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FieldProblem {
    /// JSON pointer-like path of the field (`/findings/0/classification_choices/1`).
    pub pointer: String,
    pub detail: String,
}

impl Problem {
    pub fn new(code: &str, title: &str, status: u16) -> Self {
        Self {
            type_uri: format!("urn:endoreg:problem:{code}"),
            title: title.to_owned(),
            status,
            detail: None,
            instance: None,
            errors: Vec::new(),
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn with_errors(mut self, errors: Vec<FieldProblem>) -> Self {
        self.errors = errors;
        self
    }

    /// The `<code>` part of the type URI.
    pub fn code(&self) -> &str {
        self.type_uri.rsplit(':').next().unwrap_or(&self.type_uri)
    }
}
