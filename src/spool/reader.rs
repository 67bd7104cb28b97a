//! Reading records back, in order, in batches, and forgetting them once the writer has stored
//! them.
//!
//! A batch never spans two segments, and it is named by where it begins (segment, offset): the
//! same bytes read again after a restart form a batch of the same name, which is what lets
//! the writer recognise a batch ClickHouse already has.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::frame::{self, HEADER, MAX_PAYLOAD};
use super::{SEGMENT_MAGIC, Shared, Usage, segment_path};

/// Bytes of records a batch holds at most (beside its record count): bounds the writer's memory
/// whatever the records' sizes.
pub const MAX_BATCH_BYTES: usize = 16 << 20;

/// Records read from one segment, from `start` to `end`.
#[derive(Debug, Default)]
pub struct Batch {
    /// The segment.
    pub seq: u64,
    /// Offset of the first record.
    pub start: u64,
    /// Offset after the last record (and any damage skipped).
    pub end: u64,
    /// The segment is sealed and read to its end: once this batch is stored, it can go.
    pub segment_done: bool,
    /// An earlier process began storing exactly this batch and may have finished: the writer
    /// must look before it inserts.
    pub in_doubt: bool,
    /// The batch must end here (the extent of the batch in doubt).
    stop_at: Option<u64>,
    data: Vec<u8>,
    records: Vec<Range<usize>>,
}

impl Batch {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }
    /// Whether it holds no record.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
    /// The records' payloads, in order.
    pub fn records(&self) -> impl Iterator<Item = &[u8]> {
        self.records.iter().map(|r| &self.data[r.clone()])
    }
    /// Whether no further record fits.
    pub fn is_full(&self, max_records: usize) -> bool {
        self.records.len() >= max_records
            || self.data.len() + HEADER + MAX_PAYLOAD > room()
            || self.stop_at.is_some_and(|e| self.end >= e)
    }
}

fn room() -> usize {
    MAX_BATCH_BYTES.max(HEADER + MAX_PAYLOAD)
}

/// The reading end of the spool: one, owned by the writer.
#[derive(Debug)]
pub struct Reader {
    shared: Arc<Shared>,
    /// Segments left by an earlier process, after the current one.
    leftover: VecDeque<u64>,
    seq: u64,
    offset: u64,
    file: Option<File>,
    /// The batch an earlier process was storing when it stopped: segment and end.
    pending: Option<(u64, u64)>,
    /// Force the cursor to the disk (`fsync = "always"`).
    sync: bool,
}

impl Reader {
    pub(super) fn new(
        shared: Arc<Shared>,
        leftover: Vec<u64>,
        cursor: Option<Cursor>,
        sync: bool,
    ) -> Self {
        let mut leftover: VecDeque<u64> = leftover.into();
        let seq = leftover.pop_front().unwrap_or_else(|| shared.head().seq);
        let (offset, pending) = match cursor {
            Some(c) if c.seq == seq => (
                c.offset,
                (c.pending_end > c.offset).then_some((seq, c.pending_end)),
            ),
            _ => (0, None),
        };
        Reader {
            shared,
            leftover,
            seq,
            offset,
            file: None,
            pending,
            sync,
        }
    }

    /// What the spool holds.
    pub fn usage(&self) -> Usage {
        super::usage(&self.shared)
    }

    /// Segments and bytes left by an earlier process, still to be written.
    pub fn backlog(&self) -> (usize, u64) {
        let head = self.shared.head();
        let bytes = self.shared.bytes.load(Ordering::Relaxed);
        let n = self.leftover.len() + usize::from(self.seq != head.seq);
        (n, bytes.saturating_sub(head.len))
    }

    /// Waits until records may have been appended since the last look.
    pub async fn appended(&self) {
        self.shared.appended.notified().await;
    }

