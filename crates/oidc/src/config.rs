//! [`OidcConfig`]: what a service needs to trust one OpenID provider. Serde with defaults for everything
//! but the issuer and the client, so it embeds as a table (`[oidc]`) in a service's configuration.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use endoreg_common::access::Role;
use reqwest::Url;
use serde::{Deserialize, Serialize};

use crate::jws::JwsAlg;

/// The claim path segment replaced by the configured `client_id` (Keycloak's client roles live under
/// `resource_access.<client_id>.roles`).
pub const CLIENT_ID_PLACEHOLDER: &str = "{client_id}";

/// The largest clock skew we accept in a configuration: beyond it an expired token lives on noticeably.
pub const MAX_CLOCK_SKEW_SECS: u64 = 300;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OidcConfig {
    /// The provider's issuer identifier, exactly as its discovery document and its tokens state it
    /// (Keycloak: `https://<host>/realms/<realm>`). Unset: OpenID Connect is off.
    pub issuer: Option<String>,
    /// Our client at the provider (the browser sign-in's client, and the owner of client roles).
    pub client_id: String,
    /// The `aud` a bearer token must carry. Unset: `client_id` (what Keycloak's audience mapper adds).
    pub audience: Option<String>,
    /// Clients (`azp`) whose bearer tokens are accepted. Empty: any client of the provider, as long as
    /// the token is for our audience; a token for several audiences must name its client in any case.
    pub authorized_parties: Vec<String>,
    /// File holding the client secret (a systemd credential name or a path). Only the browser sign-in
    /// needs it; bearer validation does not.
    pub client_secret_file: Option<PathBuf>,
    /// Scopes the browser sign-in asks for (`openid` is always sent).
    pub scopes: Vec<String>,
    /// Signature algorithms accepted, in tokens and for keys. `none` and HMAC cannot be named.
    pub allowed_algorithms: Vec<JwsAlg>,
    /// Tolerance for `exp`, `nbf` and `iat` against our clock, at most 300 s.
    pub clock_skew_secs: u64,
    /// Tokens longer than this are refused before anything in them is decoded.
    pub max_token_bytes: usize,
    /// The provider's keys are fetched again after this long, so withdrawn keys stop being trusted.
    pub jwks_max_age_secs: u64,
    /// At most one key refresh per this interval, however many tokens name unknown keys.
    pub jwks_min_refresh_secs: u64,
    /// Timeout of each request to the provider.
    pub http_timeout_secs: u64,
    /// Where roles are read, as dotted paths to arrays of strings; `{client_id}` is replaced by the
    /// client id. Every path is read and the names found are mapped through `role_mapping`.
    pub role_claims: Vec<String>,
    /// Where group paths are read (Keycloak's group membership mapper with "full group path").
    pub groups_claim: String,
    /// Groups below this path name centers: `/centers/<center_key>`.
    pub center_group_prefix: String,
    /// Provider role name → our role. Names not listed here grant nothing.
    pub role_mapping: BTreeMap<String, Role>,
}

