//! Patient examinations: an examination of a patient on a date, with indications and findings.

use chrono::NaiveDate;

use endoreg_common::api::{
    ExaminationFilter, ExaminationSummary, Indication, Page, Paging, PatientExamination, PatientExaminationCreate, PatientExaminationPatch,
};

use crate::db::exec::{One, Tx};
use crate::db::{Db, DbError};
use crate::params;

use super::findings::{self, PART_COLUMNS, Part};
use super::patients::{check_date, lock_birth};
use super::{Checks, Filters, Result, ServiceError, VersionProbe, explain_version_miss, terms};

#[derive(sqlx::FromRow)]
struct SummaryRow {
    id: i64,
    patient_id: i64,
    examination: String,
    center: String,
    date: Option<NaiveDate>,
    version: i64,
}

const FROM: &str = "FROM patient_examination pe JOIN examination e ON e.id = pe.examination_id JOIN center c ON c.id = pe.center_id";

/// Reads an examination with its indications and findings in one query (the registry's hottest path:
/// one round trip instead of four).
pub async fn get(db: &Db, id: i64) -> Result<PatientExamination> {
    let sql = format!(
        "SELECT {PART_COLUMNS} FROM (\
         SELECT CAST(0 AS BIGINT) AS grp, 'a' AS kind, pe.id AS id, pe.patient_id AS ref_id, e.name AS name, c.name AS value, pe.date AS date, \
         pe.examiner_id AS num, pe.version AS version, pe.created_at AS created_at, pe.updated_at AS updated_at {FROM} WHERE pe.id = $1 \
         UNION ALL \
         SELECT CAST(1 AS BIGINT), 'b', pei.patient_examination_id, CAST(NULL AS BIGINT), i.name, ch.name, CAST(NULL AS DATE), CAST(NULL AS BIGINT), \
         CAST(NULL AS BIGINT), CAST(NULL AS TIMESTAMPTZ), CAST(NULL AS TIMESTAMPTZ) \
         FROM patient_examination_indication pei \
         JOIN examination_indication i ON i.id = pei.examination_indication_id \
         LEFT JOIN examination_indication_classification_choice ch ON ch.id = pei.classification_choice_id \
         WHERE pei.patient_examination_id = $1 \
         UNION ALL {}) AS parts ORDER BY 1, 3, 2, 5",
        findings::parts_sql("pf.patient_examination_id = $1")
    );
    let parts: Vec<Part> = db.fetch_all(&sql, params![id]).await?;
    let mut parts = parts.into_iter().peekable();
    let Some(exam) = parts.next_if(|p| p.kind == "a") else {
        return Err(ServiceError::not_found(format!("patient examination {id}")));
    };
    let mut indications = Vec::new();
    while let Some(p) = parts.next_if(|p| p.kind == "b") {
        indications.push(Indication { indication: p.name, choice: p.value });
    }
    Ok(PatientExamination {
        id: exam.id,
        patient_id: exam.ref_id.unwrap_or_default(),
        examination: exam.name,
        center: exam.value.unwrap_or_default(),
        examiner_id: exam.num,
        date: exam.date,
        indications,
        findings: findings::assemble(parts),
        version: exam.version.unwrap_or(1),
        created_at: exam.created_at.unwrap_or_default(),
        updated_at: exam.updated_at.unwrap_or_default(),
    })
}

