//! The job loop every worker shares (the media worker, the inference worker): claim a job of the kinds it
//! handles, keep its lease alive with heartbeats while a handler works on it, report the outcome — and
//! never let one bad job take the worker down.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use endoreg_common::api::{Job, JobClaim, JobCompletion, JobHeartbeat};
use endoreg_common::storage::StorageError;

use crate::client::Client;

/// A job's failure as the registry records it: what went wrong, and whether another attempt could help.
pub trait JobFailure: std::fmt::Display {
    fn retry(&self) -> bool;
}

/// Whether a storage fault may pass with time (the store or the disk failing), for [`JobFailure::retry`].
/// An object that is missing or cannot be decrypted, a key that is not valid, an object over its limit:
/// another attempt finds the same.
pub fn storage_fault_may_pass(e: &StorageError) -> bool {
    match e {
        StorageError::Store(_) | StorageError::Io { .. } => true,
        StorageError::Config(_)
        | StorageError::TooLarge { .. }
        | StorageError::InvalidKey { .. }
        | StorageError::NotFound { .. }
        | StorageError::Decrypt { .. }
        | StorageError::Encrypt(_) => false,
    }
}

/// The lease of the job being handled: lost when another worker took the job over (this worker stopped
/// answering for longer than the lease). A handler checks it between steps and stops writing once lost.
#[derive(Debug, Default)]
pub struct Lease {
    lost: AtomicBool,
    /// The worker's own stop flag (SIGTERM).
    stop: Arc<AtomicBool>,
    /// When the lease ends unless renewed, by this worker's clock: the last claim or heartbeat the
    /// registry answered, plus the lease's length. `None` before the first.
    until: Mutex<Option<Instant>>,
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

    fn renewed(&self, length: Duration) {
        if let Ok(mut until) = self.until.lock() {
            *until = Some(Instant::now() + length);
        }
    }

    /// How long the lease lasts from now unless renewed.
    fn remaining(&self) -> Duration {
        self.until.lock().ok().and_then(|u| *u).map(|u| u.saturating_duration_since(Instant::now())).unwrap_or_default()
    }
}

/// How often an idle worker looks at its stop flag.
const STOP_POLL: Duration = Duration::from_millis(250);

/// The first pause before trying a heartbeat or an outcome report again, doubled after each failure up to
/// the longest.
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_LONGEST: Duration = Duration::from_secs(10);

