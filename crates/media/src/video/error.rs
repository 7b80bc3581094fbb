//! What can go wrong with a video, in words a data manager can act on.

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("the file is empty")]
    Empty,
    #[error("the file is not a readable video: {0}")]
    NotMedia(String),
    #[error("the file has no video stream")]
    NoVideoStream,
    #[error("the video declares {width}x{height} pixels, which is not a plausible size (1 to {max} per side)")]
    BadDimensions { width: u32, height: u32, max: u32 },
    #[error("the video's codec `{0}` cannot be decoded here")]
    UnsupportedCodec(String),
    #[error("the video is damaged: {0}")]
    Corrupt(String),
    #[error("the video is cut off: {0}")]
    Truncated(String),
    #[error("the video has no frames")]
    NoFrames,
    #[error("{0}")]
    Unsupported(String),
    #[error("the processor's regions do not fit this video: {0}")]
    Regions(String),
    #[error("the anonymised output failed verification: {0}")]
    Verification(String),
    /// Stopped on request before the end (the worker is shutting down, or lost the job's lease).
    #[error("stopped before the end: {0}")]
    Cancelled(String),
    /// A fault of this machine (disk full, an encoder missing): another attempt may succeed.
    #[error("{context}: {detail}")]
    Internal { context: String, detail: String },
}

impl MediaError {
    /// Whether the video itself is the problem (another attempt cannot help).
    pub fn is_permanent(&self) -> bool {
        !matches!(self, MediaError::Internal { .. } | MediaError::Cancelled(_))
    }

    pub fn internal(context: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        MediaError::Internal { context: context.into(), detail: detail.to_string() }
    }
}
