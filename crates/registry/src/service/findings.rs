//! Patient findings with their classification choices and interventions.
//!
//! A finding is validated against the knowledge base before it is written: the finding must belong to the
//! examination (when the knowledge base says which examinations it belongs to), each classification must
//! apply to the finding, and each choice must be one of its classification's choices. Every violation is
//! reported with the JSON pointer of the offending value.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc};

use endoreg_common::api::{ClassificationChoice, Intervention, PatientFinding, PatientFindingIn};

use crate::db::exec::{One, Tx};
use crate::db::{Db, DbError};
use crate::params;

use super::patients::{Birth, check_date, lock_birth};
use super::{Checks, Result, ServiceError, VersionProbe, explain_version_miss, terms};

pub const INTERVENTION_STATES: [&str; 4] = ["planned", "performed", "not_performed", "failed"];

/// How far ahead a planned intervention's date may lie.
pub const PLANNED_YEARS_AHEAD: u32 = 10;

/// Records a problem for each intervention of `input` dated before the patient's birth.
pub fn check_birth(birth: &Birth, checks: &mut Checks, input: &PatientFindingIn, pointer: &str) {
    for (i, iv) in input.interventions.iter().enumerate() {
        birth.check(checks, &format!("{pointer}/interventions/{i}/date"), iv.date);
    }
}

/// The patient of a patient examination, locked (see [`lock_birth`]), and their birth.
async fn lock_birth_of(tx: &mut Tx, patient_examination_id: i64) -> Result<Option<Birth>, DbError> {
    let patient: Option<One<i64>> =
        tx.fetch_optional("SELECT patient_id FROM patient_examination WHERE id = $1", params![patient_examination_id]).await?;
    match patient {
        Some(One(p)) => lock_birth(tx, p).await,
        None => Ok(None),
    }
}

/// A finding whose names have been resolved to ids.
#[derive(Debug, Clone)]
pub struct ValidFinding {
    pub finding_id: i64,
    pub classifications: Vec<(i64, i64)>,
    pub interventions: Vec<(i64, Option<String>, Option<NaiveDate>)>,
}

/// Checks `input` for an examination of kind `examination_id` (an `examination` terminology id);
/// problems go to `checks` under `pointer`.
pub async fn validate(
    db: &Db,
    checks: &mut Checks,
    examination: Option<(i64, &str)>,
    input: &PatientFindingIn,
    pointer: &str,
) -> Result<Option<ValidFinding>, DbError> {
    let before = checks_len(checks);
    let finding_id = terms::require(db, checks, "finding", &input.finding, &format!("{pointer}/finding")).await?;
    if let (Some(fid), Some((exam_id, exam_name))) = (finding_id, examination)
        && terms::link_count(db, "finding", "examinations", fid).await? > 0
        && !terms::is_linked(db, "finding", "examinations", fid, exam_id).await?
    {
        checks.add(&format!("{pointer}/finding"), format!("finding `{}` is not recorded in a {exam_name}", input.finding));
    }

    let mut classifications = Vec::new();
    let mut seen = HashSet::new();
    for (i, c) in input.classifications.iter().enumerate() {
        let p = format!("{pointer}/classifications/{i}");
        if !seen.insert(c.classification.as_str()) {
            checks.add(&format!("{p}/classification"), format!("classification `{}` is given twice", c.classification));
            continue;
        }
        let Some(cid) = terms::require(db, checks, "finding_classification", &c.classification, &format!("{p}/classification")).await?
        else {
            continue;
        };
        if let Some(fid) = finding_id
            && terms::link_count(db, "finding_classification", "findings", cid).await? > 0
            && !terms::is_linked(db, "finding_classification", "findings", cid, fid).await?
        {
            checks.add(
                &format!("{p}/classification"),
                format!("classification `{}` does not apply to finding `{}`", c.classification, input.finding),
            );
        }
        let choice_id = terms::id_of(db, "finding_classification_choice", &c.choice).await?;
        match choice_id {
            Some(ch) if terms::is_linked(db, "finding_classification", "choices", cid, ch).await? => classifications.push((cid, ch)),
            _ => {
                let choices = terms::linked_names(db, "finding_classification", "choices", cid).await?;
                checks.add(
                    &format!("{p}/choice"),
                    format!(
                        "unknown classification choice `{}` for classification `{}`; its choices are: {}",
                        c.choice,
                        c.classification,
                        choices.join(", ")
                    ),
                );
            }
        }
    }

    let mut interventions = Vec::new();
    let mut seen = HashSet::new();
    for (i, iv) in input.interventions.iter().enumerate() {
        let p = format!("{pointer}/interventions/{i}");
        if !seen.insert(iv.intervention.as_str()) {
            checks.add(&format!("{p}/intervention"), format!("intervention `{}` is given twice", iv.intervention));
            continue;
        }
        if let Some(state) = &iv.state
            && !INTERVENTION_STATES.contains(&state.as_str())
        {
            checks.add(&format!("{p}/state"), format!("unknown state `{state}`; states are {}", INTERVENTION_STATES.join(", ")));
        }
        // A planned intervention may lie ahead; one that happened (or failed, or was not done) may not.
        let ahead = if iv.state.as_deref() == Some("planned") { PLANNED_YEARS_AHEAD } else { 0 };
        check_date(checks, &format!("{p}/date"), iv.date, ahead);
        if let Some(id) = terms::require(db, checks, "finding_intervention", &iv.intervention, &format!("{p}/intervention")).await? {
            interventions.push((id, iv.state.clone(), iv.date));
        }
    }

    Ok(match finding_id {
        Some(finding_id) if checks_len(checks) == before => Some(ValidFinding { finding_id, classifications, interventions }),
        _ => None,
    })
}

