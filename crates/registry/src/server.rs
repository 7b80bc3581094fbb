//! Running the registry: connect, check the schema, register provisioned tokens, listen, tell systemd we
//! are ready, stop gracefully on SIGTERM/SIGINT.

use std::future::Future;
use std::net::SocketAddr;

use endoreg_common::access::Role;
use endoreg_common::secret::Secret;

use crate::config::RegistryConfig;
use crate::db::{Db, DbError, redact_url};
use crate::service::{ServiceError, tokens};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] endoreg_common::config::ConfigError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("cannot register token `{name}` from {file}: {reason}")]
    Token { name: String, file: String, reason: String },
    #[error("cannot listen on {addr}: {source} (is another process using the port? set http.listen / ENDOREG_HTTP__LISTEN)")]
    Bind { addr: String, source: std::io::Error },
    #[error("the server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Connects and checks that the schema is current.
pub async fn open_database(cfg: &RegistryConfig) -> Result<Db, ServeError> {
    let db = Db::connect(&cfg.database_url(), &cfg.connect_options()?).await?;
    db.check_migrated().await?;
    Ok(db)
}

/// Registers the tokens the configuration provisions from files (deployment secrets).
pub async fn register_token_files(db: &Db, cfg: &RegistryConfig) -> Result<usize, ServeError> {
    for t in &cfg.auth.token_files {
        let fail = |reason: String| ServeError::Token { name: t.name.clone(), file: t.file.display().to_string(), reason };
        let role: Role = t.role.parse().map_err(|e: endoreg_common::access::UnknownRole| fail(e.to_string()))?;
        let secret = Secret::read(&t.file).map_err(|e| fail(e.to_string()))?;
        tokens::register(db, &t.name, role, secret.expose()).await.map_err(|e: ServiceError| fail(e.to_string()))?;
    }
    Ok(cfg.auth.token_files.len())
}

/// Serves until `shutdown` resolves.
pub async fn serve(cfg: &RegistryConfig, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), ServeError> {
    let db = open_database(cfg).await?;
    let provisioned = register_token_files(&db, cfg).await?;
    let listener = tokio::net::TcpListener::bind(&cfg.http.listen)
        .await
        .map_err(|source| ServeError::Bind { addr: cfg.http.listen.clone(), source })?;
    let addr: SocketAddr = listener.local_addr()?;
    let app = crate::http::router(db.clone(), cfg)?;
    log::info!(
        "registry listening on http://{addr} (database {}: {}; {provisioned} provisioned token(s))",
        db.backend().as_str(),
        redact_url(&cfg.database_url())
    );
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready, sd_notify::NotifyState::Status(&format!("listening on {addr}"))]);
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await?;
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    db.close().await;
    log::info!("registry stopped");
    Ok(())
}

/// Resolves on SIGTERM (systemd stop) or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    log::info!("shutdown requested");
}
