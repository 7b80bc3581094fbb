//! The browser sign-in of a confidential client: authorization code flow with PKCE (S256), `state`
//! against cross-site request forgery and `nonce` against ID token replay; the code is exchanged at the
//! token endpoint with the client secret (`client_secret_basic`); and the RP-initiated logout URL.
//!
//! The service keeps a [`PendingLogin`] server-side (in the session that started the sign-in) between
//! [`authorization_request`] and the callback. It holds the PKCE verifier and the nonce: its `Debug`
//! prints neither. Refresh tokens are not used: a session ends when the service says so.

use std::fmt;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use endoreg_common::secret::Secret;
use reqwest::Url;
use serde::{Deserialize, Serialize};

use crate::claims::ClaimsError;
use crate::discovery::ProviderMetadata;
use crate::http::{FetchError, HttpClient};
use crate::validate::ValidationError;

/// What the service remembers between sending the browser to the provider and its return.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLogin {
    pub state: String,
    pub nonce: String,
    pub code_verifier: String,
    pub redirect_uri: String,
}

impl fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingLogin").field("redirect_uri", &self.redirect_uri).finish_non_exhaustive()
    }
}

/// Where to send the browser, and what to remember until it comes back.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    pub url: Url,
    pub pending: PendingLogin,
}

/// The query of the provider's redirect back to us.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// RFC 9207: the issuer of the response, when the provider sends it.
    pub iss: Option<String>,
}

/// Tokens from the token endpoint. Every token is a [`Secret`]: none can reach a log through `Debug`.
#[derive(Debug, Clone)]
pub struct TokenResponse {
    pub access_token: Secret,
    pub id_token: Secret,
    pub refresh_token: Option<Secret>,
    pub expires_in: Option<u64>,
    pub scope: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("the redirect URI `{0}` is not an absolute URL")]
    BadRedirectUri(String),
    #[error("the sign-in's state does not match: the callback does not belong to this session's sign-in")]
    StateMismatch,
    #[error("the callback names another issuer than the configured one")]
    IssuerMismatch,
    #[error("the provider refused the sign-in: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    ProviderRefused { error: String, description: Option<String> },
    #[error("the callback carries no authorization code")]
    MissingCode,
    #[error("no client secret is configured (oidc.client_secret_file); the browser sign-in needs one")]
    NoClientSecret,
    #[error("the token endpoint refused the code: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    TokenEndpoint { error: String, description: Option<String> },
    #[error("cannot reach the token endpoint: {0}")]
    Fetch(#[from] FetchError),
    #[error("the token endpoint's answer is unusable: {0}")]
    BadTokenResponse(&'static str),
    #[error("the ID token is invalid: {0}")]
    IdToken(#[from] ValidationError),
    #[error("the signed-in account cannot be mapped: {0}")]
    Claims(#[from] ClaimsError),
    #[error("the provider offers no logout endpoint (end_session_endpoint)")]
    NoEndSession,
}

impl FlowError {
    pub fn reason(&self) -> &'static str {
        match self {
            FlowError::BadRedirectUri(_) => "bad_redirect_uri",
            FlowError::StateMismatch => "state_mismatch",
            FlowError::IssuerMismatch => "callback_issuer_mismatch",
            FlowError::ProviderRefused { .. } => "provider_refused",
            FlowError::MissingCode => "missing_code",
            FlowError::NoClientSecret => "no_client_secret",
            FlowError::TokenEndpoint { .. } => "token_endpoint_refused",
            FlowError::Fetch(_) => "token_endpoint_unreachable",
            FlowError::BadTokenResponse(_) => "bad_token_response",
            FlowError::IdToken(e) => e.reason(),
            FlowError::Claims(e) => e.reason(),
            FlowError::NoEndSession => "no_end_session",
        }
    }
}

/// 32 random bytes, base64url: 43 characters, within PKCE's 43..128 unreserved characters.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // The system RNG failing is not something to carry on from (no sign-in without randomness).
    #[allow(clippy::expect_used)]
    SystemRandom::new().fill(&mut bytes).expect("the system random number generator failed");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The S256 code challenge of a verifier (RFC 7636 4.2).
pub fn code_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes()))
}

/// The URL that starts a sign-in, with fresh state, nonce and PKCE verifier.
pub fn authorization_request(
    meta: &ProviderMetadata,
    client_id: &str,
    scopes: &[String],
    redirect_uri: &str,
) -> Result<AuthorizationRequest, FlowError> {
    if Url::parse(redirect_uri).is_err() {
        return Err(FlowError::BadRedirectUri(redirect_uri.to_owned()));
    }
    let pending =
        PendingLogin { state: random_token(), nonce: random_token(), code_verifier: random_token(), redirect_uri: redirect_uri.to_owned() };
    let mut scope = vec!["openid"];
    for s in scopes {
        if !scope.contains(&s.as_str()) {
            scope.push(s);
        }
    }
    let mut url = meta.authorization_endpoint.clone();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", &scope.join(" "))
        .append_pair("state", &pending.state)
        .append_pair("nonce", &pending.nonce)
        .append_pair("code_challenge", &code_challenge(&pending.code_verifier))
        .append_pair("code_challenge_method", "S256");
    Ok(AuthorizationRequest { url, pending })
}