pub async fn list(db: &Db, filter: &ExaminationFilter, paging: &Paging) -> Result<Page<ExaminationSummary>> {
    let mut checks = Checks::default();
    if let (Some(from), Some(to)) = (filter.date_from, filter.date_to)
        && from > to
    {
        checks.add("/date_from", "lies after date_to");
    }
    checks.finish()?;
    let mut f = Filters::default();
    if let Some(c) = &filter.center {
        f.add("c.name = ?", c);
    }
    if let Some(e) = &filter.examination {
        f.add("e.name = ?", e);
    }
    if let Some(t) = &filter.examination_type {
        f.add(
            "EXISTS (SELECT 1 FROM examination__examination_types l JOIN examination_type t ON t.id = l.target_id \
             WHERE l.source_id = pe.examination_id AND t.name = ?)",
            t,
        );
    }
    if let Some(p) = filter.patient_id {
        f.add("pe.patient_id = ?", p);
    }
    if let Some(d) = filter.date_from {
        f.add("pe.date >= ?", d);
    }
    if let Some(d) = filter.date_to {
        f.add("pe.date <= ?", d);
    }
    let select = format!("SELECT pe.id, pe.patient_id, e.name AS examination, c.name AS center, pe.date, pe.version {FROM}");
    let count = format!("SELECT COUNT(*) {FROM}");
    super::page(db, &select, &count, &f, "pe.date, pe.id", paging, |r: SummaryRow| ExaminationSummary {
        id: r.id,
        patient_id: r.patient_id,
        examination: r.examination,
        center: r.center,
        date: r.date,
        version: r.version,
    })
    .await
}

/// Resolves indication names; problems under `pointer`.
async fn validate_indications(
    db: &Db,
    checks: &mut Checks,
    items: &[Indication],
    pointer: &str,
) -> Result<Vec<(i64, Option<i64>)>, DbError> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, ind) in items.iter().enumerate() {
        let p = format!("{pointer}/{i}");
        if !seen.insert(ind.indication.as_str()) {
            checks.add(&format!("{p}/indication"), format!("indication `{}` is given twice", ind.indication));
            continue;
        }
        let id = terms::require(db, checks, "examination_indication", &ind.indication, &format!("{p}/indication")).await?;
        let choice = match &ind.choice {
            Some(c) => terms::require(db, checks, "examination_indication_classification_choice", c, &format!("{p}/choice")).await?,
            None => None,
        };
        if let Some(id) = id {
            out.push((id, choice));
        }
    }
    Ok(out)
}

async fn write_indications(tx: &mut Tx, id: i64, items: &[(i64, Option<i64>)]) -> Result<(), DbError> {
    for (ind, choice) in items {
        tx.execute(
            "INSERT INTO patient_examination_indication (patient_examination_id, examination_indication_id, classification_choice_id) VALUES ($1, $2, $3)",
            params![id, *ind, *choice],
        )
        .await?;
    }
    Ok(())
}

/// Records a problem at `/patient_examination_id` when `id` names no patient examination (for the
/// records that may point at one: videos, reports).
pub async fn check_reference(db: &Db, checks: &mut Checks, id: Option<i64>) -> Result<(), DbError> {
    if let Some(id) = id {
        let found: Option<One<i64>> = db.fetch_optional("SELECT id FROM patient_examination WHERE id = $1", params![id]).await?;
        if found.is_none() {
            checks.add("/patient_examination_id", format!("no patient examination {id}"));
        }
    }
    Ok(())
}

pub async fn create(db: &Db, input: &PatientExaminationCreate) -> Result<PatientExamination> {
    let mut checks = Checks::default();
    let patient_center: Option<One<i64>> =
        db.fetch_optional("SELECT center_id FROM patient WHERE id = $1", params![input.patient_id]).await?;
    if patient_center.is_none() {
        checks.add("/patient_id", format!("no patient {}", input.patient_id));
    }
    let exam_id = terms::require(db, &mut checks, "examination", &input.examination, "/examination").await?;
    let center_id = match &input.center {
        Some(c) => terms::require(db, &mut checks, "center", c, "/center").await?,
        None => patient_center.as_ref().map(|One(c)| *c),
    };
    check_date(&mut checks, "/date", input.date, 0);
    let indications = validate_indications(db, &mut checks, &input.indications, "/indications").await?;
    let mut valid_findings = Vec::new();
    for (i, f) in input.findings.iter().enumerate() {
        let v =
            findings::validate(db, &mut checks, exam_id.map(|id| (id, input.examination.as_str())), f, &format!("/findings/{i}")).await?;
        valid_findings.extend(v);
    }
    let mut tx = db.begin().await?;
    if patient_center.is_some()
        && let Some(birth) = lock_birth(&mut tx, input.patient_id).await?
    {
        birth.check(&mut checks, "/date", input.date);
        for (i, f) in input.findings.iter().enumerate() {
            findings::check_birth(&birth, &mut checks, f, &format!("/findings/{i}"));
        }
    }
    checks.finish()?;
    let (Some(exam_id), Some(center_id)) = (exam_id, center_id) else {
        return Err(ServiceError::invalid("/examination", "invalid examination"));
    };
    let now = super::now();
    let One(id): One<i64> = tx
        .fetch_one(
            "INSERT INTO patient_examination (patient_id, examination_id, center_id, date, version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 1, $5, $5) RETURNING id",
            params![input.patient_id, exam_id, center_id, input.date, now],
        )
        .await?;
    write_indications(&mut tx, id, &indications).await?;
    for f in &valid_findings {
        findings::insert(&mut tx, id, f, now).await?;
    }
    tx.commit().await?;
    get(db, id).await
}

