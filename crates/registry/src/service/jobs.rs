//! The job queue in the registry database: workers on any host claim work through the API with a lease,
//! renew it by heartbeat, and complete it; failures are retried with exponential back-off until the
//! attempts run out, then the job — and the medium it was for — is failed with the reason.
//!
//! A lease belongs to the token that claimed the job and the worker name it sent ([`Holder`]): the name
//! alone proves nothing, since any service token can send any name. Renewing, completing and the medium's
//! identity are refused to every other caller.
//!
//! Claiming is one statement: on PostgreSQL `FOR UPDATE SKIP LOCKED` lets workers claim in parallel
//! without waiting on each other; on SQLite the statement runs in a write transaction, which SQLite
//! serialises anyway. A job whose worker disappeared (lease expired) is claimed again by the next worker.

use chrono::{DateTime, Duration, Utc};

use endoreg_common::access::{Permission, Role};
use endoreg_common::api::{Job, JobClaim, JobCompletion, JobFilter, JobHeartbeat, MediaIdentity, Page, Paging};

use crate::config::JobsConfig;
use crate::db::exec::{One, Param, Tx};
use crate::db::{Backend, Db, DbError};
use crate::params;

use super::{Checks, Filters, Result, ServiceError};

pub const KINDS: [&str; 3] = ["process_video", "process_report", "predict_video"];
pub const STATES: [&str; 4] = ["queued", "running", "succeeded", "failed"];

#[derive(sqlx::FromRow)]
struct JobRow {
    id: i64,
    kind: String,
    video_id: Option<i64>,
    report_id: Option<i64>,
    ai_model_version_id: Option<i64>,
    state: String,
    attempts: i64,
    max_attempts: i64,
    run_after: DateTime<Utc>,
    lease_owner: Option<String>,
    lease_expires_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

impl From<JobRow> for Job {
    fn from(r: JobRow) -> Self {
        Job {
            id: r.id,
            kind: r.kind,
            video_id: r.video_id,
            report_id: r.report_id,
            ai_model_version_id: r.ai_model_version_id,
            state: r.state,
            attempts: r.attempts,
            max_attempts: r.max_attempts,
            run_after: r.run_after,
            lease_owner: r.lease_owner,
            lease_expires_at: r.lease_expires_at,
            last_error: r.last_error,
            created_at: r.created_at,
            updated_at: r.updated_at,
            finished_at: r.finished_at,
        }
    }
}

const COLUMNS: &str = "id, kind, video_id, report_id, ai_model_version_id, state, attempts, max_attempts, run_after, lease_owner, lease_expires_at, last_error, \
     created_at, updated_at, finished_at";

/// Who holds, or claims to hold, a job's lease: the token the caller proved and the worker name it sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder<'a> {
    pub token_id: i64,
    pub worker: &'a str,
}

/// A job as `role` may see it: the lease owner (a worker's host and process) only for roles that process
/// jobs themselves.
pub fn visible_to(role: Role, mut job: Job) -> Job {
    if !role.allows(Permission::ProcessJobs) {
        job.lease_owner = None;
    }
    job
}

/// What a job is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// Probe, anonymise and extract frames of a video.
    Video(i64),
    /// Extract and anonymise a report's text.
    Report(i64),
    /// Predict a video's labels with a model version (none: the worker's model).
    Prediction(i64, Option<i64>),
}

impl Subject {
    fn kind(self) -> &'static str {
        match self {
            Subject::Video(_) => "process_video",
            Subject::Report(_) => "process_report",
            Subject::Prediction(..) => "predict_video",
        }
    }
    fn column(self) -> &'static str {
        match self {
            Subject::Video(_) | Subject::Prediction(..) => "video_id",
            Subject::Report(_) => "report_id",
        }
    }
    fn id(self) -> i64 {
        match self {
            Subject::Video(id) | Subject::Report(id) | Subject::Prediction(id, _) => id,
        }
    }
    fn model_version(self) -> Option<i64> {
        match self {
            Subject::Prediction(_, v) => v,
            _ => None,
        }
    }
}

