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
    /// The worker's own stop flag (SIGTERM).
    stop: Arc<AtomicBool>,
}

impl Lease {
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }

    /// Whether the work should stop now: the lease is lost, or the worker is shutting down (the job is
    /// then given back). Long work asks it between frames, from any thread.
    pub fn should_stop(&self) -> bool {
        self.is_lost() || self.stop.load(Ordering::Relaxed)
    }
}

/// How often an idle worker looks at its stop flag.
const STOP_POLL: Duration = Duration::from_millis(250);

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

/// Sleeps `d`, or less once `stop` is set: an idle worker answers SIGTERM at once, whatever its poll
/// interval.
async fn pause(d: Duration, stop: &AtomicBool) {
    let until = tokio::time::Instant::now() + d;
    while !stop.load(Ordering::Relaxed) && tokio::time::Instant::now() < until {
        tokio::time::sleep(STOP_POLL.min(until - tokio::time::Instant::now())).await;
    }
}

impl JobLoop {
    /// Claims and handles jobs until `stop` is set.
    pub async fn run<H: JobHandler>(&self, handler: &H, stop: Arc<AtomicBool>) {
        let claim = JobClaim { worker: self.worker.clone(), kinds: self.kinds.clone(), lease_secs: self.lease_secs };
        let mut warned = false;
        while !stop.load(Ordering::Relaxed) {
            match self.client.claim(&claim).await {
                // Stopped while the claim was under way: given back untouched.
                Ok(Some(job)) if stop.load(Ordering::Relaxed) => self.report(&job, &self.release()).await,
                Ok(Some(job)) => {
                    warned = false;
                    self.handle_until(handler, job, &stop).await;
                }
                Ok(None) => pause(Duration::from_secs(self.poll_secs), &stop).await,
                Err(e) => {
                    // Said once until it recovers, not every poll.
                    if !warned {
                        log::warn!("cannot claim jobs: {e}");
                        warned = true;
                    }
                    pause(Duration::from_secs(self.poll_secs.max(5)), &stop).await;
                }
            }
        }
    }

    /// Handles one claimed job with a heartbeat beside it, and reports the outcome.
    pub async fn handle<H: JobHandler>(&self, handler: &H, job: Job) {
        self.handle_until(handler, job, &Arc::new(AtomicBool::new(false))).await;
    }

    /// As `handle`; once `stop` is set the lease's flag asks the handler to stop early.
    async fn handle_until<H: JobHandler>(&self, handler: &H, job: Job, stop: &Arc<AtomicBool>) {
        log::info!("job {} ({}) claimed, attempt {}", job.id, job.kind, job.attempts);
        let lease = Arc::new(Lease { stop: stop.clone(), ..Lease::default() });
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
        if lease.is_lost() {
            // Another worker holds the job now; an outcome from here would only be refused.
            log::warn!("job {}: the lease was lost to another worker; this attempt's outcome is dropped", job.id);
            return;
        }
        let worker = self.worker.clone();
        let done = match &result {
            Ok(()) => JobCompletion { worker, outcome: "succeeded".into(), error: None, retry: false },
            // Stopped half-way because the worker is shutting down: give it back without using an
            // attempt (whatever the handler's error, it is the stop's consequence, or it recurs next time).
            Err(e) if stop.load(Ordering::Relaxed) => {
                log::info!("job {}: stopped unfinished, the worker is shutting down: {e}", job.id);
                self.release()
            }
            Err(e) => JobCompletion { worker, outcome: "failed".into(), error: Some(e.to_string()), retry: e.retry() },
        };
        self.report(&job, &done).await;
    }

    fn release(&self) -> JobCompletion {
        JobCompletion { worker: self.worker.clone(), outcome: "released".into(), error: None, retry: true }
    }

    /// Reports a job's outcome. A release is tried a few times: unreported, the job waits for its lease
    /// to expire and the attempt counts.
    async fn report(&self, job: &Job, done: &JobCompletion) {
        let tries = if done.outcome == "released" { 3 } else { 1 };
        for attempt in 1..=tries {
            match self.client.complete(job.id, done).await {
                Ok(j) => {
                    match (done.outcome.as_str(), j.state.as_str()) {
                        ("succeeded", _) => log::info!("job {} done", job.id),
                        ("released", _) => log::info!("job {} given back unfinished", job.id),
                        (_, "queued") => {
                            log::warn!("job {} failed (will be retried): {}", job.id, done.error.as_deref().unwrap_or_default())
                        }
                        _ => log::warn!("job {} failed (final): {}", job.id, done.error.as_deref().unwrap_or_default()),
                    }
                    return;
                }
                Err(e) if attempt < tries && e.status().is_none_or(|s| s >= 500) => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => {
                    log::warn!("job {}: cannot report the outcome ({}): {e}", job.id, done.outcome);
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Instant;

    use endoreg_common::secret::Secret;

    use super::*;

    #[derive(Debug)]
    struct Stopped(&'static str);

    impl std::fmt::Display for Stopped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl JobFailure for Stopped {
        fn retry(&self) -> bool {
            true
        }
    }

    /// A handler of long work that polls the lease's flag, as the inference pipeline does.
    struct LongWork(Mutex<Option<&'static str>>);

    impl JobHandler for LongWork {
        type Error = Stopped;
        async fn handle(&self, _: &Job, lease: &Arc<Lease>) -> Result<(), Stopped> {
            let started = Instant::now();
            let outcome = loop {
                if lease.should_stop() {
                    break if lease.is_lost() { "lost" } else { "stopped" };
                }
                if started.elapsed() > Duration::from_secs(10) {
                    break "never told";
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            *self.0.lock().unwrap() = Some(outcome);
            Err(Stopped(outcome))
        }
    }

    /// The worker being stopped (SIGTERM) reaches the job in hand through its lease, so long work ends
    /// and the job is given back instead of running until systemd kills the process.
    #[tokio::test]
    async fn stopping_the_worker_stops_the_job_in_hand() {
        // Nothing listens there: heartbeats and the outcome report fail, which the loop only logs.
        let client = Client::new("http://127.0.0.1:9", Secret::new("t".into())).unwrap();
        let jobs = JobLoop { client, worker: "w".into(), kinds: vec!["k".into()], lease_secs: 60, poll_secs: 1 };
        let job: Job = serde_json::from_value(serde_json::json!({
            "id": 1, "kind": "k", "video_id": null, "report_id": null, "ai_model_version_id": null, "state": "running",
            "attempts": 1, "max_attempts": 3, "run_after": "2026-01-01T00:00:00Z", "lease_owner": "w",
            "lease_expires_at": null, "last_error": null, "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z", "finished_at": null
        }))
        .unwrap();
        let handler = LongWork(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let stopper = {
            let stop = stop.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                stop.store(true, Ordering::Relaxed);
            })
        };
        let started = Instant::now();
        jobs.handle_until(&handler, job, &stop).await;
        stopper.await.unwrap();
        assert_eq!(*handler.0.lock().unwrap(), Some("stopped"));
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    }

    #[tokio::test]
    async fn an_idle_pause_ends_when_the_worker_stops() {
        let stop = AtomicBool::new(true);
        let started = Instant::now();
        pause(Duration::from_secs(3600), &stop).await;
        assert!(started.elapsed() < Duration::from_secs(1));
        stop.store(false, Ordering::Relaxed);
        let started = Instant::now();
        pause(Duration::from_millis(300), &stop).await;
        assert!(started.elapsed() >= Duration::from_millis(300));
    }
}
