//! The registry's storage: one logical schema on two backends, chosen at runtime from the database URL.
//!
//! SQLite is the embedded default (a file under the data directory); PostgreSQL serves installations with
//! several hosts. Both get the same tables from their own migration directory (`migrations/sqlite`,
//! `migrations/postgres`), and [`schema`] describes those tables once for the code that walks them
//! generically (backup, knowledge-base loading); a test checks that description against both databases.
//!
//! Queries are written once in SQL both dialects accept (`$1` placeholders, `RETURNING`, `ON CONFLICT`) and
//! compiled for each backend by [`on_db!`](crate::on_db): the macro expands the same block once per pool
//! type, so the code is shared while sqlx still sees concrete types.

pub mod dynrow;
pub mod error;
pub mod exec;
pub mod schema;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};

pub use error::DbError;

/// The oldest PostgreSQL the migrations are written for (`GENERATED ... AS IDENTITY`, `jsonb`, `ON CONFLICT`).
const MIN_POSTGRES_VERSION: i32 = 13_00_00;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Self, DbError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Backend::Postgres)
        } else {
            Err(DbError::Config(format!("database URL must start with sqlite: or postgres: (got `{}`)", redact_url(url))))
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Connection settings that are not part of the URL.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    /// PostgreSQL password, read from a file; `None` for peer or trust authentication.
    pub password: Option<endoreg_common::secret::Secret>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self { max_connections: 16, acquire_timeout: Duration::from_secs(10), password: None }
    }
}

/// A pool of either backend. Cheap to clone.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same block against whichever pool `$db` holds; inside, `$pool` is a `&SqlitePool` or a `&PgPool`.
#[macro_export]
macro_rules! on_db {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite($pool) => $body,
            $crate::db::Db::Postgres($pool) => $body,
        }
    };
}

impl Db {
    /// Opens a pool for `url`. A SQLite file (and its directory) is created when missing; PostgreSQL must
    /// exist and be at least version 13.
    pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Db, DbError> {
        match Backend::from_url(url)? {
            Backend::Sqlite => {
                let opts = SqliteConnectOptions::from_str(url)
                    .map_err(|e| DbError::Config(format!("invalid SQLite URL `{url}`: {e}")))?
                    .create_if_missing(true)
                    .foreign_keys(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    // FULL: a committed transaction survives a power cut. Patient data is the reason this
                    // exists; the cost is on writes only.
                    .synchronous(SqliteSynchronous::Full)
                    .busy_timeout(Duration::from_secs(30));
                let in_memory = url.contains(":memory:") || url.contains("mode=memory");
                if !in_memory {
                    create_private_sqlite(opts.get_filename())?;
                }
                let pool = SqlitePoolOptions::new()
                    .max_connections(options.max_connections)
                    .acquire_timeout(options.acquire_timeout)
                    .connect_with(opts)
                    .await
                    .map_err(|e| DbError::Connect { url: redact_url(url), source: e })?;
                Ok(Db::Sqlite(pool))
            }
            Backend::Postgres => {
                let opts = PgConnectOptions::from_str(url)
                    .map_err(|e| DbError::Config(format!("invalid PostgreSQL URL `{}`: {e}", redact_url(url))))?
                    .application_name("endoreg-registry");
                let opts = match &options.password {
                    Some(p) => opts.password(p.expose()),
                    None => opts,
                };
                let pool = PgPoolOptions::new()
                    .max_connections(options.max_connections)
                    .acquire_timeout(options.acquire_timeout)
                    .connect_with(opts)
                    .await
                    .map_err(|e| DbError::Connect { url: redact_url(url), source: e })?;
                let version: i32 = sqlx::query_scalar("SELECT current_setting('server_version_num')::int").fetch_one(&pool).await?;
                if version < MIN_POSTGRES_VERSION {
                    return Err(DbError::Config(format!("PostgreSQL {version} is too old: endoreg needs 13 or newer")));
                }
                Ok(Db::Postgres(pool))
            }
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies pending migrations. Returns how many were applied.
    pub async fn migrate(&self) -> Result<usize, DbError> {
        let before = self.applied_migrations().await.unwrap_or(0);
        match self {
            Db::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await?,
            Db::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
        }
        Ok(self.applied_migrations().await?.saturating_sub(before))
    }

    /// The number of migrations this binary knows.
    pub fn known_migrations(&self) -> usize {
        match self {
            Db::Sqlite(_) => SQLITE_MIGRATIONS.iter().count(),
            Db::Postgres(_) => POSTGRES_MIGRATIONS.iter().count(),
        }
    }

    /// The number of migrations applied to the database (0 for a new database).
    pub async fn applied_migrations(&self) -> Result<usize, DbError> {
        let exists = on_db!(self, pool => {
            let q = match self.backend() {
                Backend::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
                Backend::Postgres => "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'",
            };
            sqlx::query_scalar::<_, i64>(q).fetch_one(pool).await?
        });
        if exists == 0 {
            return Ok(0);
        }
        let n: i64 = on_db!(self, pool => {
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success").fetch_one(pool).await?
        });
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Fails unless every migration this binary knows is applied: the server refuses to run on an
    /// unmigrated or newer-than-known schema rather than fail on the first query.
    pub async fn check_migrated(&self) -> Result<(), DbError> {
        let applied = self.applied_migrations().await?;
        let known = self.known_migrations();
        if applied < known {
            return Err(DbError::Config(format!("the database has {applied} of {known} migrations applied; run `endoreg migrate` first")));
        }
        if applied > known {
            return Err(DbError::Config(format!(
                "the database has {applied} migrations applied but this endoreg knows only {known}: it is newer than this binary"
            )));
        }
        Ok(())
    }

    /// Whether the database answers a trivial query (for `/readyz`).
    pub async fn ping(&self) -> Result<(), DbError> {
        on_db!(self, pool => { sqlx::query("SELECT 1").execute(pool).await?; });
        Ok(())
    }

    pub async fn close(&self) {
        on_db!(self, pool => pool.close().await)
    }
}

/// Creates a missing SQLite database as an empty file of mode 0600 (and its directory, 0700) before SQLite
/// opens it: SQLite would create it readable by everyone the umask allows, and gives its `-wal` and `-shm`
/// files the mode of the database. An existing database readable by others is made private, with a warning.
fn create_private_sqlite(path: &std::path::Path) -> Result<(), DbError> {
    let fail = |what: &str, e: std::io::Error| DbError::Config(format!("cannot create {what} {}: {e}", path.display()));
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        endoreg_common::process::create_private_dir(parent).map_err(|e| fail("the directory of", e))?;
    }
    let mut create = std::fs::OpenOptions::new();
    create.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut create, 0o600);
    match create.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            #[cfg(unix)]
            for file in [path.to_owned(), sidecar(path, "-wal"), sidecar(path, "-shm")] {
                use std::os::unix::fs::PermissionsExt;
                let Ok(meta) = std::fs::metadata(&file) else { continue };
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode & 0o700)) {
                        Ok(()) => {
                            log::warn!("{} was readable by other users (mode {mode:o}); it is now {:o}", file.display(), mode & 0o700)
                        }
                        Err(e) => log::warn!("{} is readable by other users (mode {mode:o}) and cannot be changed: {e}", file.display()),
                    }
                }
            }
            Ok(())
        }
        Err(e) => Err(fail("the database", e)),
    }
}

