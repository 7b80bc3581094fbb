//! The log lines of this test process, kept for the tests to read (a process has one logger).

use std::sync::{Mutex, Once};

static LINES: Mutex<Vec<Line>> = Mutex::new(Vec::new());

#[derive(Debug, Clone)]
pub struct Line {
    pub target: String,
    pub level: log::Level,
    pub message: String,
}

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.target().starts_with("endoreg")
    }

    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            let line = Line { target: r.target().to_owned(), level: r.level(), message: r.args().to_string() };
            LINES.lock().unwrap().push(line);
        }
    }

    fn flush(&self) {}
}

/// Starts keeping the lines (once per process).
pub fn capture() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        log::set_logger(&Capture).expect("no other logger in the tests");
        log::set_max_level(log::LevelFilter::Info);
    });
}

/// The lines containing `text`, of every test of this process.
pub fn containing(text: &str) -> Vec<Line> {
    LINES.lock().unwrap().iter().filter(|l| l.message.contains(text)).cloned().collect()
}
