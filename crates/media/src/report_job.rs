//! Processing a report job: the PDF's text, anonymised by the report templates. The raw text is never
//! stored; what the templates found goes to the identifying tables through the registry.

use endoreg_common::api::{Job, MediaIdentity, ReportPatch};

use crate::report::{self, KnownIdentity};
use crate::worker::{JobError, Worker, check_lease};

pub async fn process(worker: &Worker, job: &Job, lost: &crate::jobs::Lease) -> Result<(), JobError> {
    let id = job.report_id.ok_or_else(|| JobError::Report("the job names no report".into()))?;
    let mut report = worker.client.report(id).await?;
    if report.state == "anonymised" {
        return Ok(());
    }
    let raw_key = report.raw_key.clone().ok_or_else(|| JobError::Report("the report has no stored file".into()))?;
    let work = worker.work_dir()?;
    let raw = work.path().join("report.pdf");
    worker.store.download(&raw_key, &raw, Some(&worker.identities)).await?;
    let bytes = std::fs::read(&raw).map_err(|e| JobError::Report(format!("cannot read the decrypted report: {e}")))?;
    let _ = std::fs::remove_file(&raw);
    let text = tokio::task::spawn_blocking(move || report::extract_text(&bytes))
        .await
        .map_err(|e| JobError::Report(format!("text extraction stopped: {e}")))?
        .map_err(|e| JobError::Report(e.to_string()))?;
    check_lease(lost)?;
    if report.state == "uploaded" {
        report = worker.client.report_state(&report, "text_extracted").await?;
    }

    let known = worker.client.job_identity(job.id, &worker.name).await?;
    let known = KnownIdentity {
        first_name: known.patient_first_name,
        last_name: known.patient_last_name,
        birth_date: known.patient_date_of_birth,
        examination_date: known.examination_date,
        examiner: known.examiner,
    };
    let templates = worker.templates.clone();
    let anonymised = tokio::task::spawn_blocking(move || report::anonymise(&text, &templates, &known))
        .await
        .map_err(|e| JobError::Report(format!("anonymisation stopped: {e}")))?;
    let found = anonymised.found;
    let found = MediaIdentity {
        patient_first_name: found.patient_first_name,
        patient_last_name: found.patient_last_name,
        patient_date_of_birth: found.birth_date,
        examination_date: found.examination_date,
        examiner: found.examiner,
    };
    if !found.is_empty() {
        worker.client.record_identity(job.id, &worker.name, &found).await?;
    }
    check_lease(lost)?;
    report =
        worker.client.patch_report(&report, &ReportPatch { anonymised_text: Some(Some(anonymised.text)), ..Default::default() }).await?;
    worker.client.report_state(&report, "anonymised").await?;
    Ok(())
}
