//! The endoreg media worker: turns uploaded endoscopy videos into anonymised videos and frames, and
//! report PDFs into anonymised text.
//!
//! - [`video`]: FFmpeg work — probe, anonymise, verify, extract frames, the synthetic demo video.
//! - [`report`]: PDF text extraction and template-based anonymisation.
//! - [`worker`]: the media jobs, run by the shared job loop ([`jobs`]) against the registry ([`client`]);
//!   [`config`] its settings.
//! - [`workdir`]: each job's private directory, and what killed jobs left removed at start.
//! - [`demo_run`]: the demo end to end, for the README's main command.

pub mod client;
pub mod config;
pub mod demo_run;
pub mod jobs;
pub mod report;
pub(crate) mod report_job;
pub mod video;
pub mod workdir;
pub mod worker;
