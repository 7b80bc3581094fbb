//! The subcommands and what each does.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;

use endoreg_registry::config::RegistryConfig;
use endoreg_registry::db::Db;
use endoreg_registry::kb;

#[derive(Subcommand)]
pub enum Command {
    /// Create or upgrade the database schema.
    Migrate,
    /// The knowledge base (terminology).
    Kb {
        #[command(subcommand)]
        command: KbCommand,
    },
}

#[derive(Subcommand)]
pub enum KbCommand {
    /// Load our knowledge base: the built-in one, or the TOML files under DIR. All or nothing.
    Load { dir: Option<PathBuf> },
    /// Import an EndoregDB base-data tree (endoreg_db/data), reporting every problem.
    ImportEndoreg {
        dir: PathBuf,
        /// Print {"counts": {DIR: N}, "problems": [...]} as JSON.
        #[arg(long)]
        json: bool,
        /// Refuse to import anything if there is any problem.
        #[arg(long)]
        strict: bool,
        /// Read and check only; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

pub async fn run(config: Option<&Path>, command: Command) -> Result<ExitCode> {
    let cfg = RegistryConfig::load(config).context("configuration")?;
    match command {
        Command::Migrate => {
            let db = connect(&cfg).await?;
            let applied = db.migrate().await?;
            println!("database {}: {applied} migration(s) applied, schema up to date", db.backend().as_str());
            Ok(ExitCode::SUCCESS)
        }
        Command::Kb { command } => {
            let db = connect_migrated(&cfg).await?;
            kb_command(&db, command).await
        }
    }
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
            println!(
                "knowledge base loaded: {} entries, {} links, {} regions in {} ms",
                report.entries,
                report.written.links,
                report.written.regions,
                started.elapsed().as_millis()
            );
            Ok(ExitCode::SUCCESS)
        }
        KbCommand::ImportEndoreg { dir, json, strict, dry_run } => {
            let report = kb::import_endoreg(db, &dir, strict, dry_run).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                let total: u64 = report.counts.values().filter_map(|v| v.as_u64()).sum();
                println!("{:<48} {:>6}", "directory", "entries");
                for (d, n) in &report.counts {
                    println!("{d:<48} {n:>6}");
                }
                println!("{:<48} {total:>6}", "total");
                for p in &report.problems {
                    println!("problem: {p}");
                }
                match &report.written {
                    Some(w) => println!("imported: {} entries, {} links, {} regions; {} problem(s)", w.rows, w.links, w.regions, report.problems.len()),
                    None => println!("dry run: nothing written; {} problem(s)", report.problems.len()),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
