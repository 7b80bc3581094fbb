//! Patients (pseudonymised) and their identities (identifying data, kept apart).

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use rand::Rng;

use endoreg_common::api::{Page, Paging, Patient, PatientCreate, PatientFilter, PatientIdentity, PatientIdentityIn, PatientPatch};

use crate::db::Db;
use crate::db::exec::One;
use crate::params;

use super::{Checks, Filters, Result, ServiceError, VersionProbe, explain_version_miss, terms};

#[derive(sqlx::FromRow)]
struct PatientRow {
    id: i64,
    pseudonym: String,
    center: String,
    gender: Option<String>,
    birth_year: Option<i64>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<PatientRow> for Patient {
    fn from(r: PatientRow) -> Self {
        Patient {
            id: r.id,
            pseudonym: r.pseudonym,
            center: r.center,
            gender: r.gender,
            birth_year: r.birth_year.and_then(|y| i32::try_from(y).ok()),
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

const SELECT: &str = "SELECT p.id, p.pseudonym, c.name AS center, g.name AS gender, p.birth_year, p.version, p.created_at, p.updated_at \
     FROM patient p JOIN center c ON c.id = p.center_id LEFT JOIN gender g ON g.id = p.gender_id";

const PSEUDONYM_ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A random pseudonym: `P-` and 10 characters of Crockford's base 32 (50 bits).
pub fn new_pseudonym() -> String {
    let mut rng = rand::rng();
    let body: String = (0..10).map(|_| PSEUDONYM_ALPHABET[rng.random_range(0..PSEUDONYM_ALPHABET.len())] as char).collect();
    format!("P-{body}")
}

fn check_birth_year(checks: &mut Checks, year: Option<i32>) {
    if let Some(y) = year {
        let now = Utc::now().year();
        if !(1850..=now).contains(&y) {
            checks.add("/birth_year", format!("must be between 1850 and {now}"));
        }
    }
}

pub async fn get(db: &Db, id: i64) -> Result<Patient> {
    let row: Option<PatientRow> = db.fetch_optional(&format!("{SELECT} WHERE p.id = $1"), params![id]).await?;
    row.map(Patient::from).ok_or_else(|| ServiceError::not_found(format!("patient {id}")))
}

pub async fn list(db: &Db, filter: &PatientFilter, paging: &Paging) -> Result<Page<Patient>> {
    let mut f = Filters::default();
    if let Some(c) = &filter.center {
        f.add("c.name = ?", c);
    }
    if let Some(p) = &filter.pseudonym {
        f.add("p.pseudonym = ?", p);
    }
    let count = "SELECT COUNT(*) FROM patient p JOIN center c ON c.id = p.center_id";
    super::page(db, SELECT, count, &f, "p.id", paging, |r: PatientRow| Patient::from(r)).await
}

pub async fn create(db: &Db, input: &PatientCreate) -> Result<Patient> {
    let mut checks = Checks::default();
    let center = terms::require(db, &mut checks, "center", &input.center, "/center").await?;
    let gender = match &input.gender {
        Some(g) => terms::require(db, &mut checks, "gender", g, "/gender").await?,
        None => None,
    };
    check_birth_year(&mut checks, input.birth_year);
    if let Some(p) = &input.pseudonym
        && (p.trim().is_empty() || p.len() > 64)
    {
        checks.add("/pseudonym", "must be 1 to 64 characters");
    }
    checks.finish()?;
    let now = super::now();
    // A generated pseudonym that collides (50 bits: rare) is drawn again; a chosen one is the caller's.
    for _ in 0..5 {
        let pseudonym = input.pseudonym.clone().unwrap_or_else(new_pseudonym);
        let inserted: Option<One<i64>> = db
            .fetch_optional(
                "INSERT INTO patient (pseudonym, center_id, gender_id, birth_year, version, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, 1, $5, $5) ON CONFLICT (pseudonym) DO NOTHING RETURNING id",
                params![&pseudonym, center, gender, input.birth_year, now],
            )
            .await?;
        match inserted {
            Some(One(id)) => return get(db, id).await,
            None if input.pseudonym.is_some() => {
                return Err(ServiceError::Conflict(format!("a patient with pseudonym `{pseudonym}` already exists")));
            }
            None => continue,
        }
    }
    Err(ServiceError::Conflict("could not draw an unused pseudonym; retry".into()))
}

pub async fn update(db: &Db, id: i64, expected_version: i64, patch: &PatientPatch) -> Result<Patient> {
    let current = get(db, id).await?;
    let mut checks = Checks::default();
    let center_name = patch.center.clone().unwrap_or(current.center.clone());
    let center = terms::require(db, &mut checks, "center", &center_name, "/center").await?;
    let gender_name = match &patch.gender {
        Some(g) => g.clone(),
        None => current.gender.clone(),
    };
    let gender = match &gender_name {
        Some(g) => terms::require(db, &mut checks, "gender", g, "/gender").await?,
        None => None,
    };
    let birth_year = match patch.birth_year {
        Some(y) => y,
        None => current.birth_year,
    };
    check_birth_year(&mut checks, birth_year);
    checks.finish()?;
    let n = db
        .execute(
            "UPDATE patient SET center_id = $1, gender_id = $2, birth_year = $3, version = version + 1, updated_at = $4 \
             WHERE id = $5 AND version = $6",
            params![center, gender, birth_year, super::now(), id, expected_version],
        )
        .await?;
    if n == 0 {
        return Err(explain_version_miss(VersionProbe::Db(db), "patient", id, "patient").await?);
    }
    get(db, id).await
}

/// Deletes a patient and their identity. A patient with examinations is kept: those must go first, so a
/// single call can never remove a patient's clinical history.
pub async fn delete(db: &Db, id: i64, expected_version: i64) -> Result<()> {
    let mut tx = db.begin().await?;
    let One(exams): One<i64> = tx.fetch_one("SELECT COUNT(*) FROM patient_examination WHERE patient_id = $1", params![id]).await?;
    let n = tx
        .execute(
            "DELETE FROM patient WHERE id = $1 AND version = $2 AND NOT EXISTS (SELECT 1 FROM patient_examination WHERE patient_id = $1)",
            params![id, expected_version],
        )
        .await?;
    if n == 0 {
        if exams > 0 {
            let probe = explain_version_miss(VersionProbe::Tx(&mut tx), "patient", id, "patient").await?;
            if let ServiceError::VersionMismatch { current } = probe
                && current != expected_version
            {
                return Err(probe);
            }
            return Err(ServiceError::Conflict(format!("patient {id} has {exams} examination(s); delete those first")));
        }
        return Err(explain_version_miss(VersionProbe::Tx(&mut tx), "patient", id, "patient").await?);
    }
    tx.commit().await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct IdentityRow {
    patient_id: i64,
    first_name: Option<String>,
    last_name: Option<String>,
    date_of_birth: Option<NaiveDate>,
    external_id: Option<String>,
    notes: Option<String>,
    version: i64,
    updated_at: DateTime<Utc>,
}

impl From<IdentityRow> for PatientIdentity {
    fn from(r: IdentityRow) -> Self {
        PatientIdentity {
            patient_id: r.patient_id,
            first_name: r.first_name,
            last_name: r.last_name,
            date_of_birth: r.date_of_birth,
            external_id: r.external_id,
            notes: r.notes,
            version: r.version,
            updated_at: r.updated_at,
        }
    }
}

pub async fn get_identity(db: &Db, patient_id: i64) -> Result<PatientIdentity> {
    let row: Option<IdentityRow> = db
        .fetch_optional(
            "SELECT patient_id, first_name, last_name, date_of_birth, external_id, notes, version, updated_at \
             FROM patient_identity WHERE patient_id = $1",
            params![patient_id],
        )
        .await?;
    match row {
        Some(r) => Ok(r.into()),
        None => {
            get(db, patient_id).await?;
            Err(ServiceError::not_found(format!("identity of patient {patient_id}")))
        }
    }
}

/// Creates the identity (no version expected) or replaces it (the current version expected). Returns
/// whether it was created.
pub async fn put_identity(
    db: &Db,
    patient_id: i64,
    expected_version: Option<i64>,
    input: &PatientIdentityIn,
) -> Result<(PatientIdentity, bool)> {
    let patient = get(db, patient_id).await?;
    let mut checks = Checks::default();
    if let (Some(dob), Some(year)) = (input.date_of_birth, patient.birth_year)
        && dob.year() != year
    {
        checks.add("/date_of_birth", format!("the patient's birth year is {year}"));
    }
    if let Some(dob) = input.date_of_birth
        && dob > Utc::now().date_naive()
    {
        checks.add("/date_of_birth", "lies in the future");
    }
    checks.finish()?;
    let now = super::now();
    let created = match expected_version {
        None => {
            let inserted = db
                .execute(
                    "INSERT INTO patient_identity (patient_id, first_name, last_name, date_of_birth, external_id, notes, version, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, 1, $7) ON CONFLICT (patient_id) DO NOTHING",
                    params![patient_id, input.first_name.clone(), input.last_name.clone(), input.date_of_birth, input.external_id.clone(), input.notes.clone(), now],
                )
                .await?;
            if inserted == 0 {
                return Err(ServiceError::Conflict(format!(
                    "patient {patient_id} already has an identity; send If-Match with its version to replace it"
                )));
            }
            true
        }
        Some(v) => {
            let n = db
                .execute(
                    "UPDATE patient_identity SET first_name = $1, last_name = $2, date_of_birth = $3, external_id = $4, notes = $5, \
                     version = version + 1, updated_at = $6 WHERE patient_id = $7 AND version = $8",
                    params![
                        input.first_name.clone(),
                        input.last_name.clone(),
                        input.date_of_birth,
                        input.external_id.clone(),
                        input.notes.clone(),
                        now,
                        patient_id,
                        v
                    ],
                )
                .await?;
            if n == 0 {
                let current: Option<One<i64>> =
                    db.fetch_optional("SELECT version FROM patient_identity WHERE patient_id = $1", params![patient_id]).await?;
                return Err(match current {
                    None => ServiceError::not_found(format!("identity of patient {patient_id}")),
                    Some(One(current)) => ServiceError::VersionMismatch { current },
                });
            }
            false
        }
    };
    Ok((get_identity(db, patient_id).await?, created))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_have_the_documented_shape() {
        for _ in 0..100 {
            let p = new_pseudonym();
            assert_eq!(p.len(), 12);
            assert!(p.starts_with("P-"));
            assert!(p[2..].bytes().all(|b| PSEUDONYM_ALPHABET.contains(&b)), "{p}");
        }
    }
}
