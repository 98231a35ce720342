//! The async face of a spool: the fan-out appends to it and the exporter's worker takes from
//! it. With `Fsync::Always` the file work runs on the blocking pool (each append waits for
//! the disk); with `Fsync::Interval` it runs inline, as it only reaches the page cache (a hand-off
//! to the blocking pool per record cost more than the work: `COMPARISONS="memory-direct:disk-interval"
//! benches/process_cpu.sh`). A task on the blocking pool syncs the data on time and writes the
//! progress point.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

use super::{Fsync, PROGRESS_INTERVAL, Record, Recovery, Spool, SpoolConfig, SpoolError};
use crate::otlp::Request;

/// An exporter's disk queue, shared by the fan-out (appending) and its worker (taking).
#[derive(Debug)]
pub struct DiskQueue {
    spool: Mutex<Spool>,
    /// A record was appended, or the queue closed.
    records: Notify,
    /// A record was done: room may have come free.
    room: Notify,
    /// No more appends will come.
    closed: AtomicBool,
    /// Whether file work runs on the calling task (`Fsync::Interval`) rather than the
    /// blocking pool.
    inline: bool,
    /// The last append found the queue full, and no record was done since: new requests are
    /// refused at once rather than left waiting for their acknowledgement.
    full: AtomicBool,
}

/// How long a blocked append waits for room before it checks again.
const RECHECK: Duration = Duration::from_millis(200);

impl DiskQueue {
    /// Opens the spool of `config`; what it recovered is delivered first.
    pub fn open(config: SpoolConfig) -> Result<(Arc<DiskQueue>, Recovery), SpoolError> {
        let inline = matches!(config.fsync, Fsync::Interval(_));
        let (spool, recovery) = Spool::open(config)?;
        let queue = DiskQueue {
            inline,
            spool: Mutex::new(spool),
            records: Notify::new(),
            room: Notify::new(),
            closed: AtomicBool::new(false),
            full: AtomicBool::new(false),
        };
        Ok((Arc::new(queue), recovery))
    }

    fn spool(&self) -> MutexGuard<'_, Spool> {
        self.spool.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends `request`. A full queue waits for room when `wait`, else says so.
    pub async fn append(self: &Arc<Self>, request: &Arc<Request>, wait: bool) -> Result<(), SpoolError> {
        loop {
            let queue = Arc::clone(self);
            let batch = Arc::clone(request);
            let appended = self
                .run(move || {
                    let items = u32::try_from(batch.item_count()).unwrap_or(u32::MAX);
                    queue.spool().append(batch.signal(), items, batch.parts())
                })
                .await;
            match appended {
                Ok(_) => {
                    self.full.store(false, Ordering::Release);
                    self.records.notify_one();
                    return Ok(());
                }
                Err(SpoolError::Full { .. }) if wait => {
                    self.full.store(true, Ordering::Release);
                    let _ = tokio::time::timeout(RECHECK, self.room.notified()).await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Drops the oldest records waiting to make room for `bytes` (see [`Spool::drop_oldest`]).
    pub async fn drop_oldest(self: &Arc<Self>, bytes: u64) -> Result<Vec<Record>, SpoolError> {
        let queue = Arc::clone(self);
        let dropped = self.run(move || queue.spool().drop_oldest(bytes)).await?;
        if !dropped.is_empty() {
            self.full.store(false, Ordering::Release);
        }
        Ok(dropped)
    }

    /// The next record to deliver; `None` once the queue is closed and nothing waits.
    pub async fn next(self: &Arc<Self>) -> Result<Option<Record>, SpoolError> {
        loop {
            let queue = Arc::clone(self);
            if let Some(record) = self.run(move || queue.spool().take()).await? {
                return Ok(Some(record));
            }
            if self.closed.load(Ordering::Acquire) {
                return Ok(None);
            }
            self.records.notified().await;
        }
    }

    /// Marks a record delivered or refused for good.
    pub async fn done(self: &Arc<Self>, sequence: u64) -> Result<(), SpoolError> {
        let queue = Arc::clone(self);
        self.run(move || queue.spool().done(sequence)).await?;
        self.full.store(false, Ordering::Release);
        self.room.notify_waiters();
        Ok(())
    }

    /// Runs file work inline or on the blocking pool (see the module's comment).
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, SpoolError> + Send + 'static,
    ) -> Result<T, SpoolError> {
        if self.inline { work() } else { blocking(work).await }
    }

    /// Whether the queue was full at the last append and nothing was done since.
    pub fn is_full(&self) -> bool {
        self.full.load(Ordering::Acquire)
    }

    /// No more appends: the worker ends once it has taken what waits.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.records.notify_one();
    }

    /// Writes data and progress to disk.
    pub async fn sync(self: &Arc<Self>) -> Result<(), SpoolError> {
        let queue = Arc::clone(self);
        blocking(move || queue.spool().sync()).await
    }

    /// Syncs appended data every `fsync_interval` (`Fsync::Interval`) and writes the progress
    /// point at most every [`PROGRESS_INTERVAL`], on the blocking pool, until the queue closes.
    pub async fn sync_on_time(self: Arc<Self>, fsync: Fsync) {
        let interval = match fsync {
            Fsync::Interval(interval) => interval.min(PROGRESS_INTERVAL),
            Fsync::Always => PROGRESS_INTERVAL,
        };
        let mut ticker = tokio::time::interval(interval);
        loop {
            ticker.tick().await;
            let queue = Arc::clone(&self);
            if let Err(error) = blocking(move || queue.spool().sync_on_time()).await {
                tracing::error!(%error, "Disk queue: cannot sync.");
            }
            if self.closed.load(Ordering::Acquire) {
                return;
            }
        }
    }

    /// Records not yet done, and bytes on disk.
    pub fn depth(&self) -> (usize, u64) {
        let spool = self.spool();
        (spool.len(), spool.bytes_held())
    }
}

/// Runs file work on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, SpoolError> + Send + 'static,
) -> Result<T, SpoolError> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|error| {
        Err(SpoolError::Io {
            directory: String::new(),
            source: std::io::Error::other(error),
        })
    })
}
