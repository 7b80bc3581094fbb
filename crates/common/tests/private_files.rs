//! What a binary creates is private to its user: `process::run` sets the umask before anything runs. A
//! test binary of its own, since the umask belongs to the whole process.

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::process::ExitCode;

#[test]
fn files_and_directories_a_binary_creates_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let (file, sub) = (dir.path().join("export.jsonl"), dir.path().join("work"));
    let code = endoreg_common::process::run(
        async {
            std::fs::write(&file, b"{}")?;
            std::fs::create_dir(&sub)?;
            Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        },
        |_| false,
    );
    assert_eq!(code, ExitCode::SUCCESS);
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(&sub).unwrap().permissions().mode() & 0o777, 0o700);
}