pub async fn update(db: &Db, id: i64, expected_version: i64, patch: &PatientExaminationPatch) -> Result<PatientExamination> {
    let current = get(db, id).await?;
    let mut checks = Checks::default();
    let exam_name = patch.examination.clone().unwrap_or(current.examination.clone());
    let exam_id = terms::require(db, &mut checks, "examination", &exam_name, "/examination").await?;
    let center_name = patch.center.clone().unwrap_or(current.center.clone());
    let center_id = terms::require(db, &mut checks, "center", &center_name, "/center").await?;
    let date = match patch.date {
        Some(d) => d,
        None => current.date,
    };
    let indications = match &patch.indications {
        Some(items) => Some(validate_indications(db, &mut checks, items, "/indications").await?),
        None => None,
    };
    let mut tx = db.begin().await?;
    // Only a date being written is checked: one stored under older rules does not block other changes.
    if let Some(d) = patch.date {
        check_date(&mut checks, "/date", d, 0);
        if let Some(birth) = lock_birth(&mut tx, current.patient_id).await? {
            birth.check(&mut checks, "/date", d);
        }
    }
    checks.finish()?;
    let now = super::now();
    let n = tx
        .execute(
            "UPDATE patient_examination SET examination_id = $1, center_id = $2, date = $3, version = version + 1, updated_at = $4 \
             WHERE id = $5 AND version = $6",
            params![exam_id, center_id, date, now, id, expected_version],
        )
        .await?;
    if n == 0 {
        return Err(explain_version_miss(VersionProbe::Tx(&mut tx), "patient_examination", id, "patient examination").await?);
    }
    if let Some(items) = indications {
        tx.execute("DELETE FROM patient_examination_indication WHERE patient_examination_id = $1", params![id]).await?;
        write_indications(&mut tx, id, &items).await?;
    }
    tx.commit().await?;
    get(db, id).await
}

/// Deletes an examination with its findings. Videos and reports of the examination keep it alive: they
/// must be detached first, so media are never orphaned silently.
pub async fn delete(db: &Db, id: i64, expected_version: i64) -> Result<()> {
    let mut tx = db.begin().await?;
    let One(media): One<i64> = tx
        .fetch_one(
            "SELECT (SELECT COUNT(*) FROM video WHERE patient_examination_id = $1) + (SELECT COUNT(*) FROM report_document WHERE patient_examination_id = $1)",
            params![id],
        )
        .await?;
    if media > 0 {
        let probe = explain_version_miss(VersionProbe::Tx(&mut tx), "patient_examination", id, "patient examination").await?;
        if let ServiceError::VersionMismatch { current } = probe
            && current != expected_version
        {
            return Err(probe);
        }
        return Err(ServiceError::Conflict(format!(
            "patient examination {id} has {media} video(s) or report(s); detach or delete them first"
        )));
    }
    let n = tx.execute("DELETE FROM patient_examination WHERE id = $1 AND version = $2", params![id, expected_version]).await?;
    if n == 0 {
        return Err(explain_version_miss(VersionProbe::Tx(&mut tx), "patient_examination", id, "patient examination").await?);
    }
    tx.commit().await?;
    Ok(())
}
