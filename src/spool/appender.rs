//! Appending records to the active segment, sealing it at its size, and forcing the writes to
//! the disk as `[spool] fsync` says.
//!
//! The request path appends with one `pwrite` under a short lock: the kernel holds the bytes
//! when the hit is answered, so a crash or kill of tally loses nothing whatever the fsync mode.
//! A `pwrite` into the page cache takes microseconds; only `always` makes the answer wait for
//! the disk, and then through group commit: one `fdatasync` covers every hit that came in while
//! the previous one ran.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, watch};

use super::{Head, SEGMENT_MAGIC, Shared, Usage, segment_path};
use crate::config::{FsyncMode, SpoolConfig};

/// Why records were not appended.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The spool holds `[spool] max_bytes` already.
    #[error("the spool is full")]
    Full,
    /// Writing failed: directory gone or unwritable, disk full, I/O error.
    #[error("the spool cannot be written: {0}")]
    Unwritable(#[from] io::Error),
}

/// The writing end of the spool. Shared by every connection.
#[derive(Debug)]
pub struct Appender {
    shared: Arc<Shared>,
    active: Mutex<Active>,
    mode: FsyncMode,
    interval: Duration,
    max_bytes: u64,
    segment_bytes: u64,
    /// Bytes appended by this process that are known to be on the disk.
    synced: watch::Sender<Synced>,
    /// `always`: wakes the syncer.
    sync_wanted: Notify,
}

/// How far the disk has it: bytes appended by this process that were forced to the disk, and
/// whether the last attempt failed.
#[derive(Debug, Clone, Copy, Default)]
struct Synced {
    upto: u64,
    failed: bool,
}

#[derive(Debug)]
struct Active {
    file: Arc<File>,
    seq: u64,
    len: u64,
    /// Bytes appended by this process, over all its segments: the position `always` waits for.
    appended: u64,
}

/// Where a request's records end in the stream this process appended; what
/// [`Appender::durable`] waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position(u64);

impl Appender {
    pub(super) fn open(shared: Arc<Shared>, seq: u64, cfg: &SpoolConfig) -> io::Result<Appender> {
        let file = create_segment(&shared, seq, cfg.fsync)?;
        let len = SEGMENT_MAGIC.len() as u64;
        shared.set_head(Head { seq, len });
        Ok(Appender {
            shared,
            active: Mutex::new(Active {
                file: Arc::new(file),
                seq,
                len,
                appended: 0,
            }),
            mode: cfg.fsync,
            interval: cfg.fsync_interval(),
            max_bytes: cfg.max_bytes,
            segment_bytes: cfg.segment_bytes,
            synced: watch::Sender::new(Synced::default()),
            sync_wanted: Notify::new(),
        })
    }

    /// Appends `records` (whole frames, see [`super::frame`]) in one write: a request's events
    /// are all in the spool or none is.
    pub fn append(&self, records: &[u8]) -> Result<Position, AppendError> {
        let n = records.len() as u64;
        let mut a = self.active.lock().unwrap_or_else(|p| p.into_inner());
        if self.shared.bytes.load(Ordering::Relaxed) + n > self.max_bytes {
            return Err(AppendError::Full);
        }
        if a.len + n > self.segment_bytes && a.len > SEGMENT_MAGIC.len() as u64 {
            self.rotate(&mut a)?;
        }
        // At an offset, not O_APPEND: after a failed (partial) write the next one overwrites
        // the torn bytes instead of leaving them between good records.
        a.file.write_all_at(records, a.len)?;
        a.len += n;
        a.appended += n;
        self.shared.bytes.fetch_add(n, Ordering::Relaxed);
        self.shared.set_head(Head {
            seq: a.seq,
            len: a.len,
        });
        let at = Position(a.appended);
        drop(a);
        self.shared.appended.notify_one();
        if self.mode == FsyncMode::Always {
            self.sync_wanted.notify_one();
        }
        Ok(at)
    }

