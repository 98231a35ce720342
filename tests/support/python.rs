//! The Python that tests run outside clients with (the OpenTelemetry SDK, pyarrow): a
//! virtualenv under cargo's target folder, made on first use with the packages pinned in
//! `tests/python/requirements.txt`, so that `cargo test` needs nothing installed beforehand
//! but python3 with venv and pip.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// One test at a time sets the virtualenv up.
static SETUP: Mutex<()> = Mutex::new(());

/// The venv's python, installing the pinned packages when missing or changed.
pub(crate) fn python() -> PathBuf {
    let _setup = SETUP.lock().unwrap_or_else(|e| e.into_inner());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-venv");
    let python = venv.join("bin/python");
    let requirements = root.join("tests/python/requirements.txt");
    let stamp = venv.join("requirements.installed");
    let wanted = std::fs::read_to_string(&requirements).expect("requirements");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return python;
    }
    let run = |command: &mut Command| {
        let output = command.output().expect("run setup command");
        assert!(
            output.status.success(),
            "{command:?} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
    run(Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(&requirements));
    std::fs::write(&stamp, wanted).expect("stamp");
    python
}
