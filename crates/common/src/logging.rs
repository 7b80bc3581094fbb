//! Logging through the `log` facade: to journald when the process runs under systemd (structured fields,
//! priorities), to stderr otherwise (a terminal, a test, a container without journald).
//!
//! The level comes from `ENDOREG_LOG` (`error`, `warn`, `info`, `debug`, `trace`), else from the caller.
//! Log lines carry identifiers (ids, hashes, states), never patient data or secrets: call sites are written
//! that way, this module cannot check it.

use std::io::Write;
use std::str::FromStr;

use log::{LevelFilter, Log, Metadata, Record};

/// Where log records go after [`init`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    Journald,
    Stderr,
}

/// Installs the process logger once; later calls are no-ops. Returns where records go.
pub fn init(default_level: LevelFilter) -> Sink {
    let level = std::env::var("ENDOREG_LOG").ok().and_then(|v| LevelFilter::from_str(v.trim()).ok()).unwrap_or(default_level);
    let sink = if systemd_journal_logger::connected_to_journal() {
        match systemd_journal_logger::JournalLog::new() {
            Ok(journal) => {
                if log::set_boxed_logger(Box::new(journal.with_syslog_identifier(identifier()))).is_ok() {
                    Sink::Journald
                } else {
                    return current_sink();
                }
            }
            // journald's socket is absent although stderr points at the journal (a container, a chroot):
            // stderr still reaches the journal through the stream, so fall back to it.
            Err(_) => install_stderr(),
        }
    } else {
        install_stderr()
    };
    log::set_max_level(level);
    remember(sink);
    sink
}

fn identifier() -> String {
    std::env::args()
        .next()
        .and_then(|a| std::path::Path::new(&a).file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "endoreg".into())
}

fn install_stderr() -> Sink {
    let _ = log::set_boxed_logger(Box::new(StderrLog));
    Sink::Stderr
}

static SINK: std::sync::OnceLock<Sink> = std::sync::OnceLock::new();

fn remember(sink: Sink) {
    let _ = SINK.set(sink);
}

fn current_sink() -> Sink {
    SINK.get().copied().unwrap_or(Sink::Stderr)
}

struct StderrLog;

impl Log for StderrLog {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{now} {:<5} {}: {}", record.level(), record.target(), record.args());
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}