    /// Waits until what was appended up to `at` is on the disk, in `always` mode (at once in
    /// the others). An error means the disk refused the flush: the hit must not be acknowledged.
    pub async fn durable(&self, at: Position) -> Result<(), AppendError> {
        if self.mode != FsyncMode::Always {
            return Ok(());
        }
        let mut rx = self.synced.subscribe();
        let wait = rx.wait_for(|s| s.upto >= at.0 || s.failed);
        match tokio::time::timeout(Duration::from_secs(10), wait).await {
            Ok(Ok(s)) if s.upto >= at.0 => Ok(()),
            Ok(_) => Err(AppendError::Unwritable(io::Error::other(
                "fdatasync failed",
            ))),
            Err(_) => Err(AppendError::Unwritable(io::Error::other(
                "fdatasync took longer than 10 s",
            ))),
        }
    }

    /// Whether `n` more bytes would fit now; [`Appender::append`] still decides.
    pub fn has_room(&self, n: u64) -> bool {
        self.shared.bytes.load(Ordering::Relaxed) + n <= self.max_bytes
    }

    /// What the spool holds.
    pub fn usage(&self) -> Usage {
        super::usage(&self.shared)
    }

    /// Forces what was appended to the disk (at shutdown, in every mode).
    pub fn flush(&self) -> io::Result<()> {
        let file = self
            .active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .file
            .clone();
        file.sync_data()
    }

    /// Forces the writes to the disk as the mode says: after each append (`always`, grouped),
    /// every interval (`interval`), never (`never`). Runs until aborted.
    pub async fn run_syncer(self: Arc<Self>) {
        if self.mode == FsyncMode::Never {
            return;
        }
        let mut failures_logged = false;
        loop {
            match self.mode {
                FsyncMode::Always => self.sync_wanted.notified().await,
                _ => tokio::time::sleep(self.interval).await,
            }
            let (file, appended) = {
                let a = self.active.lock().unwrap_or_else(|p| p.into_inner());
                (a.file.clone(), a.appended)
            };
            if appended <= self.synced.borrow().upto {
                continue;
            }
            let result = tokio::task::spawn_blocking(move || file.sync_data())
                .await
                .unwrap_or_else(|e| Err(io::Error::other(e)));
            match result {
                Ok(()) => {
                    failures_logged = false;
                    self.synced.send_replace(Synced {
                        upto: appended,
                        failed: false,
                    });
                }
                Err(e) => {
                    if !failures_logged {
                        tracing::error!(error = %e, "spool: fdatasync failed");
                        failures_logged = true;
                    }
                    self.synced.send_modify(|s| s.failed = true);
                    // A retry of the same flush, after a pause, must not report the old failure.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    self.synced.send_modify(|s| s.failed = false);
                }
            }
        }
    }

    /// Seals the active segment and begins the next. Holding the lock: appends wait for it,
    /// once per `segment_bytes`.
    fn rotate(&self, a: &mut Active) -> io::Result<()> {
        // Bytes of a failed write past the end are not part of the segment.
        a.file.set_len(a.len)?;
        if self.mode != FsyncMode::Never {
            a.file.sync_data()?;
        }
        let seq = a.seq + 1;
        let file = create_segment(&self.shared, seq, self.mode)?;
        a.file = Arc::new(file);
        a.seq = seq;
        a.len = SEGMENT_MAGIC.len() as u64;
        Ok(())
    }
}

/// Creates segment `seq` with its header, counted in the spool's size.
fn create_segment(shared: &Shared, seq: u64, mode: FsyncMode) -> io::Result<File> {
    let path = segment_path(&shared.dir, seq);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    file.write_all_at(SEGMENT_MAGIC, 0)?;
    if mode != FsyncMode::Never {
        file.sync_data()?;
        // The new name must survive a power loss too.
        File::open(&shared.dir)?.sync_all()?;
    }
    shared
        .bytes
        .fetch_add(SEGMENT_MAGIC.len() as u64, Ordering::Relaxed);
    shared.segments.fetch_add(1, Ordering::Relaxed);
    Ok(file)
}
