//! The spool as a whole: append, read back, commit, restart.

use std::path::Path;

use super::frame;
use super::*;
use crate::config::{FsyncMode, SpoolConfig};

const WEEK: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);

fn cfg(max_bytes: u64, segment_bytes: u64) -> SpoolConfig {
    SpoolConfig {
        dir: None,
        fsync: FsyncMode::Interval,
        fsync_interval_ms: 1000,
        max_bytes,
        segment_bytes,
    }
}

fn frames(payloads: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in payloads {
        frame::encode(&mut out, p.as_bytes());
    }
    out
}

/// Reads and commits everything available; the payloads in order.
fn drain(reader: &mut Reader, per_batch: usize) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let mut batch = Batch::default();
        reader.fill(&mut batch, per_batch).unwrap();
        out.extend(
            batch
                .records()
                .map(|r| String::from_utf8(r.to_vec()).unwrap()),
        );
        let progressed = !batch.is_empty() || batch.segment_done;
        reader.commit(&batch).unwrap();
        if !progressed {
            return out;
        }
    }
}

fn segments(dir: &Path) -> usize {
    list_segments(dir).unwrap().len()
}

#[test]
fn records_come_back_in_order_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let (app, mut reader, _) = open(dir.path(), &cfg(1 << 20, 65_536), WEEK).unwrap();
    let payload = "x".repeat(1000);
    let mut sent = Vec::new();
    for i in 0..300 {
        let p = format!("{i}:{payload}");
        app.append(&frames(&[&p])).unwrap();
        sent.push(p);
    }
    assert!(segments(dir.path()) >= 4, "rotated at 64 KiB");
    assert_eq!(drain(&mut reader, 7), sent);
    // Sealed segments were deleted as they were read; the active one stays.
    assert_eq!(segments(dir.path()), 1);
    let only = &list_segments(dir.path()).unwrap()[0].1;
    assert_eq!(app.usage().bytes, std::fs::metadata(only).unwrap().len());
}

#[test]
fn a_request_is_one_append_and_the_cap_refuses_it_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (app, mut reader, _) = open(dir.path(), &cfg(140_000, 65_536), WEEK).unwrap();
    let big = "y".repeat(10_000);
    let mut n = 0;
    loop {
        match app.append(&frames(&[&big, &big])) {
            Ok(_) => n += 2,
            Err(appender::AppendError::Full) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!((10..=14).contains(&n), "{n}");
    assert!(app.usage().bytes <= 140_000);
    assert_eq!(drain(&mut reader, 1000).len(), n);
    // Reading freed the sealed segments: there is room again.
    app.append(&frames(&[&big])).unwrap();
}

#[test]
fn a_restart_reads_leftovers_first_and_resumes_at_the_cursor() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (app, mut reader, _) = open(dir.path(), &cfg(1 << 20, 65_536), WEEK).unwrap();
        app.append(&frames(&["a", "b", "c"])).unwrap();
        let mut batch = Batch::default();
        reader.fill(&mut batch, 2).unwrap();
        assert_eq!(batch.len(), 2);
        reader.commit(&batch).unwrap();
        // "c" read but not stored: the process dies here.
        let mut batch = Batch::default();
        reader.fill(&mut batch, 2).unwrap();
        assert_eq!(batch.len(), 1);
    }
    let (app, mut reader, _) = open(dir.path(), &cfg(1 << 20, 65_536), WEEK).unwrap();
    app.append(&frames(&["d"])).unwrap();
    assert_eq!(drain(&mut reader, 10), ["c", "d"]);
    assert_eq!(segments(dir.path()), 1);
}

#[test]
fn the_same_bytes_read_again_make_a_batch_of_the_same_name() {
    let dir = tempfile::tempdir().unwrap();
    let first = {
        let (app, mut reader, _) = open(dir.path(), &cfg(1 << 20, 65_536), WEEK).unwrap();
        app.append(&frames(&["a", "b"])).unwrap();
        let mut batch = Batch::default();
        reader.fill(&mut batch, 10).unwrap();
        (batch.seq, batch.start, batch.len())
    };
    let (_app, mut reader, _) = open(dir.path(), &cfg(1 << 20, 65_536), WEEK).unwrap();
    let mut batch = Batch::default();
    reader.fill(&mut batch, 10).unwrap();
    assert_eq!((batch.seq, batch.start, batch.len()), first);
}

#[test]
fn a_torn_tail_is_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (app, _reader, _) = open(dir.path(), &cfg(1 << 20, 65_536), WEEK).unwrap();
        app.append(&frames(&["good1", "good2"])).unwrap();
    }
    // The last record cut short, as a crash in the middle of a write leaves it, then garbage.
    let path = list_segments(dir.path()).unwrap()[0].1.clone();
    let len = std::fs::metadata(&path).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len - 2).unwrap();
    let (_app, mut reader, _) = open(dir.path(), &cfg(1 << 20, 65_536), WEEK).unwrap();
    assert_eq!(drain(&mut reader, 10), ["good1"]);
    assert_eq!(reader.usage().skipped, (frame::HEADER + 5 - 2) as u64);
    assert_eq!(
        segments(dir.path()),
        1,
        "the damaged segment is gone once read"
    );
}

