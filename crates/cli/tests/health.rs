//! `endoreg health` against a real registry (the built `endoreg serve` on a temporary SQLite database, and
//! an in-process one on an unmigrated database), with stand-ins for `systemctl` and `nvidia-smi` so that the
//! answers of a systemd host with a GPU can be tested anywhere.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test reports failure

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// `endoreg health ARGS` with PATH = `path` (the stand-ins first).
fn health(path: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_endoreg")).arg("health").args(args).env("PATH", path).env_remove("ENDOREG_CONFIG").output().unwrap()
}

fn endoreg(data: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_endoreg"))
        .args(args)
        .env("ENDOREG_DATA_DIR", data)
        .env_remove("ENDOREG_DATABASE_URL")
        .env_remove("ENDOREG_CONFIG")
        .output()
        .unwrap();
    assert!(out.status.success(), "endoreg {args:?}: {}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// A directory with executable shell scripts standing in for system tools.
fn stand_ins(scripts: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in scripts {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        let mut perms = std::fs::metadata(&path).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&path, perms).unwrap();
    }
    dir
}

/// systemctl of a host where endoreg-registry runs, endoreg-media-1 failed, and no other unit exists.
const SYSTEMCTL: &str = r#"for a; do unit=$a; done
case "$1" in
  is-active) case "$unit" in endoreg-registry) echo active; exit 0;; endoreg-media-1) echo failed; exit 3;; *) echo inactive; exit 4;; esac;;
  show) case "$unit" in endoreg-registry|endoreg-media-1) echo loaded;; *) echo not-found;; esac;;
esac
exit 1"#;

const NVIDIA_SMI: &str = r#"echo "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-00000000-1111-2222-3333-444444444444)""#;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(data: &Path, port: u16) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_endoreg"))
        .arg("serve")
        .env("ENDOREG_DATA_DIR", data)
        .env("ENDOREG_HTTP__LISTEN", format!("127.0.0.1:{port}"))
        .env_remove("ENDOREG_DATABASE_URL")
        .env_remove("ENDOREG_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(60), "the registry did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
    Server(child)
}

#[test]
fn a_healthy_host_passes_and_each_failure_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    endoreg(&data, &["migrate"]);
    let token = endoreg(&data, &["token", "create", "--role", "researcher", "--name", "health"]);
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, token).unwrap();
    let wrong_token = dir.path().join("wrong-token");
    std::fs::write(&wrong_token, "endoreg_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n").unwrap();
    let port = free_port();
    let _server = serve(&data, port);
    let url = format!("http://127.0.0.1:{port}");
    let tools = stand_ins(&[("systemctl", SYSTEMCTL), ("nvidia-smi", NVIDIA_SMI)]);
    let path = format!("{}:/usr/bin:/bin", tools.path().display());
    let token_file = token_file.to_str().unwrap();

    let out = health(&path, &["--url", &url, "--token-file", token_file, "--unit", "endoreg-registry", "--gpu"]);
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    assert!(report.contains("unit endoreg-registry") && report.contains("active"), "{report}");
    assert!(report.contains("ready: database sqlite"), "{report}");
    assert!(report.contains("1 GPU(s): GPU 0: NVIDIA H100 80GB HBM3"), "{report}");
    assert!(!report.contains("FAIL"), "{report}");

    let out = health(&path, &["--url", &url, "--token-file", token_file, "--unit", "endoreg-registry", "--gpu", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ok"], true);
    let checks: Vec<&str> = json["checks"].as_array().unwrap().iter().map(|c| c["check"].as_str().unwrap()).collect();
    assert_eq!(checks, ["unit endoreg-registry", "registry ready", "registry token", "gpu"]);

    // a failed unit, an unknown unit, a refused token: each named, and the exit status says so
    let out = health(
        &path,
        &["--url", &url, "--token-file", wrong_token.to_str().unwrap(), "--unit", "endoreg-media-1", "--unit", "endoreg-nosuch"],
    );
    let report = text(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(report.lines().any(|l| l.starts_with("unit endoreg-media-1") && l.contains("FAIL") && l.contains("failed")), "{report}");
    assert!(report.lines().any(|l| l.starts_with("unit endoreg-nosuch") && l.contains("no such unit (not-found)")), "{report}");
    assert!(report.lines().any(|l| l.starts_with("registry ready") && l.contains("ok")), "{report}");
    assert!(report.contains("is refused (401)"), "{report}");
    assert!(report.contains("health: 3 of 4 check(s) failed"), "{report}");
    assert!(!report.contains("endoreg_AAAA"), "the token was printed: {report}");
}

#[test]
fn health_waits_for_a_registry_that_is_still_starting() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    endoreg(&data, &["migrate"]);
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let probe = Command::new(env!("CARGO_BIN_EXE_endoreg"))
        .args(["health", "--url", &url, "--wait", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let _server = serve(&data, port);
    let out = probe.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("ready: database sqlite"), "{}", text(&out));
}

#[test]
fn no_registry_no_systemctl_no_gpu() {
    let tools = stand_ins(&[]);
    let bare = tools.path().to_str().unwrap();
    let url = format!("http://127.0.0.1:{}", free_port());
    let out = health(bare, &["--url", &url, "--unit", "endoreg-registry", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ok"], false);
    let detail = |i: usize| json["checks"][i]["detail"].as_str().unwrap().to_owned();
    assert!(detail(0).contains("systemctl is not available"), "{json}");
    assert!(detail(1).contains("cannot connect") && detail(1).contains("/readyz"), "{json}");

    // systemctl in a container or chroot, where systemd does not run
    let no_systemd = stand_ins(&[("systemctl", "echo 'System has not been booted with systemd as init system (PID 1).' >&2; exit 1")]);
    let out = health(no_systemd.path().to_str().unwrap(), &["--unit", "endoreg-registry"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("systemctl is unavailable here (System has not been booted with systemd"), "{}", text(&out));

    if !Path::new("/dev/nvidia0").exists() {
        let out = health(bare, &["--gpu"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(text(&out).contains("no NVIDIA GPU"), "{}", text(&out));
    }
    let failing_smi = stand_ins(&[("nvidia-smi", "echo 'Failed to initialize NVML: Driver/library version mismatch'; exit 18")]);
    let out = health(failing_smi.path().to_str().unwrap(), &["--gpu"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("Driver/library version mismatch"), "{}", text(&out));

    // nothing to check is a usage error
    let out = health(bare, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--url") && text(&out).contains("--gpu"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmigrated_database_is_not_ready() {
    use endoreg_registry::config::RegistryConfig;
    use endoreg_registry::db::Db;

    // The registry refuses to start on an unmigrated database, so a not-ready one is served in process: the
    // state of a host whose migrations did not run (or whose database was replaced under it).
    let dir = tempfile::tempdir().unwrap();
    let cfg = RegistryConfig { data_dir: dir.path().to_owned(), ..RegistryConfig::default() };
    let db = Db::connect(&cfg.database_url(), &cfg.connect_options().unwrap()).await.unwrap();
    let app = endoreg_registry::http::router(db, &cfg).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let out = tokio::task::spawn_blocking(move || health("/usr/bin:/bin", &["--url", &url])).await.unwrap();
    server.abort();
    let report = text(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.lines().any(|l| l.starts_with("registry ready") && l.contains("FAIL") && l.contains("not ready (503 Service Unavailable)")),
        "{report}"
    );
    // The reason comes from the registry's readiness document.
    assert!(report.contains("the database is not migrated (endoreg migrate); database sqlite, 0 of"), "{report}");
}
