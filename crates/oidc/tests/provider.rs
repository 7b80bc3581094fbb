//! endoreg-oidc against a real OpenID provider (`oidc-provider`, OpenID certified) on loopback: tokens it
//! issues, tokens forged with its keys and with keys it does not publish, key rotation, and the browser
//! sign-in driven over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use endoreg_common::access::Role;
use endoreg_oidc::jwks::CacheStats;
use endoreg_oidc::{CallbackParams, FlowError, JwsAlg, ManualClock, Oidc, OidcConfig, Principal};
use serde_json::{Value, json};
use support::{Browser, Keys, Provider, claims_at, header, now, payload, sign};

const REDIRECT_URI: &str = "https://registry.example/oidc/callback";

async fn oidc(config: OidcConfig) -> Oidc {
    Oidc::discover(config).await.unwrap()
}

fn reason(result: Result<impl std::fmt::Debug, endoreg_oidc::AuthError>) -> &'static str {
    result.expect_err("the token must be refused").reason()
}

fn centers(keys: &[&str]) -> BTreeSet<String> {
    keys.iter().map(|k| k.to_string()).collect()
}

#[tokio::test]
async fn tokens_the_provider_signs_validate_with_every_default_algorithm() {
    let p = Provider::shared().await;
    let oidc = oidc(p.config()).await;
    for (client, alg) in
        [("svc-rs256", JwsAlg::RS256), ("svc-ps256", JwsAlg::PS256), ("svc-es256", JwsAlg::ES256), ("svc-eddsa", JwsAlg::EdDSA)]
    {
        let token = p.client_credentials(client).await;
        let claims = oidc.validator().access_token(&token).await.unwrap_or_else(|e| panic!("{client}: {e}"));
        assert_eq!(claims.alg, alg);
        let principal = oidc.mapper().principal(&claims).unwrap();
        assert_eq!(
            principal,
            Principal {
                subject: client.into(),
                username: None,
                name: None,
                email: None,
                role: Role::Service,
                centers: centers(&["uni_wuerzburg"]),
            }
        );
    }
    // One key set fetch served all four key types.
    assert_eq!(oidc.validator().jwks().stats(), CacheStats { refreshes: 1, failed_refreshes: 0 });
}

#[tokio::test]
async fn an_algorithm_outside_the_allow_list_is_refused() {
    let p = Provider::shared().await;
    let oidc = oidc(OidcConfig { allowed_algorithms: vec![JwsAlg::RS256], ..p.config() }).await;
    let es = p.client_credentials("svc-es256").await;
    assert_eq!(reason(oidc.authenticate_bearer(&es).await), "alg_not_allowed");
    let rs = p.client_credentials("svc-rs256").await;
    assert_eq!(oidc.authenticate_bearer(&rs).await.unwrap().role, Role::Service);
}

#[tokio::test]
async fn expired_and_not_yet_valid_tokens_are_refused_beyond_the_clock_skew() {
    let p = Provider::shared().await;
    let oidc = oidc(p.config()).await; // skew 60 s
    let rsa = Keys::of(&p.keys.first, "RSA");
    let forge =
        |extra: Value| sign(&rsa, "RS256", json!({"alg": "RS256", "kid": rsa.kid, "typ": "JWT"}), &claims_at(&p.keys, now(), extra));

    // The forgery itself is sound: with unremarkable times it is accepted.
    assert_eq!(oidc.authenticate_bearer(&forge(json!({}))).await.unwrap().role, Role::Researcher);

    let t = now();
    assert_eq!(reason(oidc.authenticate_bearer(&forge(json!({"iat": t - 600, "exp": t - 120}))).await), "expired");
    assert!(oidc.authenticate_bearer(&forge(json!({"iat": t - 600, "exp": t - 30}))).await.is_ok(), "within the skew");
    assert_eq!(reason(oidc.authenticate_bearer(&forge(json!({"nbf": t + 120}))).await), "not_yet_valid");
    assert!(oidc.authenticate_bearer(&forge(json!({"nbf": t + 30}))).await.is_ok(), "within the skew");
    assert_eq!(reason(oidc.authenticate_bearer(&forge(json!({"iat": t + 120, "exp": t + 600}))).await), "issued_in_future");
    assert_eq!(reason(oidc.authenticate_bearer(&forge(json!({"exp": null}))).await), "missing_claim");
    assert_eq!(reason(oidc.authenticate_bearer(&forge(json!({"exp": "tomorrow"}))).await), "bad_claim");

    // A real token of the provider, once our clock has passed its expiry by more than the skew.
    let clock = Arc::new(ManualClock::new());
    let oidc = Oidc::discover_with_clock(p.config(), clock.clone()).await.unwrap();
    let token = p.client_credentials("svc-rs256").await;
    assert!(oidc.authenticate_bearer(&token).await.is_ok());
    let exp = payload(&token)["exp"].as_i64().unwrap();
    clock.advance(Duration::from_secs((exp - now() + 30) as u64));
    assert!(oidc.authenticate_bearer(&token).await.is_ok(), "30 s past exp is within the skew");
    clock.advance(Duration::from_secs(60));
    assert_eq!(reason(oidc.authenticate_bearer(&token).await), "expired");
}