/// Queues `subject` unless a job for it exists already; returns the job either way (so an upload repeated
/// is one job). A finished prediction job for the same model is queued again (a new run replaces the old
/// segments).
pub async fn enqueue(tx: &mut Tx, subject: Subject, max_attempts: i64) -> Result<i64, DbError> {
    let now = super::now();
    let col = subject.column();
    let model = subject.model_version();
    let model_key = model.unwrap_or(0);
    let existing: Option<(i64, String)> = tx
        .fetch_optional(
            &format!("SELECT id, state FROM job WHERE kind = $1 AND {col} = $2 AND model_key = $3"),
            params![subject.kind(), subject.id(), model_key],
        )
        .await?;
    match existing {
        Some((id, state)) => {
            if matches!(subject, Subject::Prediction(..)) && (state == "succeeded" || state == "failed") {
                tx.execute(
                    "UPDATE job SET state = 'queued', attempts = 0, run_after = $1, updated_at = $1, finished_at = NULL, last_error = NULL WHERE id = $2",
                    params![now, id],
                )
                .await?;
            }
            Ok(id)
        }
        None => {
            let One(id): One<i64> = tx
                .fetch_one(
                    &format!(
                        "INSERT INTO job (kind, {col}, ai_model_version_id, model_key, state, attempts, max_attempts, run_after, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, 'queued', 0, $5, $6, $6, $6) RETURNING id"
                    ),
                    params![subject.kind(), subject.id(), model, model_key, max_attempts, now],
                )
                .await?;
            Ok(id)
        }
    }
}

pub async fn get(db: &Db, id: i64) -> Result<Job> {
    let row: Option<JobRow> = db.fetch_optional(&format!("SELECT {COLUMNS} FROM job WHERE id = $1"), params![id]).await?;
    row.map(Job::from).ok_or_else(|| ServiceError::not_found(format!("job {id}")))
}

pub async fn for_subject(db: &Db, subject: Subject) -> Result<Option<Job>> {
    let row: Option<JobRow> = db
        .fetch_optional(
            &format!("SELECT {COLUMNS} FROM job WHERE kind = $1 AND {} = $2", subject.column()),
            params![subject.kind(), subject.id()],
        )
        .await?;
    Ok(row.map(Job::from))
}

pub async fn list(db: &Db, filter: &JobFilter, paging: &Paging) -> Result<Page<Job>> {
    let mut checks = Checks::default();
    if filter.state.as_deref().is_some_and(|s| !STATES.contains(&s)) {
        checks.add("/state", format!("states are {}", STATES.join(", ")));
    }
    if filter.kind.as_deref().is_some_and(|k| !KINDS.contains(&k)) {
        checks.add("/kind", format!("kinds are {}", KINDS.join(", ")));
    }
    checks.finish()?;
    let mut f = Filters::default();
    if let Some(s) = &filter.state {
        f.add("state = ?", s);
    }
    if let Some(k) = &filter.kind {
        f.add("kind = ?", k);
    }
    if let Some(v) = filter.video_id {
        f.add("video_id = ?", v);
    }
    if let Some(r) = filter.report_id {
        f.add("report_id = ?", r);
    }
    super::page(db, &format!("SELECT {COLUMNS} FROM job"), "SELECT COUNT(*) FROM job", &f, "id", paging, |r: JobRow| Job::from(r)).await
}

fn check_worker(checks: &mut Checks, worker: &str) {
    if worker.trim().is_empty() || worker.len() > 200 {
        checks.add("/worker", "must be 1 to 200 characters");
    }
}

fn check_lease(checks: &mut Checks, lease_secs: i64, cfg: &JobsConfig) {
    if !(10..=cfg.max_lease_secs).contains(&lease_secs) {
        checks.add("/lease_secs", format!("must be between 10 and {}", cfg.max_lease_secs));
    }
}

