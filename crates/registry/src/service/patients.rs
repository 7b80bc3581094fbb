//! Patients (pseudonymised) and their identities (identifying data, kept apart).

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use rand::Rng;

use endoreg_common::api::{Page, Paging, Patient, PatientCreate, PatientFilter, PatientIdentity, PatientIdentityIn, PatientPatch};

use crate::db::exec::{One, Tx};
use crate::db::{Db, DbError};
use crate::params;

use super::text::{self, Kind};
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

/// Lengths of a pseudonym chosen by the caller.
pub const PSEUDONYM_MIN_CHARS: usize = 3;
pub const PSEUDONYM_MAX_CHARS: usize = 64;

/// A pseudonym in its stored form: without surrounding white space, in upper case. Two pseudonyms that
/// differ only there (`dup-1 `, `DUP-1`) are one.
pub fn normalise_pseudonym(p: &str) -> String {
    p.trim().to_ascii_uppercase()
}

/// Checks a caller's pseudonym (normalised): letters A–Z, digits and single hyphens between them, 3 to 64
/// characters, at least one digit — so that a name (`MUSTERMANN`, `Erika Mustermann`) is never taken
/// for one.
fn check_pseudonym(checks: &mut Checks, p: &str) {
    let n = p.chars().count();
    let well_formed = p.split('-').all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
    if !(PSEUDONYM_MIN_CHARS..=PSEUDONYM_MAX_CHARS).contains(&n) || !well_formed || !p.bytes().any(|b| b.is_ascii_digit()) {
        checks.add(
            "/pseudonym",
            format!(
                "must be {PSEUDONYM_MIN_CHARS} to {PSEUDONYM_MAX_CHARS} letters (A-Z, any case), digits and single hyphens between them, with at \
                 least one digit, like `P-12AB`; leave it out to have one generated"
            ),
        );
    }
}

/// The earliest date the registry accepts for a birth, an examination or an intervention.
pub fn earliest_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or_default()
}

/// Checks that `date` lies between 1900-01-01 and today (or, with `future_years`, up to that many years
/// ahead: a planned intervention).
pub fn check_date(checks: &mut Checks, pointer: &str, date: Option<NaiveDate>, future_years: u32) {
    let Some(d) = date else { return };
    let today = Utc::now().date_naive();
    let latest = today.checked_add_months(chrono::Months::new(12 * future_years)).unwrap_or(today);
    if d < earliest_date() {
        checks.add(pointer, format!("lies before {}", earliest_date()));
    } else if d > latest {
        checks.add(
            pointer,
            if future_years == 0 { "lies in the future".to_owned() } else { format!("lies more than {future_years} years ahead") },
        );
    }
}

fn check_birth_year(checks: &mut Checks, year: Option<i32>) {
    if let Some(y) = year {
        let now = Utc::now().year();
        let first = earliest_date().year();
        if !(first..=now).contains(&y) {
            checks.add("/birth_year", format!("must be between {first} and {now}"));
        }
    }
}

/// What is known of a patient's birth: the birth year (pseudonymised data) and the date of birth (in the
/// identity). Read by [`lock_birth`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Birth {
    pub year: Option<i32>,
    pub date: Option<NaiveDate>,
}

impl Birth {
    /// Records a problem at `pointer` when `date` (of an examination or intervention) lies before the birth.
    /// The date of birth itself is not named: the caller may not be allowed to read it.
    pub fn check(&self, checks: &mut Checks, pointer: &str, date: Option<NaiveDate>) {
        let Some(d) = date else { return };
        if self.date.is_some_and(|dob| d < dob) {
            checks.add(pointer, "lies before the patient's date of birth");
        } else if let Some(y) = self.year
            && d.year() < y
        {
            checks.add(pointer, format!("lies before the patient's birth year {y}"));
        }
    }
}