#[tokio::test]
async fn wrong_audience_wrong_issuer_and_unauthorized_parties_are_refused() {
    let p = Provider::shared().await;
    let token = p.client_credentials("svc-rs256").await;
    let other_audience = oidc(OidcConfig { audience: Some("another-service".into()), ..p.config() }).await;
    assert_eq!(reason(other_audience.authenticate_bearer(&token).await), "wrong_audience");

    let oidc = oidc(p.config()).await;
    let rsa = Keys::of(&p.keys.first, "RSA");
    let forge = |extra: Value| sign(&rsa, "RS256", json!({"alg": "RS256", "kid": rsa.kid}), &claims_at(&p.keys, now(), extra));
    assert_eq!(reason(oidc.authenticate_bearer(&forge(json!({"iss": "http://127.0.0.1:1"}))).await), "wrong_issuer");
    assert_eq!(reason(oidc.authenticate_bearer(&forge(json!({"iss": format!("{}/", p.issuer)}))).await), "wrong_issuer");
    assert_eq!(reason(oidc.authenticate_bearer(&forge(json!({"aud": ["other", "more"]}))).await), "wrong_audience");
    // Several audiences: the token must say which client it was issued to (azp).
    let several = json!({"aud": ["account", p.keys.audience]});
    assert_eq!(reason(oidc.authenticate_bearer(&forge(several.clone())).await), "unauthorized_party");
    let with_azp = json!({"aud": ["account", p.keys.audience], "azp": "registry-cli"});
    assert!(oidc.authenticate_bearer(&forge(with_azp.clone())).await.is_ok());
    let only_web = oidc_for_parties(p, &["registry-web"]).await;
    assert_eq!(reason(only_web.authenticate_bearer(&forge(with_azp)).await), "unauthorized_party");
    // Keycloak's ID and refresh tokens are typed; they are no bearer tokens.
    assert_eq!(reason(oidc.authenticate_bearer(&forge(json!({"typ": "ID"}))).await), "not_access_token");
    assert!(oidc.authenticate_bearer(&forge(json!({"typ": "Bearer"}))).await.is_ok());
}

async fn oidc_for_parties(p: &Provider, parties: &[&str]) -> Oidc {
    oidc(OidcConfig { authorized_parties: parties.iter().map(|s| s.to_string()).collect(), ..p.config() }).await
}

#[tokio::test]
async fn a_token_signed_by_a_key_the_provider_does_not_publish_is_refused() {
    let p = Provider::shared().await;
    let oidc = oidc(p.config()).await;
    let real = p.client_credentials("svc-rs256").await;
    let claims = Value::Object(payload(&real));
    assert!(oidc.authenticate_bearer(&real).await.is_ok());

    for (kty, alg) in [("RSA", "RS256"), ("EC", "ES256"), ("OKP", "EdDSA")] {
        let outsider = Keys::of(&p.keys.outsider, kty);
        let published = Keys::of(&p.keys.first, kty);
        // Claiming the provider's key id: the signature does not verify.
        let forged = sign(&outsider, alg, json!({"alg": alg, "kid": published.kid}), &claims);
        assert_eq!(reason(oidc.authenticate_bearer(&forged).await), "bad_signature", "{alg}");
        // Its own key id: no such key, even after a refresh.
        let forged = sign(&outsider, alg, json!({"alg": alg, "kid": outsider.kid}), &claims);
        assert_eq!(reason(oidc.authenticate_bearer(&forged).await), "unknown_key", "{alg}");
    }
    // A real token with one bit of its claims changed.
    let mut parts: Vec<String> = real.split('.').map(str::to_owned).collect();
    let mut c = payload(&real);
    c.insert("sub".into(), json!("someone-else"));
    parts[1] = support::b64(Value::Object(c).to_string().as_bytes());
    assert_eq!(reason(oidc.authenticate_bearer(&parts.join(".")).await), "bad_signature");
}

