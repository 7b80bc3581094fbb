//! `endoreg-media`: the media worker (`run`), and tools around it: probe, anonymise, extract frames, make
//! the synthetic demo video, run the demo end to end.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

use endoreg_common::secret::Secret;
use endoreg_common::storage::{Identities, Store};
use endoreg_media::client::Client;
use endoreg_media::config::MediaConfig;
use endoreg_media::video::encode::H264Settings;
use endoreg_media::video::frames::{self, FrameSettings};
use endoreg_media::video::{anonymise, demo, mask, probe};
use endoreg_media::worker::Worker;

#[derive(Parser)]
#[command(name = "endoreg-media", version, about = "The endoreg media worker and its tools")]
struct Cli {
    /// Configuration file (TOML); ENDOREG_* environment variables override it.
    #[arg(long, global = true, env = "ENDOREG_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Process jobs from the registry until stopped (SIGTERM/Ctrl-C).
    Run,
    /// Print what a video file is.
    Probe { file: PathBuf },
    /// Anonymise a local video with a processor's layout from the registry (or from a TOML file with
    /// `processor`, `width`, `height` and `regions = [{name, kind, x, y, width, height}]`).
    Anonymise {
        input: PathBuf,
        output: PathBuf,
        #[arg(long, required_unless_present = "layout_file")]
        processor: Option<String>,
        #[arg(long)]
        layout_file: Option<PathBuf>,
    },
    /// Write every STEP-th frame of a video as JPEG files into DIR.
    ExtractFrames {
        video: PathBuf,
        dir: PathBuf,
        #[arg(long, default_value_t = 1)]
        step: u64,
    },
    /// Write frame INDEX of a video as a PNG.
    Snapshot { video: PathBuf, index: u64, output: PathBuf },
    /// Generate the synthetic endoscopy-like video for a processor of the registry (or a layout file).
    DemoVideo {
        output: PathBuf,
        #[arg(long, default_value = "olympus_cv_1500")]
        processor: String,
        #[arg(long)]
        layout_file: Option<PathBuf>,
        #[arg(long, default_value_t = 1920)]
        width: u32,
        #[arg(long, default_value_t = 1080)]
        height: u32,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 25)]
        fps: u32,
        /// Per-frame noise (0–64): large, hard-to-compress videos for memory benchmarks.
        #[arg(long, default_value_t = 0)]
        noise: u8,
    },
    /// The demo end to end: generate a video, upload it, process it, write before/after pictures.
    Demo {
        #[arg(long, default_value = "olympus_cv_1500")]
        processor: String,
        #[arg(long, default_value_t = 8)]
        seconds: u64,
        /// Then wait up to this many seconds for an inference worker to predict the video, and print its
        /// segments (0: do not wait).
        #[arg(long, default_value_t = 0)]
        wait_predicted: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    endoreg_common::process::run(run(cli), |e: &anyhow::Error| e.downcast_ref::<endoreg_common::config::ConfigError>().is_some())
}

async fn client(cfg: &MediaConfig) -> Result<Client> {
    let token = Secret::read(&cfg.token_file()).with_context(|| "the media worker needs a service token (token_file)")?;
    Ok(Client::new(&cfg.registry_url, token)?)
}

async fn layout(cfg: &MediaConfig, processor: &str) -> Result<mask::Layout> {
    Ok(client(cfg).await?.layout(processor).await?)
}

fn read_layout(file: &std::path::Path) -> Result<mask::Layout> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    toml::from_str::<mask::Layout>(&text).with_context(|| format!("{} is not a layout", file.display()))
}

fn worker(cfg: &MediaConfig, client: Client) -> Result<Worker> {
    let store = Store::open(&cfg.storage, &cfg.data_dir)?;
    let identities = Identities::read(&cfg.identity_file())
        .with_context(|| "the media worker needs the identity that decrypts raw uploads (identity_file)")?;
    let templates = match &cfg.reports.templates_file {
        Some(file) => {
            let text = std::fs::read_to_string(file).with_context(|| format!("cannot read report templates {}", file.display()))?;
            endoreg_media::report::parse_templates(&text)
                .map_err(|e| endoreg_common::config::ConfigError::Check(format!("reports.templates_file {}: {e}", file.display())))?
        }
        None => endoreg_media::report::default_templates(),
    };
    Ok(Worker { client, store, identities, cfg: cfg.clone(), name: cfg.worker_name(), templates })
}

