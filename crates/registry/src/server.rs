//! Running the registry: connect, check the schema, register provisioned tokens, listen, tell systemd we
//! are ready, stop gracefully on SIGTERM/SIGINT. Connections are served here rather than by
//! `axum::serve`, which has no header read timeout and no limit per client.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

use endoreg_common::access::Role;
use endoreg_common::problem::Problem;
use endoreg_common::secret::Secret;

use crate::config::{HttpConfig, RegistryConfig};
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
    serve_on(listener, app, &cfg.http, shutdown).await;
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    db.close().await;
    log::info!("registry stopped");
    Ok(())
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting and lets the requests in
/// progress finish. HTTP/1.1, which the registry's clients speak (TLS and HTTP/2 are a proxy's business).
/// A connection that does not complete a request's headers within `http.header_read_timeout_secs` is
/// closed; one client address holds at most `http.max_connections_per_client` connections.
pub async fn serve_on(listener: TcpListener, app: Router, http: &HttpConfig, shutdown: impl Future<Output = ()>) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(Duration::from_secs(http.header_read_timeout_secs));
    let clients = Clients::new(http.max_connections_per_client);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = clients.admit(peer.ip()) else {
            refuse(&stream, &clients);
            continue;
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| app.clone().oneshot(req.map(Body::new)));
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                log::debug!("connection from {peer} ended: {e}");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// A failed accept: a client that gave up before it was accepted is nothing; anything else (out of file
/// descriptors, say) is logged and waited out rather than retried in a busy loop.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(e.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        return;
    }
    log::error!("cannot accept a connection: {e}; trying again in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Answers a connection over its client's limit with 429 (if the socket takes it at once) and closes it.
fn refuse(stream: &TcpStream, clients: &Clients) {
    let problem = Problem::new("too_many_connections", "Too many connections", 429).with_detail(format!(
        "this address already holds {} connections to the registry (http.max_connections_per_client); reuse them or close some",
        clients.limit
    ));
    let body = serde_json::to_string(&problem).unwrap_or_default();
    let response = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: {}\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        endoreg_common::problem::CONTENT_TYPE,
        body.len()
    );
    let _ = stream.try_write(response.as_bytes());
    clients.warn_refused();
}

/// Open connections per client address. An IPv6 client counts by its /64 network, which one host
/// usually has to itself.
struct Clients {
    limit: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    last_warning: Mutex<Option<Instant>>,
}

/// One admitted connection; dropping it frees its place.
struct Slot {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    client: IpAddr,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The counts stay consistent even if a holder panicked: each change is one statement.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Clients {
    fn new(limit: usize) -> Self {
        Clients { limit, open: Arc::default(), last_warning: Mutex::new(None) }
    }

    fn admit(&self, addr: IpAddr) -> Option<Slot> {
        let client = match addr {
            // An IPv4 client of a dual-stack socket is that IPv4 address.
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
            },
            v4 => v4,
        };
        let mut open = locked(&self.open);
        let n = open.entry(client).or_insert(0);
        if *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(Slot { open: self.open.clone(), client })
    }

    /// At most one warning a minute: a client hammering the limit must not flood the journal.
    fn warn_refused(&self) {
        let mut last = locked(&self.last_warning);
        if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
            *last = Some(Instant::now());
            log::warn!(
                "refused a connection: its client address holds {} already (http.max_connections_per_client; behind a proxy, raise it)",
                self.limit
            );
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = locked(&self.open);
        if let Some(n) = open.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.client);
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_counted_by_address_an_ipv6_client_by_its_network() {
        let clients = Clients::new(1);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let first = clients.admit(ip("2001:db8::1")).unwrap();
        assert!(clients.admit(ip("2001:db8::ffff:2")).is_none(), "the same /64");
        let _other = clients.admit(ip("2001:db8:0:1::1")).unwrap();
        let v4 = clients.admit(ip("192.0.2.7")).unwrap();
        assert!(clients.admit(ip("::ffff:192.0.2.7")).is_none(), "the same IPv4 client through a dual-stack socket");
        drop(first);
        drop(v4);
        assert!(clients.admit(ip("2001:db8::2")).is_some());
        assert!(clients.admit(ip("::ffff:192.0.2.7")).is_some());
        assert_eq!(locked(&clients.open).len(), 1, "places are freed, and empty entries removed");
    }
}
