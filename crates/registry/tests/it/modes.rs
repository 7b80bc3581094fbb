//! Files holding patient data are private to the registry's user, started by systemd or not: the data
//! directory 0700, the SQLite database and its `-wal`/`-shm` 0600, the key of raw uploads 0600, the local
//! storage 0700, and whatever the binary creates beyond these (its umask). The tests start from nothing
//! and create everything through the normal paths; they show a difference where the environment's umask
//! lets new files be read by others (the usual 022).

use std::io::{BufRead, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use endoreg_common::access::Role;
use endoreg_common::api::TokenCreate;
use endoreg_registry::config::RegistryConfig;
use endoreg_registry::db::Db;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).permissions().mode() & 0o777
}

fn sidecar(db: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", db.display()))
}

/// A migrated registry in `data_dir`, created from nothing the way `endoreg migrate` creates it.
async fn fresh(data_dir: &Path) -> (RegistryConfig, Db) {
    let config = RegistryConfig { data_dir: data_dir.to_owned(), ..RegistryConfig::default() };
    let db = Db::connect(&config.database_url(), &config.connect_options().unwrap()).await.unwrap();
    db.migrate().await.unwrap();
    (config, db)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_keys_and_storage_are_created_private() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("srv").join("endoreg");
    let (config, db) = fresh(&data).await;
    // Opening the application creates the key of raw uploads and the local storage.
    let _app = endoreg_registry::http::router(db.clone(), &config).unwrap();
    let database = data.join("registry.db");
    for dir in [root.path().join("srv"), data.clone(), data.join("keys"), data.join("storage")] {
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    }
    for file in [database.clone(), sidecar(&database, "-wal"), sidecar(&database, "-shm"), config.local_key_file()] {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_readable_by_others_is_made_private() {
    let root = tempfile::tempdir().unwrap();
    let (config, db) = fresh(root.path()).await;
    db.close().await;
    let database = root.path().join("registry.db");
    std::fs::set_permissions(&database, std::fs::Permissions::from_mode(0o644)).unwrap();
    let db = Db::connect(&config.database_url(), &config.connect_options().unwrap()).await.unwrap();
    assert_eq!(mode(&database), 0o600);
    db.close().await;
}

/// A child process, killed if the test ends before it does.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `endoreg-registry` binary, started from a fresh data directory, stores an upload: every file and
/// directory it made is private, including the objects the storage library writes with default modes
/// (the binary's umask); SIGTERM stops it cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_binary_keeps_what_it_writes_private() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let (_, db) = fresh(&data).await;
    endoreg_registry::kb::load(&db, &endoreg_registry::kb::ours::Files::builtin()).await.unwrap();
    let token = endoreg_registry::service::tokens::create(
        &db,
        &TokenCreate { name: "uploader".into(), role: Role::DataManager, expires_in_days: None },
    )
    .await
    .unwrap()
    .token;
    db.close().await;

    let mut child = Running(
        std::process::Command::new(env!("CARGO_BIN_EXE_endoreg-registry"))
            .env("ENDOREG_DATA_DIR", &data)
            .env("ENDOREG_HTTP__LISTEN", "127.0.0.1:0")
            .env("ENDOREG_LOG", "info")
            .env_remove("JOURNAL_STREAM")
            .env_remove("NOTIFY_SOCKET")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut log = std::io::BufReader::new(child.0.stderr.take().unwrap());
    let addr = loop {
        let mut line = String::new();
        assert!(log.read_line(&mut line).unwrap() > 0, "the registry exited before it listened");
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };

    let body = [
        b"--XB\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n{\"center\": \"demo_center\"}\r\n".as_slice(),
        b"--XB\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n\r\n--XB--\r\n",
    ]
    .concat();
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        conn,
        "POST /api/v1/uploads HTTP/1.1\r\nHost: registry\r\nAuthorization: Bearer {token}\r\nContent-Type: multipart/form-data; boundary=XB\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    conn.write_all(&body).unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");

    let mut stack = vec![data.clone()];
    let mut files = 0;
    while let Some(dir) = stack.pop() {
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                assert_eq!(mode(&path), 0o600, "{}", path.display());
                files += 1;
            }
        }
    }
    // The database, its -wal and -shm, the key and the uploaded object at least.
    assert!(files >= 5, "{files} files");

    let stopped = std::process::Command::new("kill").arg("-TERM").arg(child.0.id().to_string()).status().unwrap();
    assert!(stopped.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "the registry did not stop within 30 s of SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut rest = String::new();
    log.read_to_string(&mut rest).unwrap();
    assert!(status.success(), "{status}: {rest}");
    assert!(rest.contains("registry stopped"), "{rest}");
}
