//! The job loop every worker shares (the media worker, the inference worker): claim a job of the kinds it
//! handles, keep its lease alive with heartbeats while a handler works on it, report the outcome — and
//! never let one bad job take the worker down.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use endoreg_common::api::{Job, JobClaim, JobCompletion, JobHeartbeat};

use crate::client::Client;

/// A job's failure as the registry records it: what went wrong, and whether another attempt could help.
pub trait JobFailure: std::fmt::Display {
    fn retry(&self) -> bool;
}

/// The lease of the job being handled: lost when another worker took the job over (this worker stopped
/// answering for longer than the lease). A handler checks it between steps and stops writing once lost.
#[derive(Debug, Default)]
pub struct Lease {
    lost: AtomicBool,
}

impl Lease {
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }

    /// The flag itself, for blocking work that polls it from another thread.
    pub fn flag(&self) -> &AtomicBool {
        &self.lost
    }
}

/// What a worker does with one claimed job.
pub trait JobHandler: Send + Sync {
    type Error: JobFailure + Send;
    fn handle(&self, job: &Job, lease: &Arc<Lease>) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// How a worker claims jobs.
#[derive(Clone)]
pub struct JobLoop {
    pub client: Client,
    /// Host and process, recorded as the lease owner.
    pub worker: String,
    pub kinds: Vec<String>,
    pub lease_secs: i64,
    pub poll_secs: u64,
}

impl JobLoop {
    /// Claims and handles jobs until `stop` is set.
    pub async fn run<H: JobHandler>(&self, handler: &H, stop: Arc<AtomicBool>) {
        let claim = JobClaim { worker: self.worker.clone(), kinds: self.kinds.clone(), lease_secs: self.lease_secs };
        let mut warned = false;
        while !stop.load(Ordering::Relaxed) {
            match self.client.claim(&claim).await {
                Ok(Some(job)) => {
                    warned = false;
                    self.handle(handler, job).await;
                }
                Ok(None) => tokio::time::sleep(Duration::from_secs(self.poll_secs)).await,
                Err(e) => {
                    // Said once until it recovers, not every poll.
                    if !warned {
                        log::warn!("cannot claim jobs: {e}");
                        warned = true;
                    }
                    tokio::time::sleep(Duration::from_secs(self.poll_secs.max(5))).await;
                }
            }
        }
    }

    /// Handles one claimed job with a heartbeat beside it, and reports the outcome.
    pub async fn handle<H: JobHandler>(&self, handler: &H, job: Job) {
        log::info!("job {} ({}) claimed, attempt {}", job.id, job.kind, job.attempts);
        let lease = Arc::new(Lease::default());
        let heartbeat = {
            let client = self.client.clone();
            let hb = JobHeartbeat { worker: self.worker.clone(), lease_secs: self.lease_secs };
            let lease = lease.clone();
            let every = Duration::from_secs(u64::try_from(self.lease_secs / 3).unwrap_or(10).max(5));
            let id = job.id;
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    match client.heartbeat(id, &hb).await {
                        Ok(_) => {}
                        Err(e) if e.status() == Some(409) => {
                            lease.lost.store(true, Ordering::Relaxed);
                            return;
                        }
                        Err(e) => log::warn!("job {id}: heartbeat failed: {e}"),
                    }
                }
            })
        };
        let result = handler.handle(&job, &lease).await;
        heartbeat.abort();
        let done = match &result {
            Ok(()) => JobCompletion { worker: self.worker.clone(), outcome: "succeeded".into(), error: None, retry: false },
            Err(e) => JobCompletion { worker: self.worker.clone(), outcome: "failed".into(), error: Some(e.to_string()), retry: e.retry() },
        };
        match (&result, self.client.complete(job.id, &done).await) {
            (Ok(()), Ok(_)) => log::info!("job {} done", job.id),
            (Err(e), Ok(j)) => log::warn!("job {} failed ({}): {e}", job.id, if j.state == "queued" { "will be retried" } else { "final" }),
            (_, Err(e)) => log::warn!("job {}: cannot report the outcome: {e}", job.id),
        }
    }
}
