//! `endoreg`: the command line of the endoreg registry. It works on the registry's database directly (like
//! an administrator's shell on the host) through the same service layer the HTTP API uses.

mod commands;
mod health;
mod query;
mod secrets;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "endoreg",
    version,
    about = "Clinical endoscopy registry: database, knowledge base, tokens, backup, queries, deployment secrets and health"
)]
struct Cli {
    /// Configuration file (TOML). Without it: defaults plus ENDOREG_* environment variables.
    #[arg(long, global = true, env = "ENDOREG_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: commands::Command,
}

fn main() -> ExitCode {
    endoreg_common::process::private_files();
    let cli = Cli::parse();
    endoreg_common::logging::init(log::LevelFilter::Warn);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli.config.as_deref(), cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
