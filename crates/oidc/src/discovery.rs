//! OpenID Provider discovery: `<issuer>/.well-known/openid-configuration`, checked against the issuer we
//! were configured with (OpenID Connect Discovery 1.0, section 4.3: the document's `issuer` must be
//! identical, or a different provider could stand in).

use reqwest::Url;
use serde::Deserialize;

use crate::config::{ConfigError, check_secure};
use crate::http::{FetchError, HttpClient};

/// The endpoints we use, from the provider's discovery document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub jwks_uri: Url,
    pub authorization_endpoint: Url,
    pub token_endpoint: Url,
    /// RP-initiated logout; absent when the provider does not offer it.
    pub end_session_endpoint: Option<Url>,
    /// What the provider says it signs ID tokens with (informative; our allow-list decides).
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// Empty when the provider does not say; then PKCE is sent anyway.
    pub code_challenge_methods_supported: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("cannot fetch the provider's discovery document: {0}")]
    Fetch(#[from] FetchError),
    #[error("the discovery document at {url} names issuer `{found}`, not the configured `{expected}`")]
    IssuerMismatch { url: String, expected: String, found: String },
    #[error("the discovery document at {url} lacks `{field}`")]
    Missing { url: String, field: &'static str },
    #[error("the discovery document at {url}: `{field}` is not a URL")]
    BadUrl { url: String, field: &'static str },
    #[error("the discovery document: {0}")]
    Insecure(#[from] ConfigError),
    #[error("the provider does not offer PKCE with S256, which the sign-in requires")]
    NoPkceS256,
}

impl DiscoveryError {
    /// A short, stable code for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            DiscoveryError::Fetch(_) => "discovery_unreachable",
            DiscoveryError::IssuerMismatch { .. } => "discovery_issuer_mismatch",
            DiscoveryError::Missing { .. } | DiscoveryError::BadUrl { .. } => "discovery_incomplete",
            DiscoveryError::Insecure(_) => "discovery_insecure_endpoint",
            DiscoveryError::NoPkceS256 => "discovery_no_pkce",
        }
    }
}

#[derive(Deserialize)]
struct Raw {
    issuer: Option<String>,
    jwks_uri: Option<String>,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    end_session_endpoint: Option<String>,
    #[serde(default)]
    id_token_signing_alg_values_supported: Vec<String>,
    #[serde(default)]
    code_challenge_methods_supported: Vec<String>,
}

/// Where the discovery document of `issuer` is: the issuer without a trailing `/`, then
/// `/.well-known/openid-configuration` (Discovery 1.0, section 4).
pub fn discovery_url(issuer: &Url) -> Url {
    let mut url = issuer.clone();
    let path = format!("{}/.well-known/openid-configuration", issuer.path().trim_end_matches('/'));
    url.set_path(&path);
    url
}

/// Fetches and checks the discovery document of `issuer` (the configured value, verbatim).
pub async fn discover(http: &HttpClient, issuer: &str, issuer_url: &Url) -> Result<ProviderMetadata, DiscoveryError> {
    let url = discovery_url(issuer_url);
    let raw: Raw = http.json(&url, http.get(&url)).await?;
    metadata(&url, issuer, raw)
}

fn metadata(url: &Url, expected_issuer: &str, raw: Raw) -> Result<ProviderMetadata, DiscoveryError> {
    let found = raw.issuer.ok_or(DiscoveryError::Missing { url: url.to_string(), field: "issuer" })?;
    if found != expected_issuer {
        return Err(DiscoveryError::IssuerMismatch { url: url.to_string(), expected: expected_issuer.to_owned(), found });
    }
    let endpoint = |value: Option<String>, field: &'static str| -> Result<Url, DiscoveryError> {
        let text = value.ok_or(DiscoveryError::Missing { url: url.to_string(), field })?;
        let parsed = Url::parse(&text).map_err(|_| DiscoveryError::BadUrl { url: url.to_string(), field })?;
        check_secure(field, &parsed)?;
        Ok(parsed)
    };
    let end_session_endpoint = match raw.end_session_endpoint {
        Some(text) => Some(endpoint(Some(text), "end_session_endpoint")?),
        None => None,
    };
    let meta = ProviderMetadata {
        issuer: found,
        jwks_uri: endpoint(raw.jwks_uri, "jwks_uri")?,
        authorization_endpoint: endpoint(raw.authorization_endpoint, "authorization_endpoint")?,
        token_endpoint: endpoint(raw.token_endpoint, "token_endpoint")?,
        end_session_endpoint,
        id_token_signing_alg_values_supported: raw.id_token_signing_alg_values_supported,
        code_challenge_methods_supported: raw.code_challenge_methods_supported,
    };
    if !meta.code_challenge_methods_supported.is_empty() && !meta.code_challenge_methods_supported.iter().any(|m| m == "S256") {
        return Err(DiscoveryError::NoPkceS256);
    }
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(issuer: &str) -> Raw {
        Raw {
            issuer: Some(issuer.into()),
            jwks_uri: Some("https://id.example/realms/r/certs".into()),
            authorization_endpoint: Some("https://id.example/realms/r/auth".into()),
            token_endpoint: Some("https://id.example/realms/r/token".into()),
            end_session_endpoint: None,
            id_token_signing_alg_values_supported: vec![],
            code_challenge_methods_supported: vec!["plain".into(), "S256".into()],
        }
    }

    #[test]
    fn the_document_is_beside_the_issuer_path() {
        let u = |s: &str| discovery_url(&Url::parse(s).unwrap()).to_string();
        assert_eq!(u("https://id.example/realms/endoreg"), "https://id.example/realms/endoreg/.well-known/openid-configuration");
        assert_eq!(u("https://id.example/realms/endoreg/"), "https://id.example/realms/endoreg/.well-known/openid-configuration");
        assert_eq!(u("https://id.example"), "https://id.example/.well-known/openid-configuration");
    }

    #[test]
    fn the_issuer_must_match_exactly() {
        let url = Url::parse("https://id.example/realms/r/.well-known/openid-configuration").unwrap();
        assert!(metadata(&url, "https://id.example/realms/r", raw("https://id.example/realms/r")).is_ok());
        // A trailing slash is a different issuer (tokens would carry the other string).
        let err = metadata(&url, "https://id.example/realms/r", raw("https://id.example/realms/r/")).unwrap_err();
        assert_eq!(err.reason(), "discovery_issuer_mismatch");
    }

    #[test]
    fn insecure_or_missing_endpoints_are_refused() {
        let url = Url::parse("https://id.example/.well-known/openid-configuration").unwrap();
        let mut r = raw("https://id.example");
        r.jwks_uri = Some("http://id.example/certs".into());
        assert_eq!(metadata(&url, "https://id.example", r).unwrap_err().reason(), "discovery_insecure_endpoint");
        let mut r = raw("https://id.example");
        r.token_endpoint = None;
        assert_eq!(metadata(&url, "https://id.example", r).unwrap_err().reason(), "discovery_incomplete");
        let mut r = raw("https://id.example");
        r.code_challenge_methods_supported = vec!["plain".into()];
        assert_eq!(metadata(&url, "https://id.example", r).unwrap_err().reason(), "discovery_no_pkce");
    }
}