/// Checks the provider's redirect against the pending sign-in and returns the authorization code.
/// The state is checked first: an error response that does not carry our state is not the provider's
/// answer to us.
pub fn callback_code(pending: &PendingLogin, params: &CallbackParams, issuer: &str) -> Result<String, FlowError> {
    let state = params.state.as_deref().ok_or(FlowError::StateMismatch)?;
    if verify_slices_are_equal(state.as_bytes(), pending.state.as_bytes()).is_err() {
        return Err(FlowError::StateMismatch);
    }
    if params.iss.as_deref().is_some_and(|i| i != issuer) {
        return Err(FlowError::IssuerMismatch);
    }
    if let Some(error) = &params.error {
        return Err(FlowError::ProviderRefused {
            error: printable(error),
            description: params.error_description.as_deref().map(printable),
        });
    }
    params.code.clone().filter(|c| !c.is_empty()).ok_or(FlowError::MissingCode)
}

#[derive(Deserialize)]
struct RawTokens {
    access_token: Option<String>,
    id_token: Option<String>,
    token_type: Option<String>,
    refresh_token: Option<String>,
    expires_in: Option<u64>,
    scope: Option<String>,
}

#[derive(Deserialize)]
struct OAuthError {
    error: String,
    error_description: Option<String>,
}

/// Exchanges the code at the token endpoint, authenticating with the client secret (HTTP Basic, the
/// id and secret form-encoded first as RFC 6749 2.3.1 says).
pub async fn exchange_code(
    http: &HttpClient,
    meta: &ProviderMetadata,
    client_id: &str,
    client_secret: &Secret,
    pending: &PendingLogin,
    code: &str,
) -> Result<TokenResponse, FlowError> {
    let url = &meta.token_endpoint;
    let basic = STANDARD.encode(format!("{}:{}", form_encode(client_id), form_encode(client_secret.expose())));
    let body = serde_urlencoded::to_string([
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", pending.redirect_uri.as_str()),
        ("code_verifier", pending.code_verifier.as_str()),
    ])
    .map_err(|_| FlowError::BadTokenResponse("the request could not be encoded"))?;
    let request = http
        .post(url)
        .header(reqwest::header::AUTHORIZATION, format!("Basic {basic}"))
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body);
    let raw: RawTokens = match http.json(url, request).await {
        Ok(raw) => raw,
        Err(FetchError::Status { body, status, url }) => {
            return Err(match serde_json::from_slice::<OAuthError>(&body) {
                Ok(e) => {
                    FlowError::TokenEndpoint { error: printable(&e.error), description: e.error_description.as_deref().map(printable) }
                }
                Err(_) => FlowError::Fetch(FetchError::Status { url, status, body: Vec::new() }),
            });
        }
        Err(e) => return Err(e.into()),
    };
    if !raw.token_type.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("Bearer")) {
        return Err(FlowError::BadTokenResponse("token_type is not Bearer"));
    }
    Ok(TokenResponse {
        access_token: Secret::new(raw.access_token.ok_or(FlowError::BadTokenResponse("no access_token"))?),
        id_token: Secret::new(raw.id_token.ok_or(FlowError::BadTokenResponse("no id_token (was the openid scope granted?)"))?),
        refresh_token: raw.refresh_token.map(Secret::new),
        expires_in: raw.expires_in,
        scope: raw.scope,
    })
}

/// RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): where to send the browser so the
/// provider ends its session too. The URL carries the ID token as a hint: hand it to the browser, never
/// to a log.
pub fn logout_url(
    meta: &ProviderMetadata,
    client_id: &str,
    id_token_hint: &str,
    post_logout_redirect_uri: Option<&str>,
    state: Option<&str>,
) -> Result<Url, FlowError> {
    let mut url = meta.end_session_endpoint.clone().ok_or(FlowError::NoEndSession)?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("id_token_hint", id_token_hint).append_pair("client_id", client_id);
        if let Some(uri) = post_logout_redirect_uri {
            q.append_pair("post_logout_redirect_uri", uri);
        }
        if let Some(state) = state {
            q.append_pair("state", state);
        }
    }
    Ok(url)
}

/// application/x-www-form-urlencoded encoding of one value.
fn form_encode(value: &str) -> String {
    serde_urlencoded::to_string([("", value)]).map(|s| s[1..].to_owned()).unwrap_or_default()
}