/// Locks patient `id` for the rest of `tx` and reads what is known of their birth; `None` when there is
/// no such patient. Every write that compares dates with the birth takes this lock first (birth year,
/// date of birth, examination and intervention dates), so that whichever of two such writes comes
/// second is checked against the first, on both backends.
pub async fn lock_birth(tx: &mut Tx, id: i64) -> Result<Option<Birth>, DbError> {
    // A write that changes nothing, for its row lock (SQLite's write transactions are serialised anyway).
    if tx.execute("UPDATE patient SET version = version WHERE id = $1", params![id]).await? == 0 {
        return Ok(None);
    }
    let (year, date): (Option<i64>, Option<NaiveDate>) = tx
        .fetch_one(
            "SELECT p.birth_year, i.date_of_birth FROM patient p LEFT JOIN patient_identity i ON i.patient_id = p.id WHERE p.id = $1",
            params![id],
        )
        .await?;
    Ok(Some(Birth { year: year.and_then(|y| i32::try_from(y).ok()), date }))
}

/// The earliest examination or intervention date recorded for patient `id`.
async fn earliest_clinical_date(tx: &mut Tx, id: i64) -> Result<Option<NaiveDate>, DbError> {
    let One(d): One<Option<NaiveDate>> = tx
        .fetch_one(
            "SELECT MIN(d) FROM (SELECT pe.date AS d FROM patient_examination pe WHERE pe.patient_id = $1 \
             UNION ALL SELECT pfi.date FROM patient_finding_intervention pfi \
             JOIN patient_finding pf ON pf.id = pfi.patient_finding_id \
             JOIN patient_examination pe ON pe.id = pf.patient_examination_id WHERE pe.patient_id = $1) AS dates",
            params![id],
        )
        .await?;
    Ok(d)
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
        // Pseudonyms stored before they were normalised are found too (an index on the expression).
        f.add("UPPER(TRIM(p.pseudonym)) = ?", normalise_pseudonym(p));
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
    let chosen = input.pseudonym.as_deref().map(normalise_pseudonym);
    if let Some(p) = &chosen {
        check_pseudonym(&mut checks, p);
    }
    checks.finish()?;
    let now = super::now();
    // A generated pseudonym that collides (50 bits: rare) is drawn again; a chosen one is the caller's.
    for _ in 0..5 {
        let pseudonym = chosen.clone().unwrap_or_else(new_pseudonym);
        // Stored pseudonyms are normalised, so the unique constraint decides; one stored before that
        // rule may differ in case or spaces, and is found here.
        let folded: Option<One<i64>> =
            db.fetch_optional("SELECT id FROM patient WHERE UPPER(TRIM(pseudonym)) = $1", params![&pseudonym]).await?;
        let inserted: Option<One<i64>> = match folded {
            Some(_) => None,
            None => {
                db.fetch_optional(
                    "INSERT INTO patient (pseudonym, center_id, gender_id, birth_year, version, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, 1, $5, $5) ON CONFLICT (pseudonym) DO NOTHING RETURNING id",
                    params![&pseudonym, center, gender, input.birth_year, now],
                )
                .await?
            }
        };
        match inserted {
            Some(One(id)) => return get(db, id).await,
            None if chosen.is_some() => {
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
    // Only a birth year being written is checked: one stored under older rules does not block other changes.
    let birth_year = match patch.birth_year {
        Some(y) => {
            check_birth_year(&mut checks, y);
            y
        }
        None => current.birth_year,
    };
    let mut tx = db.begin().await?;
    if let Some(Some(year)) = patch.birth_year {
        let Some(birth) = lock_birth(&mut tx, id).await? else {
            return Err(ServiceError::not_found(format!("patient {id}")));
        };
        if let Some(dob) = birth.date
            && dob.year() != year
        {
            checks.add("/birth_year", format!("contradicts the date of birth in the patient's identity (year {})", dob.year()));
        }
        if let Some(first) = earliest_clinical_date(&mut tx, id).await?
            && first.year() < year
        {
            checks.add("/birth_year", format!("the patient has an examination or intervention dated {first}, before this birth year"));
        }
    }
    checks.finish()?;
    let n = tx
        .execute(
            "UPDATE patient SET center_id = $1, gender_id = $2, birth_year = $3, version = version + 1, updated_at = $4 \
             WHERE id = $5 AND version = $6",
            params![center, gender, birth_year, super::now(), id, expected_version],
        )
        .await?;
    if n == 0 {
        return Err(explain_version_miss(VersionProbe::Tx(&mut tx), "patient", id, "patient").await?);
    }
    tx.commit().await?;
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

/// Length limits of the identity's fields, in characters.
pub const NAME_MAX_CHARS: usize = 100;
pub const EXTERNAL_ID_MAX_CHARS: usize = 64;
pub const NOTES_MAX_CHARS: usize = 10_000;

fn check_identity(checks: &mut Checks, input: &PatientIdentityIn) {
    text::check_opt(checks, "/first_name", input.first_name.as_deref(), Kind::SingleLine, NAME_MAX_CHARS);
    text::check_opt(checks, "/last_name", input.last_name.as_deref(), Kind::SingleLine, NAME_MAX_CHARS);
    text::check_opt(checks, "/external_id", input.external_id.as_deref(), Kind::SingleLine, EXTERNAL_ID_MAX_CHARS);
    text::check_opt(checks, "/notes", input.notes.as_deref(), Kind::FreeText, NOTES_MAX_CHARS);
    check_date(checks, "/date_of_birth", input.date_of_birth, 0);
}

/// Creates the identity (no version expected) or replaces it (the current version expected). Returns
/// whether it was created.
pub async fn put_identity(
    db: &Db,
    patient_id: i64,
    expected_version: Option<i64>,
    input: &PatientIdentityIn,
) -> Result<(PatientIdentity, bool)> {
    let mut checks = Checks::default();
    check_identity(&mut checks, input);
    let mut tx = db.begin().await?;
    let Some(birth) = lock_birth(&mut tx, patient_id).await? else {
        return Err(ServiceError::not_found(format!("patient {patient_id}")));
    };
    if let Some(dob) = input.date_of_birth {
        if let Some(year) = birth.year
            && dob.year() != year
        {
            checks.add("/date_of_birth", format!("the patient's birth year is {year}"));
        }
        if let Some(first) = earliest_clinical_date(&mut tx, patient_id).await?
            && first < dob
        {
            checks
                .add("/date_of_birth", format!("the patient has an examination or intervention dated {first}, before this date of birth"));
        }
    }
    checks.finish()?;
    let now = super::now();
    let created = match expected_version {
        None => {
            let inserted = tx
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
            let n = tx
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
                    tx.fetch_optional("SELECT version FROM patient_identity WHERE patient_id = $1", params![patient_id]).await?;
                return Err(match current {
                    None => ServiceError::not_found(format!("identity of patient {patient_id}")),
                    Some(One(current)) => ServiceError::VersionMismatch { current },
                });
            }
            false
        }
    };
    tx.commit().await?;
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
            // A generated pseudonym would pass the rule for chosen ones, unless its body drew no digit.
            let mut checks = Checks::default();
            check_pseudonym(&mut checks, &p);
            assert_eq!(checks.is_empty(), p[2..].bytes().any(|b| b.is_ascii_digit()), "{p}");
        }
    }

    #[test]
    fn chosen_pseudonyms_are_normalised_and_must_look_like_codes() {
        assert_eq!(normalise_pseudonym(" dup-1 "), "DUP-1");
        for good in ["DUP-1", "P-12AB", "123", "A1-B2-C3"] {
            let mut checks = Checks::default();
            check_pseudonym(&mut checks, good);
            assert!(checks.is_empty(), "{good}");
        }
        for bad in ["MUSTERMANN", "ERIKA MUSTERMANN", "A1", "-A1", "A1-", "A--1", "MÜLLER1", "A_1", &"A1".repeat(33)] {
            let mut checks = Checks::default();
            check_pseudonym(&mut checks, bad);
            assert!(!checks.is_empty(), "{bad}");
        }
    }
}
