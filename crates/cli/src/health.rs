//! `endoreg health`: probes a host after a deployment (`nixos-rebuild switch`) so that the deployment can
//! be gated on it: systemd units active, the registry ready (database reachable and migrated), a token
//! accepted, a GPU visible. Every check runs, each says ok or FAIL with the reason, and the exit status is
//! non-zero when any failed.

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::{ArgGroup, Args};
use serde::Serialize;

use endoreg_common::api::Readiness;
use endoreg_common::secret::Secret;

#[derive(Args)]
#[command(group(ArgGroup::new("checks").required(true).multiple(true).args(["url", "units", "gpu"])))]
pub struct HealthArgs {
    /// The registry's base URL, e.g. http://127.0.0.1:8080: checks that /readyz answers 200 with ready: true
    /// (the database answers and every migration is applied).
    #[arg(long)]
    url: Option<String>,
    /// A file holding an API token (e.g. /run/agenix/registry-admin-token): also checks that an
    /// authenticated request (GET /api/v1/terminology) succeeds with it. Needs --url.
    #[arg(long, requires = "url")]
    token_file: Option<PathBuf>,
    /// A systemd unit that must be active (`systemctl is-active`); repeat for several.
    #[arg(long = "unit", value_name = "NAME")]
    units: Vec<String>,
    /// Check that an NVIDIA GPU is visible (`nvidia-smi -L` lists one; without nvidia-smi, /dev/nvidia0 exists).
    #[arg(long)]
    gpu: bool,
    /// Print JSON ({"ok": bool, "checks": [{"check", "ok", "detail"}]}) instead of a table.
    #[arg(long)]
    json: bool,
    /// Seconds each HTTP request may take.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,
    /// Repeat the checks (every 2 seconds) until all pass or SECS have passed, for services still starting;
    /// only the last round is printed.
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    wait: u64,
}

#[derive(Debug, Serialize)]
pub struct Check {
    check: String,
    ok: bool,
    detail: String,
}

impl Check {
    fn new(check: impl Into<String>, result: Result<String, String>) -> Self {
        let (ok, detail) = match result {
            Ok(d) => (true, d),
            Err(d) => (false, d),
        };
        Self { check: check.into(), ok, detail }
    }
}

pub async fn run(args: HealthArgs) -> Result<ExitCode> {
    let client = reqwest::Client::builder()
        // a probe of this host's services must not go through a proxy from the environment
        .no_proxy()
        .connect_timeout(Duration::from_secs(args.timeout.min(5)))
        .timeout(Duration::from_secs(args.timeout))
        .build()?;
    let deadline = Instant::now() + Duration::from_secs(args.wait);
    let checks = loop {
        let checks = round(&args, &client).await;
        if checks.iter().all(|c| c.ok) || Instant::now() >= deadline {
            break checks;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let ok = checks.iter().all(|c| c.ok);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "ok": ok, "checks": checks }))?);
    } else {
        let width = checks.iter().map(|c| c.check.len()).max().unwrap_or(0).max("check".len());
        println!("{:<width$}  {:<6}  detail", "check", "result");
        for c in &checks {
            println!("{:<width$}  {:<6}  {}", c.check, if c.ok { "ok" } else { "FAIL" }, c.detail);
        }
        let failed = checks.iter().filter(|c| !c.ok).count();
        if failed > 0 {
            println!("health: {failed} of {} check(s) failed", checks.len());
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Every check asked for, once.
async fn round(args: &HealthArgs, client: &reqwest::Client) -> Vec<Check> {
    let mut checks = Vec::new();
    for unit in &args.units {
        checks.push(Check::new(format!("unit {unit}"), unit_active(unit)));
    }
    if let Some(url) = &args.url {
        let base = url.trim_end_matches('/');
        checks.push(Check::new("registry ready", readiness(client, base).await));
        if let Some(file) = &args.token_file {
            checks.push(Check::new("registry token", authenticated(client, base, file).await));
        }
    }
    if args.gpu {
        checks.push(Check::new("gpu", gpu()));
    }
    checks
}

/// `systemctl is-active`; when the unit is not active, its load and active state say why (`not-found`
/// for a unit that does not exist, `failed`, `inactive`).
fn unit_active(unit: &str) -> Result<String, String> {
    let out = Command::new("systemctl").args(["is-active", "--", unit]).output().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => "systemctl is not available (not a systemd host?): cannot check units".to_owned(),
        _ => format!("cannot run systemctl: {e}"),
    })?;
    let state = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if out.status.success() && state == "active" {
        return Ok("active".into());
    }
    if state.is_empty() {
        // systemctl without a running systemd (a container, a chroot) says so on stderr only
        let err = excerpt(&String::from_utf8_lossy(&out.stderr));
        return Err(format!("systemctl is unavailable here ({}): cannot check units", if err.is_empty() { "no answer" } else { &err }));
    }
    let load = Command::new("systemctl")
        .args(["show", "--property=LoadState", "--value", "--", unit])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    Err(match load.as_str() {
        "not-found" => "no such unit (not-found): is it a unit of this host's configuration?".to_owned(),
        "" | "loaded" => format!("{state} (systemctl status {unit}; journalctl -u {unit})"),
        other => format!("{state}, load state {other} (systemctl status {unit})"),
    })
}