/// What the provider says about an error, safe for a log line: printable ASCII, at most 200 characters.
fn printable(text: &str) -> String {
    text.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> ProviderMetadata {
        ProviderMetadata {
            issuer: "https://id.example".into(),
            jwks_uri: Url::parse("https://id.example/certs").unwrap(),
            authorization_endpoint: Url::parse("https://id.example/auth?kc_idp_hint=x").unwrap(),
            token_endpoint: Url::parse("https://id.example/token").unwrap(),
            end_session_endpoint: Some(Url::parse("https://id.example/logout").unwrap()),
            id_token_signing_alg_values_supported: vec![],
            code_challenge_methods_supported: vec![],
        }
    }

    #[test]
    fn pkce_s256_matches_rfc_7636_appendix_b() {
        assert_eq!(code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn the_authorization_url_carries_state_nonce_and_the_challenge() {
        let req = authorization_request(&meta(), "web", &["profile".into(), "openid".into()], "https://r.example/cb").unwrap();
        let q: std::collections::HashMap<_, _> = req.url.query_pairs().into_owned().collect();
        assert_eq!(q["kc_idp_hint"], "x", "the endpoint's own query is kept");
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["scope"], "openid profile");
        assert_eq!(q["state"], req.pending.state);
        assert_eq!(q["nonce"], req.pending.nonce);
        assert_eq!(q["code_challenge"], code_challenge(&req.pending.code_verifier));
        assert_eq!(q["code_challenge_method"], "S256");
        assert!(!q.values().any(|v| v == &req.pending.code_verifier), "the verifier stays with us");
        assert_eq!(req.pending.code_verifier.len(), 43);
        let other = authorization_request(&meta(), "web", &[], "https://r.example/cb").unwrap();
        assert_ne!(other.pending.state, req.pending.state);
        let debug = format!("{:?}", req.pending);
        assert!(!debug.contains(&req.pending.code_verifier) && !debug.contains(&req.pending.nonce), "{debug}");
        assert!(authorization_request(&meta(), "web", &[], "/relative").is_err());
    }

    #[test]
    fn the_callback_must_carry_our_state_before_anything_else_counts() {
        let pending =
            PendingLogin { state: "s1".into(), nonce: "n".into(), code_verifier: "v".into(), redirect_uri: "https://r/cb".into() };
        let p = |code: Option<&str>, state: Option<&str>, error: Option<&str>, iss: Option<&str>| CallbackParams {
            code: code.map(Into::into),
            state: state.map(Into::into),
            error: error.map(Into::into),
            error_description: Some("user\ncancelled".into()),
            iss: iss.map(Into::into),
        };
        assert_eq!(callback_code(&pending, &p(Some("c"), Some("s1"), None, None), "https://id").unwrap(), "c");
        assert_eq!(callback_code(&pending, &p(Some("c"), Some("s2"), None, None), "https://id").unwrap_err().reason(), "state_mismatch");
        assert_eq!(callback_code(&pending, &p(Some("c"), None, None, None), "https://id").unwrap_err().reason(), "state_mismatch");
        assert_eq!(
            callback_code(&pending, &p(None, Some("s2"), Some("access_denied"), None), "https://id").unwrap_err().reason(),
            "state_mismatch"
        );
        let err = callback_code(&pending, &p(None, Some("s1"), Some("access_denied"), None), "https://id").unwrap_err();
        assert_eq!(err.to_string(), "the provider refused the sign-in: access_denied (usercancelled)");
        assert_eq!(
            callback_code(&pending, &p(Some("c"), Some("s1"), None, Some("https://evil")), "https://id").unwrap_err().reason(),
            "callback_issuer_mismatch"
        );
        assert_eq!(callback_code(&pending, &p(Some(""), Some("s1"), None, None), "https://id").unwrap_err().reason(), "missing_code");
    }

    #[test]
    fn client_credentials_are_form_encoded_before_basic() {
        assert_eq!(form_encode("a b:c/é"), "a+b%3Ac%2F%C3%A9");
    }

    #[test]
    fn the_logout_url_names_the_hint_and_where_to_return() {
        let url = logout_url(&meta(), "web", "id.tok.en", Some("https://r.example/bye"), Some("st")).unwrap();
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!((q["id_token_hint"].as_str(), q["client_id"].as_str()), ("id.tok.en", "web"));
        assert_eq!((q["post_logout_redirect_uri"].as_str(), q["state"].as_str()), ("https://r.example/bye", "st"));
        let mut m = meta();
        m.end_session_endpoint = None;
        assert_eq!(logout_url(&m, "web", "t", None, None).unwrap_err().reason(), "no_end_session");
    }
}
