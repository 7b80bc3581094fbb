//! Browser sessions: signing in with a token sets a secure cookie; the cookie authenticates like the
//! token, with the same permissions; changes need the session's CSRF token; sign-out, revocation of the
//! token, idle and absolute expiry each end the session.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};

use endoreg_common::access::Role;

use crate::backends;
use crate::support::{Response, TestApp};

backends!(
    a_session_is_a_secure_cookie_with_the_tokens_permissions_and_changes_need_its_csrf_token,
    a_session_ends_at_sign_out_revocation_and_expiry,
    sign_in_refuses_what_is_no_live_token
);

/// A request with the session cookie `cookie` (and a CSRF token, a JSON body when given).
async fn with_cookie(app: &TestApp, method: Method, path: &str, cookie: &str, csrf: Option<&str>, body: Option<Value>) -> Response {
    let mut req = Request::builder().method(method).uri(path).header(header::COOKIE, format!("theme=dark; endoreg_session={cookie}"));
    if let Some(c) = csrf {
        req = req.header("x-csrf-token", c);
    }
    let req = match body {
        Some(b) => req.header(header::CONTENT_TYPE, "application/json").body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    };
    app.raw(req.unwrap()).await
}

/// Signs in with `token`; returns the cookie's value, the CSRF token and the answer.
async fn sign_in(app: &TestApp, token: &str) -> (String, String, Response) {
    let r = app.call(None, Method::POST, "/api/v1/sessions", Some(json!({"token": token})), None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let set_cookie = r.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap().to_owned();
    let value = set_cookie.split(';').next().unwrap().strip_prefix("endoreg_session=").unwrap().to_owned();
    let csrf = r.body["csrf_token"].as_str().unwrap().to_owned();
    (value, csrf, r)
}

async fn a_session_is_a_secure_cookie_with_the_tokens_permissions_and_changes_need_its_csrf_token(app: TestApp) {
    let (cookie, csrf, r) = sign_in(&app, &app.tokens[&Role::Annotator]).await;
    let set_cookie = r.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap();
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(set_cookie.split("; ").any(|a| a == attribute), "{attribute} missing in {set_cookie}");
    }
    assert_eq!(cookie.len(), 43, "32 random bytes");
    assert_eq!(r.body["role"], "annotator");
    assert_eq!(r.body["via"], "session");
    assert!(r.body["permissions"].as_array().unwrap().contains(&json!("write_labels")));
    assert!(!r.body["permissions"].as_array().unwrap().contains(&json!("read_identity")));
    // Only the hash is stored.
    let stored: Vec<(String,)> = app.db.fetch_all("SELECT session_hash FROM web_session", vec![]).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0].0, cookie);

    // The cookie authenticates, with the role's permissions and no more.
    let r = with_cookie(&app, Method::GET, "/api/v1/videos", &cookie, None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let patient = app.patient().await;
    let r = with_cookie(&app, Method::GET, &format!("/api/v1/patients/{patient}/identity"), &cookie, None, None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.problem_code(), "forbidden");
    let r = with_cookie(&app, Method::GET, "/api/v1/sessions/current", &cookie, None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["csrf_token"], csrf.as_str(), "the app gets its CSRF token back after a reload");

    // A change: refused without the CSRF token or with another session's, done with its own.
    let r = app.post("/api/v1/videos", json!({"center": "demo_center", "sha256": "ab".repeat(32)})).await;
    let video = r.body["id"].as_i64().unwrap();
    let r = app
        .call(
            Some(Role::Admin),
            Method::PATCH,
            &format!("/api/v1/videos/{video}"),
            Some(json!({"metadata": {"frame_count": 100}})),
            Some("\"1\""),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let segment = json!({"label": "polyp", "start_frame": 10, "end_frame": 20, "source": "annotation"});
    let path = format!("/api/v1/videos/{video}/segments");
    let r = with_cookie(&app, Method::POST, &path, &cookie, None, Some(segment.clone())).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.problem_code(), "csrf_token_missing");
    let (_, other_csrf, _) = sign_in(&app, &app.tokens[&Role::Annotator]).await;
    let r = with_cookie(&app, Method::POST, &path, &cookie, Some(&other_csrf), Some(segment.clone())).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "another session's CSRF token");
    let r = with_cookie(&app, Method::POST, &path, &cookie, Some(&csrf), Some(segment)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // A researcher's session cannot write labels, CSRF token or not.
    let (rc, rcsrf, _) = sign_in(&app, &app.tokens[&Role::Researcher]).await;
    let r =
        with_cookie(&app, Method::POST, &path, &rc, Some(&rcsrf), Some(json!({"label": "polyp", "start_frame": 1, "end_frame": 2}))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.problem_code(), "forbidden");

    // A bearer token wins over a cookie; it has no CSRF token and needs none.
    let req = Request::builder()
        .uri("/api/v1/sessions/current")
        .header(header::COOKIE, format!("endoreg_session={cookie}"))
        .header(header::AUTHORIZATION, format!("Bearer {}", app.tokens[&Role::Researcher]))
        .body(Body::empty())
        .unwrap();
    let r = app.raw(req).await;
    assert_eq!((r.body["role"].as_str(), r.body["via"].as_str()), (Some("researcher"), Some("bearer")));
    assert!(r.body["csrf_token"].is_null());
}

