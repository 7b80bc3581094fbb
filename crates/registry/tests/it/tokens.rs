//! API tokens through the API: bounded lifetimes, and revocation that the revoking server honours at once.

use axum::http::{Method, StatusCode};
use serde_json::json;

use endoreg_common::access::Role;
use endoreg_common::api::MAX_TOKEN_DAYS;

use crate::backends;
use crate::support::TestApp;

backends!(a_tokens_lifetime_is_bounded, a_revoked_token_is_refused_by_the_next_request);

async fn a_tokens_lifetime_is_bounded(app: TestApp) {
    // Far beyond what a date can hold, beyond the bound, and zero: a 422 naming the field, never a panic.
    for days in [json!(100_000_000), json!(u32::MAX), json!(MAX_TOKEN_DAYS + 1), json!(0)] {
        let r = app.post("/api/v1/tokens", json!({"name": "long", "role": "researcher", "expires_in_days": days})).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{days}: {}", r.body);
        assert_eq!(r.body["errors"][0]["pointer"], "/expires_in_days", "{days}: {}", r.body);
        assert!(r.body["errors"][0]["detail"].as_str().unwrap().contains(&MAX_TOKEN_DAYS.to_string()), "{days}: {}", r.body);
    }
    // Beyond 32 bits: the body's type is wrong, named as well.
    let r = app.post("/api/v1/tokens", json!({"name": "long", "role": "researcher", "expires_in_days": 10_000_000_000u64})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.body["errors"][0]["pointer"], "/expires_in_days", "{}", r.body);
    let r = app.post("/api/v1/tokens", json!({"name": "ten years", "role": "researcher", "expires_in_days": MAX_TOKEN_DAYS})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let expires = chrono::DateTime::parse_from_rfc3339(r.body["expires_at"].as_str().unwrap()).unwrap();
    let days = (expires.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_days();
    assert!((i64::from(MAX_TOKEN_DAYS) - 1..=i64::from(MAX_TOKEN_DAYS)).contains(&days), "{days}");
    // The API description says the same bound.
    let doc = app.get("/api/openapi.json").await.body;
    let field = &doc["components"]["schemas"]["TokenCreate"]["properties"]["expires_in_days"];
    assert_eq!(field["maximum"], MAX_TOKEN_DAYS, "{field}");
    assert_eq!(field["minimum"], 1, "{field}");
}

async fn a_revoked_token_is_refused_by_the_next_request(app: TestApp) {
    // A cache time far longer than the test: only forgetting the token can make the revocation visible.
    let app = TestApp::with_config(app.backend, |c| c.auth.token_cache_secs = 3600).await;
    let created = app.post("/api/v1/tokens", json!({"name": "leaving", "role": "researcher"})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let (token, id) = (created.body["token"].as_str().unwrap().to_owned(), created.body["id"].as_i64().unwrap());
    let keeper =
        app.post("/api/v1/tokens", json!({"name": "staying", "role": "researcher"})).await.body["token"].as_str().unwrap().to_owned();
    for t in [&token, &keeper] {
        let r = app.call_with(Some(t), Method::GET, "/api/v1/tokens/self", None, None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let r = app.call(Some(Role::Admin), Method::DELETE, &format!("/api/v1/tokens/{id}"), None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app.call_with(Some(&token), Method::GET, "/api/v1/tokens/self", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "the revoked token still works: {}", r.body);
    // Other tokens stay as they were.
    let r = app.call_with(Some(&keeper), Method::GET, "/api/v1/tokens/self", None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}
