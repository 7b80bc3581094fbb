//! Declaring a route's permission where the route is declared: `guard(Permission::ReadClinical,
//! routes!(get_patient))` records the permission in the route's OpenAPI operation (as
//! `x-endoreg-permission`, with the bearer security requirement), and the policy table the auth
//! middleware enforces is read back from that document. One declaration, documented and enforced.
//!
//! `guard` also documents the errors the operation can answer, derived from what it takes — the same
//! extractors give the same errors on every route (see [`document_errors`]) — so a handler's annotation
//! names only its successes, and no status goes undocumented. The registry's integration tests check
//! every response they see against this description.

use std::collections::BTreeMap;

use axum::http::Method;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, Required, ResponseBuilder};
use utoipa::{PartialSchema, ToSchema};
use utoipa_axum::router::UtoipaMethodRouter;

use endoreg_common::access::{Permission, Role};
use endoreg_common::problem::{self, FieldProblem, Problem};

use super::auth::Policy;

pub const EXTENSION: &str = "x-endoreg-permission";

fn operations(item: &mut PathItem) -> [(Method, &mut Option<Operation>); 5] {
    [
        (Method::GET, &mut item.get),
        (Method::POST, &mut item.post),
        (Method::PUT, &mut item.put),
        (Method::PATCH, &mut item.patch),
        (Method::DELETE, &mut item.delete),
    ]
}

/// Marks every operation of `routes` as requiring `permission`, and documents the errors it can answer.
pub fn guard<S>(permission: Permission, routes: UtoipaMethodRouter<S>) -> UtoipaMethodRouter<S> {
    let (mut schemas, mut paths, method_router) = routes;
    for item in paths.paths.values_mut() {
        for (method, op) in operations(item) {
            if let Some(op) = op {
                let mut ext = op.extensions.take().unwrap_or_default();
                ext.merge(Extensions::builder().add(EXTENSION, permission.as_str()).build());
                op.extensions = Some(ext);
                op.security = Some(vec![SecurityRequirement::new("bearer", Vec::<String>::new())]);
                document_errors(op, &method, Some(permission));
            }
        }
    }
    schemas.push((Problem::name().into_owned(), Problem::schema()));
    schemas.push((FieldProblem::name().into_owned(), FieldProblem::schema()));
    (schemas, paths, method_router)
}

/// Documents the errors of every operation of `routes`, which are served without a token (signing in).
pub fn public<S>(routes: UtoipaMethodRouter<S>) -> UtoipaMethodRouter<S> {
    let (mut schemas, mut paths, method_router) = routes;
    for item in paths.paths.values_mut() {
        for (method, op) in operations(item) {
            if let Some(op) = op {
                document_errors(op, &method, None);
            }
        }
    }
    schemas.push((Problem::name().into_owned(), Problem::schema()));
    schemas.push((FieldProblem::name().into_owned(), FieldProblem::schema()));
    (schemas, paths, method_router)
}

