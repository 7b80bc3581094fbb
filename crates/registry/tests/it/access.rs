//! Access control, walked exhaustively: every route of the router against every role (and no token), and
//! the written policy in docs/access.md against the enforced one. A route added without a permission
//! fails here, and is refused at run time (deny by default).

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use serde_json::json;

use endoreg_common::access::{Permission, Role};
use endoreg_registry::http::{self, policy};

use crate::backends;
use crate::support::TestApp;

backends!(every_route_enforces_its_permission_for_every_role);

fn concrete(path: &str) -> String {
    path.replace("{id}", "1")
        .replace("{kind}", "finding")
        .replace("{name}", "colon_polyp")
        .replace("{source}", "raw")
        .replace("{frame}", "0")
}

async fn every_route_enforces_its_permission_for_every_role(app: TestApp) {
    let (_, _, doc) = http::parts();
    let declared = policy::declared(&doc);
    assert!(declared.len() >= 40, "only {} operations declared", declared.len());
    // Revoking takes effect at once, so the walk revokes a spare token, not one of those it walks with.
    let spare = app.post("/api/v1/tokens", json!({"name": "spare", "role": "researcher"})).await.body["id"].as_i64().unwrap();
    for ((method, path), permission) in &declared {
        let method: Method = method.parse().unwrap();
        let body = matches!(method, Method::POST | Method::PUT | Method::PATCH).then(|| json!({}));
        let url = if path == "/api/v1/tokens/{id}" { format!("/api/v1/tokens/{spare}") } else { concrete(path) };
        if http::PUBLIC_PATHS.contains(&path.as_str()) {
            assert!(permission.is_none(), "{path} is public and must not carry a permission");
            let r = app.call(None, method.clone(), &url, body.clone(), None).await;
            if method == Method::GET {
                assert_eq!(r.status, StatusCode::OK, "{method} {path} anonymously");
            } else {
                // Signing in: answered without a token (here 422, the body names no token).
                assert!(
                    ![StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN, StatusCode::INTERNAL_SERVER_ERROR].contains(&r.status),
                    "{method} {path} anonymously answered {}",
                    r.status
                );
            }
            continue;
        }
        let Some(permission) = permission else {
            panic!("{method} {path} has no permission: declare it with policy::guard");
        };
        let r = app.call(None, method.clone(), &url, body.clone(), Some("\"1\"")).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {path} without a token: {}", r.body);
        for role in Role::ALL {
            let r = app.call(Some(role), method.clone(), &url, body.clone(), Some("\"1\"")).await;
            if role.allows(*permission) {
                assert!(
                    r.status != StatusCode::FORBIDDEN
                        && r.status != StatusCode::UNAUTHORIZED
                        && r.status != StatusCode::INTERNAL_SERVER_ERROR,
                    "{method} {path} as {role} ({permission}) answered {}: {}",
                    r.status,
                    r.body
                );
            } else {
                assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {path} as {role} must be refused ({permission}): {}", r.body);
                assert_eq!(r.problem_code(), "forbidden");
            }
        }
    }
}

fn table_rows(doc: &str, heading: &str) -> BTreeSet<Vec<String>> {
    let mut in_section = false;
    let mut rows = BTreeSet::new();
    for line in doc.lines() {
        if line.starts_with("## ") {
            in_section = line.trim_start_matches("## ").trim() == heading;
            continue;
        }
        if in_section && line.starts_with('|') && !line.starts_with("|---") && !line.starts_with("| ---") {
            let cells: Vec<String> = line.trim_matches('|').split('|').map(|c| c.trim().trim_matches('`').to_owned()).collect();
            rows.insert(cells);
        }
    }
    rows
}

/// What docs/access.md must say, generated from the code.
fn expected_rows() -> (BTreeSet<Vec<String>>, BTreeSet<Vec<String>>) {
    let mut matrix = BTreeSet::new();
    let mut header = vec!["permission".to_owned()];
    header.extend(Role::ALL.iter().map(|r| r.as_str().to_owned()));
    matrix.insert(header);
    for p in Permission::ALL {
        let mut row = vec![p.as_str().to_owned()];
        row.extend(Role::ALL.iter().map(|r| if r.allows(p) { "yes".to_owned() } else { "no".to_owned() }));
        matrix.insert(row);
    }
    let (_, _, doc) = http::parts();
    let mut routes = BTreeSet::new();
    routes.insert(vec!["method".to_owned(), "path".to_owned(), "permission".to_owned()]);
    for ((method, path), perm) in policy::declared(&doc) {
        routes.insert(vec![method, path, perm.map_or("public".to_owned(), |p| p.as_str().to_owned())]);
    }
    (matrix, routes)
}

#[test]
fn the_written_access_matrix_is_the_enforced_one() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/access.md");
    let doc = std::fs::read_to_string(&path).unwrap_or_default();
    let (matrix, routes) = expected_rows();
    let render = |rows: &BTreeSet<Vec<String>>| rows.iter().map(|r| format!("| {} |", r.join(" | "))).collect::<Vec<_>>().join("\n");
    assert_eq!(
        table_rows(&doc, "Roles and permissions"),
        matrix,
        "docs/access.md, section `## Roles and permissions`, must hold this table:\n{}",
        render(&matrix)
    );
    assert_eq!(table_rows(&doc, "Routes"), routes, "docs/access.md, section `## Routes`, must hold this table:\n{}", render(&routes));
}