/// Claims the next job of one of `kinds` for the caller's token `token_id`, or `None` when there is no work.
pub async fn claim(db: &Db, token_id: i64, claim: &JobClaim, cfg: &JobsConfig) -> Result<Option<Job>> {
    let mut checks = Checks::default();
    check_worker(&mut checks, &claim.worker);
    check_lease(&mut checks, claim.lease_secs, cfg);
    if claim.kinds.is_empty() {
        checks.add("/kinds", "name at least one job kind");
    }
    for (i, k) in claim.kinds.iter().enumerate() {
        if !KINDS.contains(&k.as_str()) {
            checks.add(&format!("/kinds/{i}"), format!("unknown job kind `{k}`; kinds are {}", KINDS.join(", ")));
        }
    }
    checks.finish()?;
    let now = super::now();
    let mut tx = db.begin().await?;
    fail_abandoned(&mut tx, now).await?;
    let kinds: Vec<String> = (0..claim.kinds.len()).map(|i| format!("${}", i + 5)).collect();
    let lock = match db.backend() {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "UPDATE job SET state = 'running', lease_owner = $1, lease_token_id = $4, lease_expires_at = $2, attempts = attempts + 1, updated_at = $3 \
         WHERE id = (SELECT id FROM job WHERE kind IN ({}) AND ((state = 'queued' AND run_after <= $3) OR (state = 'running' AND lease_expires_at < $3)) \
         ORDER BY run_after, id LIMIT 1{lock}) RETURNING {COLUMNS}",
        kinds.join(", ")
    );
    let mut params = params![claim.worker.trim(), now + Duration::seconds(claim.lease_secs), now, token_id];
    params.extend(claim.kinds.iter().map(Param::from));
    let row: Option<JobRow> = tx.fetch_optional(&sql, params).await?;
    tx.commit().await?;
    Ok(row.map(Job::from))
}

/// Jobs whose worker vanished (lease expired) with no attempts left fail, and so does their medium.
async fn fail_abandoned(tx: &mut Tx, now: DateTime<Utc>) -> Result<(), DbError> {
    let rows: Vec<(i64, i64)> = tx
        .fetch_all(
            "UPDATE job SET state = 'failed', finished_at = $1, updated_at = $1, lease_owner = NULL, lease_token_id = NULL, lease_expires_at = NULL, \
             last_error = 'the worker stopped answering (lease expired) and no attempts are left' \
             WHERE state = 'running' AND lease_expires_at < $1 AND attempts >= max_attempts RETURNING id, attempts",
            params![now],
        )
        .await?;
    for (id, _) in rows {
        fail_subject(tx, id, "the worker stopped answering (lease expired) and no attempts are left", now).await?;
    }
    Ok(())
}

/// Marks the video or report of processing job `id` failed with `reason`, unless it is final already.
async fn fail_subject(tx: &mut Tx, id: i64, reason: &str, now: DateTime<Utc>) -> Result<(), DbError> {
    let (kind, video, report): (String, Option<i64>, Option<i64>) =
        tx.fetch_one("SELECT kind, video_id, report_id FROM job WHERE id = $1", params![id]).await?;
    // A failed prediction leaves the video as it is: the video is sound, the job says what went wrong.
    if kind == "predict_video" {
        return Ok(());
    }
    if let Some(v) = video {
        let state: Option<One<String>> = tx.fetch_optional("SELECT state FROM video WHERE id = $1", params![v]).await?;
        if let Some(One(state)) = state.filter(|One(s)| s != "failed" && s != "validated") {
            tx.execute(
                "UPDATE video SET state = 'failed', state_detail = $1, state_changed_at = $2, version = version + 1, updated_at = $2 WHERE id = $3",
                params![reason, now, v],
            )
            .await?;
            tx.execute(
                "INSERT INTO video_state_event (video_id, from_state, to_state, detail, at) VALUES ($1, $2, 'failed', $3, $4)",
                params![v, state, reason, now],
            )
            .await?;
        }
    }
    if let Some(r) = report {
        tx.execute(
            "UPDATE report_document SET state = 'failed', state_detail = $1, version = version + 1, updated_at = $2 \
             WHERE id = $3 AND state NOT IN ('failed', 'anonymised')",
            params![reason, now, r],
        )
        .await?;
    }
    Ok(())
}

fn for_update(tx: &Tx) -> &'static str {
    match tx {
        Tx::Postgres(_) => " FOR UPDATE",
        // SQLite's write transaction holds the database lock already.
        Tx::Sqlite(_) => "",
    }
}