async fn run(cli: Cli) -> Result<()> {
    let cfg = MediaConfig::load(cli.config.as_deref())?;
    match cli.command {
        Command::Run => {
            let w = worker(&cfg, client(&cfg).await?)?;
            let stop = Arc::new(AtomicBool::new(false));
            {
                let stop = stop.clone();
                tokio::spawn(async move {
                    let _ = tokio::signal::ctrl_c().await;
                    stop.store(true, std::sync::atomic::Ordering::Relaxed);
                });
            }
            #[cfg(unix)]
            {
                let stop = stop.clone();
                if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    tokio::spawn(async move {
                        term.recv().await;
                        stop.store(true, std::sync::atomic::Ordering::Relaxed);
                    });
                }
            }
            log::info!("media worker {} polling {} (storage: {})", w.name, cfg.registry_url, w.store.describe());
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
            w.run(stop).await;
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
        }
        Command::Probe { file } => {
            let p = tokio::task::spawn_blocking(move || probe::probe(&file)).await??;
            println!("{p:#?}");
        }
        Command::Anonymise { input, output, processor, layout_file } => {
            let layout = match (layout_file, processor) {
                (Some(file), _) => read_layout(&file)?,
                (None, Some(p)) => layout(&cfg, &p).await?,
                (None, None) => bail!("name a --processor or a --layout-file"),
            };
            let settings = cfg.anonymise.clone();
            let done = tokio::task::spawn_blocking(move || -> Result<u64> {
                let p = probe::probe(&input)?;
                let m = mask::Mask::for_video(&layout, p.width, p.height)?;
                // Verified before it appears at `output`; nothing is left there if anything fails.
                let done = anonymise::anonymise(&input, &output, &p, &m, &settings, &mut |_| Ok(()))?;
                if (done.width, done.height) != (p.width, p.height) {
                    eprintln!(
                        "the {}x{} video is written as {}x{} (H.264 needs even sides; the added column or row repeats the last one)",
                        p.width, p.height, done.width, done.height
                    );
                }
                Ok(done.frames)
            })
            .await??;
            println!("anonymised {done} frames");
        }
        Command::ExtractFrames { video, dir, step } => {
            std::fs::create_dir_all(&dir)?;
            let settings = FrameSettings { step, ..cfg.frames.clone() };
            let (n, total) = tokio::task::spawn_blocking(move || {
                let mut written = Vec::new();
                let result = frames::extract(&video, &settings, &mut |i, bytes| {
                    let file = dir.join(format!("{i:06}.jpg"));
                    written.push(file.clone());
                    std::fs::write(&file, bytes)
                        .map_err(|e| endoreg_media::video::MediaError::internal(format!("cannot write {}", file.display()), e))
                });
                // A failed extraction leaves no frames: a partial set would pass for the video's.
                if result.is_err() {
                    written.iter().for_each(|f| drop(std::fs::remove_file(f)));
                }
                result
            })
            .await??;
            println!("{n} of {total} frames written");
        }
        Command::Snapshot { video, index, output } => {
            tokio::task::spawn_blocking(move || frames::snapshot_png(&video, index, &output)).await??;
        }
        Command::DemoVideo { output, processor, layout_file, width, height, seconds, fps, noise } => {
            let layout = match layout_file {
                Some(file) => read_layout(&file)?,
                None => layout(&cfg, &processor).await?,
            };
            let spec = demo::DemoSpec {
                width,
                height,
                fps,
                frames: seconds * u64::from(fps),
                layout,
                patient: demo::FakePatient::default(),
                noise,
                encoding: H264Settings { crf: 18, preset: "veryfast".into(), threads: 0, ..H264Settings::default() },
            };
            let n = tokio::task::spawn_blocking(move || demo::generate(&output, &spec)).await??;
            println!("{n} frames written");
        }
        Command::Demo { processor, seconds, wait_predicted } => {
            let c = client(&cfg).await?;
            let w = worker(&cfg, c.clone())?;
            let outcome = endoreg_media::demo_run::run(&w, &cfg, &processor, seconds).await?;
            if !outcome.ok {
                bail!("the demo video was not processed: {}", outcome.detail);
            }
            if wait_predicted > 0 {
                endoreg_media::demo_run::print_predictions(&c, outcome.video, std::time::Duration::from_secs(wait_predicted)).await?;
            }
        }
    }
    Ok(())
}
