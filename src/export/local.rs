//! Exporters for local use: `debug` prints what arrives, `file` appends OTLP/JSON lines.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use tokio::sync::Mutex;

use super::config::{DebugExporterConfig, FileExporterConfig, Verbosity};
use super::error::ExportError;
use crate::otlp::Payload;

pub(super) struct DebugSender {
    name: String,
    verbosity: Verbosity,
}

impl DebugSender {
    pub(super) fn new(name: &str, config: &DebugExporterConfig) -> DebugSender {
        DebugSender {
            name: name.to_owned(),
            verbosity: config.verbosity,
        }
    }

    pub(super) fn send(&self, payload: &Payload) {
        let signal = payload.signal().as_str();
        let items = payload.item_count();
        match self.verbosity {
            Verbosity::Basic => {
                tracing::info!(exporter = %self.name, signal, items, "Received batch.")
            }
            Verbosity::Detailed => {
                let json = String::from_utf8_lossy(&payload.encode_json()).into_owned();
                tracing::info!(exporter = %self.name, signal, items, batch = %json, "Received batch.")
            }
        }
    }
}

pub(super) struct FileSender {
    path: PathBuf,
    max_bytes: u64,
    max_backups: usize,
    file: Mutex<Option<(File, u64)>>,
}

impl FileSender {
    pub(super) fn new(config: &FileExporterConfig) -> FileSender {
        FileSender {
            path: config.path.clone(),
            max_bytes: config.rotation.max_megabytes.saturating_mul(1024 * 1024),
            max_backups: config.rotation.max_backups,
            file: Mutex::new(None),
        }
    }

    /// Appends the batch as one OTLP/JSON line, rotating first when the file is full. Writes
    /// are small and sequential, so they run on the async task rather than a blocking pool.
    pub(super) async fn send(&self, payload: &Payload) -> Result<(), ExportError> {
        let mut line = payload.encode_json();
        line.push(b'\n');
        let mut guard = self.file.lock().await;
        let (file, written) = match guard.take() {
            Some((_, written)) if self.max_bytes > 0 && written >= self.max_bytes => {
                rotate(&self.path, self.max_backups)?;
                (open(&self.path)?, 0)
            }
            Some(open_file) => open_file,
            None => {
                let file = open(&self.path)?;
                let size = file.metadata()?.len();
                (file, size)
            }
        };
        let mut file = file;
        file.write_all(&line)?;
        *guard = Some((file, written + line.len() as u64));
        Ok(())
    }
}

fn open(path: &Path) -> std::io::Result<File> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

/// `path` becomes `path.1`, `path.1` becomes `path.2`, …; the oldest beyond `max_backups` goes.
fn rotate(path: &Path, max_backups: usize) -> std::io::Result<()> {
    let numbered = |n: usize| PathBuf::from(format!("{}.{n}", path.display()));
    if max_backups == 0 {
        return std::fs::remove_file(path);
    }
    for n in (1..max_backups).rev() {
        if numbered(n).exists() {
            std::fs::rename(numbered(n), numbered(n + 1))?;
        }
    }
    std::fs::rename(path, numbered(1))
}
