//! `endoreg-inference`: the inference worker and HTTP service (`serve`), a start check (`check`), and local
//! runs on a video or an image without a registry (`predict-video`, `predict-image`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use clap::{Parser, Subcommand};

use endoreg_common::secret::Secret;
use endoreg_common::storage::Store;
use endoreg_inference::config::InferenceConfig;
use endoreg_inference::http::{HttpState, router};
use endoreg_inference::pipeline;
use endoreg_inference::postprocess;
use endoreg_inference::service::{self, Service, StartError};
use endoreg_inference::telemetry::Gpus;
use endoreg_inference::worker::Predictor;
use endoreg_media::client::Client;

#[derive(Parser)]
#[command(
    name = "endoreg-inference",
    version,
    about = "The endoreg inference worker: a frame classifier turned into labelled video segments"
)]
struct Cli {
    /// Configuration file (TOML); ENDOREG_* environment variables override it.
    #[arg(long, global = true, env = "ENDOREG_CONFIG")]
    config: Option<PathBuf>,
    /// Fail instead of falling back to the CPU when no GPU provider can be used.
    #[arg(long, global = true)]
    require_gpu: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Take prediction jobs from the registry and serve HTTP (health, metrics, single images) until stopped.
    Serve,
    /// Load the model, run it once, say where it runs; non-zero when anything is wrong.
    Check,
    /// Predict a local video and print its segments (no registry).
    PredictVideo {
        video: PathBuf,
        /// A layout file (`processor`, `width`, `height`, `regions`) to crop by; without it, the whole frame.
        #[arg(long)]
        layout_file: Option<PathBuf>,
        /// Also write the probabilities object here.
        #[arg(long)]
        probabilities: Option<PathBuf>,
        /// Print JSON (segments and throughput) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Predict one local image (PNG or JPEG) and print each label's probability (no registry).
    PredictImage {
        image: PathBuf,
        #[arg(long)]
        layout_file: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // What another start cannot fix (configuration, the model) exits with EX_CONFIG; a registry that is not
    // reachable yet does not.
    endoreg_common::process::run(run(cli), |e: &anyhow::Error| {
        e.downcast_ref::<endoreg_common::config::ConfigError>().is_some()
            || e.downcast_ref::<StartError>().is_some_and(|s| !matches!(s, StartError::Registry(_)))
    })
}

async fn load(cfg: &InferenceConfig) -> Result<endoreg_inference::runtime::Model> {
    let cfg = cfg.clone();
    Ok(tokio::task::spawn_blocking(move || service::load_model(&cfg)).await??)
}

fn stop_on_signals() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        s.store(true, Ordering::Relaxed);
    });
    #[cfg(unix)]
    if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        let s = stop.clone();
        tokio::spawn(async move {
            term.recv().await;
            s.store(true, Ordering::Relaxed);
        });
    }
    stop
}

