//! A throw-away PostgreSQL cluster for the tests, started from the machine's PostgreSQL binaries: a
//! temporary data directory, a non-root user (initdb refuses root), a random port on loopback. One
//! cluster per test process; each test gets its own database. A watchdog process stops the cluster and
//! removes its directory when the test process exits.
//!
//! `ENDOREG_TEST_POSTGRES_URL` (a superuser URL) uses an existing server instead. The binaries (initdb,
//! pg_ctl) are taken from `ENDOREG_TEST_PG_BIN`, else from `PATH` (where nixpkgs' postgresql is in the
//! sandbox of `nix flake check`, and Homebrew's or a distribution's that installs them there), else from
//! Debian's newest `/usr/lib/postgresql/<version>/bin`, which is not on `PATH`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tokio::sync::OnceCell;

static CLUSTER: OnceCell<String> = OnceCell::const_new();

fn bin_dir() -> PathBuf {
    find_bin_dir(std::env::var_os("ENDOREG_TEST_PG_BIN"), std::env::var_os("PATH"), Path::new("/usr/lib/postgresql"))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The directory holding initdb and pg_ctl: `pg_bin` (ENDOREG_TEST_PG_BIN), else the first directory of
/// `path` (PATH) that has both, else the newest `<debian>/<version>/bin`.
fn find_bin_dir(pg_bin: Option<OsString>, path: Option<OsString>, debian: &Path) -> Result<PathBuf, String> {
    fn executable(p: &Path) -> bool {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    let has_tools = |dir: &Path| ["initdb", "pg_ctl"].iter().all(|t| executable(&dir.join(t)));

    if let Some(dir) = pg_bin.filter(|d| !d.is_empty()).map(PathBuf::from) {
        return if has_tools(&dir) {
            Ok(dir)
        } else {
            Err(format!("ENDOREG_TEST_PG_BIN={} holds no executable initdb and pg_ctl", dir.display()))
        };
    }
    if let Some(dir) = path.as_deref().into_iter().flat_map(std::env::split_paths).find(|d| has_tools(d)) {
        return Ok(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(debian)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, p): &(u32, PathBuf)| has_tools(p))
        .collect();
    versions.sort();
    versions.pop().map(|(_, p)| p).ok_or_else(|| {
        format!(
            "no PostgreSQL binaries: ENDOREG_TEST_PG_BIN is not set, PATH has no initdb and pg_ctl, and {} has no <version>/bin with them; install PostgreSQL (Debian: apt-get install postgresql) or set ENDOREG_TEST_PG_BIN",
            debian.display()
        )
    })
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

/// The user the cluster runs as when the tests run as root.
fn service_user() -> String {
    for user in ["postgres", "nobody"] {
        if Command::new("id").arg("-u").arg(user).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success()) {
            return user.to_owned();
        }
    }
    panic!("running as root and neither user `postgres` nor `nobody` exists to run PostgreSQL")
}

fn run_as(user: Option<&str>, program: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = match user {
        Some(u) => {
            let mut c = Command::new("runuser");
            c.arg("-u").arg(u).arg("--").arg(program);
            c
        }
        None => Command::new(program),
    };
    cmd.args(args).stdin(Stdio::null());
    cmd.output().unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()))
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

fn start_cluster() -> String {
    let bin = bin_dir();
    let root = is_root();
    let user = root.then(service_user);
    let dir = tempfile::Builder::new().prefix("endoreg-test-pg-").tempdir().expect("temp dir").keep();
    if let Some(u) = &user {
        let ok = Command::new("chown").arg("-R").arg(u).arg(&dir).status().is_ok_and(|s| s.success());
        assert!(ok, "cannot hand {} to {u}", dir.display());
    }
    let data = dir.join("data");
    let data_s = data.to_str().expect("utf-8 path").to_owned();
    let out = run_as(
        user.as_deref(),
        &bin.join("initdb"),
        &["-D", &data_s, "-U", "endoreg", "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"],
    );
    assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
    let port = free_port();
    let opts = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
        dir.display()
    );
    let log = dir.join("postgres.log");
    let out =
        run_as(user.as_deref(), &bin.join("pg_ctl"), &["-D", &data_s, "-o", &opts, "-l", log.to_str().expect("utf-8"), "-w", "start"]);
    assert!(
        out.status.success(),
        "pg_ctl start failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    // Stop and remove the cluster once this test process is gone.
    let stop = match &user {
        Some(u) => format!("runuser -u {u} -- {} -D {data_s} -m immediate stop", bin.join("pg_ctl").display()),
        None => format!("{} -D {data_s} -m immediate stop", bin.join("pg_ctl").display()),
    };
    let script =
        format!("while kill -0 {} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf {}", std::process::id(), dir.display());
    let mut watchdog = Command::new("sh");
    watchdog.arg("-c").arg(script).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    std::os::unix::process::CommandExt::process_group(&mut watchdog, 0);
    // Deliberately not waited for: it must outlive this process to clean up after it.
    #[allow(clippy::zombie_processes)]
    watchdog.spawn().expect("start the cluster watchdog");

    format!("postgres://endoreg@127.0.0.1:{port}/postgres")
}

/// A superuser URL of the test cluster.
pub async fn server_url() -> String {
    CLUSTER
        .get_or_init(|| async {
            match std::env::var("ENDOREG_TEST_POSTGRES_URL") {
                Ok(url) => url,
                Err(_) => tokio::task::spawn_blocking(start_cluster).await.expect("cluster start"),
            }
        })
        .await
        .clone()
}

/// A URL of a new, empty database on the test cluster.
pub async fn new_database() -> String {
    let server = server_url().await;
    let name = format!("t_{}", uuid_like());
    let admin = sqlx::PgPool::connect(&server).await.expect("connect to the test cluster");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&admin).await.expect("create test database");
    admin.close().await;
    match server.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => panic!("unexpected server URL {server}"),
    }
}