/// Job `id` if `holder` holds its lease, locked until `tx` ends (a claim taking over an expired lease in
/// between must not be overwritten); otherwise why not, with nothing locked. The answer is the same 409
/// whether another worker name or another token holds it, and names neither.
async fn held(tx: &mut Tx, id: i64, holder: Holder<'_>) -> Result<JobRow> {
    // The holder is part of the condition, so that a refusal locks nothing: on PostgreSQL a transaction
    // dropped after an error keeps its locks until its connection is used again, and a claim meanwhile
    // would skip the job.
    let row: Option<JobRow> = tx
        .fetch_optional(
            &format!(
                "SELECT {COLUMNS} FROM job WHERE id = $1 AND state = 'running' AND lease_owner = $2 AND lease_token_id = $3{}",
                for_update(tx)
            ),
            params![id, holder.worker.trim(), holder.token_id],
        )
        .await?;
    if let Some(job) = row {
        return Ok(job);
    }
    let One(state): One<String> = tx
        .fetch_optional("SELECT state FROM job WHERE id = $1", params![id])
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("job {id}")))?;
    if state != "running" {
        return Err(ServiceError::Conflict(format!(
            "job {id} is {state}, not running: only the worker holding a running job's lease may renew, complete or read it"
        )));
    }
    Err(ServiceError::Conflict(format!(
        "job {id} is leased to another worker: only the worker name and token that claimed it may renew, complete or read it \
         (a lease that expired may have been claimed again)"
    )))
}

pub async fn heartbeat(db: &Db, id: i64, token_id: i64, hb: &JobHeartbeat, cfg: &JobsConfig) -> Result<Job> {
    let mut checks = Checks::default();
    check_worker(&mut checks, &hb.worker);
    check_lease(&mut checks, hb.lease_secs, cfg);
    checks.finish()?;
    let now = super::now();
    let mut tx = db.begin().await?;
    held(&mut tx, id, Holder { token_id, worker: &hb.worker }).await?;
    tx.execute(
        "UPDATE job SET lease_expires_at = $1, updated_at = $2 WHERE id = $3",
        params![now + Duration::seconds(hb.lease_secs), now, id],
    )
    .await?;
    tx.commit().await?;
    get(db, id).await
}

/// The back-off before attempt `attempts + 1`: `backoff_secs × 2^(attempts − 1)`, capped.
pub fn backoff(cfg: &JobsConfig, attempts: i64) -> Duration {
    let exp = u32::try_from((attempts - 1).clamp(0, 30)).unwrap_or(30);
    let secs = cfg.backoff_secs.saturating_mul(1i64 << exp).min(cfg.backoff_max_secs);
    Duration::seconds(secs)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Succeeded,
    Failed,
    Released,
}

/// Ends the lease of job `id`: succeeded, failed (retried with back-off while attempts and `retry`
/// allow), or released — given back unfinished by a worker that is stopping, without using an attempt.
pub async fn complete(db: &Db, id: i64, token_id: i64, done: &JobCompletion, cfg: &JobsConfig) -> Result<Job> {
    let mut checks = Checks::default();
    check_worker(&mut checks, &done.worker);
    let outcome = match done.outcome.as_str() {
        "succeeded" => Outcome::Succeeded,
        "failed" => Outcome::Failed,
        "released" => Outcome::Released,
        _ => {
            checks.add("/outcome", "must be `succeeded`, `failed` or `released`");
            Outcome::Failed
        }
    };
    if outcome == Outcome::Failed && done.error.as_deref().is_none_or(|e| e.trim().is_empty()) {
        checks.add("/error", "a failure needs a reason a data manager can act on");
    }
    checks.finish()?;
    let now = super::now();
    let mut tx = db.begin().await?;
    let job = held(&mut tx, id, Holder { token_id, worker: &done.worker }).await?;
    if outcome == Outcome::Released {
        // Given back unfinished (the worker is shutting down): the attempt does not count, and the job
        // is there for the next worker at once. Processing is idempotent, so it starts over safely.
        tx.execute(
            "UPDATE job SET state = 'queued', attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, run_after = $1, \
             updated_at = $1, lease_owner = NULL, lease_token_id = NULL, lease_expires_at = NULL WHERE id = $2",
            params![now, id],
        )
        .await?;
    } else if outcome == Outcome::Succeeded {
        tx.execute(
            "UPDATE job SET state = 'succeeded', finished_at = $1, updated_at = $1, lease_owner = NULL, lease_token_id = NULL, lease_expires_at = NULL, last_error = NULL WHERE id = $2",
            params![now, id],
        )
        .await?;
        // A processed video goes on to prediction by whichever model the inference workers serve.
        if let Some(video) = job.video_id.filter(|_| job.kind == "process_video" && cfg.predict_after_processing) {
            enqueue(&mut tx, Subject::Prediction(video, None), cfg.max_attempts).await?;
        }
    } else {
        let error = done.error.clone().unwrap_or_default();
        if done.retry && job.attempts < job.max_attempts {
            tx.execute(
                "UPDATE job SET state = 'queued', run_after = $1, updated_at = $2, lease_owner = NULL, lease_token_id = NULL, lease_expires_at = NULL, last_error = $3 WHERE id = $4",
                params![now + backoff(cfg, job.attempts), now, &error, id],
            )
            .await?;
        } else {
            tx.execute(
                "UPDATE job SET state = 'failed', finished_at = $1, updated_at = $1, lease_owner = NULL, lease_token_id = NULL, lease_expires_at = NULL, last_error = $2 WHERE id = $3",
                params![now, &error, id],
            )
            .await?;
            fail_subject(&mut tx, id, &error, now).await?;
        }
    }
    tx.commit().await?;
    get(db, id).await
}