fn checks_len(checks: &Checks) -> usize {
    checks.len()
}

/// Writes a validated finding of `patient_examination_id`; returns its id.
pub async fn insert(tx: &mut Tx, patient_examination_id: i64, f: &ValidFinding, now: DateTime<Utc>) -> Result<i64, DbError> {
    let One(id): One<i64> = tx
        .fetch_one(
            "INSERT INTO patient_finding (patient_examination_id, finding_id, version, created_at, updated_at) VALUES ($1, $2, 1, $3, $3) RETURNING id",
            params![patient_examination_id, f.finding_id, now],
        )
        .await?;
    write_details(tx, id, f).await?;
    Ok(id)
}

async fn write_details(tx: &mut Tx, id: i64, f: &ValidFinding) -> Result<(), DbError> {
    for (c, ch) in &f.classifications {
        tx.execute(
            "INSERT INTO patient_finding_classification (patient_finding_id, finding_classification_id, finding_classification_choice_id) VALUES ($1, $2, $3)",
            params![id, *c, *ch],
        )
        .await?;
    }
    for (iv, state, date) in &f.interventions {
        tx.execute(
            "INSERT INTO patient_finding_intervention (patient_finding_id, finding_intervention_id, state, date) VALUES ($1, $2, $3, $4)",
            params![id, *iv, state.clone(), *date],
        )
        .await?;
    }
    Ok(())
}

