//! Service errors: what went wrong, in terms the caller can act on. The HTTP layer maps each variant to
//! one status; the CLI prints the message.

use endoreg_common::problem::FieldProblem;

use crate::db::DbError;
use crate::db::error::Violation;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{what} not found")]
    NotFound { what: String },
    /// Input that names things that do not exist or breaks a rule; one entry per problem.
    #[error("invalid input: {}", .0.iter().map(|p| format!("{}: {}", p.pointer, p.detail)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldProblem>),
    /// The request conflicts with the stored state (a duplicate, a record still in use, a forbidden state
    /// change).
    #[error("{0}")]
    Conflict(String),
    /// The record changed since the client read it.
    #[error("the record was changed meanwhile; it is now at version {current}")]
    VersionMismatch { current: i64 },
    #[error(transparent)]
    Db(DbError),
}

impl ServiceError {
    pub fn not_found(what: impl Into<String>) -> Self {
        ServiceError::NotFound { what: what.into() }
    }

    pub fn invalid(pointer: &str, detail: impl Into<String>) -> Self {
        ServiceError::Invalid(vec![FieldProblem { pointer: pointer.to_owned(), detail: detail.into() }])
    }

    /// Classifies a storage error. The services check their rules before writing, so a constraint
    /// violation here means a race with another writer or a rule only the database knows.
    pub fn from_db(e: DbError) -> Self {
        if e.is_contention() {
            return ServiceError::Conflict("the database was busy with a conflicting change; retry the request".into());
        }
        match e.violation() {
            Some((Violation::Unique, c)) => ServiceError::Conflict(format!(
                "a record with the same unique value already exists{}",
                c.map(|c| format!(" ({c})")).unwrap_or_default()
            )),
            Some((Violation::ForeignKey, _)) => ServiceError::Conflict(
                "the change would leave a reference to a record that does not exist, or remove a record that is still referenced".into(),
            ),
            Some((Violation::Check, c)) => ServiceError::invalid(
                "",
                format!("a value is out of its allowed range{}", c.map(|c| format!(" ({c})")).unwrap_or_default()),
            ),
            Some((Violation::NotNull, _)) => ServiceError::invalid("", "a required value is missing"),
            None => ServiceError::Db(e),
        }
    }
}

/// Collects input problems so that a request hears about all of them at once.
#[derive(Debug, Default)]
pub struct Checks {
    problems: Vec<FieldProblem>,
}

impl Checks {
    pub fn add(&mut self, pointer: &str, detail: impl Into<String>) {
        self.problems.push(FieldProblem { pointer: pointer.to_owned(), detail: detail.into() });
    }

    pub fn len(&self) -> usize {
        self.problems.len()
    }

    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn finish(self) -> Result<(), ServiceError> {
        if self.problems.is_empty() { Ok(()) } else { Err(ServiceError::Invalid(self.problems)) }
    }
}
