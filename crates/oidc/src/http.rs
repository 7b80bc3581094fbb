//! The few HTTP requests we make to the provider (discovery, JWKS, token endpoint), each with a timeout,
//! no redirects and a cap on the response size: a provider, or whatever answers in its place, cannot
//! make us follow it elsewhere or read without end.

use std::time::Duration;

use reqwest::{Client, RequestBuilder, StatusCode, Url};
use serde::de::DeserializeOwned;

/// The most we read of any provider response. Discovery documents and key sets are a few KiB; token
/// responses with large ID tokens stay well below this.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Why a request to the provider failed. Messages name the URL (a provider endpoint, never a token).
/// URLs are kept as text: errors stay small.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("request to {url} failed: {source}")]
    Transport { url: String, source: reqwest::Error },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: StatusCode, body: Vec<u8> },
    #[error("{url} answered more than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge { url: String },
    #[error("{url} answered something that is not the expected JSON: {source}")]
    Json { url: String, source: serde_json::Error },
}

/// The HTTP client every request to the provider goes through.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: Client,
}

impl HttpClient {
    pub fn new(timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("endoreg-oidc/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client })
    }

    pub(crate) fn get(&self, url: &Url) -> RequestBuilder {
        self.client.get(url.clone()).header(reqwest::header::ACCEPT, "application/json")
    }

    pub(crate) fn post(&self, url: &Url) -> RequestBuilder {
        self.client.post(url.clone()).header(reqwest::header::ACCEPT, "application/json")
    }

    /// Sends `request` and parses a 2xx answer as JSON; any other status is [`FetchError::Status`] with
    /// the (bounded) body, so a caller can read an OAuth error response from it.
    pub(crate) async fn json<T: DeserializeOwned>(&self, url: &Url, request: RequestBuilder) -> Result<T, FetchError> {
        // reqwest's errors repeat the URL; ours are provider endpoints, but keep the rule simple: our message
        // names the URL once, the source never.
        let mut response =
            request.send().await.map_err(|source| FetchError::Transport { url: url.to_string(), source: source.without_url() })?;
        let status = response.status();
        if response.content_length().is_some_and(|n| n > MAX_RESPONSE_BYTES as u64) {
            return Err(FetchError::TooLarge { url: url.to_string() });
        }
        let mut body = Vec::new();
        while let Some(chunk) =
            response.chunk().await.map_err(|source| FetchError::Transport { url: url.to_string(), source: source.without_url() })?
        {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(FetchError::TooLarge { url: url.to_string() });
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            return Err(FetchError::Status { url: url.to_string(), status, body });
        }
        serde_json::from_slice(&body).map_err(|source| FetchError::Json { url: url.to_string(), source })
    }
}