#[cfg(unix)]
fn sidecar(db: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

/// Beginning a transaction that will write. On SQLite it takes the write lock up front (`BEGIN IMMEDIATE`):
/// a deferred transaction that reads first and writes later can fail with SQLITE_BUSY instead of waiting.
pub trait BeginWrite {
    type Database: sqlx::Database;
    fn begin_write(&self) -> impl Future<Output = Result<Transaction<'static, Self::Database>, sqlx::Error>> + Send;
}

impl BeginWrite for SqlitePool {
    type Database = Sqlite;
    fn begin_write(&self) -> impl Future<Output = Result<Transaction<'static, Sqlite>, sqlx::Error>> + Send {
        self.begin_with("BEGIN IMMEDIATE")
    }
}

impl BeginWrite for PgPool {
    type Database = Postgres;
    fn begin_write(&self) -> impl Future<Output = Result<Transaction<'static, Postgres>, sqlx::Error>> + Send {
        self.begin()
    }
}

/// A database URL with any password replaced, for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            if userinfo.contains(':') { format!("{scheme}://{user}:***@{host}") } else { url.to_owned() }
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_appear_in_redacted_urls() {
        assert_eq!(redact_url("postgres://me:s3cret@db/endoreg"), "postgres://me:***@db/endoreg");
        assert_eq!(redact_url("postgres://me@db/endoreg"), "postgres://me@db/endoreg");
        assert_eq!(redact_url("sqlite://./x.db"), "sqlite://./x.db");
    }

    #[test]
    fn backend_is_chosen_from_the_url_scheme() {
        assert_eq!(Backend::from_url("sqlite://x.db").unwrap(), Backend::Sqlite);
        assert_eq!(Backend::from_url("postgresql:///e?host=/run/postgresql").unwrap(), Backend::Postgres);
        let err = Backend::from_url("mysql://u:pw@h/db").unwrap_err().to_string();
        assert!(err.contains("sqlite: or postgres:") && !err.contains("pw"), "{err}");
    }
}