/// Queues a finished (failed or succeeded) job again, with fresh attempts: after the cause of a failure
/// was fixed (a processor's regions corrected, a worker upgraded).
pub async fn retry(db: &Db, id: i64) -> Result<Job> {
    let job = get(db, id).await?;
    if job.state == "queued" || job.state == "running" {
        return Err(ServiceError::Conflict(format!("job {id} is {} already", job.state)));
    }
    let now = super::now();
    let mut tx = db.begin().await?;
    tx.execute(
        "UPDATE job SET state = 'queued', attempts = 0, run_after = $1, updated_at = $1, finished_at = NULL, last_error = NULL WHERE id = $2",
        params![now, id],
    )
    .await?;
    // The medium starts over from `uploaded` (its processing is idempotent).
    if let Some(v) = job.video_id.filter(|_| job.kind == "process_video") {
        let state: Option<One<String>> = tx.fetch_optional("SELECT state FROM video WHERE id = $1", params![v]).await?;
        if let Some(One(state)) = state.filter(|One(s)| s == "failed") {
            tx.execute(
                "UPDATE video SET state = 'uploaded', state_detail = NULL, state_changed_at = $1, version = version + 1, updated_at = $1 WHERE id = $2",
                params![now, v],
            )
            .await?;
            tx.execute(
                "INSERT INTO video_state_event (video_id, from_state, to_state, detail, at) VALUES ($1, $2, 'uploaded', 'job retried', $3)",
                params![v, state, now],
            )
            .await?;
        }
    }
    if let Some(r) = job.report_id {
        tx.execute(
            "UPDATE report_document SET state = 'uploaded', state_detail = NULL, version = version + 1, updated_at = $1 WHERE id = $2 AND state = 'failed'",
            params![now, r],
        )
        .await?;
    }
    tx.commit().await?;
    get(db, id).await
}

#[derive(sqlx::FromRow)]
struct IdentityRow {
    patient_first_name: Option<String>,
    patient_last_name: Option<String>,
    patient_date_of_birth: Option<chrono::NaiveDate>,
    examination_date: Option<chrono::NaiveDate>,
    examiner: Option<String>,
}

/// Queues a prediction of `video` (with `model_version`, or the worker's model).
pub async fn request_prediction(db: &Db, video: i64, model_version: Option<i64>, max_attempts: i64) -> Result<Job> {
    let v = super::videos::get(db, video).await?;
    if !matches!(v.state.as_str(), "frames_extracted" | "predicted" | "validated") {
        return Err(ServiceError::Conflict(format!("video {video} is {}; it can be predicted once its frames are extracted", v.state)));
    }
    if let Some(m) = model_version {
        let found: Option<One<i64>> = db.fetch_optional("SELECT id FROM ai_model_version WHERE id = $1", params![m]).await?;
        if found.is_none() {
            return Err(ServiceError::invalid("/model_version_id", format!("no model version {m}")));
        }
    }
    let mut tx = db.begin().await?;
    let id = enqueue(&mut tx, Subject::Prediction(video, model_version), max_attempts).await?;
    tx.commit().await?;
    get(db, id).await
}