async fn run(cli: Cli) -> Result<()> {
    let mut cfg = InferenceConfig::load(cli.config.as_deref())?;
    cfg.runtime.require_gpu |= cli.require_gpu;
    match cli.command {
        Command::Serve => serve(cfg).await,
        Command::Check => {
            let model = load(&cfg).await?;
            println!(
                "model {} {} ({} labels, input {}x{}) runs on {} with batch {}; sha256 {}",
                model.contract.name,
                model.contract.version,
                model.labels(),
                model.contract.input.width,
                model.contract.input.height,
                model.provider.as_str(),
                model.batch_size,
                model.sha256
            );
            Ok(())
        }
        Command::PredictVideo { video, layout_file, probabilities, json } => {
            let model = load(&cfg).await?;
            let layout = layout_file.map(|f| service::read_layout(&f)).transpose().map_err(|e| anyhow!(e))?;
            let svc = Arc::new(Service::new(model, cfg.clone(), Gpus::none()));
            let s = svc.clone();
            let (probs, stats) = tokio::task::spawn_blocking(move || -> Result<_> {
                let probe = endoreg_media::video::probe::probe(&video)?;
                let region = s.region(layout.as_ref(), probe.width, probe.height)?;
                Ok(pipeline::run(&video, region, &s.model, &s.cfg.pipeline, &s.counters, &|| false)?)
            })
            .await??;
            let segments = postprocess::segments(&probs, &svc.contract);
            if let Some(out) = probabilities {
                std::fs::write(&out, probs.encode()).with_context(|| format!("cannot write {}", out.display()))?;
            }
            let fps = stats.predicted as f64 / stats.seconds.max(1e-9);
            if json {
                let doc = serde_json::json!({
                    "frames_decoded": stats.decoded,
                    "frames_predicted": stats.predicted,
                    "seconds": stats.seconds,
                    "model_seconds": stats.model_seconds,
                    "frames_per_second": fps,
                    "segments": segments,
                });
                println!("{}", serde_json::to_string_pretty(&doc)?);
            } else {
                for s in &segments {
                    println!("{:<18} frames {:>7} .. {:>7}", s.label, s.start_frame, s.end_frame);
                }
                println!(
                    "{} segments; {} of {} frames predicted in {:.2} s ({fps:.1} frames/s, {:.0}% in the model)",
                    segments.len(),
                    stats.predicted,
                    stats.decoded,
                    stats.seconds,
                    100.0 * stats.model_seconds / stats.seconds.max(1e-9)
                );
            }
            Ok(())
        }
        Command::PredictImage { image, layout_file } => {
            let model = load(&cfg).await?;
            let layout = layout_file.map(|f| service::read_layout(&f)).transpose().map_err(|e| anyhow!(e))?;
            let bytes = std::fs::read(&image).with_context(|| format!("cannot read {}", image.display()))?;
            let svc = Service::new(model, cfg, Gpus::none());
            let p = tokio::task::spawn_blocking(move || svc.predict_image(&bytes, layout.as_ref())).await??;
            for l in &p.labels {
                println!("{:<18} {:.3}{}", l.label, l.probability, if l.present { "  *" } else { "" });
            }
            Ok(())
        }
    }
}

async fn serve(cfg: InferenceConfig) -> Result<()> {
    let stop = stop_on_signals();
    let token = Secret::read(&cfg.token_file()).with_context(|| "the inference worker needs a service token (token_file)")?;
    let client = Client::new(&cfg.registry_url, token)?;
    let store = Store::open(&cfg.storage, &cfg.data_dir)?;
    let model = load(&cfg).await?;
    // The registry may start after this service: wait for it rather than fail the unit.
    let version = loop {
        match service::register(&client, &model).await {
            Ok(v) => break v,
            Err(StartError::Registry(e)) if e.is_transient() && !stop.load(Ordering::Relaxed) => {
                log::warn!("cannot register the model yet ({e}); retrying in 5 s");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            Err(e) => return Err(e.into()),
        }
    };
    log::info!("serving {} {} as model version {}", version.model, version.version, version.id);
    let service = Arc::new(Service::new(model, cfg.clone(), Gpus::open()));

    let http = if cfg.http.enable {
        let listener =
            tokio::net::TcpListener::bind(&cfg.http.listen).await.with_context(|| format!("cannot listen on {}", cfg.http.listen))?;
        log::info!("HTTP on {}", cfg.http.listen);
        let app = router(Arc::new(HttpState::new(service.clone(), Some(client.clone()))));
        let stop = stop.clone();
        Some(tokio::spawn(async move {
            let shutdown = async move {
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            };
            axum::serve(listener, app).with_graceful_shutdown(shutdown).await
        }))
    } else {
        None
    };
    endoreg_media::workdir::clear_leftovers(cfg.work_dir(), endoreg_inference::worker::WORK_PREFIX).await;
    let predictor = Predictor { service, version, client, store, name: cfg.worker_name() };
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    log::info!("inference worker {} polling {}", predictor.name, cfg.registry_url);
    predictor.job_loop().run(&predictor, stop).await;
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    if let Some(h) = http {
        h.await.context("the HTTP server stopped")?.context("the HTTP server failed")?;
    }
    Ok(())
}