#[tokio::test]
async fn alg_none_and_hmac_with_the_public_key_are_refused_before_any_key_is_fetched() {
    let p = Provider::shared().await;
    let oidc = oidc(p.config()).await;
    let real = p.client_credentials("svc-rs256").await;
    let kid = header(&real)["kid"].as_str().unwrap().to_owned();
    let body = support::b64(Value::Object(payload(&real)).to_string().as_bytes());

    for alg in ["none", "None", "NONE"] {
        let h = support::b64(json!({"alg": alg, "kid": kid}).to_string().as_bytes());
        for token in [format!("{h}.{body}."), format!("{h}.{body}.AAAA")] {
            assert_eq!(reason(oidc.authenticate_bearer(&token).await), "alg_none", "{alg}");
        }
    }

    // The classic confusion: HMAC keyed with the provider's public key, which anyone can fetch.
    let rsa = Keys::of(&p.keys.first, "RSA");
    for alg in ["HS256", "HS384", "HS512"] {
        let h = support::b64(json!({"alg": alg, "kid": rsa.kid}).to_string().as_bytes());
        let input = format!("{h}.{body}");
        let algorithm = match alg {
            "HS256" => aws_lc_rs::hmac::HMAC_SHA256,
            "HS384" => aws_lc_rs::hmac::HMAC_SHA384,
            _ => aws_lc_rs::hmac::HMAC_SHA512,
        };
        let key = aws_lc_rs::hmac::Key::new(algorithm, rsa.spki_pem.as_bytes());
        let mac = aws_lc_rs::hmac::sign(&key, input.as_bytes());
        let token = format!("{input}.{}", support::b64(mac.as_ref()));
        assert_eq!(reason(oidc.authenticate_bearer(&token).await), "alg_hmac", "{alg}");
    }
    assert_eq!(oidc.validator().jwks().stats().refreshes, 0, "no refused token made us fetch keys");
    assert!(oidc.authenticate_bearer(&real).await.is_ok());
}

#[tokio::test]
async fn the_key_must_fit_the_tokens_algorithm() {
    let p = Provider::shared().await;
    let oidc = oidc(p.config()).await;
    let claims = claims_at(&p.keys, now(), json!({}));
    let rsa = Keys::of(&p.keys.first, "RSA");
    let ec = Keys::of(&p.keys.first, "EC");
    let ed = Keys::of(&p.keys.first, "OKP");
    // An EC signature presented under the RSA key's id, and the other way round.
    let t = sign(&ec, "ES256", json!({"alg": "ES256", "kid": rsa.kid}), &claims);
    assert_eq!(reason(oidc.authenticate_bearer(&t).await), "key_mismatch");
    let t = sign(&rsa, "RS256", json!({"alg": "RS256", "kid": ec.kid}), &claims);
    assert_eq!(reason(oidc.authenticate_bearer(&t).await), "key_mismatch");
    // The Ed25519 key is published with alg EdDSA: it serves nothing else.
    let t = sign(&ed, "EdDSA", json!({"alg": "EdDSA", "kid": ed.kid}), &claims);
    assert!(oidc.authenticate_bearer(&t).await.is_ok());
    let ed_alg = OidcConfig { allowed_algorithms: vec![JwsAlg::Ed25519], ..p.config() };
    let t = sign(&ed, "EdDSA", json!({"alg": "Ed25519", "kid": ed.kid}), &claims);
    assert_eq!(reason(Oidc::discover(ed_alg).await.unwrap().authenticate_bearer(&t).await), "key_mismatch");
}