/// One row of the combined query that reads findings (and, for an examination, the examination and its
/// indications) in a single round trip: `kind` says what the row is — `a` the examination, `b` an
/// indication, `f` a finding, `g` one of its classification choices, `i` one of its interventions.
/// Columns mean different things per kind; [`assemble`] and `examinations::get` read them.
#[derive(sqlx::FromRow)]
pub(crate) struct Part {
    #[allow(dead_code)]
    pub grp: i64,
    pub kind: String,
    pub id: i64,
    pub ref_id: Option<i64>,
    pub name: String,
    pub value: Option<String>,
    pub date: Option<NaiveDate>,
    pub num: Option<i64>,
    pub version: Option<i64>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// The finding branches of the combined query, for findings matching `cond` (on `pf`). The caller
/// appends `ORDER BY 1, 3, 2, 5`: findings in id order, each followed by its choices and interventions.
pub(crate) fn parts_sql(cond: &str) -> String {
    const NO_VERSION: &str = "CAST(NULL AS BIGINT), CAST(NULL AS TIMESTAMPTZ), CAST(NULL AS TIMESTAMPTZ)";
    format!(
        "SELECT CAST(2 AS BIGINT) AS grp, 'f' AS kind, pf.id AS id, pf.patient_examination_id AS ref_id, f.name AS name, \
         CAST(NULL AS TEXT) AS value, CAST(NULL AS DATE) AS date, CAST(NULL AS BIGINT) AS num, \
         pf.version AS version, pf.created_at AS created_at, pf.updated_at AS updated_at \
         FROM patient_finding pf JOIN finding f ON f.id = pf.finding_id WHERE {cond} \
         UNION ALL \
         SELECT CAST(2 AS BIGINT), 'g', pf.id, pf.patient_examination_id, c.name, ch.name, CAST(NULL AS DATE), CAST(NULL AS BIGINT), {NO_VERSION} \
         FROM patient_finding_classification pfc \
         JOIN patient_finding pf ON pf.id = pfc.patient_finding_id \
         JOIN finding_classification c ON c.id = pfc.finding_classification_id \
         JOIN finding_classification_choice ch ON ch.id = pfc.finding_classification_choice_id WHERE {cond} \
         UNION ALL \
         SELECT CAST(2 AS BIGINT), 'i', pf.id, pf.patient_examination_id, i.name, pfi.state, pfi.date, CAST(NULL AS BIGINT), {NO_VERSION} \
         FROM patient_finding_intervention pfi \
         JOIN patient_finding pf ON pf.id = pfi.patient_finding_id \
         JOIN finding_intervention i ON i.id = pfi.finding_intervention_id WHERE {cond}"
    )
}

/// The column names of the combined query (the first branch names them).
pub(crate) const PART_COLUMNS: &str = "grp, kind, id, ref_id, name, value, date, num, version, created_at, updated_at";

/// Builds findings from `f`/`g`/`i` rows in query order.
pub(crate) fn assemble(parts: impl Iterator<Item = Part>) -> Vec<PatientFinding> {
    let mut out: Vec<PatientFinding> = Vec::new();
    for p in parts {
        match p.kind.as_str() {
            "f" => out.push(PatientFinding {
                id: p.id,
                patient_examination_id: p.ref_id.unwrap_or_default(),
                finding: p.name,
                classifications: Vec::new(),
                interventions: Vec::new(),
                version: p.version.unwrap_or(1),
                created_at: p.created_at.unwrap_or_default(),
                updated_at: p.updated_at.unwrap_or_default(),
            }),
            kind @ ("g" | "i") => {
                let Some(f) = out.last_mut().filter(|f| f.id == p.id) else { continue };
                if kind == "g" {
                    f.classifications.push(ClassificationChoice { classification: p.name, choice: p.value.unwrap_or_default() });
                } else {
                    f.interventions.push(Intervention { intervention: p.name, state: p.value, date: p.date });
                }
            }
            _ => {}
        }
    }
    out
}

/// Loads one finding with its classifications and interventions, in one query.
async fn load_one(db: &Db, id: i64) -> Result<Vec<PatientFinding>, DbError> {
    let sql = format!("SELECT {PART_COLUMNS} FROM ({}) AS parts ORDER BY 1, 3, 2, 5", parts_sql("pf.id = $1"));
    let parts: Vec<Part> = db.fetch_all(&sql, params![id]).await?;
    Ok(assemble(parts.into_iter()))
}

pub async fn get(db: &Db, id: i64) -> Result<PatientFinding> {
    load_one(db, id).await?.into_iter().next().ok_or_else(|| ServiceError::not_found(format!("patient finding {id}")))
}

/// The examination (id and terminology name) a patient examination is of.
async fn examination_of(db: &Db, patient_examination_id: i64) -> Result<Option<(i64, String)>, DbError> {
    db.fetch_optional(
        "SELECT e.id, e.name FROM patient_examination pe JOIN examination e ON e.id = pe.examination_id WHERE pe.id = $1",
        params![patient_examination_id],
    )
    .await
}

pub async fn create(db: &Db, patient_examination_id: i64, input: &PatientFindingIn) -> Result<PatientFinding> {
    let Some((exam_id, exam_name)) = examination_of(db, patient_examination_id).await? else {
        return Err(ServiceError::not_found(format!("patient examination {patient_examination_id}")));
    };
    let mut checks = Checks::default();
    let valid = validate(db, &mut checks, Some((exam_id, &exam_name)), input, "").await?;
    let mut tx = db.begin().await?;
    if let Some(birth) = lock_birth_of(&mut tx, patient_examination_id).await? {
        check_birth(&birth, &mut checks, input, "");
    }
    checks.finish()?;
    let valid = valid.ok_or_else(|| ServiceError::invalid("/finding", "invalid finding"))?;
    let now = super::now();
    // Bump the examination's version: its representation (which embeds findings) changed.
    tx.execute("UPDATE patient_examination SET version = version + 1, updated_at = $1 WHERE id = $2", params![now, patient_examination_id])
        .await?;
    let id = insert(&mut tx, patient_examination_id, &valid, now).await?;
    tx.commit().await?;
    get(db, id).await
}

/// Replaces a finding's finding, classifications and interventions.
pub async fn replace(db: &Db, id: i64, expected_version: i64, input: &PatientFindingIn) -> Result<PatientFinding> {
    let current = get(db, id).await?;
    let exam = examination_of(db, current.patient_examination_id).await?;
    let mut checks = Checks::default();
    let valid = validate(db, &mut checks, exam.as_ref().map(|(i, n)| (*i, n.as_str())), input, "").await?;
    let mut tx = db.begin().await?;
    if let Some(birth) = lock_birth_of(&mut tx, current.patient_examination_id).await? {
        check_birth(&birth, &mut checks, input, "");
    }
    checks.finish()?;
    let valid = valid.ok_or_else(|| ServiceError::invalid("/finding", "invalid finding"))?;
    let now = super::now();
    let n = tx
        .execute(
            "UPDATE patient_finding SET finding_id = $1, version = version + 1, updated_at = $2 WHERE id = $3 AND version = $4",
            params![valid.finding_id, now, id, expected_version],
        )
        .await?;
    if n == 0 {
        return Err(explain_version_miss(VersionProbe::Tx(&mut tx), "patient_finding", id, "patient finding").await?);
    }
    tx.execute("DELETE FROM patient_finding_classification WHERE patient_finding_id = $1", params![id]).await?;
    tx.execute("DELETE FROM patient_finding_intervention WHERE patient_finding_id = $1", params![id]).await?;
    write_details(&mut tx, id, &valid).await?;
    tx.execute(
        "UPDATE patient_examination SET version = version + 1, updated_at = $1 WHERE id = $2",
        params![now, current.patient_examination_id],
    )
    .await?;
    tx.commit().await?;
    get(db, id).await
}

pub async fn delete(db: &Db, id: i64, expected_version: i64) -> Result<()> {
    let now = super::now();
    let mut tx = db.begin().await?;
    let pe: Option<One<i64>> = tx.fetch_optional("SELECT patient_examination_id FROM patient_finding WHERE id = $1", params![id]).await?;
    let n = tx.execute("DELETE FROM patient_finding WHERE id = $1 AND version = $2", params![id, expected_version]).await?;
    if n == 0 {
        return Err(explain_version_miss(VersionProbe::Tx(&mut tx), "patient_finding", id, "patient finding").await?);
    }
    if let Some(One(pe)) = pe {
        tx.execute("UPDATE patient_examination SET version = version + 1, updated_at = $1 WHERE id = $2", params![now, pe]).await?;
    }
    tx.commit().await?;
    Ok(())
}
