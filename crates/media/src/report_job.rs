//! Processing a report job: the PDF's text, anonymised by the report templates.

use std::sync::atomic::AtomicBool;

use endoreg_common::api::Job;

use crate::worker::{JobError, Worker};

pub async fn process(_worker: &Worker, job: &Job, _lost: &AtomicBool) -> Result<(), JobError> {
    Err(JobError::Report(format!("report {} cannot be processed by this build", job.report_id.unwrap_or_default())))
}
