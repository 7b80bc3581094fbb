//! The edge every service binary shares: private files, logging, the async runtime, and the exit status
//! systemd acts on.

use std::future::Future;
use std::path::Path;
use std::process::ExitCode;

/// EX_CONFIG (sysexits.h): what another start cannot fix. The NixOS units set
/// `RestartPreventExitStatus=78`, so systemd does not restart-loop on it.
pub const EXIT_CONFIG: u8 = 78;

/// Makes every file and directory this process creates private to its user (umask 0077): databases,
/// keys, media, exports and work files hold patient data, whether systemd started the process or a user
/// did. Each binary calls it first, before it creates any file.
pub fn private_files() {
    #[cfg(unix)]
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

/// Creates `dir` and any missing parents with mode 0700 (whatever the umask); existing ones stay as they
/// are.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Makes the process's files private ([`private_files`]), starts logging and a multi-threaded tokio
/// runtime, runs `main` on it, and turns its outcome into the process's exit status: 0, [`EXIT_CONFIG`]
/// when `is_config` says the error is one another start cannot fix, 1 otherwise. The error is printed with
/// its causes ([`describe`]).
pub fn run<E, F>(main: F, is_config: impl FnOnce(&E) -> bool) -> ExitCode
where
    E: AsRef<dyn std::error::Error + Send + Sync + 'static>,
    F: Future<Output = Result<(), E>>,
{
    private_files();
    crate::logging::init(log::LevelFilter::Info);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(main) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", describe(e.as_ref()));
            if is_config(&e) { ExitCode::from(EXIT_CONFIG) } else { ExitCode::FAILURE }
        }
    }
}

/// An error and its causes in one line, each cause once: messages that already quote their cause (`cannot
/// read X: <io error>`) do not get it appended a second time.
pub fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read config file x.toml: {0}")]
    struct Quoting(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("the service cannot start")]
    struct Outer(#[source] Quoting);

    #[test]
    fn each_cause_is_said_once() {
        let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        assert_eq!(describe(&Quoting(io())), "cannot read config file x.toml: no such file");
        assert_eq!(describe(&Outer(Quoting(io()))), "the service cannot start: cannot read config file x.toml: no such file");
    }
}
