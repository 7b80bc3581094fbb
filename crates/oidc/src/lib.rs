//! OpenID Connect for endoreg: trusting one OpenID provider (usually the hospital's Keycloak).
//!
//! What this crate is:
//! - [`discovery`]: the provider's discovery document, its `issuer` checked against ours exactly.
//! - [`jwks`]: the provider's public keys (RSA, EC P-256/P-384, Ed25519), cached, refreshed on an unknown
//!   key id (rotation) at most once per interval, and again when older than a maximum age.
//! - [`validate`]: bearer access tokens and ID tokens: an algorithm allow-list (never `none`, never
//!   HMAC), the key fitting the algorithm, `iss`, `aud`/`azp`, `exp`/`nbf`/`iat` with a bounded clock
//!   skew, a size limit before parsing. Errors carry a reason code that can be logged; the token never is.
//! - [`claims`]: roles and centers from configurable claim paths, by EndoregDB's conventions
//!   (`realm_access.roles`, `resource_access.<client>.roles`, groups `/centers/<center_key>`), mapped to
//!   our [`Role`](endoreg_common::access::Role)s into a [`Principal`].
//! - [`flow`]: the browser sign-in of a confidential client (authorization code, PKCE S256, state,
//!   nonce, `client_secret_basic`) and the RP-initiated logout URL.
//! - [`OidcConfig`]: the settings, with defaults, to embed in a service's configuration.
//! - [`Oidc`]: all of it put together for one configured provider.
//!
//! What it is not: no HTTP server side (no routes, cookies, sessions or rate limits: the registry owns
//! those and keeps the [`flow::PendingLogin`] and the signed-in session), no storage, no check that a
//! center key exists (the registry knows its centers), no refresh tokens, no token introspection, no
//! encrypted tokens (JWE), no provider other than the one configured.

pub mod claims;
pub mod config;
pub mod discovery;
pub mod flow;
pub mod http;
pub mod jwks;
pub mod jws;
pub mod validate;

use std::sync::Arc;
use std::time::Duration;

use endoreg_common::secret::Secret;
use reqwest::Url;

pub use claims::{ClaimsError, ClaimsMapper, Principal};
pub use config::{ConfigError, OidcConfig};
pub use discovery::{DiscoveryError, ProviderMetadata};
pub use flow::{AuthorizationRequest, CallbackParams, FlowError, PendingLogin, TokenResponse};
pub use jwks::{Clock, ManualClock, SystemClock};
pub use jws::JwsAlg;
pub use validate::{Claims, ValidationError, Validator};

/// Why the provider could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
}

/// Why a bearer token does not authenticate anyone.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Token(#[from] ValidationError),
    #[error(transparent)]
    Claims(#[from] ClaimsError),
}

impl AuthError {
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Token(e) => e.reason(),
            AuthError::Claims(e) => e.reason(),
        }
    }
}

/// A completed browser sign-in.
#[derive(Debug, Clone)]
pub struct SignIn {
    pub principal: Principal,
    /// The validated ID token's claims (`exp` bounds the session; `sid` names the provider's session).
    pub id_claims: Claims,
    /// The tokens, kept for the logout hint (`id_token`); every one a [`Secret`].
    pub tokens: TokenResponse,
}

/// One configured provider: discovery done, keys cached, the mapping to principals ready.
#[derive(Debug)]
pub struct Oidc {
    config: OidcConfig,
    metadata: ProviderMetadata,
    http: http::HttpClient,
    validator: Validator,
    mapper: ClaimsMapper,
    client_secret: Option<Secret>,
}

impl Oidc {
    /// Checks the configuration, reads the client secret (if configured) and fetches the discovery
    /// document. The keys are fetched on first use.
    pub async fn discover(config: OidcConfig) -> Result<Self, SetupError> {
        Self::discover_with_clock(config, Arc::new(SystemClock)).await
    }

    pub async fn discover_with_clock(config: OidcConfig, clock: Arc<dyn Clock>) -> Result<Self, SetupError> {
        let issuer_url = config.check()?;
        let client_secret = match &config.client_secret_file {
            Some(path) => Some(Secret::read(path).map_err(ConfigError::from)?),
            None => None,
        };
        let http = http::HttpClient::new(Duration::from_secs(config.http_timeout_secs))?;
        let issuer = config.issuer.clone().unwrap_or_default();
        let metadata = discovery::discover(&http, &issuer, &issuer_url).await?;
        let jwks = jwks::JwksCache::new(
            http.clone(),
            metadata.jwks_uri.clone(),
            Duration::from_secs(config.jwks_min_refresh_secs),
            Duration::from_secs(config.jwks_max_age_secs),
            clock.clone(),
        );
        let expect = validate::Expectations {
            issuer,
            audience: config.audience().to_owned(),
            client_id: config.client_id.clone(),
            authorized_parties: config.authorized_parties.clone(),
            allowed_algorithms: config.allowed_algorithms.clone(),
            clock_skew_secs: config.clock_skew_secs as i64,
            max_token_bytes: config.max_token_bytes,
        };
        let validator = Validator::new(expect, Arc::new(jwks), clock);
        let mapper = ClaimsMapper::new(&config);
        Ok(Self { config, metadata, http, validator, mapper, client_secret })
    }

    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    pub fn metadata(&self) -> &ProviderMetadata {
        &self.metadata
    }

    pub fn validator(&self) -> &Validator {
        &self.validator
    }

    pub fn mapper(&self) -> &ClaimsMapper {
        &self.mapper
    }

    /// Who a bearer access token speaks for.
    pub async fn authenticate_bearer(&self, token: &str) -> Result<Principal, AuthError> {
        let claims = self.validator.access_token(token).await?;
        Ok(self.mapper.principal(&claims)?)
    }

    /// Starts a browser sign-in: the URL to redirect to, and what to keep in the session until the
    /// callback.
    pub fn begin_sign_in(&self, redirect_uri: &str) -> Result<AuthorizationRequest, FlowError> {
        flow::authorization_request(&self.metadata, &self.config.client_id, &self.config.scopes, redirect_uri)
    }

    /// Finishes a browser sign-in from the callback's query: checks the state, exchanges the code,
    /// validates the ID token (nonce, `at_hash`) and maps its claims to a principal.
    pub async fn finish_sign_in(&self, pending: &PendingLogin, params: &CallbackParams) -> Result<SignIn, FlowError> {
        let code = flow::callback_code(pending, params, &self.metadata.issuer)?;
        let secret = self.client_secret.as_ref().ok_or(FlowError::NoClientSecret)?;
        let tokens = flow::exchange_code(&self.http, &self.metadata, &self.config.client_id, secret, pending, &code).await?;
        let id_claims = self.validator.id_token(tokens.id_token.expose(), &pending.nonce, Some(tokens.access_token.expose())).await?;
        let principal = self.mapper.principal(&id_claims)?;
        Ok(SignIn { principal, id_claims, tokens })
    }

    /// Where to send the browser to end the provider's session too.
    pub fn logout_url(
        &self,
        id_token_hint: &Secret,
        post_logout_redirect_uri: Option<&str>,
        state: Option<&str>,
    ) -> Result<Url, FlowError> {
        flow::logout_url(&self.metadata, &self.config.client_id, id_token_hint.expose(), post_logout_redirect_uri, state)
    }
}