/// The identifying data of a medium (empty when none is known).
pub async fn media_identity(db: &Db, subject: Subject) -> Result<MediaIdentity, DbError> {
    let row: Option<IdentityRow> = db
        .fetch_optional(
            &format!(
                "SELECT patient_first_name, patient_last_name, patient_date_of_birth, examination_date, examiner FROM media_identity WHERE {} = $1",
                subject.column()
            ),
            params![subject.id()],
        )
        .await?;
    Ok(row
        .map(|r| MediaIdentity {
            patient_first_name: r.patient_first_name,
            patient_last_name: r.patient_last_name,
            patient_date_of_birth: r.patient_date_of_birth,
            examination_date: r.examination_date,
            examiner: r.examiner,
        })
        .unwrap_or_default())
}

/// Stores identifying data for a medium: the uploader's replaces what was there; values found by a worker
/// only fill gaps (what the uploader said wins).
pub async fn store_identity(tx: &mut Tx, subject: Subject, identity: &MediaIdentity, from_uploader: bool) -> Result<(), DbError> {
    let col = subject.column();
    let now = super::now();
    let source = if from_uploader { "uploader" } else { "extracted" };
    let merge =
        |c: &str| if from_uploader { format!("{c} = excluded.{c}") } else { format!("{c} = COALESCE(media_identity.{c}, excluded.{c})") };
    let sets = ["patient_first_name", "patient_last_name", "patient_date_of_birth", "examination_date", "examiner"].map(merge).join(", ");
    tx.execute(
        &format!(
            "INSERT INTO media_identity ({col}, patient_first_name, patient_last_name, patient_date_of_birth, examination_date, examiner, source, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT ({col}) DO UPDATE SET {sets}, updated_at = excluded.updated_at"
        ),
        params![
            subject.id(),
            identity.patient_first_name.clone(),
            identity.patient_last_name.clone(),
            identity.patient_date_of_birth,
            identity.examination_date,
            identity.examiner.clone(),
            source,
            now
        ],
    )
    .await?;
    Ok(())
}

/// The medium whose identity the lease holder of job `id` may read or add to: a processing job's video or
/// report. A prediction works on the anonymised video and needs no names.
fn identity_subject(job: &JobRow) -> Result<Subject> {
    match (job.kind.as_str(), job.video_id, job.report_id) {
        ("process_video", Some(v), _) => Ok(Subject::Video(v)),
        ("process_report", _, Some(r)) => Ok(Subject::Report(r)),
        (kind, ..) => Err(ServiceError::Conflict(format!(
            "job {} is a {kind} job: only the jobs that anonymise a medium (process_video, process_report) may read its identity",
            job.id
        ))),
    }
}

/// The identity of the medium job `id` processes, for the worker holding the job's lease (the names it
/// must remove).
pub async fn job_identity(db: &Db, id: i64, holder: Holder<'_>) -> Result<MediaIdentity> {
    let mut checks = Checks::default();
    check_worker(&mut checks, holder.worker);
    checks.finish()?;
    let mut tx = db.begin().await?;
    let job = held(&mut tx, id, holder).await?;
    // Ended before anything can fail: a dropped transaction would keep the row locked (see `held`).
    tx.commit().await?;
    Ok(media_identity(db, identity_subject(&job)?).await?)
}

/// Records identifying data the worker holding job `id`'s lease found (in a report's text) for the medium.
pub async fn record_found_identity(db: &Db, id: i64, holder: Holder<'_>, identity: &MediaIdentity) -> Result<MediaIdentity> {
    let mut checks = Checks::default();
    check_worker(&mut checks, holder.worker);
    checks.finish()?;
    let mut tx = db.begin().await?;
    let job = held(&mut tx, id, holder).await?;
    let subject = match identity_subject(&job) {
        Ok(subject) => subject,
        Err(e) => {
            // Ended now: a dropped transaction would keep the row locked (see `held`).
            tx.commit().await?;
            return Err(e);
        }
    };
    store_identity(&mut tx, subject, identity, false).await?;
    tx.commit().await?;
    Ok(media_identity(db, subject).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let cfg =
            JobsConfig { max_attempts: 5, backoff_secs: 30, backoff_max_secs: 100, max_lease_secs: 600, predict_after_processing: true };
        assert_eq!(backoff(&cfg, 1), Duration::seconds(30));
        assert_eq!(backoff(&cfg, 2), Duration::seconds(60));
        assert_eq!(backoff(&cfg, 3), Duration::seconds(100));
        assert_eq!(backoff(&cfg, 40), Duration::seconds(100));
    }
}