fn uuid_like() -> String {
    use rand::Rng;
    format!("{:016x}", rand::rng().random::<u64>())
}

// (helpers inside the test: the benches include this file too, where a #[test] function is not compiled)
#[cfg(test)]
mod tests {
    #[test]
    fn postgresql_binaries_are_found_on_path_as_in_the_nix_sandbox() {
        use super::find_bin_dir;
        use std::ffi::OsString;
        use std::path::Path;

        /// A directory with executable (empty) initdb and pg_ctl.
        fn tools(dir: &Path) {
            use std::os::unix::fs::PermissionsExt;
            std::fs::create_dir_all(dir).unwrap();
            for t in ["initdb", "pg_ctl"] {
                std::fs::write(dir.join(t), "").unwrap();
                std::fs::set_permissions(dir.join(t), std::fs::Permissions::from_mode(0o755)).unwrap();
            }
        }
        fn path_of(dirs: &[&Path]) -> Option<OsString> {
            Some(std::env::join_paths(dirs).unwrap())
        }

        let tmp = tempfile::tempdir().unwrap();
        let (empty, nix, debian) = (tmp.path().join("empty"), tmp.path().join("nix/bin"), tmp.path().join("debian"));
        std::fs::create_dir_all(&empty).unwrap();
        tools(&nix);
        tools(&debian.join("15/bin"));
        tools(&debian.join("16/bin"));
        let none = tmp.path().join("none");

        // the sandbox of `nix flake check`: postgresql on PATH, nothing under /usr/lib/postgresql
        assert_eq!(find_bin_dir(None, path_of(&[&empty, &nix]), &none).unwrap(), nix);
        // PATH before Debian's directory; the variable before both
        assert_eq!(find_bin_dir(None, path_of(&[&nix]), &debian).unwrap(), nix);
        assert_eq!(find_bin_dir(Some(debian.join("15/bin").into()), path_of(&[&nix]), &debian).unwrap(), debian.join("15/bin"));
        // Debian: not on PATH, the newest version
        assert_eq!(find_bin_dir(None, path_of(&[&empty]), &debian).unwrap(), debian.join("16/bin"));
        assert_eq!(find_bin_dir(Some(OsString::new()), None, &debian).unwrap(), debian.join("16/bin"));

        // a variable naming the wrong directory is an error, not a silent fallback
        let err = find_bin_dir(Some(empty.clone().into()), path_of(&[&nix]), &debian).unwrap_err();
        assert!(err.contains("ENDOREG_TEST_PG_BIN") && err.contains("initdb"), "{err}");
        // nothing anywhere: the message names every place looked at
        let err = find_bin_dir(None, path_of(&[&empty]), &none).unwrap_err();
        assert!(err.contains("ENDOREG_TEST_PG_BIN") && err.contains("PATH") && err.contains(&none.display().to_string()), "{err}");
    }
}
