//! `endoreg-registry`: the registry server (what the NixOS module runs). `endoreg serve` does the same.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use endoreg_registry::config::RegistryConfig;

#[derive(Parser)]
#[command(name = "endoreg-registry", version, about = "The endoreg registry server")]
struct Args {
    /// Configuration file (TOML); ENDOREG_* environment variables override it.
    #[arg(long, env = "ENDOREG_CONFIG")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    endoreg_common::process::private_files();
    let args = Args::parse();
    endoreg_common::logging::init(log::LevelFilter::Info);
    let cfg = match RegistryConfig::load(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            log::error!("configuration: {e}");
            return ExitCode::from(endoreg_common::process::EXIT_CONFIG);
        }
    };
    match endoreg_registry::server::serve(&cfg, endoreg_registry::server::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
