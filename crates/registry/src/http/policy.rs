//! Declaring a route's permission where the route is declared: `guard(Permission::ReadClinical,
//! routes!(get_patient))` records the permission in the route's OpenAPI operation (as
//! `x-endoreg-permission`, with the bearer security requirement), and the policy table the auth
//! middleware enforces is read back from that document. One declaration, documented and enforced.

use std::collections::BTreeMap;

use axum::http::Method;
use utoipa::openapi::OpenApi;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::SecurityRequirement;
use utoipa_axum::router::UtoipaMethodRouter;

use endoreg_common::access::Permission;

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

/// Marks every operation of `routes` as requiring `permission`.
pub fn guard<S>(permission: Permission, routes: UtoipaMethodRouter<S>) -> UtoipaMethodRouter<S> {
    let (schemas, mut paths, method_router) = routes;
    for item in paths.paths.values_mut() {
        for (_, op) in operations(item) {
            if let Some(op) = op {
                let mut ext = op.extensions.take().unwrap_or_default();
                ext.merge(Extensions::builder().add(EXTENSION, permission.as_str()).build());
                op.extensions = Some(ext);
                op.security = Some(vec![SecurityRequirement::new("bearer", Vec::<String>::new())]);
            }
        }
    }
    (schemas, paths, method_router)
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