async fn readiness(client: &reqwest::Client, base: &str) -> Result<String, String> {
    let url = format!("{base}/readyz");
    let response = client.get(&url).send().await.map_err(|e| unreachable(&url, &e))?;
    let status = response.status();
    let body = response.text().await.map_err(|e| format!("{url}: cannot read the answer: {e}"))?;
    let readiness: Readiness = match serde_json::from_str(&body) {
        Ok(r) => r,
        // An answer other than the registry's readiness: a proxy's error page, another service on the port,
        // or a problem document (RFC 9457) in its place.
        Err(_) if status.is_success() => {
            return Err(format!("{url} answered {status} with something that is not the registry's readiness: {}", excerpt(&body)));
        }
        Err(_) => return Err(format!("not ready ({status}); the registry says: {}", problem_detail(&body))),
    };
    let migrations = format!("{} of {} migrations applied", readiness.migrations_applied, readiness.migrations_known);
    if status == reqwest::StatusCode::OK && readiness.ready {
        return Ok(format!("ready: database {}, {migrations}", readiness.database));
    }
    let why = if readiness.migrations_applied < readiness.migrations_known {
        "the database is not migrated (endoreg migrate)".to_owned()
    } else if readiness.migrations_applied > readiness.migrations_known {
        "the database is newer than this registry".to_owned()
    } else {
        "the database does not answer".to_owned()
    };
    Err(format!("not ready ({status}): {why}; database {}, {migrations}", readiness.database))
}

async fn authenticated(client: &reqwest::Client, base: &str, file: &std::path::Path) -> Result<String, String> {
    let token = Secret::read(file).map_err(|e| e.to_string())?;
    let url = format!("{base}/api/v1/terminology");
    let response = client.get(&url).bearer_auth(token.expose()).send().await.map_err(|e| unreachable(&url, &e))?;
    let status = response.status();
    match status.as_u16() {
        200 => Ok(format!("GET /api/v1/terminology with the token of {}: 200", file.display())),
        401 => Err(format!("the token of {} is refused (401): unknown, revoked or expired", file.display())),
        403 => Err(format!("the token of {} lacks the permission to read terminology (403)", file.display())),
        _ => {
            let body = response.text().await.unwrap_or_default();
            Err(format!("GET /api/v1/terminology answered {status}: {}", problem_detail(&body)))
        }
    }
}

fn unreachable(url: &str, e: &reqwest::Error) -> String {
    let why = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        // the root cause ("Connection refused") is deeper than reqwest's own message
        let mut source: Option<&dyn std::error::Error> = Some(e);
        let mut last = e.to_string();
        while let Some(s) = source {
            last = s.to_string();
            source = s.source();
        }
        format!("cannot connect: {last}")
    } else {
        e.to_string()
    };
    format!("{url}: {why} (is the registry running? systemctl status endoreg-registry)")
}

/// The `detail` (or `title`) of a problem document, else the start of the body.
fn problem_detail(body: &str) -> String {
    let problem: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let said = problem.as_ref().and_then(|p| p.get("detail").or_else(|| p.get("title"))).and_then(|d| d.as_str());
    excerpt(said.unwrap_or(body))
}

fn excerpt(body: &str) -> String {
    let one_line = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

/// `nvidia-smi -L` decides when it exists (a driver that does not load, or a library that does not match
/// the loaded kernel module after a switch, fails there even though /dev/nvidia0 exists); without it, the
/// device node is the evidence.
fn gpu() -> Result<String, String> {
    match Command::new("nvidia-smi").arg("-L").output() {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout);
            let gpus: Vec<&str> = text.lines().map(str::trim).filter(|l| l.starts_with("GPU ")).collect();
            if out.status.success() && !gpus.is_empty() {
                let names: Vec<&str> = gpus.iter().map(|l| l.split(" (UUID").next().unwrap_or(l)).collect();
                Ok(format!("{} GPU(s): {}", gpus.len(), names.join("; ")))
            } else {
                let err = String::from_utf8_lossy(&out.stderr);
                let said = [text.trim(), err.trim()].iter().filter(|s| !s.is_empty()).copied().collect::<Vec<_>>().join(" ");
                Err(format!("nvidia-smi -L lists no GPU ({}): {}", out.status, excerpt(&said)))
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if std::path::Path::new("/dev/nvidia0").exists() {
                Ok("/dev/nvidia0 exists (nvidia-smi is not on PATH)".into())
            } else {
                Err("no NVIDIA GPU: nvidia-smi is not on PATH and /dev/nvidia0 does not exist".into())
            }
        }
        Err(e) => Err(format!("cannot run nvidia-smi: {e}")),
    }
}