#[tokio::test]
async fn oversized_malformed_and_critical_tokens_are_refused() {
    let p = Provider::shared().await;
    let oidc = oidc(OidcConfig { max_token_bytes: 2048, ..p.config() }).await;
    let rsa = Keys::of(&p.keys.first, "RSA");
    let big = sign(&rsa, "RS256", json!({"alg": "RS256", "kid": rsa.kid}), &claims_at(&p.keys, now(), json!({"pad": "x".repeat(2048)})));
    assert_eq!(reason(oidc.authenticate_bearer(&big).await), "token_too_large");
    for garbage in ["", "abc", "a.b.c", "a.b.c.d.e", "eyJhbGciOiJSUzI1NiJ9.e30=.AA"] {
        assert_eq!(reason(oidc.authenticate_bearer(garbage).await), "malformed", "{garbage:?}");
    }
    let crit =
        sign(&rsa, "RS256", json!({"alg": "RS256", "kid": rsa.kid, "crit": ["exp"], "exp": 1}), &claims_at(&p.keys, now(), json!({})));
    assert_eq!(reason(oidc.authenticate_bearer(&crit).await), "crit_header");
    let typed = sign(&rsa, "RS256", json!({"alg": "RS256", "kid": rsa.kid, "typ": "logout+jwt"}), &claims_at(&p.keys, now(), json!({})));
    assert_eq!(reason(oidc.authenticate_bearer(&typed).await), "not_access_token");
    // An error's message never repeats the token.
    let err = oidc.authenticate_bearer(&big).await.unwrap_err();
    assert!(!format!("{err} {err:?}").contains(&big[..40]));
}

#[tokio::test]
async fn key_rotation_is_picked_up_with_one_refresh_and_unknown_key_ids_cannot_force_more() {
    let p = Provider::start().await;
    let clock = Arc::new(ManualClock::new());
    let config = OidcConfig { jwks_min_refresh_secs: 10, jwks_max_age_secs: 900, ..p.config() };
    let oidc = Arc::new(Oidc::discover_with_clock(config, clock.clone()).await.unwrap());

    let old = p.client_credentials("svc-rs256").await;
    assert_eq!(header(&old)["kid"], "rsa-1");
    assert!(oidc.authenticate_bearer(&old).await.is_ok());
    assert_eq!(p.jwks_hits().await, 1);

    // Time passes; then the provider rotates. (Within the refresh interval of the last fetch the new key
    // id would wait for the interval to end: see the burst below.)
    clock.advance(Duration::from_secs(11));
    p.rotate().await;
    let new = p.client_credentials("svc-rs256").await;
    assert_eq!(header(&new)["kid"], "rsa-2", "the provider signs with the new key");
    assert!(oidc.authenticate_bearer(&new).await.is_ok(), "the new key id is fetched");
    assert_eq!(p.jwks_hits().await, 2);
    assert!(oidc.authenticate_bearer(&old).await.is_ok(), "the old key is still published");
    assert!(oidc.authenticate_bearer(&new).await.is_ok());
    assert_eq!(p.jwks_hits().await, 2, "known keys need no fetch");

    // Within the interval after that refresh: a burst of made-up key ids fetches nothing.
    let p = &p;
    let burst = |oidc: Arc<Oidc>, n: usize| async move {
        let outsider = Keys::of(&p.keys.outsider, "RSA");
        let claims = Value::Object(payload(&p.client_credentials("svc-rs256").await));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..n {
            let token = sign(&outsider, "RS256", json!({"alg": "RS256", "kid": format!("forged-{i}")}), &claims);
            let oidc = oidc.clone();
            tasks.spawn(async move { oidc.authenticate_bearer(&token).await.unwrap_err().reason() });
        }
        while let Some(r) = tasks.join_next().await {
            assert_eq!(r.unwrap(), "unknown_key");
        }
    };
    burst(oidc.clone(), 50).await;
    assert_eq!(p.jwks_hits().await, 2);
    // After the interval: the next burst costs exactly one fetch, however many tokens it has.
    clock.advance(Duration::from_secs(11));
    burst(oidc.clone(), 50).await;
    assert_eq!(p.jwks_hits().await, 3);
    assert_eq!(oidc.validator().jwks().stats(), CacheStats { refreshes: 3, failed_refreshes: 0 });

    // Keys older than the maximum age are fetched again before use (a withdrawn key stops counting).
    clock.advance(Duration::from_secs(901));
    let rsa2 = Keys::of(&p.keys.second, "RSA");
    let t = sign(&rsa2, "RS256", json!({"alg": "RS256", "kid": rsa2.kid}), &claims_at(&p.keys, clock_unix(&clock), json!({})));
    assert!(oidc.authenticate_bearer(&t).await.is_ok());
    assert_eq!(p.jwks_hits().await, 4);
}

