//! Storage errors, classified so the service layer can tell the client's fault (a conflict, a dangling
//! reference) from ours.

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{0}")]
    Config(String),
    #[error("cannot connect to the database at {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
}

/// What a failed statement means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    Unique,
    ForeignKey,
    Check,
    NotNull,
}

impl DbError {
    /// The constraint a statement violated, if that is why it failed.
    pub fn violation(&self) -> Option<(Violation, Option<String>)> {
        let DbError::Sqlx(sqlx::Error::Database(db)) = self else {
            return None;
        };
        let kind = match db.kind() {
            sqlx::error::ErrorKind::UniqueViolation => Violation::Unique,
            sqlx::error::ErrorKind::ForeignKeyViolation => Violation::ForeignKey,
            sqlx::error::ErrorKind::CheckViolation => Violation::Check,
            sqlx::error::ErrorKind::NotNullViolation => Violation::NotNull,
            _ => return None,
        };
        Some((kind, db.constraint().map(str::to_owned)))
    }

    /// A transaction that lost a race (PostgreSQL serialization failure or deadlock, SQLite busy).
    pub fn is_contention(&self) -> bool {
        let DbError::Sqlx(sqlx::Error::Database(db)) = self else {
            return false;
        };
        matches!(db.code().as_deref(), Some("40001") | Some("40P01") | Some("5") | Some("517"))
    }
}