impl Default for OidcConfig {
    fn default() -> Self {
        Self {
            issuer: None,
            client_id: "endoreg-registry".into(),
            audience: None,
            authorized_parties: Vec::new(),
            client_secret_file: None,
            scopes: vec!["openid".into(), "profile".into(), "email".into()],
            allowed_algorithms: JwsAlg::DEFAULT_ALLOWED.to_vec(),
            clock_skew_secs: 60,
            max_token_bytes: 16 * 1024,
            jwks_max_age_secs: 15 * 60,
            jwks_min_refresh_secs: 10,
            http_timeout_secs: 10,
            role_claims: vec!["realm_access.roles".into(), format!("resource_access.{CLIENT_ID_PLACEHOLDER}.roles")],
            groups_claim: "groups".into(),
            center_group_prefix: "/centers/".into(),
            role_mapping: Role::ALL.into_iter().map(|r| (r.as_str().to_owned(), r)).collect(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("oidc.{field}: {problem}")]
    Invalid { field: &'static str, problem: String },
    #[error("oidc.client_secret_file: {0}")]
    Secret(#[from] endoreg_common::secret::SecretError),
}

fn invalid(field: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { field, problem: problem.into() }
}

impl OidcConfig {
    pub fn enabled(&self) -> bool {
        self.issuer.is_some()
    }

    /// The audience bearer tokens must carry.
    pub fn audience(&self) -> &str {
        self.audience.as_deref().unwrap_or(&self.client_id)
    }

    pub fn clock_skew(&self) -> Duration {
        Duration::from_secs(self.clock_skew_secs)
    }

    /// The role claim paths with `{client_id}` filled in, split into segments.
    pub fn role_claim_paths(&self) -> Vec<Vec<String>> {
        self.role_claims
            .iter()
            .map(|p| p.split('.').map(|seg| if seg == CLIENT_ID_PLACEHOLDER { self.client_id.clone() } else { seg.to_owned() }).collect())
            .collect()
    }

    /// Checks everything that can be checked without the provider; returns the issuer as a URL.
    pub fn check(&self) -> Result<Url, ConfigError> {
        let issuer = self.issuer.as_deref().ok_or_else(|| invalid("issuer", "is not set"))?;
        let url = Url::parse(issuer).map_err(|e| invalid("issuer", format!("`{issuer}` is not a URL: {e}")))?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("issuer", "must not have a query or a fragment"));
        }
        check_secure("issuer", &url)?;
        if self.client_id.trim().is_empty() {
            return Err(invalid("client_id", "is empty"));
        }
        if self.audience.as_deref().is_some_and(|a| a.trim().is_empty()) {
            return Err(invalid("audience", "is empty; leave it out to use client_id"));
        }
        if self.allowed_algorithms.is_empty() {
            return Err(invalid("allowed_algorithms", "is empty: no token could be accepted"));
        }
        if self.clock_skew_secs > MAX_CLOCK_SKEW_SECS {
            return Err(invalid("clock_skew_secs", format!("{} is more than {MAX_CLOCK_SKEW_SECS}", self.clock_skew_secs)));
        }
        if !(1024..=1024 * 1024).contains(&self.max_token_bytes) {
            return Err(invalid("max_token_bytes", "must be between 1024 and 1048576"));
        }
        if self.jwks_max_age_secs == 0 {
            return Err(invalid("jwks_max_age_secs", "must be positive"));
        }
        if self.jwks_min_refresh_secs > self.jwks_max_age_secs {
            return Err(invalid("jwks_min_refresh_secs", "must not exceed jwks_max_age_secs"));
        }
        if self.http_timeout_secs == 0 {
            return Err(invalid("http_timeout_secs", "must be positive"));
        }
        if self.role_claims.is_empty() {
            return Err(invalid("role_claims", "is empty: no role could be found"));
        }
        for path in &self.role_claims {
            if path.split('.').any(str::is_empty) {
                return Err(invalid("role_claims", format!("`{path}` has an empty segment")));
            }
        }
        if self.groups_claim.split('.').any(str::is_empty) {
            return Err(invalid("groups_claim", "has an empty segment"));
        }
        if !self.center_group_prefix.starts_with('/') || !self.center_group_prefix.ends_with('/') || self.center_group_prefix.len() < 3 {
            return Err(invalid("center_group_prefix", "must be a group path such as `/centers/`"));
        }
        if self.role_mapping.is_empty() {
            return Err(invalid("role_mapping", "is empty: no role could be granted"));
        }
        Ok(url)
    }
}

/// Provider endpoints must be HTTPS; plain HTTP only on loopback (a provider on the same host, tests).
pub(crate) fn check_secure(field: &'static str, url: &Url) -> Result<(), ConfigError> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        _ => Err(invalid(field, format!("`{url}` must be https (plain http only on loopback)"))),
    }
}

fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else { return false };
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    match bare.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_issuer(issuer: &str) -> OidcConfig {
        OidcConfig { issuer: Some(issuer.into()), ..OidcConfig::default() }
    }

