//! The disk spool: a write-ahead log between the request path and ClickHouse.
//!
//! Every accepted event is written here before its hit is answered ([`Appender`]); the writer
//! reads the records back ([`Reader`]), stores them and only then lets the spool forget them. A
//! collector that crashes, is killed or stops while ClickHouse is away finds its events here
//! at the next start. The spool holds bytes only: what a record means is the sink's business.
//!
//! On disk, in `[spool] dir`:
//! - `NNNNNNNNNNNNNNNNNNNN.seg`: segment files in order, each a header and records
//!   ([`frame`]). One is active (appended to); the others are sealed. A new process never
//!   appends to a segment of an earlier one.
//! - `cursor`: how far the writer got (`seq offset`); a segment wholly before it is deleted.
//! - `instance`: a random id made once, so that the batch ids of two spools never collide.
//! - `lock`: held (`flock`) by the one process using the directory.

pub mod appender;
pub mod frame;
pub mod reader;

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

pub use appender::Appender;
pub use reader::{Batch, Reader};

use crate::config::SpoolConfig;

/// First bytes of every segment file: a format name and version.
pub const SEGMENT_MAGIC: &[u8; 16] = b"tally-spool-v1\n\0";

/// Why the spool cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The directory is used by another process.
    #[error("the spool directory {0} is in use by another tally process")]
    Locked(PathBuf),
    /// A file could not be made or read.
    #[error("spool directory {dir}: {source}")]
    Io {
        /// The directory.
        dir: PathBuf,
        /// What failed.
        source: io::Error,
    },
}

/// State the appender and the reader share.
#[derive(Debug)]
pub(crate) struct Shared {
    dir: PathBuf,
    /// Bytes of all segment files.
    bytes: AtomicU64,
    /// Number of segment files.
    segments: AtomicU64,
    /// Damaged bytes skipped while reading.
    skipped: AtomicU64,
    /// The active segment and how far it is written: the reader reads no further.
    head: Mutex<Head>,
    /// Woken when records are appended.
    appended: tokio::sync::Notify,
    _lock: File,
}

/// The active segment's number and written length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    seq: u64,
    len: u64,
}

impl Shared {
    fn head(&self) -> Head {
        *self.head.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn set_head(&self, head: Head) {
        *self.head.lock().unwrap_or_else(|p| p.into_inner()) = head;
    }
}

/// What the spool holds, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Bytes on disk.
    pub bytes: u64,
    /// Segment files.
    pub segments: u64,
    /// Damaged bytes skipped since the start.
    pub skipped: u64,
}

/// The spool's identity, for ids of what it writes elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance(pub String);

/// Opens (creating it if needed) the spool in `dir`: takes its lock, reads the cursor, forgets
/// segments wholly before it, and begins a new active segment after the last one. Leftover
/// segments are read first, except those last written more than `max_age` ago: every event in
/// them is older than the raw events' retention (`[retention] raw_days`), so storing them would
/// keep raw data longer than promised (the pruner would drop them at once).
pub fn open(
    dir: &Path,
    cfg: &SpoolConfig,
    max_age: std::time::Duration,
) -> Result<(Appender, Reader, Instance), OpenError> {
    let io_err = |source| OpenError::Io {
        dir: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io_err)?;
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("lock"))
        .map_err(io_err)?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Err(OpenError::Locked(dir.into())),
        Err(std::fs::TryLockError::Error(e)) => return Err(io_err(e)),
    }
    let instance = instance_id(dir).map_err(io_err)?;
    let cursor = reader::read_cursor(dir).map_err(io_err)?;
    let mut leftover = Vec::new();
    let mut bytes = 0;
    // Numbers keep rising over deleted segments too: a batch's name must never come back.
    let mut last_seq = 0;
    for (seq, path) in list_segments(dir).map_err(io_err)? {
        last_seq = seq;
        if cursor.is_some_and(|c| seq < c.seq) {
            // Wholly written before the last stop; its deletion was interrupted.
            std::fs::remove_file(&path).map_err(io_err)?;
            continue;
        }
        let meta = std::fs::metadata(&path).map_err(io_err)?;
        let age = meta
            .modified()
            .ok()
            .and_then(|m| m.elapsed().ok())
            .unwrap_or_default();
        if age > max_age {
            tracing::warn!(
                segment = seq,
                bytes = meta.len(),
                age_days = age.as_secs() / 86_400,
                "spool: deleting a segment older than the raw events' retention unstored"
            );
            std::fs::remove_file(&path).map_err(io_err)?;
            continue;
        }
        bytes += meta.len();
        leftover.push(seq);
    }
    let next = (last_seq + 1).max(cursor.map_or(1, |c| c.seq + 1));
    let shared = std::sync::Arc::new(Shared {
        dir: dir.to_path_buf(),
        bytes: AtomicU64::new(bytes),
        segments: AtomicU64::new(leftover.len() as u64),
        skipped: AtomicU64::new(0),
        head: Mutex::new(Head { seq: next, len: 0 }),
        appended: tokio::sync::Notify::new(),
        _lock: lock,
    });
    let appender = Appender::open(shared.clone(), next, cfg).map_err(io_err)?;
    let sync = cfg.fsync == crate::config::FsyncMode::Always;
    let reader = Reader::new(shared, leftover, cursor, sync);
    Ok((appender, reader, instance))
}

/// Usage of the spool in `shared`.
pub(crate) fn usage(shared: &Shared) -> Usage {
    Usage {
        bytes: shared.bytes.load(Ordering::Relaxed),
        segments: shared.segments.load(Ordering::Relaxed),
        skipped: shared.skipped.load(Ordering::Relaxed),
    }
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.seg"))
}

/// Segment files in `dir`, in order.
fn list_segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let seq = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".seg"))
            .filter(|n| n.len() == 20)
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(seq) = seq {
            out.push((seq, path));
        }
    }
    out.sort();
    Ok(out)
}

/// The spool's random id, made on first use.
fn instance_id(dir: &Path) -> io::Result<Instance> {
    let path = dir.join("instance");
    if let Ok(mut f) = File::open(&path) {
        let mut s = String::new();
        f.read_to_string(&mut s)?;
        let s = s.trim();
        if s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(Instance(s.to_string()));
        }
    }
    let mut raw = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut raw)
        .map_err(|_| io::Error::other("no randomness for the spool's id"))?;
    let id: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let tmp = dir.join("instance.tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(id.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    Ok(Instance(id))
}

#[cfg(test)]
mod tests;