fn clock_unix(clock: &ManualClock) -> i64 {
    use endoreg_oidc::Clock;
    clock.unix_now()
}

#[tokio::test]
async fn when_the_provider_is_gone_validation_fails_closed_and_does_not_hammer_it() {
    let p = Provider::start().await;
    let clock = Arc::new(ManualClock::new());
    let oidc = Oidc::discover_with_clock(OidcConfig { jwks_min_refresh_secs: 10, ..p.config() }, clock.clone()).await.unwrap();
    let token = p.client_credentials("svc-es256").await;
    drop(p);
    let err = oidc.authenticate_bearer(&token).await.unwrap_err();
    assert_eq!(err.reason(), "keys_unavailable");
    assert!(matches!(&err, endoreg_oidc::AuthError::Token(e) if e.is_provider_unavailable()));
    assert_eq!(reason(oidc.authenticate_bearer(&token).await), "keys_unavailable");
    assert_eq!(oidc.validator().jwks().stats(), CacheStats { refreshes: 0, failed_refreshes: 1 }, "one attempt per interval");
    clock.advance(Duration::from_secs(11));
    assert_eq!(reason(oidc.authenticate_bearer(&token).await), "keys_unavailable");
    assert_eq!(oidc.validator().jwks().stats().failed_refreshes, 2);
}

#[tokio::test]
async fn discovery_checks_the_issuer_exactly() {
    let p = Provider::shared().await;
    // The same provider under an issuer string with a trailing slash: its document names the other one.
    let err = Oidc::discover(OidcConfig { issuer: Some(format!("{}/", p.issuer)), ..p.config() }).await.unwrap_err();
    assert!(matches!(&err, endoreg_oidc::SetupError::Discovery(d) if d.reason() == "discovery_issuer_mismatch"), "{err}");
    let oidc = oidc(p.config()).await;
    let meta = oidc.metadata();
    assert_eq!(meta.jwks_uri.as_str(), p.url("/jwks"));
    assert_eq!(meta.token_endpoint.as_str(), p.url("/token"));
    assert_eq!(meta.authorization_endpoint.as_str(), p.url("/auth"));
    assert_eq!(meta.end_session_endpoint.as_ref().map(|u| u.as_str().to_owned()), Some(p.url("/session/end")));
}

fn callback(url: &reqwest::Url) -> CallbackParams {
    serde_json::from_value(Value::Object(url.query_pairs().map(|(k, v)| (k.into_owned(), Value::String(v.into_owned()))).collect()))
        .unwrap()
}

