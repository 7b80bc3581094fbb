//! The registry's speed targets, measured on both backends (`cargo bench -p endoreg-registry --bench
//! registry`):
//!
//! - loading our knowledge base into a fresh database: < 300 ms;
//! - importing EndoregDB's base-data tree (`$ENDOREG_BASE_DATA`, see `.ci/base-data`): < 1 s;
//! - with 10,000 patients × 3 examinations × 3 findings seeded, `GET /api/v1/patient-examinations/{id}`
//!   (findings, classifications, interventions included) at 32 connections: ≥ 5,000 requests/s with
//!   p99 < 20 ms, measured with `wrk` against the real server on loopback.
//!
//! Prints a table and exits non-zero if a target is missed. `ENDOREG_BENCH_QUICK=1` seeds 1,000 patients
//! and runs `wrk` for 3 s (a smoke run for CI, not a measurement).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test or benchmark reports failure

#[path = "../tests/it/support/postgres.rs"]
mod postgres;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use endoreg_common::access::Role;
use endoreg_common::api::TokenCreate;
use endoreg_registry::config::RegistryConfig;
use endoreg_registry::db::exec::{One, Param};
use endoreg_registry::db::{ConnectOptions, Db};
use endoreg_registry::kb;
use endoreg_registry::service::tokens;

struct Target {
    name: String,
    value: f64,
    unit: &'static str,
    limit: f64,
    higher_is_better: bool,
}

impl Target {
    fn met(&self) -> bool {
        if self.higher_is_better { self.value >= self.limit } else { self.value < self.limit }
    }
}

