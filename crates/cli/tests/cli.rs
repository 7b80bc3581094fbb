//! The `endoreg` binary end to end, as an operator uses it: each test runs the real binary against a
//! fresh SQLite data directory.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test or benchmark reports failure

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn endoreg(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_endoreg"))
        .args(args)
        .env("ENDOREG_DATA_DIR", data)
        .env_remove("ENDOREG_DATABASE_URL")
        .env_remove("ENDOREG_CONFIG")
        .output()
        .expect("run endoreg")
}

fn ok(data: &Path, args: &[&str]) -> String {
    let out = endoreg(data, args);
    assert!(
        out.status.success(),
        "endoreg {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// EndoregDB's base data: `$ENDOREG_BASE_DATA` (`.ci/setup` sets it), else the shared folder beside the
/// checkout.
fn base_data() -> std::path::PathBuf {
    let p = std::env::var("ENDOREG_BASE_DATA")
        .map(Into::into)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/endoreg-base-data"));
    assert!(p.is_dir(), "no EndoregDB base data at {}: `source .ci/setup` fetches it and sets ENDOREG_BASE_DATA", p.display());
    p
}

/// What the independent reference script established for that tree.
fn expected() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../registry/tests/data/endoreg-v0.7.0-expected.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn import_endoreg_counts_what_it_wrote_names_its_problems_and_fails_only_when_strict() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(&data, &["migrate"]);
    let tree = base_data();
    let tree = tree.to_str().unwrap();
    let expected = expected();
    let problems = expected["problems"].as_array().unwrap().len();
    assert!(problems > 0);

    // --strict: the report, nothing written, exit status 1; the summary says why.
    let out = endoreg(&data, &["kb", "import-endoreg", tree, "--json", "--strict"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let refused: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((&refused["outcome"], &refused["written"]), (&serde_json::json!("refused"), &serde_json::Value::Null));
    assert_eq!(refused["problems"], expected["problems"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refused (--strict): nothing written") && stderr.contains(&format!("{problems} problem(s)")), "{stderr}");

    // Without it: the sound rest imported, exit status 0, and the summary names the count and --strict.
    let text = ok(&data, &["kb", "import-endoreg", tree]);
    let summary: Vec<&str> = text.lines().rev().take(2).collect();
    assert!(summary[1].starts_with("imported: ") && summary[1].contains(" created, 0 updated, 0 unchanged"), "{text}");
    assert!(summary[0].starts_with(&format!("{problems} problem(s), listed above")) && summary[0].contains("--strict"), "{text}");
    let meta: Vec<&str> = text.lines().find(|l| l.starts_with("ai_model_meta ")).unwrap().split_whitespace().collect();
    assert_eq!(meta, ["ai_model_meta", "1", "1", "0", "0"], "{text}");

    // --json: what was written, per kind and in total; a second import finds everything as it is.
    let again: serde_json::Value = serde_json::from_str(&ok(&data, &["kb", "import-endoreg", tree, "--json"])).unwrap();
    let written = &again["written"];
    let created: u64 = expected["created"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(written["total"], serde_json::json!({"created": 0, "updated": 0, "unchanged": created}), "{written}");
    assert_eq!((&written["links"], &written["regions"]), (&serde_json::json!(0), &serde_json::json!(0)));
    assert_eq!(written["kinds"]["ai_model_version"], serde_json::json!({"created": 0, "updated": 0, "unchanged": 1}));
}

#[test]
fn an_operator_session_from_migrate_to_restore() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Nothing works before migrate, and the error says what to do.
    let out = endoreg(&data, &["kb", "load"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("endoreg migrate"), "{}", String::from_utf8_lossy(&out.stderr));

    // every migration the registry ships, however many there are by now
    let known = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../registry/migrations/sqlite")).unwrap().count();
    assert!(ok(&data, &["migrate"]).contains(&format!("{known} migration(s) applied")));
    assert!(ok(&data, &["migrate"]).contains("0 migration(s) applied"));
    assert!(ok(&data, &["kb", "load"]).contains("knowledge base loaded"));

    let json = ok(&data, &["kb", "import-endoreg", base_data().to_str().unwrap(), "--json"]);
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let expected = expected();
    assert_eq!((&report["counts"], &report["problems"]), (&expected["counts"], &expected["problems"]));
    assert_eq!(report["outcome"], "imported");

    let token = ok(&data, &["token", "create", "--role", "researcher", "--name", "analysis"]);
    assert!(token.trim().starts_with("endoreg_"));
    let list = ok(&data, &["token", "list"]);
    assert!(list.contains("researcher") && list.contains("analysis") && !list.contains(token.trim()), "{list}");
    assert!(ok(&data, &["token", "revoke", "1"]).contains("revoked"));
    let out = endoreg(&data, &["token", "create", "--role", "superuser"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("admin, data_manager, annotator, researcher, service"));
    // A lifetime beyond what a date holds is refused by name, not a crash.
    let out = endoreg(&data, &["token", "create", "--role", "researcher", "--expires-in-days", "100000000"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("/expires_in_days: must be between 1 and 3650") && !err.contains("panicked"), "{err}");
    assert!(!ok(&data, &["token", "list"]).contains("cli"), "nothing was created");

    let classes = ok(&data, &["query", "classifications"]);
    assert!(classes.contains("paris") && classes.contains("paris_0_is"), "{classes}");
    let classes: serde_json::Value = serde_json::from_str(&ok(&data, &["query", "classifications", "--json"])).unwrap();
    assert!(classes.as_array().unwrap().iter().any(|c| c["name"] == "nice"));
    let expected = ok(&data, &["query", "expected-interventions", "screening_colonoscopy"]);
    assert!(expected.contains("cold_snare_polypectomy"), "{expected}");
    let out = endoreg(&data, &["query", "patient-examinations", "P-NOBODY"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("no patient"));

    let backup = dir.path().join("backup.jsonl.gz");
    assert!(ok(&data, &["export", backup.to_str().unwrap()]).contains("exported"));
    let restored = dir.path().join("restored");
    ok(&restored, &["migrate"]);
    assert!(ok(&restored, &["import", backup.to_str().unwrap()]).contains("imported"));
    let out = endoreg(&restored, &["import", backup.to_str().unwrap()]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("empty database"));
    assert_eq!(ok(&restored, &["query", "classifications", "--json"]), ok(&data, &["query", "classifications", "--json"]));
}

#[test]
fn a_bad_configuration_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("registry.toml");
    std::fs::write(&cfg, "[http]\nlisten_on = \"x\"\n").unwrap();
    let out = endoreg(dir.path(), &["--config", cfg.to_str().unwrap(), "migrate"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("listen_on"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new(env!("CARGO_BIN_EXE_endoreg"))
        .args(["migrate"])
        .env("ENDOREG_DATABASE_URL", "mysql://u:secret@h/db")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("sqlite: or postgres:") && !err.contains("secret"), "{err}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn http_get(port: u16, path: &str, token: Option<&str>) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text.split_whitespace().nth(1).unwrap_or("0").parse().unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

#[test]
fn quickstart_prints_a_token_that_opens_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_endoreg"))
        .arg("quickstart")
        .env("ENDOREG_DATA_DIR", dir.path())
        .env("ENDOREG_HTTP__LISTEN", format!("127.0.0.1:{port}"))
        .env_remove("ENDOREG_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let ready = loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break true;
        }
        if started.elapsed() > Duration::from_secs(60) || child.try_wait().unwrap().is_some() {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (status, _) = if ready { http_get(port, "/healthz", None) } else { (0, String::new()) };
    let (anon, _) = if ready { http_get(port, "/api/v1/classifications", None) } else { (0, String::new()) };
    let _ = child.kill();
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let _ = child.wait();
    assert!(ready, "the server did not come up:\n{out}");
    assert_eq!(status, 200);
    assert_eq!(anon, 401);
    let token = out
        .lines()
        .find_map(|l| l.strip_prefix("admin token:"))
        .and_then(|l| l.split_whitespace().next())
        .expect("a token line")
        .to_owned();

    // Serve again on the same data (as an operator would after a restart) and use the printed token.
    let mut child = Command::new(env!("CARGO_BIN_EXE_endoreg"))
        .arg("serve")
        .env("ENDOREG_DATA_DIR", dir.path())
        .env("ENDOREG_HTTP__LISTEN", format!("127.0.0.1:{port}"))
        .env_remove("ENDOREG_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, body) = http_get(port, "/api/v1/classifications", Some(&token));
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("paris"));
}
