//! The worker's side of the registry API: typed calls with a service token. Errors tell apart what the
//! registry refused (the request or the data is wrong: do not retry) from what did not get through.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use endoreg_common::api::{
    AiModelVersion, AiModelVersionIn, FrameSet, Job, JobClaim, JobCompletion, JobHeartbeat, LabelSegment, MediaIdentity, PredictRequest,
    Prediction, PredictionIn, Report, ReportPatch, StateChange, TermEntry, Token, UploadMetadata, UploadResult, Video, VideoPatch,
};
use endoreg_common::problem::Problem;
use endoreg_common::secret::Secret;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the registry refused {what}: {status} {detail}")]
    Refused { what: String, status: u16, detail: String },
    #[error("the registry is unreachable or failed ({what}): {detail}")]
    Unavailable { what: String, detail: String },
}

impl ClientError {
    /// Whether the same call may succeed later.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Unavailable { .. } => true,
            ClientError::Refused { status, .. } => *status == 408 || *status == 429 || *status >= 500,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Refused { status, .. } => Some(*status),
            ClientError::Unavailable { .. } => None,
        }
    }
}

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Secret,
}

impl Client {
    pub fn new(base: &str, token: Secret) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| ClientError::Unavailable { what: "the HTTP client".into(), detail: e.to_string() })?;
        Ok(Client { http, base: base.trim_end_matches('/').to_owned(), token })
    }

    /// The same registry with another token (a caller's, to ask the registry who it is), sharing connections.
    pub fn with_token(&self, token: Secret) -> Self {
        Client { http: self.http.clone(), base: self.base.clone(), token }
    }

    /// The token this client sends (for tests and tools that call routes this client does not wrap).
    pub fn token(&self) -> &Secret {
        &self.token
    }

    async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        if_match: Option<i64>,
    ) -> Result<Option<T>, ClientError> {
        self.send_query(method, path, &[], body, if_match).await
    }

    /// As `send`, with query parameters (encoded here, whatever they hold).
    async fn send_query<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&B>,
        if_match: Option<i64>,
    ) -> Result<Option<T>, ClientError> {
        let what = format!("{method} {path}");
        let mut url = reqwest::Url::parse(&format!("{}{path}", self.base))
            .map_err(|e| ClientError::Unavailable { what: what.clone(), detail: format!("not a URL: {e}") })?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let mut req = self.http.request(method, url).bearer_auth(self.token.expose());
        if let Some(v) = if_match {
            req = req.header(reqwest::header::IF_MATCH, format!("\"{v}\""));
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req.send().await.map_err(|e| ClientError::Unavailable { what: what.clone(), detail: e.to_string() })?;
        let status = res.status();
        if status == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        let bytes = res.bytes().await.map_err(|e| ClientError::Unavailable { what: what.clone(), detail: e.to_string() })?;
        if !status.is_success() {
            let detail = serde_json::from_slice::<Problem>(&bytes)
                .ok()
                .and_then(|p| p.detail)
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(300).collect());
            return Err(ClientError::Refused { what, status: status.as_u16(), detail });
        }
        serde_json::from_slice(&bytes).map(Some).map_err(|e| ClientError::Unavailable { what, detail: format!("unexpected answer: {e}") })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.send::<(), T>(Method::GET, path, None, None)
            .await?
            .ok_or_else(|| ClientError::Unavailable { what: path.into(), detail: "empty answer".into() })
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
        if_match: Option<i64>,
    ) -> Result<T, ClientError> {
        self.send(method, path, Some(body), if_match)
            .await?
            .ok_or_else(|| ClientError::Unavailable { what: path.into(), detail: "empty answer".into() })
    }

    /// Uploads a local file (streamed) with its metadata; the answer is the video or report and its job.
    pub async fn upload(&self, path: &std::path::Path, metadata: &UploadMetadata) -> Result<UploadResult, ClientError> {
        use reqwest::multipart::{Form, Part};
        let what = "POST /api/v1/uploads".to_owned();
        let unavailable = |detail: String| ClientError::Unavailable { what: what.clone(), detail };
        let file = tokio::fs::File::open(path).await.map_err(|e| unavailable(format!("cannot open {}: {e}", path.display())))?;
        let meta = serde_json::to_vec(metadata).map_err(|e| unavailable(e.to_string()))?;
        let form = Form::new()
            .part("metadata", Part::bytes(meta).mime_str("application/json").map_err(|e| unavailable(e.to_string()))?)
            .part("file", Part::stream(reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file))).file_name("upload"));
        let res = self
            .http
            .post(format!("{}/api/v1/uploads", self.base))
            .bearer_auth(self.token.expose())
            .timeout(Duration::from_secs(4 * 3600))
            .multipart(form)
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let status = res.status();
        let bytes = res.bytes().await.map_err(|e| unavailable(e.to_string()))?;
        if !status.is_success() {
            let detail = serde_json::from_slice::<Problem>(&bytes).ok().and_then(|p| p.detail).unwrap_or_default();
            return Err(ClientError::Refused { what, status: status.as_u16(), detail });
        }
        serde_json::from_slice(&bytes).map_err(|e| unavailable(format!("unexpected answer: {e}")))
    }

    pub async fn job(&self, id: i64) -> Result<Job, ClientError> {
        self.get(&format!("/api/v1/jobs/{id}")).await
    }

    pub async fn claim(&self, claim: &JobClaim) -> Result<Option<Job>, ClientError> {
        self.send(Method::POST, "/api/v1/jobs/claim", Some(claim), None).await
    }

    pub async fn heartbeat(&self, job: i64, hb: &JobHeartbeat) -> Result<Job, ClientError> {
        self.call(Method::POST, &format!("/api/v1/jobs/{job}/heartbeat"), hb, None).await
    }

    pub async fn complete(&self, job: i64, done: &JobCompletion) -> Result<Job, ClientError> {
        self.call(Method::POST, &format!("/api/v1/jobs/{job}/complete"), done, None).await
    }

    /// The identity of the medium of `job`, whose lease this client's token holds as `worker`.
    pub async fn job_identity(&self, job: i64, worker: &str) -> Result<MediaIdentity, ClientError> {
        let path = format!("/api/v1/jobs/{job}/identity");
        self.send_query::<(), _>(Method::GET, &path, &[("worker", worker)], None, None)
            .await?
            .ok_or_else(|| ClientError::Unavailable { what: path, detail: "empty answer".into() })
    }

    /// Adds what the worker holding `job`'s lease (as `worker`) found to its medium's identity.
    pub async fn record_identity(&self, job: i64, worker: &str, found: &MediaIdentity) -> Result<MediaIdentity, ClientError> {
        let path = format!("/api/v1/jobs/{job}/identity");
        self.send_query(Method::PUT, &path, &[("worker", worker)], Some(found), None)
            .await?
            .ok_or_else(|| ClientError::Unavailable { what: path, detail: "empty answer".into() })
    }

    pub async fn video(&self, id: i64) -> Result<Video, ClientError> {
        self.get(&format!("/api/v1/videos/{id}")).await
    }

    pub async fn patch_video(&self, v: &Video, patch: &VideoPatch) -> Result<Video, ClientError> {
        self.call(Method::PATCH, &format!("/api/v1/videos/{}", v.id), patch, Some(v.version)).await
    }

    pub async fn video_state(&self, v: &Video, state: &str, detail: Option<String>) -> Result<Video, ClientError> {
        self.call(Method::POST, &format!("/api/v1/videos/{}/state", v.id), &StateChange { state: state.into(), detail }, Some(v.version))
            .await
    }

    pub async fn put_frame_set(&self, id: i64, set: &FrameSet) -> Result<Video, ClientError> {
        self.call(Method::PUT, &format!("/api/v1/videos/{id}/frame-sets/{}", set.source), set, None).await
    }

    pub async fn processor(&self, name: &str) -> Result<TermEntry, ClientError> {
        self.get(&format!("/api/v1/terminology/endoscopy_processor/{name}")).await
    }

    /// The layout of a processor's picture (its regions), as anonymisation and inference crop by it.
    pub async fn layout(&self, processor: &str) -> Result<crate::video::mask::Layout, ClientError> {
        let p = self.processor(processor).await?;
        let dim = |k: &str| p.fields.get(k).and_then(|v| v.as_u64()).and_then(|v| u32::try_from(v).ok()).unwrap_or(0);
        Ok(crate::video::mask::Layout {
            processor: processor.into(),
            width: dim("image_width"),
            height: dim("image_height"),
            regions: p.regions,
        })
    }

    /// The token this client sends, as the registry knows it (its role).
    pub async fn whoami(&self) -> Result<Token, ClientError> {
        self.get("/api/v1/tokens/self").await
    }

    pub async fn register_model_version(&self, v: &AiModelVersionIn) -> Result<AiModelVersion, ClientError> {
        self.call(Method::POST, "/api/v1/ai-model-versions", v, None).await
    }

    pub async fn record_prediction(&self, video: i64, model_version: i64, p: &PredictionIn) -> Result<Prediction, ClientError> {
        self.call(Method::PUT, &format!("/api/v1/videos/{video}/predictions/{model_version}"), p, None).await
    }

    pub async fn predictions(&self, video: i64) -> Result<Vec<Prediction>, ClientError> {
        self.get(&format!("/api/v1/videos/{video}/predictions")).await
    }

    /// Queues a prediction of `video` (by `model_version`, or whichever model the inference workers serve).
    pub async fn request_prediction(&self, video: i64, model_version: Option<i64>) -> Result<Job, ClientError> {
        self.call(Method::POST, &format!("/api/v1/videos/{video}/predict"), &PredictRequest { model_version_id: model_version }, None).await
    }

    /// A video's labelled segments (annotations and predictions).
    pub async fn segments(&self, video: i64) -> Result<Vec<LabelSegment>, ClientError> {
        self.get(&format!("/api/v1/videos/{video}/segments")).await
    }

    pub async fn report(&self, id: i64) -> Result<Report, ClientError> {
        self.get(&format!("/api/v1/reports/{id}")).await
    }

    pub async fn patch_report(&self, r: &Report, patch: &ReportPatch) -> Result<Report, ClientError> {
        self.call(Method::PATCH, &format!("/api/v1/reports/{}", r.id), patch, Some(r.version)).await
    }

    pub async fn report_state(&self, r: &Report, state: &str) -> Result<Report, ClientError> {
        self.call(
            Method::POST,
            &format!("/api/v1/reports/{}/state", r.id),
            &StateChange { state: state.into(), detail: None },
            Some(r.version),
        )
        .await
    }
}