async fn fresh(backend: &str, dir: &Path, n: usize) -> Db {
    let url = match backend {
        "sqlite" => format!("sqlite://{}", dir.join(format!("bench-{n}.db")).display()),
        _ => postgres::new_database().await,
    };
    let db = Db::connect(&url, &ConnectOptions { max_connections: 16, ..Default::default() }).await.expect("connect");
    db.migrate().await.expect("migrate");
    db
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

async fn time_kb_load(backend: &str, dir: &Path) -> f64 {
    let files = kb::ours::Files::builtin();
    let mut runs = Vec::new();
    for i in 0..5 {
        let db = fresh(backend, dir, 100 + i).await;
        let t = Instant::now();
        kb::load(&db, &files).await.expect("kb load");
        runs.push(t.elapsed().as_secs_f64() * 1000.0);
        db.close().await;
    }
    median(runs)
}

async fn time_endoreg_import(backend: &str, dir: &Path, tree: &Path) -> f64 {
    let mut runs = Vec::new();
    for i in 0..5 {
        let db = fresh(backend, dir, 200 + i).await;
        let t = Instant::now();
        kb::import_endoreg(&db, tree, false, false).await.expect("import");
        runs.push(t.elapsed().as_secs_f64() * 1000.0);
        db.close().await;
    }
    median(runs)
}

async fn id(db: &Db, kind: &str, name: &str) -> i64 {
    let One(id): One<i64> = db.fetch_one(&format!("SELECT id FROM {kind} WHERE name = $1"), vec![Param::from(name)]).await.expect(name);
    id
}

/// Rows in multi-row INSERTs, straight into the tables (the API is measured elsewhere; seeding through it
/// would take minutes).
async fn insert_rows(db: &Db, table: &str, cols: &[&str], rows: Vec<Vec<Param>>) {
    let per = (900 / cols.len()).max(1);
    let mut tx = db.begin().await.expect("begin");
    for chunk in rows.chunks(per) {
        let groups: Vec<String> = (0..chunk.len())
            .map(|r| format!("({})", (1..=cols.len()).map(|c| format!("${}", r * cols.len() + c)).collect::<Vec<_>>().join(", ")))
            .collect();
        let sql = format!("INSERT INTO {table} ({}) VALUES {}", cols.join(", "), groups.join(", "));
        tx.execute(&sql, chunk.iter().flatten().cloned().collect()).await.expect("insert");
    }
    tx.commit().await.expect("commit");
}

async fn seed(db: &Db, patients: i64) -> i64 {
    kb::load(db, &kb::ours::Files::builtin()).await.expect("kb");
    let center = id(db, "center", "demo_center").await;
    let colonoscopy = id(db, "examination", "colonoscopy").await;
    let polyp = id(db, "finding", "colon_polyp").await;
    let classes = [("paris", "paris_0_is"), ("nice", "nice_type_2"), ("lesion_size", "lesion_size_5_9_mm")];
    let mut class_ids = Vec::new();
    for (c, ch) in classes {
        class_ids.push((id(db, "finding_classification", c).await, id(db, "finding_classification_choice", ch).await));
    }
    let snare = id(db, "finding_intervention", "cold_snare_polypectomy").await;
    let now = endoreg_registry::service::now();
    let date = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).expect("date");
    let p: Vec<Vec<Param>> = (1..=patients)
        .map(|i| vec![Param::from(i), Param::from(format!("P-BENCH{i:06}")), Param::from(center), Param::from(now), Param::from(now)])
        .collect();
    insert_rows(db, "patient", &["id", "pseudonym", "center_id", "created_at", "updated_at"], p).await;
    let exams = patients * 3;
    let e: Vec<Vec<Param>> = (1..=exams)
        .map(|i| {
            let d = date + chrono::Days::new(u64::try_from(i % 700).unwrap_or(0));
            vec![
                Param::from(i),
                Param::from((i - 1) / 3 + 1),
                Param::from(colonoscopy),
                Param::from(center),
                Param::from(d),
                Param::from(now),
                Param::from(now),
            ]
        })
        .collect();
    insert_rows(db, "patient_examination", &["id", "patient_id", "examination_id", "center_id", "date", "created_at", "updated_at"], e)
        .await;
    let findings = exams * 3;
    let f: Vec<Vec<Param>> = (1..=findings)
        .map(|i| vec![Param::from(i), Param::from((i - 1) / 3 + 1), Param::from(polyp), Param::from(now), Param::from(now)])
        .collect();
    insert_rows(db, "patient_finding", &["id", "patient_examination_id", "finding_id", "created_at", "updated_at"], f).await;
    let c: Vec<Vec<Param>> =
        (1..=findings).flat_map(|i| class_ids.iter().map(move |(c, ch)| vec![Param::from(i), Param::from(*c), Param::from(*ch)])).collect();
    insert_rows(
        db,
        "patient_finding_classification",
        &["patient_finding_id", "finding_classification_id", "finding_classification_choice_id"],
        c,
    )
    .await;
    let iv: Vec<Vec<Param>> = (1..=findings).map(|i| vec![Param::from(i), Param::from(snare), Param::from("performed")]).collect();
    insert_rows(db, "patient_finding_intervention", &["patient_finding_id", "finding_intervention_id", "state"], iv).await;
    if let Db::Postgres(_) = db {
        for t in ["patient", "patient_examination", "patient_finding"] {
            db.execute(&format!("SELECT setval(pg_get_serial_sequence('{t}', 'id'), (SELECT MAX(id) FROM {t}))"), vec![])
                .await
                .expect("setval");
            db.execute(&format!("ANALYZE {t}"), vec![]).await.expect("analyze");
        }
    }
    exams
}

struct WrkResult {
    rps: f64,
    p99_ms: f64,
    errors: String,
}

fn parse_ms(s: &str) -> f64 {
    let s = s.trim();
    if let Some(v) = s.strip_suffix("us") {
        v.parse::<f64>().unwrap_or(f64::NAN) / 1000.0
    } else if let Some(v) = s.strip_suffix("ms") {
        v.parse().unwrap_or(f64::NAN)
    } else if let Some(v) = s.strip_suffix('s') {
        v.parse::<f64>().unwrap_or(f64::NAN) * 1000.0
    } else {
        f64::NAN
    }
}

fn wrk(port: u16, token: &str, exams: i64, seconds: u64, dir: &Path) -> WrkResult {
    let script = dir.join("exam.lua");
    std::fs::write(
        &script,
        format!(
            "math.randomseed(42)\nwrk.headers[\"Authorization\"] = \"Bearer {token}\"\n\
             request = function()\n  return wrk.format(\"GET\", \"/api/v1/patient-examinations/\" .. math.random(1, {exams}))\nend\n\
             done = function(summary, latency, requests)\n  io.write(string.format(\"non2xx %d\\n\", summary.errors.status))\nend\n"
        ),
    )
    .expect("write the wrk script");
    let out = Command::new("wrk")
        .args(["-t2", "-c32", &format!("-d{seconds}s"), "--latency", "-s", script.to_str().expect("utf-8")])
        .arg(format!("http://127.0.0.1:{port}"))
        .output()
        .expect("run wrk (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let rps = text.lines().find_map(|l| l.strip_prefix("Requests/sec:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0.0);
    let p99 = text.lines().find_map(|l| l.trim().strip_prefix("99%")).map(parse_ms).unwrap_or(f64::NAN);
    let non2xx = text.lines().find_map(|l| l.strip_prefix("non2xx ")).unwrap_or("?").trim().to_owned();
    let socket = text.lines().find(|l| l.contains("Socket errors")).unwrap_or("").trim().to_owned();
    WrkResult { rps, p99_ms: p99, errors: format!("non-2xx {non2xx} {socket}").trim().to_owned() }
}

