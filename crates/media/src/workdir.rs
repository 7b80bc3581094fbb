//! Job work directories, for every worker: a private directory per job under the worker's work directory,
//! removed when the job ends, and what a killed worker left there (a decrypted raw video shows the
//! patient's name) removed at the next start.
//!
//! A directory is in use while its lock file is locked. The lock belongs to the process that made the
//! directory and goes with it however it ends, so workers sharing one work directory (several media
//! workers on a host) never remove each other's directories.

use std::fs::File;
use std::io;
use std::path::Path;
use std::time::Duration;

use crate::video::MediaError;

/// The lock file in every job directory.
const LOCK: &str = ".in-use";

/// A directory without a lock file is being made (or was made before directories had one): removed only
/// once it is older than this.
const UNLOCKED_GRACE: Duration = Duration::from_secs(600);

/// One job's directory: removed when dropped.
pub struct JobDir {
    // Declared before the lock, so dropped first: the directory goes while it is still locked.
    dir: tempfile::TempDir,
    _lock: File,
}

impl JobDir {
    /// A new directory `<parent>/<prefix>…` (0700), `parent` made if missing. Blocking.
    pub fn create(parent: &Path, prefix: &str) -> Result<JobDir, MediaError> {
        std::fs::create_dir_all(parent).map_err(|e| MediaError::internal(format!("cannot create {}", parent.display()), e))?;
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(parent)
            .map_err(|e| MediaError::internal(format!("cannot create a directory in {}", parent.display()), e))?;
        let lock = File::create(dir.path().join(LOCK))
            .and_then(|f| f.try_lock().map_err(io::Error::from).map(|()| f))
            .map_err(|e| MediaError::internal(format!("cannot lock {}", dir.path().display()), e))?;
        Ok(JobDir { dir, _lock: lock })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Removes the `<prefix>…` directories in `parent` that no running job holds; returns how many.
pub fn remove_leftovers(parent: &Path, prefix: &str) -> io::Result<usize> {
    let entries = match std::fs::read_dir(parent) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        if !entry.file_name().to_string_lossy().starts_with(prefix) || !entry.file_type()?.is_dir() {
            continue;
        }
        let abandoned = match File::open(entry.path().join(LOCK)) {
            // The lock is free only when the process that made the directory is gone.
            Ok(f) => f.try_lock().is_ok(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => entry.metadata()?.modified()?.elapsed().is_ok_and(|age| age > UNLOCKED_GRACE),
            Err(e) => return Err(e),
        };
        if abandoned {
            match std::fs::remove_dir_all(entry.path()) {
                Ok(()) => removed += 1,
                // Another worker starting at the same time removed it first.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

/// At a worker's start: [`remove_leftovers`] off the async threads, saying what it did.
pub async fn clear_leftovers(parent: std::path::PathBuf, prefix: &'static str) {
    let shown = parent.display().to_string();
    match tokio::task::spawn_blocking(move || remove_leftovers(&parent, prefix)).await {
        Ok(Ok(0)) => {}
        Ok(Ok(n)) => log::info!("removed {n} work directories left by killed jobs in {shown}"),
        Ok(Err(e)) => log::warn!("cannot clear the work directories in {shown}: {e}"),
        Err(e) => log::warn!("cannot clear the work directories in {shown}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_directories_no_running_job_holds_are_removed() {
        let parent = tempfile::tempdir().unwrap();
        assert_eq!(remove_leftovers(&parent.path().join("absent"), "job-").unwrap(), 0);
        // A job of a worker killed mid-job: its lock went with the process (here: with the file handle).
        let killed = JobDir::create(parent.path(), "job-").unwrap();
        let killed_path = killed.path().to_owned();
        std::fs::write(killed_path.join("raw"), b"a decrypted video").unwrap();
        std::mem::forget(killed.dir);
        drop(killed._lock);
        // A job running now, maybe in another worker sharing the directory.
        let running = JobDir::create(parent.path(), "job-").unwrap();
        std::fs::write(running.path().join("raw"), b"in use").unwrap();
        // Being made this moment (no lock file yet), and things that are not job directories.
        std::fs::create_dir(parent.path().join("job-new")).unwrap();
        std::fs::create_dir(parent.path().join("keep")).unwrap();
        std::fs::write(parent.path().join("job-notes.txt"), b"a file").unwrap();

        assert_eq!(remove_leftovers(parent.path(), "job-").unwrap(), 1);
        assert!(!killed_path.exists());
        assert!(running.path().join("raw").is_file());
        assert!(parent.path().join("job-new").is_dir() && parent.path().join("keep").is_dir());
        assert!(parent.path().join("job-notes.txt").is_file());
        let running_path = running.path().to_owned();
        drop(running);
        assert!(!running_path.exists(), "a finished job's directory goes with it");
    }
}