    #[test]
    fn the_defaults_work_once_an_issuer_is_set() {
        assert!(OidcConfig::default().check().is_err());
        assert!(!OidcConfig::default().enabled());
        let c = with_issuer("https://id.hospital.example/realms/endoreg");
        assert!(c.check().is_ok());
        assert_eq!(c.audience(), "endoreg-registry");
        assert_eq!(c.role_claim_paths()[1], ["resource_access", "endoreg-registry", "roles"]);
    }

    #[test]
    fn a_client_id_with_dots_stays_one_segment() {
        let c = OidcConfig { client_id: "endoreg.web".into(), ..with_issuer("https://id.example") };
        assert_eq!(c.role_claim_paths()[1], ["resource_access", "endoreg.web", "roles"]);
    }

    #[test]
    fn plain_http_only_on_loopback() {
        assert!(with_issuer("http://127.0.0.1:8080/realms/x").check().is_ok());
        assert!(with_issuer("http://[::1]:8080").check().is_ok());
        assert!(with_issuer("http://localhost:8080").check().is_ok());
        let err = with_issuer("http://id.hospital.example").check().unwrap_err().to_string();
        assert!(err.contains("must be https"), "{err}");
        assert!(with_issuer("https://id.example/?realm=x").check().is_err());
    }

    #[test]
    fn unreasonable_settings_are_refused_naming_the_field() {
        let base = with_issuer("https://id.example");
        let cases: Vec<(OidcConfig, &str)> = vec![
            (OidcConfig { clock_skew_secs: 3600, ..base.clone() }, "clock_skew_secs"),
            (OidcConfig { allowed_algorithms: vec![], ..base.clone() }, "allowed_algorithms"),
            (OidcConfig { max_token_bytes: 10, ..base.clone() }, "max_token_bytes"),
            (OidcConfig { jwks_min_refresh_secs: 7200, ..base.clone() }, "jwks_min_refresh_secs"),
            (OidcConfig { role_claims: vec!["realm_access..roles".into()], ..base.clone() }, "role_claims"),
            (OidcConfig { center_group_prefix: "centers".into(), ..base.clone() }, "center_group_prefix"),
            (OidcConfig { role_mapping: BTreeMap::new(), ..base.clone() }, "role_mapping"),
            (OidcConfig { client_id: " ".into(), ..base.clone() }, "client_id"),
        ];
        for (config, field) in cases {
            let err = config.check().unwrap_err().to_string();
            assert!(err.starts_with(&format!("oidc.{field}:")), "{err}");
        }
    }

    #[test]
    fn it_reads_from_toml_with_defaults_and_refuses_unknown_keys_and_hmac() {
        let c: OidcConfig = toml::from_str(
            r#"
            issuer = "https://id.example/realms/endoreg"
            client_id = "endoregdb-api"
            allowed_algorithms = ["RS256"]
            [role_mapping]
            "data:write" = "data_manager"
            "#,
        )
        .unwrap();
        assert_eq!(c.allowed_algorithms, [JwsAlg::RS256]);
        assert_eq!(c.role_mapping.get("data:write"), Some(&Role::DataManager));
        assert_eq!(c.clock_skew_secs, 60);
        assert!(toml::from_str::<OidcConfig>("isuer = \"x\"").is_err());
        let err = toml::from_str::<OidcConfig>("allowed_algorithms = [\"HS256\"]").unwrap_err().to_string();
        assert!(err.contains("HMAC"), "{err}");
        // The defaults serialise (a layered config starts from them).
        let text = toml::to_string(&OidcConfig::default()).unwrap();
        assert_eq!(toml::from_str::<OidcConfig>(&text).unwrap(), OidcConfig::default());
    }
}
