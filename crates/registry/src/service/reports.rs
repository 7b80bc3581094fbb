//! Report documents (PDF reports): metadata, processing state and the anonymised text.

use chrono::{DateTime, Utc};

use endoreg_common::api::{Page, Paging, Report, ReportCreate, ReportFilter, ReportPatch, StateChange};
use endoreg_common::storage::keys;

use crate::db::Db;
use crate::db::exec::{One, Tx};
use crate::params;

use super::state::ReportState;
use super::text::{self, Kind};
use super::{Checks, Filters, Result, ServiceError, VersionProbe, check_key, explain_version_miss, is_sha256, terms};

/// Longest anonymised report text.
pub const TEXT_MAX_CHARS: usize = 500_000;

#[derive(sqlx::FromRow)]
struct ReportRow {
    id: i64,
    center: String,
    patient_examination_id: Option<i64>,
    pdf_type: Option<String>,
    sha256: String,
    size_bytes: Option<i64>,
    state: String,
    state_detail: Option<String>,
    raw_key: Option<String>,
    anonymised_text: Option<String>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<ReportRow> for Report {
    fn from(r: ReportRow) -> Self {
        Report {
            id: r.id,
            center: r.center,
            patient_examination_id: r.patient_examination_id,
            pdf_type: r.pdf_type,
            sha256: r.sha256,
            size_bytes: r.size_bytes,
            state: r.state,
            state_detail: r.state_detail,
            raw_key: r.raw_key,
            anonymised_text: r.anonymised_text,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

const SELECT: &str = "SELECT r.id, c.name AS center, r.patient_examination_id, t.name AS pdf_type, r.sha256, r.size_bytes, r.state, r.state_detail, \
     r.raw_key, r.anonymised_text, r.version, r.created_at, r.updated_at \
     FROM report_document r JOIN center c ON c.id = r.center_id LEFT JOIN pdf_type t ON t.id = r.pdf_type_id";

pub async fn get(db: &Db, id: i64) -> Result<Report> {
    let row: Option<ReportRow> = db.fetch_optional(&format!("{SELECT} WHERE r.id = $1"), params![id]).await?;
    row.map(Report::from).ok_or_else(|| ServiceError::not_found(format!("report {id}")))
}

pub async fn list(db: &Db, filter: &ReportFilter, paging: &Paging) -> Result<Page<Report>> {
    if let Some(s) = &filter.state {
        s.parse::<ReportState>().map_err(|e| ServiceError::invalid("/state", e))?;
    }
    let mut f = Filters::default();
    if let Some(c) = &filter.center {
        f.add("c.name = ?", c);
    }
    if let Some(s) = &filter.state {
        f.add("r.state = ?", s);
    }
    if let Some(p) = filter.patient_examination_id {
        f.add("r.patient_examination_id = ?", p);
    }
    let count = "SELECT COUNT(*) FROM report_document r JOIN center c ON c.id = r.center_id";
    super::page(db, SELECT, count, &f, "r.id", paging, |r: ReportRow| Report::from(r)).await
}

pub async fn create(db: &Db, input: &ReportCreate) -> Result<Report> {
    let new = check_create(db, input).await?;
    let mut tx = db.begin().await?;
    let id = create_in(&mut tx, &new).await?;
    tx.commit().await?;
    get(db, id).await
}

/// A report [`check_create`] accepted, its references resolved.
pub struct NewReport<'a> {
    input: &'a ReportCreate,
    center: Option<i64>,
    pdf_type: Option<i64>,
}

/// The checks of [`create`], run before the transaction [`create_in`] writes in (see
/// [`super::videos::check_create`]).
pub async fn check_create<'a>(db: &Db, input: &'a ReportCreate) -> Result<NewReport<'a>> {
    let mut checks = Checks::default();
    let center = terms::require(db, &mut checks, "center", &input.center, "/center").await?;
    let pdf_type = match &input.pdf_type {
        Some(t) => terms::require(db, &mut checks, "pdf_type", t, "/pdf_type").await?,
        None => None,
    };
    super::examinations::check_reference(db, &mut checks, input.patient_examination_id).await?;
    if !is_sha256(&input.sha256) {
        checks.add("/sha256", "must be 64 lowercase hexadecimal characters");
    }
    if input.size_bytes.is_some_and(|s| s < 0) {
        checks.add("/size_bytes", "must not be negative");
    }
    if let Some(key) = &input.raw_key
        && is_sha256(&input.sha256)
    {
        check_key(&mut checks, "/raw_key", key, &keys::raw(&input.sha256));
    }
    checks.finish()?;
    Ok(NewReport { input, center, pdf_type })
}

/// Inserts a checked report in the caller's transaction (an upload: with its identity and job).
/// `Conflict` when the content is registered already.
pub async fn create_in(tx: &mut Tx, new: &NewReport<'_>) -> Result<i64> {
    let NewReport { input, center, pdf_type } = *new;
    let now = super::now();
    let inserted: Option<One<i64>> = tx
        .fetch_optional(
            "INSERT INTO report_document (center_id, patient_examination_id, pdf_type_id, sha256, size_bytes, state, raw_key, version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 'uploaded', $6, 1, $7, $7) ON CONFLICT (sha256) DO NOTHING RETURNING id",
            params![center, input.patient_examination_id, pdf_type, &input.sha256, input.size_bytes, input.raw_key.clone(), now],
        )
        .await?;
    match inserted {
        Some(One(id)) => Ok(id),
        None => {
            let One(existing): One<i64> = tx.fetch_one("SELECT id FROM report_document WHERE sha256 = $1", params![&input.sha256]).await?;
            Err(ServiceError::Conflict(format!("this report is already registered as report {existing}")))
        }
    }
}

pub async fn update(db: &Db, id: i64, expected_version: i64, patch: &ReportPatch) -> Result<Report> {
    let current = get(db, id).await?;
    let mut checks = Checks::default();
    let pdf_type_name = match &patch.pdf_type {
        Some(t) => t.clone(),
        None => current.pdf_type.clone(),
    };
    let pdf_type = match &pdf_type_name {
        Some(t) => terms::require(db, &mut checks, "pdf_type", t, "/pdf_type").await?,
        None => None,
    };
    super::examinations::check_reference(db, &mut checks, patch.patient_examination_id.flatten()).await?;
    if let Some(key) = &patch.raw_key {
        check_key(&mut checks, "/raw_key", key, &keys::raw(&current.sha256));
    }
    if let Some(Some(t)) = &patch.anonymised_text {
        text::check(&mut checks, "/anonymised_text", t, Kind::FreeText, TEXT_MAX_CHARS);
    }
    checks.finish()?;
    let exam = match patch.patient_examination_id {
        Some(e) => e,
        None => current.patient_examination_id,
    };
    let text = match &patch.anonymised_text {
        Some(t) => t.clone(),
        None => current.anonymised_text,
    };
    let n = db
        .execute(
            "UPDATE report_document SET patient_examination_id = $1, pdf_type_id = $2, raw_key = $3, anonymised_text = $4, version = version + 1, updated_at = $5 \
             WHERE id = $6 AND version = $7",
            params![exam, pdf_type, patch.raw_key.clone().or(current.raw_key), text, super::now(), id, expected_version],
        )
        .await?;
    if n == 0 {
        return Err(explain_version_miss(VersionProbe::Db(db), "report_document", id, "report").await?);
    }
    get(db, id).await
}

pub async fn change_state(db: &Db, id: i64, expected_version: i64, change: &StateChange) -> Result<Report> {
    let next: ReportState = change.state.parse().map_err(|e: String| ServiceError::invalid("/state", e))?;
    let mut checks = Checks::default();
    super::videos::check_detail(&mut checks, change.detail.as_deref(), next == ReportState::Failed);
    checks.finish()?;
    let current = get(db, id).await?;
    if current.version != expected_version {
        return Err(ServiceError::VersionMismatch { current: current.version });
    }
    let from: ReportState = current.state.parse().map_err(|e: String| ServiceError::Conflict(format!("stored state is invalid: {e}")))?;
    if !from.can_become(next) {
        return Err(ServiceError::Conflict(format!("report {id} is {from} and cannot become {next}")));
    }
    let n = db
        .execute(
            "UPDATE report_document SET state = $1, state_detail = $2, version = version + 1, updated_at = $3 WHERE id = $4 AND version = $5",
            params![next.as_str(), change.detail.clone(), super::now(), id, expected_version],
        )
        .await?;
    if n == 0 {
        return Err(explain_version_miss(VersionProbe::Db(db), "report_document", id, "report").await?);
    }
    get(db, id).await
}