    /// Adds to `batch` the records that follow it, up to `max_records`: a batch begun on an
    /// earlier call grows only within its segment. Blocking (file reads): call it off the
    /// async workers.
    pub fn fill(&mut self, batch: &mut Batch, max_records: usize) -> io::Result<()> {
        if batch.is_empty() && !batch.segment_done {
            batch.seq = self.seq;
            batch.start = self.offset;
            batch.end = self.offset;
            if let Some((seq, end)) = self.pending
                && seq == self.seq
                && self.offset < end
            {
                batch.in_doubt = true;
                batch.stop_at = Some(end);
            }
        }
        if batch.seq != self.seq || batch.segment_done {
            return Ok(());
        }
        let head = self.shared.head();
        let sealed = self.seq != head.seq;
        if self.file.is_none() {
            match File::open(segment_path(&self.shared.dir, self.seq)) {
                Ok(f) => self.file = Some(f),
                Err(e) if e.kind() == io::ErrorKind::NotFound && sealed => {
                    // Gone (removed by hand): nothing to read.
                    batch.segment_done = true;
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        let Some(file) = &self.file else {
            return Ok(());
        };
        let limit = if sealed {
            file.metadata()?.len()
        } else {
            head.len
        };
        if self.offset == 0 {
            self.offset = self.skip_header(file)?;
            batch.start = self.offset;
            batch.end = self.offset;
        }
        // The batch in doubt is read to its recorded end, no further, so that it is the same batch.
        let stop = batch.stop_at.map_or(limit, |e| e.min(limit));
        while !batch.is_full(max_records) && self.offset < stop {
            let want = (stop - self.offset).min((room() - batch.data.len()) as u64) as usize;
            let old = batch.data.len();
            batch.data.resize(old + want, 0);
            let got = read_full_at(file, &mut batch.data[old..], self.offset)?;
            batch.data.truncate(old + got);
            let last = sealed && self.offset + got as u64 >= limit;
            let scan = frame::scan(&batch.data[old..], max_records - batch.records.len(), last);
            batch
                .records
                .extend(scan.records.iter().map(|r| r.start + old..r.end + old));
            batch.data.truncate(old + scan.consumed);
            self.offset += scan.consumed as u64;
            batch.end = self.offset;
            if scan.skipped > 0 {
                self.damaged(scan.skipped as u64);
            }
            let stopped_short = batch.records.len() < max_records && scan.consumed < got;
            if stopped_short && last {
                // A sealed segment ends in an incomplete or damaged record: a torn tail.
                self.damaged(limit - self.offset);
                self.offset = limit;
            }
            if scan.consumed == 0 {
                break;
            }
        }
        batch.end = self.offset;
        batch.segment_done = sealed && self.offset >= limit;
        Ok(())
    }

    /// Records that `batch` is about to be stored, before the first attempt: if this process
    /// stops before [`Reader::commit`], the next one reads exactly this batch again and knows
    /// it may already be stored.
    pub fn intend(&mut self, batch: &Batch) -> io::Result<()> {
        write_cursor(
            &self.shared.dir,
            Cursor {
                seq: batch.seq,
                offset: batch.start,
                pending_end: batch.end,
            },
            self.sync,
        )
    }

    /// Forgets `batch`, which is stored: moves the cursor past it and deletes its segment when
    /// it was the segment's last.
    pub fn commit(&mut self, batch: &Batch) -> io::Result<()> {
        if batch.seq != self.seq {
            return Ok(());
        }
        self.pending = None;
        if batch.segment_done {
            let path = segment_path(&self.shared.dir, self.seq);
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            self.file = None;
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    self.shared.bytes.fetch_sub(
                        size.min(self.shared.bytes.load(Ordering::Relaxed)),
                        Ordering::Relaxed,
                    );
                    self.shared.segments.fetch_sub(1, Ordering::Relaxed);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            self.seq = self
                .leftover
                .pop_front()
                .unwrap_or_else(|| (self.seq + 1).min(self.shared.head().seq));
            self.offset = 0;
        }
        let offset = if batch.segment_done { 0 } else { batch.end };
        let cursor = Cursor {
            seq: self.seq,
            offset,
            pending_end: 0,
        };
        write_cursor(&self.shared.dir, cursor, false)
    }

    fn damaged(&self, bytes: u64) {
        self.shared.skipped.fetch_add(bytes, Ordering::Relaxed);
        tracing::warn!(
            segment = self.seq,
            offset = self.offset,
            bytes,
            "spool: skipped damaged bytes (a torn write or a damaged file)"
        );
    }

    /// Checks a segment's header; the offset of its first record. A segment that does not begin
    /// with the header is read as damage.
    fn skip_header(&self, file: &File) -> io::Result<u64> {
        let mut head = [0u8; SEGMENT_MAGIC.len()];
        let got = read_full_at(file, &mut head, 0)?;
        if got > 0 && head[..got] != SEGMENT_MAGIC[..got] {
            tracing::warn!(segment = self.seq, "spool: segment header damaged");
            self.shared.skipped.fetch_add(got as u64, Ordering::Relaxed);
        }
        Ok(got as u64)
    }
}

/// Reads until `buf` is full or the end of the file.
fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

const CURSOR_TAG: &str = "tally-spool-cursor-v1";

/// How far the writer got: everything before `offset` of segment `seq` is stored. A
/// `pending_end` beyond `offset` names the batch `[offset, pending_end)` it was storing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Cursor {
    pub seq: u64,
    pub offset: u64,
    pub pending_end: u64,
}

/// The cursor in `dir`.
pub(super) fn read_cursor(dir: &Path) -> io::Result<Option<Cursor>> {
    let text = match std::fs::read_to_string(dir.join("cursor")) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let words: Vec<&str> = text.split_whitespace().collect();
    let num = |i: usize| words.get(i).and_then(|w| w.parse::<u64>().ok());
    let parsed = match (words.first(), num(1), num(2), num(3)) {
        (Some(&CURSOR_TAG), Some(seq), Some(offset), Some(pending_end)) => Some(Cursor {
            seq,
            offset,
            pending_end,
        }),
        _ => None,
    };
    if parsed.is_none() {
        // Damaged: reading from the start of the oldest segment stores nothing twice only if
        // no batch was in doubt; say so.
        tracing::warn!(
            "spool: cursor file unreadable; reading the spool from its start (batches stored \
             before may be stored again)"
        );
    }
    Ok(parsed)
}

/// Replaces the cursor. Forced to the disk only with `sync` (`fsync = "always"`, before an
/// insert): otherwise a power loss can leave it behind, which costs rereading (see
/// docs/reliability.md).
fn write_cursor(dir: &Path, c: Cursor, sync: bool) -> io::Result<()> {
    let tmp = dir.join("cursor.tmp");
    let mut f = File::create(&tmp)?;
    writeln!(f, "{CURSOR_TAG} {} {} {}", c.seq, c.offset, c.pending_end)?;
    if sync {
        f.sync_data()?;
    }
    drop(f);
    std::fs::rename(tmp, dir.join("cursor"))?;
    if sync {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}