/// Adds to `op` every error status it can answer that its annotation does not name already, each with a
/// problem body; and a description to any response without one (OpenAPI requires it). What an operation
/// can answer follows from what it takes:
///
/// - every operation: 500 (an internal error, logged with an incident id) and 503 (the database is
///   unreachable or saturated, or the request took too long); guarded ones 401, and 403 unless every role
///   holds the permission and the operation is a GET (a change through a browser session without its
///   CSRF token is refused with 403);
/// - path parameters: 400 (one that cannot be read, like an id beyond 64 bits), 404 (no such record),
///   422 (control characters);
/// - query parameters: 400 (unknown or unreadable), 422 (out of range, control characters);
/// - `If-Match`: 400 (malformed), 412 (the record changed), 428 (missing, where it is required);
/// - a request body: 400 (not UTF-8, not JSON or not multipart), 408 (it did not arrive in time), 413
///   (too large), 415 (wrong media type), 422 (a field breaks a rule);
/// - every change (not GET): 409 (a conflict with stored data, or a concurrent write) and 422 (a rule
///   only the database checks).
pub fn document_errors(op: &mut Operation, method: &Method, permission: Option<Permission>) {
    let params: Vec<(ParameterIn, String, bool)> = op
        .parameters
        .iter()
        .flatten()
        .filter_map(|p| match p {
            RefOr::T(p) => Some((p.parameter_in.clone(), p.name.clone(), matches!(p.required, Required::True))),
            RefOr::Ref(_) => None,
        })
        .collect();
    let has = |kind: ParameterIn| params.iter().any(|(k, _, _)| *k == kind);
    let if_match = params.iter().find(|(k, n, _)| *k == ParameterIn::Header && n.eq_ignore_ascii_case("If-Match")).map(|p| p.2);
    let body = op.request_body.is_some();
    let mut statuses: Vec<u16> = vec![500, 503];
    if let Some(p) = permission {
        statuses.push(401);
        // A role may lack the permission; a change through a browser session may lack its CSRF token.
        if !Role::ALL.iter().all(|r| r.allows(p)) || *method != Method::GET {
            statuses.push(403);
        }
    }
    if has(ParameterIn::Path) {
        statuses.extend([400, 404, 422]);
    }
    if has(ParameterIn::Query) {
        statuses.extend([400, 422]);
    }
    if let Some(required) = if_match {
        statuses.extend([400, 412]);
        if required {
            statuses.push(428);
        }
    }
    if body {
        statuses.extend([400, 408, 413, 415, 422]);
    }
    if *method != Method::GET {
        statuses.extend([409, 422]);
    }
    for status in statuses {
        op.responses.responses.entry(status.to_string()).or_insert_with(|| problem_response(error_description(status)));
    }
    for (status, response) in op.responses.responses.iter_mut() {
        if let RefOr::T(r) = response
            && r.description.is_empty()
        {
            r.description = match status.as_str() {
                "200" => "OK",
                "201" => "Created",
                "204" => "No content",
                _ => "Answered",
            }
            .to_owned();
        }
    }
}

fn error_description(status: u16) -> &'static str {
    match status {
        400 => {
            "Something could not be read: a path parameter (e.g. an id beyond 64 bits), an unknown query parameter, a malformed \
                `If-Match`, a body that is not UTF-8, not JSON (or not multipart) or has trailing content."
        }
        401 => "No valid token.",
        403 => {
            "The caller's role lacks the permission named in `x-endoreg-permission`, or a change made through a browser \
                session lacks the session's `X-CSRF-Token`."
        }
        404 => "No such record (or terminology kind or entry).",
        408 => "The body did not arrive in time.",
        409 => {
            "The change conflicts with stored data (a duplicate, a record still in use, a state change the state machine \
                forbids) or with a concurrent write (retry)."
        }
        412 => "The record changed since the version in `If-Match`: read it again.",
        413 => "The body exceeds the size limit.",
        415 => "The body's media type is not the one this operation takes.",
        422 => {
            "A value breaks a rule: unknown fields, wrong types, unknown names, numbers out of range, control characters; \
                `errors` names each with its JSON pointer (`/name` for a query or path parameter)."
        }
        428 => "`If-Match` is missing.",
        500 => "An internal error; the incident is logged under the id in `detail`.",
        503 => "The database or storage is unreachable or saturated, or the request took too long: retry later.",
        _ => "An error.",
    }
}

fn problem_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(problem::CONTENT_TYPE, Content::new(Some(Ref::from_schema_name(Problem::name()))))
            .build(),
    )
}

/// Every `(method, path)` in the document with the permission it was guarded with (`None`: unguarded).
pub fn declared(doc: &OpenApi) -> BTreeMap<(String, String), Option<Permission>> {
    let mut out = BTreeMap::new();
    let mut paths = doc.paths.clone();
    for (path, item) in paths.paths.iter_mut() {
        for (method, op) in operations(item) {
            if let Some(op) = op {
                let perm = op
                    .extensions
                    .as_ref()
                    .and_then(|e| e.get(EXTENSION))
                    .and_then(|v| v.as_str())
                    .and_then(|s| s.parse::<Permission>().ok());
                out.insert((method.to_string(), path.clone()), perm);
            }
        }
    }
    out
}

/// The policy table for the auth middleware.
pub fn policy(doc: &OpenApi) -> Policy {
    declared(doc).into_iter().filter_map(|((m, p), perm)| Some(((m.parse::<Method>().ok()?, p), perm?))).collect()
}
