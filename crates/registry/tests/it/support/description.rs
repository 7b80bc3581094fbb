//! Every response the integration tests receive is checked against the API description
//! (`GET /api/openapi.json`): its status must be documented for the operation, its media type too, and
//! its body must match the documented schema (OpenAPI 3.1 schemas are JSON Schema 2020-12). A route
//! that answers something its description does not say fails whichever test met it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use axum::http::{HeaderMap, Method, StatusCode, header};
use serde_json::{Map, Value, json};

pub struct Description {
    doc: Value,
    /// Compiled response schemas, by operation, status and media type.
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

/// The registry's description, built once per test binary.
pub fn registry() -> &'static Description {
    static DESCRIPTION: OnceLock<Description> = OnceLock::new();
    DESCRIPTION.get_or_init(|| {
        let (_, _, doc) = endoreg_registry::http::parts();
        Description::new(serde_json::to_value(&doc).expect("the description serialises"))
    })
}

impl Description {
    pub fn new(doc: Value) -> Self {
        Description { doc, validators: Mutex::new(HashMap::new()) }
    }

    pub fn doc_mut(&mut self) -> &mut Value {
        &mut self.doc
    }

    /// The path template `path` answers to, preferring literal segments (`/tokens/self` over
    /// `/tokens/{id}`).
    fn template(&self, path: &str) -> Option<&str> {
        let segments: Vec<&str> = path.split('/').collect();
        let mut best: Option<(&str, usize)> = None;
        for template in self.doc["paths"].as_object()?.keys() {
            let parts: Vec<&str> = template.split('/').collect();
            if parts.len() != segments.len() {
                continue;
            }
            let mut literal = 0;
            let matches = parts.iter().zip(&segments).all(|(t, s)| {
                if t.starts_with('{') && t.ends_with('}') {
                    !s.is_empty()
                } else {
                    literal += 1;
                    t == s
                }
            });
            if matches && best.is_none_or(|(_, n)| literal > n) {
                best = Some((template, literal));
            }
        }
        best.map(|(t, _)| t)
    }

    /// Checks one response; the error says what does not match.
    pub fn check(&self, method: &Method, path: &str, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
        let method_key = method.as_str().to_ascii_lowercase();
        let operation = self.template(path).and_then(|t| Some((t, self.doc["paths"][t].get(&method_key)?)));
        let Some((template, operation)) = operation else {
            // Outside the described operations only the router's own answers may come: no such route, or
            // not with this method. They are problems like every other error.
            if status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED {
                return Err(format!("{method} {path} is no described operation, yet it answered {status}"));
            }
            return self.check_body(&format!("unrouted {status}"), &json!({"$ref": "#/components/schemas/Problem"}), body);
        };
        let what = format!("{method} {template} answered {}", status.as_u16());
        let Some(response) = operation["responses"].get(status.as_str()) else {
            let documented: Vec<&String> = operation["responses"].as_object().map(|m| m.keys().collect()).unwrap_or_default();
            return Err(format!("{what}, which the description does not document (it documents {documented:?})"));
        };
        let content = response.get("content").and_then(Value::as_object).filter(|c| !c.is_empty());
        let Some(content) = content else {
            if body.is_empty() {
                return Ok(());
            }
            return Err(format!("{what} with a body, where the description documents none"));
        };
        let media_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .unwrap_or_default();
        let Some(documented) = content.get(&media_type) else {
            let types: Vec<&String> = content.keys().collect();
            return Err(format!("{what} as `{media_type}`, where the description documents {types:?}"));
        };
        let Some(schema) = documented.get("schema") else { return Ok(()) };
        if media_type == "application/json" || media_type.ends_with("+json") {
            self.check_body(&format!("{what} as {media_type}"), schema, body)
        } else if schema["type"] == "string" && schema["format"] == "binary" {
            Ok(())
        } else if schema["type"] == "string" {
            std::str::from_utf8(body).map(|_| ()).map_err(|_| format!("{what}: the body is not text"))
        } else {
            Err(format!("{what} as {media_type}, which only a JSON schema describes"))
        }
    }

    fn check_body(&self, what: &str, schema: &Value, body: &[u8]) -> Result<(), String> {
        let instance: Value = serde_json::from_slice(body).map_err(|e| format!("{what}: the body is not JSON ({e})"))?;
        let validator = self.validator(what, schema)?;
        let errors: Vec<String> = validator.iter_errors(&instance).map(|e| format!("{} at `{}`", e, e.instance_path())).collect();
        if errors.is_empty() { Ok(()) } else { Err(format!("{what}, a body the documented schema refuses: {}", errors.join("; "))) }
    }

    fn validator(&self, key: &str, schema: &Value) -> Result<Arc<jsonschema::Validator>, String> {
        let key = format!("{key} {schema}");
        let mut cache = self.validators.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = cache.get(&key) {
            return Ok(v.clone());
        }
        // The schema with the document's components beside it, so that its `#/components/...` references
        // resolve within one resource.
        let mut root = match schema {
            Value::Object(m) => m.clone(),
            other => Map::from_iter([("allOf".to_owned(), Value::Array(vec![other.clone()]))]),
        };
        root.insert("components".into(), self.doc["components"].clone());
        let validator = jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&Value::Object(root))
            .map_err(|e| format!("the documented schema of {key} is not valid JSON Schema: {e}"))?;
        let validator = Arc::new(validator);
        cache.insert(key, validator.clone());
        Ok(validator)
    }
}