/// Tries of an outcome report while the worker is shutting down (systemd does not wait for a lease).
const TRIES_WHEN_STOPPING: u32 = 3;

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
    /// The log target of the job lines: the worker's own (`module_path!()` where it is made), so each
    /// worker's lines are filtered and found under its name.
    pub target: &'static str,
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
                Ok(Some(job)) if stop.load(Ordering::Relaxed) => {
                    let lease = Lease { stop: stop.clone(), ..Lease::default() };
                    lease.renewed(self.lease());
                    self.report(&job, &self.release(), &lease).await;
                }
                Ok(Some(job)) => {
                    warned = false;
                    self.handle_until(handler, job, &stop).await;
                }
                Ok(None) => pause(Duration::from_secs(self.poll_secs), &stop).await,
                Err(e) => {
                    // Said once until it recovers, not every poll.
                    if !warned {
                        log::warn!(target: self.target, "cannot claim jobs: {e}");
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
        log::info!(target: self.target, "job {} ({}) claimed, attempt {}", job.id, job.kind, job.attempts);
        let lease = Arc::new(Lease { stop: stop.clone(), ..Lease::default() });
        lease.renewed(self.lease());
        // Beside the work and the outcome report: a report that waits for the registry keeps the lease.
        let heartbeat = tokio::spawn(self.clone().heartbeat(job.id, lease.clone()));
        let result = handler.handle(&job, &lease).await;
        if lease.is_lost() {
            heartbeat.abort();
            // Another worker holds the job now; an outcome from here would only be refused.
            log::warn!(target: self.target, "job {}: the lease was lost to another worker; this attempt's outcome is dropped", job.id);
            return;
        }
        let worker = self.worker.clone();
        let done = match &result {
            Ok(()) => JobCompletion { worker, outcome: "succeeded".into(), error: None, retry: false },
            // Stopped half-way because the worker is shutting down: give it back without using an
            // attempt (whatever the handler's error, it is the stop's consequence, or it recurs next time).
            Err(e) if stop.load(Ordering::Relaxed) => {
                log::info!(target: self.target, "job {}: stopped unfinished, the worker is shutting down: {e}", job.id);
                self.release()
            }
            Err(e) => JobCompletion { worker, outcome: "failed".into(), error: Some(e.to_string()), retry: e.retry() },
        };
        self.report(&job, &done, &lease).await;
        heartbeat.abort();
    }

    fn lease(&self) -> Duration {
        Duration::from_secs(u64::try_from(self.lease_secs).unwrap_or(0))
    }

    /// Renews the lease at a third of its length; after a failure, sooner (from `RETRY_FIRST`), so the
    /// lease is renewed as soon as the registry answers again. Ends when the lease is lost.
    async fn heartbeat(self, id: i64, lease: Arc<Lease>) {
        let hb = JobHeartbeat { worker: self.worker.clone(), lease_secs: self.lease_secs };
        let every = Duration::from_secs(u64::try_from(self.lease_secs / 3).unwrap_or(10).max(5));
        let (mut wait, mut failing) = (every, false);
        loop {
            tokio::time::sleep(wait).await;
            match self.client.heartbeat(id, &hb).await {
                Ok(_) => {
                    lease.renewed(self.lease());
                    if failing {
                        log::info!(target: self.target, "job {id}: the registry answers again; lease renewed");
                    }
                    (wait, failing) = (every, false);
                }
                Err(e) if e.status() == Some(409) => {
                    lease.lost.store(true, Ordering::Relaxed);
                    return;
                }
                Err(e) => {
                    // Said once per outage, not at every try.
                    if !failing {
                        log::warn!(target: self.target, "job {id}: heartbeat failed, trying again until the lease ends: {e}");
                        wait = RETRY_FIRST;
                    } else {
                        wait = (wait * 2).min(RETRY_LONGEST).min(every);
                    }
                    failing = true;
                }
            }
        }
    }

    fn release(&self) -> JobCompletion {
        JobCompletion { worker: self.worker.clone(), outcome: "released".into(), error: None, retry: true }
    }

    /// Reports a job's outcome. While the registry cannot be reached (or fails), the report is tried again
    /// with growing pauses as long as the lease lasts: unreported, the job would wait for its lease to end
    /// and run again. A worker that is shutting down tries a few times only.
    async fn report(&self, job: &Job, done: &JobCompletion, lease: &Lease) {
        let mut wait = RETRY_FIRST;
        for attempt in 1u32.. {
            let e = match self.client.complete(job.id, done).await {
                Ok(j) => return self.reported(job, done, &j, attempt),
                Err(e) => e,
            };
            // A try whose answer was lost may have got through: the job is then no longer this worker's.
            if attempt > 1 && e.status() == Some(409) {
                match self.client.job(job.id).await {
                    Ok(now) if self.reported_earlier(job, done, &now) => return self.reported(job, done, &now, attempt),
                    _ => {}
                }
            }
            let left = lease.remaining();
            let stopping = lease.stop.load(Ordering::Relaxed) && attempt >= TRIES_WHEN_STOPPING;
            if !e.is_transient() || lease.is_lost() || left.is_zero() || stopping {
                let why = if !e.is_transient() || lease.is_lost() {
                    ""
                } else if left.is_zero() {
                    " (gave up: the lease has ended; the job runs again and finds what this attempt stored)"
                } else {
                    " (gave up: the worker is shutting down)"
                };
                log::warn!(target: self.target, "job {}: cannot report the outcome ({}){why}: {e}", job.id, done.outcome);
                return;
            }
            let pause = wait.min(left);
            log::warn!(
                target: self.target,
                "job {}: retrying report ({}) in {:.1} s, {:.0} s of the lease left: {e}",
                job.id,
                done.outcome,
                pause.as_secs_f64(),
                left.as_secs_f64()
            );
            tokio::time::sleep(pause).await;
            wait = (wait * 2).min(RETRY_LONGEST);
        }
    }

    /// Whether `now`, the job as it stands, is what `done` made of `job` (and no other worker took it since:
    /// a claim counts an attempt, a release gives one back).
    fn reported_earlier(&self, job: &Job, done: &JobCompletion, now: &Job) -> bool {
        match done.outcome.as_str() {
            "succeeded" => now.state == "succeeded" && now.attempts == job.attempts,
            "released" => now.state == "queued" && now.attempts == job.attempts - 1,
            _ => (now.state == "queued" || now.state == "failed") && now.attempts == job.attempts,
        }
    }

    fn reported(&self, job: &Job, done: &JobCompletion, j: &Job, attempt: u32) {
        let tries = if attempt > 1 { format!(" (reported at try {attempt})") } else { String::new() };
        let error = done.error.as_deref().unwrap_or_default();
        match (done.outcome.as_str(), j.state.as_str()) {
            ("succeeded", _) => log::info!(target: self.target, "job {} done{tries}", job.id),
            ("released", _) => log::info!(target: self.target, "job {} given back unfinished{tries}", job.id),
            (_, "queued") => log::warn!(target: self.target, "job {} failed (will be retried){tries}: {error}", job.id),
            _ => log::warn!(target: self.target, "job {} failed (final){tries}: {error}", job.id),
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
        let jobs = JobLoop { client, worker: "w".into(), kinds: vec!["k".into()], lease_secs: 60, poll_secs: 1, target: module_path!() };
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