async fn a_session_ends_at_sign_out_revocation_and_expiry(app: TestApp) {
    // Sign-out needs the CSRF token, ends the session and removes the cookie.
    let (cookie, csrf, _) = sign_in(&app, &app.tokens[&Role::Researcher]).await;
    let r = with_cookie(&app, Method::DELETE, "/api/v1/sessions/current", &cookie, None, None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = with_cookie(&app, Method::DELETE, "/api/v1/sessions/current", &cookie, Some(&csrf), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(r.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap().contains("Max-Age=0"));
    let r = with_cookie(&app, Method::GET, "/api/v1/videos", &cookie, None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap().contains("Max-Age=0"), "the dead cookie is removed");

    // Revoking the token ends its sessions at once.
    let t = app.post("/api/v1/tokens", json!({"name": "a browser user", "role": "annotator"})).await;
    let (token, token_id) = (t.body["token"].as_str().unwrap().to_owned(), t.body["id"].as_i64().unwrap());
    let (cookie, _, _) = sign_in(&app, &token).await;
    assert_eq!(with_cookie(&app, Method::GET, "/api/v1/videos", &cookie, None, None).await.status, StatusCode::OK);
    let r = app.call(Some(Role::Admin), Method::DELETE, &format!("/api/v1/tokens/{token_id}"), None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(with_cookie(&app, Method::GET, "/api/v1/videos", &cookie, None, None).await.status, StatusCode::UNAUTHORIZED);

    // Idle: unused for longer than web.session_idle_minutes (60 by default).
    let (cookie, _, _) = sign_in(&app, &app.tokens[&Role::Annotator]).await;
    let long_ago = chrono::Utc::now() - chrono::Duration::minutes(61);
    app.db.execute("UPDATE web_session SET last_seen_at = $1", endoreg_registry::params![long_ago]).await.unwrap();
    assert_eq!(with_cookie(&app, Method::GET, "/api/v1/videos", &cookie, None, None).await.status, StatusCode::UNAUTHORIZED);
    // Absolute: past its end, however recently used.
    let (cookie, _, _) = sign_in(&app, &app.tokens[&Role::Annotator]).await;
    let r = with_cookie(&app, Method::GET, "/api/v1/videos", &cookie, None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    app.db
        .execute("UPDATE web_session SET expires_at = $1", endoreg_registry::params![chrono::Utc::now() - chrono::Duration::seconds(1)])
        .await
        .unwrap();
    assert_eq!(with_cookie(&app, Method::GET, "/api/v1/videos", &cookie, None, None).await.status, StatusCode::UNAUTHORIZED);
    let left: Vec<(i64,)> = app.db.fetch_all("SELECT id FROM web_session", vec![]).await.unwrap();
    assert!(left.is_empty(), "ended sessions are removed: {left:?}");

    // A used session's idle end moves on.
    let (cookie, _, r) = sign_in(&app, &app.tokens[&Role::Annotator]).await;
    let first_idle_end = r.body["idle_expires_at"].as_str().unwrap().to_owned();
    let earlier = chrono::Utc::now() - chrono::Duration::minutes(30);
    app.db.execute("UPDATE web_session SET last_seen_at = $1", endoreg_registry::params![earlier]).await.unwrap();
    let r = with_cookie(&app, Method::GET, "/api/v1/sessions/current", &cookie, None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["idle_expires_at"].as_str().unwrap() >= first_idle_end.as_str(), "{} vs {first_idle_end}", r.body["idle_expires_at"]);
}

async fn sign_in_refuses_what_is_no_live_token(app: TestApp) {
    for token in ["endoreg_notatoken", "", "Bearer x", &"x".repeat(100)] {
        let r = app.call(None, Method::POST, "/api/v1/sessions", Some(json!({"token": token})), None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{token}: {}", r.body);
        assert!(r.headers.get(header::SET_COOKIE).is_none());
    }
    let r = app.call(None, Method::POST, "/api/v1/sessions", Some(json!({"token": "x".repeat(201)})), None).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app.call(None, Method::POST, "/api/v1/sessions", Some(json!({"password": "x"})), None).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app.call(None, Method::POST, "/api/v1/sessions", None, None).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // A cookie that names no session, or is malformed, is not a caller.
    for cookie in ["A".repeat(43), "short".into(), "../../etc".into()] {
        let r = with_cookie(&app, Method::GET, "/api/v1/videos", &cookie, None, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{cookie}");
    }
    let r = app.call(None, Method::GET, "/api/v1/videos", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body["detail"].as_str().unwrap().contains("sign in to the web app"));
    assert_eq!(app.db.fetch_all::<(i64,)>("SELECT id FROM web_session", vec![]).await.unwrap().len(), 0);
}