#[tokio::test]
async fn the_browser_sign_in_and_logout_work_against_the_provider() {
    let p = Provider::shared().await;
    let dir = tempfile::tempdir().unwrap();
    let oidc = oidc(p.config_with_secret(dir.path(), "registry-web-secret")).await;

    let request = oidc.begin_sign_in(REDIRECT_URI).unwrap();
    let mut browser = Browser::new();
    let back = browser.sign_in(&request.url, "alice", REDIRECT_URI).await;
    let params = callback(&back);
    assert_eq!(params.iss.as_deref(), Some(p.issuer.as_str()));
    let sign_in = oidc.finish_sign_in(&request.pending, &params).await.unwrap();
    assert_eq!(
        sign_in.principal,
        Principal {
            subject: "alice".into(),
            username: Some("alice".into()),
            name: Some("Alice Example".into()),
            email: Some("alice@hospital.example".into()),
            role: Role::DataManager,
            centers: centers(&["klinik_b", "uni_wuerzburg"]),
        }
    );
    assert_eq!(sign_in.id_claims.str("nonce"), Some(request.pending.nonce.as_str()));
    assert!(!format!("{sign_in:?}").contains(sign_in.tokens.id_token.expose()), "tokens never print");

    // The code was used: the same callback again is refused by the provider.
    let again = oidc.finish_sign_in(&request.pending, &params).await.unwrap_err();
    assert!(matches!(&again, FlowError::TokenEndpoint { error, .. } if error == "invalid_grant"), "{again}");

    // The access token of the sign-in is a bearer token for the registry too.
    let bearer = oidc.authenticate_bearer(sign_in.tokens.access_token.expose()).await.unwrap();
    assert_eq!((bearer.subject.as_str(), bearer.role), ("alice", Role::DataManager));

    // Logout: the provider accepts our hint and registered return address (its confirmation page) and
    // refuses an address it does not know.
    let logout = oidc.logout_url(&sign_in.tokens.id_token, Some("https://registry.example/signed-out"), Some("bye")).unwrap();
    let (status, _, body) = browser.get(&logout).await;
    assert_eq!(status, 200, "{body}");
    let wrong = oidc.logout_url(&sign_in.tokens.id_token, Some("https://elsewhere.example/"), None).unwrap();
    let (status, _, _) = browser.get(&wrong).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn the_provider_refuses_a_wrong_pkce_verifier_and_a_wrong_client_secret() {
    let p = Provider::shared().await;
    let dir = tempfile::tempdir().unwrap();
    let oidc = oidc(p.config_with_secret(dir.path(), "registry-web-secret")).await;

    let request = oidc.begin_sign_in(REDIRECT_URI).unwrap();
    let back = Browser::new().sign_in(&request.url, "alice", REDIRECT_URI).await;
    let mut pending = request.pending.clone();
    pending.code_verifier = oidc.begin_sign_in(REDIRECT_URI).unwrap().pending.code_verifier;
    let err = oidc.finish_sign_in(&pending, &callback(&back)).await.unwrap_err();
    assert!(matches!(&err, FlowError::TokenEndpoint { error, .. } if error == "invalid_grant"), "{err}");

    let wrong_secret = Oidc::discover(p.config_with_secret(dir.path(), "not-the-secret")).await.unwrap();
    let request = wrong_secret.begin_sign_in(REDIRECT_URI).unwrap();
    let back = Browser::new().sign_in(&request.url, "alice", REDIRECT_URI).await;
    let err = wrong_secret.finish_sign_in(&request.pending, &callback(&back)).await.unwrap_err();
    assert!(matches!(&err, FlowError::TokenEndpoint { error, .. } if error == "invalid_client"), "{err}");
    assert!(!err.to_string().contains("not-the-secret"));

    let no_secret = oidc_plain(p).await;
    let request = no_secret.begin_sign_in(REDIRECT_URI).unwrap();
    let back = Browser::new().sign_in(&request.url, "alice", REDIRECT_URI).await;
    assert_eq!(no_secret.finish_sign_in(&request.pending, &callback(&back)).await.unwrap_err().reason(), "no_client_secret");
}

async fn oidc_plain(p: &Provider) -> Oidc {
    oidc(p.config()).await
}

#[tokio::test]
async fn a_callback_for_another_sign_in_is_refused() {
    let p = Provider::shared().await;
    let dir = tempfile::tempdir().unwrap();
    let oidc = oidc(p.config_with_secret(dir.path(), "registry-web-secret")).await;

    // A callback that belongs to another browser's sign-in (an attacker's code in a victim's session).
    let mine = oidc.begin_sign_in(REDIRECT_URI).unwrap();
    let theirs = oidc.begin_sign_in(REDIRECT_URI).unwrap();
    let back = Browser::new().sign_in(&theirs.url, "bob", REDIRECT_URI).await;
    assert_eq!(oidc.finish_sign_in(&mine.pending, &callback(&back)).await.unwrap_err().reason(), "state_mismatch");

    // The right state but another nonce: the ID token is not this sign-in's.
    let request = oidc.begin_sign_in(REDIRECT_URI).unwrap();
    let back = Browser::new().sign_in(&request.url, "alice", REDIRECT_URI).await;
    let mut pending = request.pending.clone();
    pending.nonce = theirs.pending.nonce.clone();
    assert_eq!(oidc.finish_sign_in(&pending, &callback(&back)).await.unwrap_err().reason(), "nonce_mismatch");
}

#[tokio::test]
async fn id_tokens_are_checked_for_our_client_nonce_and_access_token_hash() {
    let p = Provider::shared().await;
    let oidc = oidc(p.config()).await;
    let rsa = Keys::of(&p.keys.first, "RSA");
    let access = "an-access-token";
    let at_hash = endoreg_oidc::validate::token_hash(JwsAlg::RS256, access);
    let id = |extra: Value| {
        let mut base = json!({"aud": "registry-web", "nonce": "n-1", "at_hash": at_hash});
        for (k, v) in extra.as_object().unwrap() {
            base[k] = v.clone();
        }
        sign(&rsa, "RS256", json!({"alg": "RS256", "kid": rsa.kid}), &claims_at(&p.keys, now(), base))
    };
    let v = oidc.validator();
    assert!(v.id_token(&id(json!({})), "n-1", Some(access)).await.is_ok());
    assert!(v.id_token(&id(json!({"at_hash": null})), "n-1", Some(access)).await.is_ok(), "at_hash is optional in the code flow");
    assert_eq!(v.id_token(&id(json!({})), "n-1", Some("another")).await.unwrap_err().reason(), "at_hash_mismatch");
    assert_eq!(v.id_token(&id(json!({})), "n-2", Some(access)).await.unwrap_err().reason(), "nonce_mismatch");
    assert_eq!(v.id_token(&id(json!({"nonce": null})), "n-1", None).await.unwrap_err().reason(), "nonce_mismatch");
    assert_eq!(v.id_token(&id(json!({"aud": "endoreg-registry"})), "n-1", None).await.unwrap_err().reason(), "wrong_audience");
    // Several audiences need azp, and azp must be us (OpenID Connect Core 3.1.3.7).
    let several = json!({"aud": ["registry-web", "other"]});
    assert_eq!(v.id_token(&id(several), "n-1", None).await.unwrap_err().reason(), "unauthorized_party");
    let azp_us = json!({"aud": ["registry-web", "other"], "azp": "registry-web"});
    assert!(v.id_token(&id(azp_us), "n-1", None).await.is_ok());
    let azp_other = json!({"azp": "other"});
    assert_eq!(v.id_token(&id(azp_other), "n-1", None).await.unwrap_err().reason(), "unauthorized_party");
}

#[tokio::test]
async fn roles_and_centers_map_from_the_providers_claims() {
    let p = Provider::shared().await;
    let dir = tempfile::tempdir().unwrap();
    let oidc = oidc(p.config_with_secret(dir.path(), "registry-web-secret")).await;
    let sign_in = |account: &'static str| {
        let oidc = &oidc;
        async move {
            let request = oidc.begin_sign_in(REDIRECT_URI).unwrap();
            let back = Browser::new().sign_in(&request.url, account, REDIRECT_URI).await;
            oidc.finish_sign_in(&request.pending, &callback(&back)).await
        }
    };
    // bob's role is a client role of our client (resource_access.registry-web.roles).
    let bob = sign_in("bob").await.unwrap().principal;
    assert_eq!((bob.role, bob.centers), (Role::Annotator, centers(&["uni_wuerzburg"])));
    // carol holds data_manager and service: neither includes the other.
    assert_eq!(sign_in("carol").await.unwrap_err().reason(), "claims_ambiguous_role");
    // dave has only EndoregDB's catch-all role: nothing is granted.
    assert_eq!(sign_in("dave").await.unwrap_err().reason(), "claims_no_role");

    // The same realm roles mapped EndoregDB's way: a configured mapping decides.
    let mut mapping = OidcConfig::default().role_mapping;
    mapping.insert("endoregdb_user".into(), Role::Researcher);
    let mapped =
        Oidc::discover(OidcConfig { role_mapping: mapping, ..p.config_with_secret(dir.path(), "registry-web-secret") }).await.unwrap();
    let request = mapped.begin_sign_in(REDIRECT_URI).unwrap();
    let back = Browser::new().sign_in(&request.url, "dave", REDIRECT_URI).await;
    assert_eq!(mapped.finish_sign_in(&request.pending, &callback(&back)).await.unwrap().principal.role, Role::Researcher);

    // Client roles of another client count for nothing: alice's `account` client role is ignored,
    // and reading roles only from our client's path leaves her without one.
    let client_only = Oidc::discover(OidcConfig {
        role_claims: vec!["resource_access.{client_id}.roles".into()],
        ..p.config_with_secret(dir.path(), "registry-web-secret")
    })
    .await
    .unwrap();
    let request = client_only.begin_sign_in(REDIRECT_URI).unwrap();
    let back = Browser::new().sign_in(&request.url, "alice", REDIRECT_URI).await;
    assert_eq!(client_only.finish_sign_in(&request.pending, &callback(&back)).await.unwrap_err().reason(), "claims_no_role");
}