#[test]
fn damage_in_the_middle_loses_only_the_damaged_record() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (app, _reader, _) = open(dir.path(), &cfg(1 << 20, 65_536), WEEK).unwrap();
        app.append(&frames(&["one", "two", "three"])).unwrap();
    }
    let path = list_segments(dir.path()).unwrap()[0].1.clone();
    let mut bytes = std::fs::read(&path).unwrap();
    let second = SEGMENT_MAGIC.len() + frame::HEADER + 3;
    bytes[second + frame::HEADER] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let (_app, mut reader, _) = open(dir.path(), &cfg(1 << 20, 65_536), WEEK).unwrap();
    assert_eq!(drain(&mut reader, 10), ["one", "three"]);
    assert_eq!(reader.usage().skipped, (frame::HEADER + 3) as u64);
}

#[test]
fn a_damaged_cursor_or_header_never_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (app, _reader, _) = open(dir.path(), &cfg(1 << 20, 65_536), WEEK).unwrap();
        app.append(&frames(&["kept"])).unwrap();
    }
    std::fs::write(dir.path().join("cursor"), "nonsense").unwrap();
    std::fs::write(segment_path(dir.path(), 1_000_000), "not a segment at all").unwrap();
    let (_app, mut reader, _) = open(dir.path(), &cfg(1 << 20, 65_536), WEEK).unwrap();
    assert_eq!(drain(&mut reader, 10), ["kept"]);
}

#[test]
fn one_process_per_directory() {
    let dir = tempfile::tempdir().unwrap();
    let _held = open(dir.path(), &cfg(1 << 20, 65_536), WEEK).unwrap();
    match open(dir.path(), &cfg(1 << 20, 65_536), WEEK) {
        Err(OpenError::Locked(d)) => assert_eq!(d, dir.path()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_instance_id_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let a = open(dir.path(), &cfg(1 << 20, 65_536), WEEK).unwrap().2;
    let b = open(dir.path(), &cfg(1 << 20, 65_536), WEEK).unwrap().2;
    assert_eq!(a, b);
    assert_eq!(a.0.len(), 32);
}

#[tokio::test]
async fn always_waits_for_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(1 << 20, 65_536);
    c.fsync = FsyncMode::Always;
    let (app, _reader, _) = open(dir.path(), &c, WEEK).unwrap();
    let app = std::sync::Arc::new(app);
    let syncer = tokio::spawn(app.clone().run_syncer());
    let at = app.append(&frames(&["x"])).unwrap();
    app.durable(at).await.unwrap();
    syncer.abort();
}

#[test]
fn a_batch_begun_before_a_stop_is_read_again_exactly_and_marked() {
    let dir = tempfile::tempdir().unwrap();
    let first = {
        let (app, mut reader, _) = open(dir.path(), &cfg(1 << 20, 65_536), WEEK).unwrap();
        app.append(&frames(&["a", "b"])).unwrap();
        let mut batch = Batch::default();
        reader.fill(&mut batch, 10).unwrap();
        assert!(!batch.in_doubt);
        reader.intend(&batch).unwrap();
        // More arrives; then the process dies before the commit.
        app.append(&frames(&["c"])).unwrap();
        (batch.seq, batch.start, batch.end)
    };
    let (_app, mut reader, _) = open(dir.path(), &cfg(1 << 20, 65_536), WEEK).unwrap();
    let mut batch = Batch::default();
    reader.fill(&mut batch, 10).unwrap();
    assert!(batch.in_doubt);
    assert!(batch.is_full(10), "ends where the earlier one ended");
    assert_eq!((batch.seq, batch.start, batch.end), first);
    assert_eq!(batch.len(), 2);
    reader.commit(&batch).unwrap();
    let mut batch = Batch::default();
    reader.fill(&mut batch, 10).unwrap();
    assert!(!batch.in_doubt);
    assert_eq!(batch.records().collect::<Vec<_>>(), [&b"c"[..]]);
}

#[test]
fn segments_older_than_the_retention_are_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (app, _reader, _) = open(dir.path(), &cfg(1 << 20, 65_536), WEEK).unwrap();
        app.append(&frames(&["old"])).unwrap();
    }
    let path = list_segments(dir.path()).unwrap()[0].1.clone();
    let eight_days = std::time::SystemTime::now() - std::time::Duration::from_secs(8 * 86_400);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(eight_days)
        .unwrap();
    let (_app, mut reader, _) = open(dir.path(), &cfg(1 << 20, 65_536), WEEK).unwrap();
    assert!(drain(&mut reader, 10).is_empty());
    assert!(!path.exists());
}
