//! The subcommands and what each does.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;

use endoreg_common::access::Role;
use endoreg_common::api::TokenCreate;
use endoreg_registry::backup;
use endoreg_registry::config::RegistryConfig;
use endoreg_registry::db::Db;
use endoreg_registry::kb;
use endoreg_registry::service::tokens;

#[derive(Subcommand)]
pub enum Command {
    /// Create or upgrade the database schema.
    Migrate,
    /// The knowledge base (terminology).
    Kb {
        #[command(subcommand)]
        command: KbCommand,
    },
    /// API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Run the registry's HTTP API (like `endoreg-registry`).
    Serve,
    /// The embedded default in one step: migrate, load the built-in knowledge base, print a new admin
    /// token, serve (on 127.0.0.1:8080 unless configured otherwise).
    Quickstart,
    /// Write the whole database to FILE (JSON lines; gzip if FILE ends in .gz), from one consistent snapshot.
    Export { file: PathBuf },
    /// Restore FILE (from `endoreg export`, any backend) into an empty, migrated database, all or nothing.
    Import { file: PathBuf },
    /// Answers to common research questions, as a table or JSON.
    Query {
        #[command(subcommand)]
        query: QueryCommand,
        /// Print JSON instead of a table.
        #[arg(long, global = true)]
        json: bool,
    },
    /// The deployment's age-encrypted secrets (secrets/): check them against the inventory, re-encrypt them
    /// after it changed. Needs nix-instantiate; reads the checkout, not the database.
    Secrets {
        #[command(subcommand)]
        command: crate::secrets::SecretsCommand,
    },
    /// Probe this host after a deployment: systemd units, the registry's readiness, a token, a GPU. Exits
    /// non-zero when any check fails, so that a deployment can be gated (and rolled back) on it.
    Health(crate::health::HealthArgs),
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it once (only its hash is stored).
    Create {
        /// admin, data_manager, annotator, researcher or service.
        #[arg(long)]
        role: String,
        /// What the token is for (shown in `token list`).
        #[arg(long, default_value = "cli")]
        name: String,
        /// Days until it expires, 1 to 3650 (default: never).
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// List tokens (never their values).
    List,
    /// Revoke a token by id.
    Revoke { id: i64 },
}

#[derive(Subcommand)]
pub enum QueryCommand {
    /// A patient's examinations (by id or pseudonym).
    PatientExaminations { patient: String },
    /// The interventions an examination indication expects.
    ExpectedInterventions { indication: String },
    /// A video's label segments, optionally for one label.
    Segments {
        video: i64,
        #[arg(long)]
        label: Option<String>,
    },
    /// All finding classifications with their choices.
    Classifications,
}

#[derive(Subcommand)]
pub enum KbCommand {
    /// Load our knowledge base: the built-in one, or the TOML files under DIR. All or nothing.
    Load { dir: Option<PathBuf> },
    /// Import an EndoregDB base-data tree (endoreg_db/data), reporting every problem. Sound entries are
    /// imported and the exit status is 0 even when there are problems, unless --strict.
    ImportEndoreg {
        dir: PathBuf,
        /// Print {"counts": {DIR: N}, "problems": [...], "outcome": ..., "written": {"total", "links", "regions", "kinds"}}
        /// as JSON on stdout (the summary goes to stderr).
        #[arg(long)]
        json: bool,
        /// Any problem refuses the whole import (nothing is written) and makes the exit status 1.
        #[arg(long)]
        strict: bool,
        /// Read and check only; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

pub async fn run(config: Option<&Path>, command: Command) -> Result<ExitCode> {
    // Loaded by the commands that use the registry's database only: `secrets` and `health` must work where
    // there is no registry configuration (a deployment checkout, a GPU host).
    let load = || RegistryConfig::load(config).context("configuration");
    match command {
        Command::Migrate => {
            let cfg = load()?;
            let db = connect(&cfg).await?;
            let applied = db.migrate().await?;
            println!("database {}: {applied} migration(s) applied, schema up to date", db.backend().as_str());
            Ok(ExitCode::SUCCESS)
        }
        Command::Kb { command } => {
            let cfg = load()?;
            let db = connect_migrated(&cfg).await?;
            kb_command(&db, command).await
        }
        Command::Token { command } => {
            let cfg = load()?;
            let db = connect_migrated(&cfg).await?;
            token_command(&db, command).await
        }
        Command::Export { file } => {
            let cfg = load()?;
            let db = connect_migrated(&cfg).await?;
            let started = std::time::Instant::now();
            let summary = backup::export(&db, &file).await.with_context(|| format!("export to {}", file.display()))?;
            println!(
                "exported {} rows of {} tables to {} in {} ms",
                summary.total(),
                summary.rows.len(),
                file.display(),
                started.elapsed().as_millis()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Import { file } => {
            let cfg = load()?;
            let db = connect_migrated(&cfg).await?;
            let started = std::time::Instant::now();
            let summary = backup::import(&db, &file).await.with_context(|| format!("import of {}", file.display()))?;
            println!(
                "imported {} rows of {} tables from {} in {} ms",
                summary.total(),
                summary.rows.len(),
                file.display(),
                started.elapsed().as_millis()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Quickstart => {
            let cfg = load()?;
            let db = connect(&cfg).await?;
            let applied = db.migrate().await?;
            let report = kb::load(&db, &kb::ours::Files::builtin()).await?;
            let created =
                tokens::create(&db, &TokenCreate { name: "quickstart".into(), role: Role::Admin, expires_in_days: Some(30) }).await?;
            // The media and inference workers on this machine: their service tokens, and the key pair raw
            // uploads are encrypted to (created on first use).
            for worker in ["media", "inference"] {
                let file = cfg.data_dir.join("keys").join(format!("{worker}.token"));
                if !file.exists() {
                    let name = format!("{worker} worker (quickstart)");
                    let t = tokens::create(&db, &TokenCreate { name, role: Role::Service, expires_in_days: None }).await?;
                    write_secret(&file, &t.token)?;
                }
            }
            cfg.raw_recipients()?;
            db.close().await;
            println!("database:       {} ({applied} migration(s) applied)", endoreg_registry::db::redact_url(&cfg.database_url()));
            println!("knowledge base: {} entries loaded", report.entries);
            println!("admin token:    {}   (shown once; valid 30 days)", created.token);
            println!("API:            http://{}/api/v1/  (OpenAPI: /api/openapi.json)", cfg.http.listen);
            println!("try:            curl -H 'Authorization: Bearer {}' http://{}/api/v1/classifications", created.token, cfg.http.listen);
            endoreg_registry::server::serve(&cfg, endoreg_registry::server::shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve => {
            let cfg = load()?;
            endoreg_registry::server::serve(&cfg, endoreg_registry::server::shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Query { query, json } => {
            let cfg = load()?;
            let db = connect_migrated(&cfg).await?;
            crate::query::run(&db, query, json).await
        }
        // reads files and runs nix-instantiate: blocking, but the runtime has nothing else to do meanwhile
        Command::Secrets { command } => crate::secrets::run(command),
        Command::Health(args) => crate::health::run(args).await,
    }
}

async fn token_command(db: &Db, command: TokenCommand) -> Result<ExitCode> {
    match command {
        TokenCommand::Create { role, name, expires_in_days } => {
            let role: Role = role.parse()?;
            let created = tokens::create(db, &TokenCreate { name, role, expires_in_days }).await?;
            eprintln!("token {} ({}) created; it is shown only now:", created.info.id, created.info.role);
            println!("{}", created.token);
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::List => {
            println!("{:>4}  {:<13} {:<24} {:<25} status", "id", "role", "name", "created");
            for t in tokens::list(db).await? {
                let status = match (t.revoked_at, t.expires_at) {
                    (Some(r), _) => format!("revoked {}", r.format("%Y-%m-%d %H:%M")),
                    (None, Some(e)) if e <= chrono::Utc::now() => {
                        format!("expired {}", e.format("%Y-%m-%d"))
                    }
                    (None, Some(e)) => format!("expires {}", e.format("%Y-%m-%d")),
                    (None, None) => "active".into(),
                };
                println!(
                    "{:>4}  {:<13} {:<24} {:<25} {status}",
                    t.id,
                    t.role.as_str(),
                    t.name,
                    t.created_at.format("%Y-%m-%d %H:%M:%S UTC")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::Revoke { id } => {
            let t = tokens::revoke(db, id).await?;
            println!("token {} ({}, {}) revoked", t.id, t.name, t.role);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Writes a secret readable by its owner only.
fn write_secret(path: &Path, value: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).with_context(|| format!("cannot create {}", path.display()))?;
    std::io::Write::write_all(&mut f, format!("{value}\n").as_bytes())?;
    Ok(())
}

async fn connect(cfg: &RegistryConfig) -> Result<Db> {
    let opts = cfg.connect_options()?;
    Ok(Db::connect(&cfg.database_url(), &opts).await?)
}

async fn connect_migrated(cfg: &RegistryConfig) -> Result<Db> {
    let db = connect(cfg).await?;
    db.check_migrated().await?;
    Ok(db)
}

async fn kb_command(db: &Db, command: KbCommand) -> Result<ExitCode> {
    match command {
        KbCommand::Load { dir } => {
            let files = match &dir {
                Some(d) => kb::ours::Files::from_dir(d)?,
                None => kb::ours::Files::builtin(),
            };
            let started = std::time::Instant::now();
            let report = kb::load(db, &files).await?;
            let w = &report.written;
            println!(
                "knowledge base loaded: {} entries ({} created, {} updated, {} unchanged); {} links and {} regions written in {} ms",
                report.entries,
                w.total.created,
                w.total.updated,
                w.total.unchanged,
                w.links,
                w.regions,
                started.elapsed().as_millis()
            );
            Ok(ExitCode::SUCCESS)
        }
        KbCommand::ImportEndoreg { dir, json, strict, dry_run } => {
            let report = kb::import_endoreg(db, &dir, strict, dry_run).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_import_table(&report);
            }
            // With --json the summary goes to stderr, so that stdout stays one JSON document.
            let summary = import_summary(&report, strict, json);
            if json {
                eprintln!("{summary}");
            } else {
                println!("{summary}");
            }
            Ok(if strict && !report.problems.is_empty() { ExitCode::FAILURE } else { ExitCode::SUCCESS })
        }
    }
}

fn print_import_table(report: &kb::ImportReport) {
    let total: u64 = report.counts.values().filter_map(|v| v.as_u64()).sum();
    println!("{:<48} {:>7} {:>7} {:>7} {:>9}", "directory", "entries", "created", "updated", "unchanged");
    for (d, n) in &report.counts {
        let n = n.as_u64().unwrap_or_default();
        let tally = report.written.as_ref().zip(kb::endoreg_dir_table(d)).and_then(|(w, table)| w.kind(table));
        match tally {
            Some(t) => println!("{d:<48} {n:>7} {:>7} {:>7} {:>9}", t.created, t.updated, t.unchanged),
            None => println!("{d:<48} {n:>7}"),
        }
    }
    match &report.written {
        Some(w) => println!("{:<48} {total:>7} {:>7} {:>7} {:>9}", "total", w.total.created, w.total.updated, w.total.unchanged),
        None => println!("{:<48} {total:>7}", "total"),
    }
    for p in &report.problems {
        println!("problem: {p}");
    }
}

/// What happened, how many problems there were, and what `--strict` does about them.
fn import_summary(report: &kb::ImportReport, strict: bool, json: bool) -> String {
    let listed = if json { "listed in the JSON's \"problems\"" } else { "listed above" };
    let what = match (&report.outcome, &report.written) {
        (kb::Outcome::Imported, Some(w)) => format!(
            "imported: {} created, {} updated, {} unchanged; {} links and {} regions written",
            w.total.created, w.total.updated, w.total.unchanged, w.links, w.regions
        ),
        (kb::Outcome::Refused, _) => "refused (--strict): nothing written".to_owned(),
        _ => "dry run: nothing written".to_owned(),
    };
    let n = report.problems.len();
    let problems = if n == 0 {
        "no problems".to_owned()
    } else if strict {
        format!("{n} problem(s), {listed}; exit status 1 (--strict)")
    } else {
        format!(
            "{n} problem(s), {listed}: each says what was left out or kept. Exit status 0; with --strict any problem \
             refuses the import and the exit status is 1"
        )
    };
    format!("{what}\n{problems}")
}