async fn serve_and_measure(db: Db, exams: i64, seconds: u64, dir: &Path) -> WrkResult {
    let token = tokens::create(&db, &TokenCreate { name: "bench".into(), role: Role::Researcher, expires_in_days: None })
        .await
        .expect("token")
        .token;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let config = RegistryConfig { data_dir: dir.join("data"), ..RegistryConfig::default() };
    let app = endoreg_registry::http::router(db, &config).expect("router");
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = dir.to_owned();
    // Warm up the caches and prepared statements, then measure.
    let warm = {
        let (t, d) = (token.clone(), dir.clone());
        tokio::task::spawn_blocking(move || wrk(port, &t, exams, 2, &d))
    };
    warm.await.expect("warm-up");
    let result = tokio::task::spawn_blocking(move || wrk(port, &token, exams, seconds, &dir)).await.expect("wrk");
    server.abort();
    result
}

/// `$ENDOREG_BASE_DATA` (`.ci/setup` sets it), else the shared folder beside the checkout.
fn base_data() -> PathBuf {
    let p = std::env::var("ENDOREG_BASE_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/endoreg-base-data"));
    assert!(p.is_dir(), "no EndoregDB base data at {}: `source .ci/setup` fetches it and sets ENDOREG_BASE_DATA", p.display());
    p
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let quick = std::env::var("ENDOREG_BENCH_QUICK").is_ok_and(|v| v == "1");
    let (patients, seconds) = if quick { (1_000, 3) } else { (10_000, 15) };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut targets = Vec::new();
    rt.block_on(async {
        for backend in ["sqlite", "postgres"] {
            let kb_ms = time_kb_load(backend, dir.path()).await;
            targets.push(Target {
                name: format!("{backend}: knowledge base load"),
                value: kb_ms,
                unit: "ms",
                limit: 300.0,
                higher_is_better: false,
            });
            let imp_ms = time_endoreg_import(backend, dir.path(), &base_data()).await;
            targets.push(Target {
                name: format!("{backend}: EndoregDB import (shared tree)"),
                value: imp_ms,
                unit: "ms",
                limit: 1000.0,
                higher_is_better: false,
            });
            let db = fresh(backend, dir.path(), 1).await;
            let t = Instant::now();
            let exams = seed(&db, patients).await;
            eprintln!(
                "{backend}: seeded {patients} patients, {exams} examinations, {} findings in {:.1} s",
                exams * 3,
                t.elapsed().as_secs_f64()
            );
            let r = serve_and_measure(db, exams, seconds, dir.path()).await;
            eprintln!("{backend}: wrk {}", r.errors);
            targets.push(Target {
                name: format!("{backend}: GET examination, 32 connections"),
                value: r.rps,
                unit: "req/s",
                limit: 5000.0,
                higher_is_better: true,
            });
            targets.push(Target {
                name: format!("{backend}: GET examination p99"),
                value: r.p99_ms,
                unit: "ms",
                limit: 20.0,
                higher_is_better: false,
            });
        }
    });
    println!("\n{:<48} {:>12} {:>8}  {:>12}  result", "benchmark", "value", "", "target");
    let mut all = true;
    for t in &targets {
        let cmp = if t.higher_is_better { ">=" } else { "<" };
        let met = t.met();
        all &= met;
        println!(
            "{:<48} {:>12.1} {:>8}  {cmp} {:>9} {:<5} {}",
            t.name,
            t.value,
            t.unit,
            t.limit,
            t.unit,
            if met { "met" } else { "MISSED" }
        );
    }
    if quick {
        println!("(quick smoke run: 1,000 patients, 3 s of load; not a measurement)");
    } else if !all {
        std::process::exit(1);
    }
    let _ = Duration::ZERO;
}
