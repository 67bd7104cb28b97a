//! The writer: reads the spool in batches and stores them in ClickHouse, each once.
//!
//! A batch is flushed at `batch_size` events, `flush_ms` after its first event, at the end of a
//! segment, or at shutdown. A failed insert is retried until it succeeds, with ClickHouse
//! probed every half second meanwhile so that writing resumes within about a second of its
//! return; before a retry the batch is looked up ([`crate::store::insert`]), so an insert whose
//! answer was lost is not stored twice. Only a stored batch is forgotten by the spool.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::Sink;
use crate::config::Config;
use crate::event::Event;
use crate::metrics::{ErrorKind, Metrics};
use crate::spool::{self, Appender, Batch, Instance, Reader};
use crate::status::WriteStatus;
use crate::store::Client;
use crate::store::insert::{self, BatchName, Failure};

/// How often a filling batch looks for more records: bounds the added latency of a flush
/// without waking the writer for every hit (measured: a wake per hit cost the request path
/// about 3 us, docs/performance.md).
const FILL_TICK: Duration = Duration::from_millis(5);
/// How often an idle writer looks at the spool without being woken (a sealed leftover segment
/// appears without an append).
const IDLE_TICK: Duration = Duration::from_millis(200);
/// Between probes of a ClickHouse that failed.
const PROBE_EVERY: Duration = Duration::from_millis(500);
/// Each probe, lookup and kill.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The running writer. [`Writer::finish`] stops it in bounded time.
pub struct Writer {
    handle: JoinHandle<()>,
    syncer: JoinHandle<()>,
    shutting_down: watch::Sender<bool>,
    appender: Arc<Appender>,
    timeout: Duration,
    metrics: Arc<Metrics>,
}

impl Writer {
    /// Stops accepting work: writes what the spool holds for at most `[sink]
    /// shutdown_timeout_secs`, then stops (an insert in flight is abandoned; the next start
    /// recognises it if ClickHouse stored it) and forces the spool to the disk. Nothing
    /// acknowledged is lost: what was not written is read at the next start.
    pub async fn finish(mut self) {
        let _ = self.shutting_down.send(true);
        let finished = tokio::time::timeout(self.timeout, &mut self.handle).await;
        if finished.is_err() {
            self.handle.abort();
            let _ = (&mut self.handle).await;
        }
        self.syncer.abort();
        let appender = self.appender.clone();
        let flushed = tokio::task::spawn_blocking(move || appender.flush()).await;
        let usage = self.appender.usage();
        self.metrics.spool_bytes.set(usage.bytes as i64);
        if let Ok(Err(e)) = flushed {
            tracing::error!(error = %e, "spool: final fdatasync failed");
        }
        if finished.is_err() {
            tracing::warn!(
                after_secs = self.timeout.as_secs(),
                spool_bytes = usage.bytes,
                "ClickHouse did not take everything before the shutdown timeout; the rest stays \
                 in the spool and is written at the next start"
            );
        } else {
            tracing::info!("every spooled event is stored");
        }
    }
}

/// Opens the spool, and starts the writer on `client`'s `events` table and the syncer that
/// forces the spool to the disk. Fails if the spool cannot be opened (locked, unwritable).
pub fn start(
    client: Client,
    config: &Config,
    metrics: Arc<Metrics>,
    status: Arc<WriteStatus>,
) -> Result<(Sink, Writer), spool::OpenError> {
    let dir = config.spool_dir();
    let max_age = Duration::from_secs(u64::from(config.retention.raw_days) * 86_400);
    let (appender, reader, instance) = spool::open(&dir, &config.spool, max_age)?;
    let appender = Arc::new(appender);
    let (backlog_segments, backlog_bytes) = reader.backlog();
    if backlog_segments > 0 {
        tracing::info!(
            dir = %dir.display(),
            segments = backlog_segments,
            bytes = backlog_bytes,
            "spool: events left by the last run are written first"
        );
    }
    let (shutting_down, shutdown_rx) = watch::channel(false);
    let writing = Writing {
        client,
        instance,
        batch_size: config.sink.batch_size,
        flush_every: config.sink.flush_interval(),
        insert_timeout: config.sink.insert_timeout(),
        metrics: metrics.clone(),
        status: status.clone(),
        appender: appender.clone(),
        dedup_token: false,
    };
    let handle = tokio::spawn(writing.run(reader, shutdown_rx));
    let syncer = tokio::spawn(appender.clone().run_syncer());
    Ok((
        Sink::new(appender.clone(), metrics.clone(), status),
        Writer {
            handle,
            syncer,
            shutting_down,
            appender,
            timeout: config.sink.shutdown_timeout(),
            metrics,
        },
    ))
}

struct Writing {
    client: Client,
    instance: Instance,
    batch_size: usize,
    flush_every: Duration,
    insert_timeout: Duration,
    metrics: Arc<Metrics>,
    status: Arc<WriteStatus>,
    /// For the spool's size while the writer waits for ClickHouse.
    appender: Arc<Appender>,
    /// ClickHouse >= 22 takes `insert_deduplication_token`.
    dedup_token: bool,
}

/// An outage of ClickHouse as the writer saw it, for the log line at its end.
struct Outage {
    since: Instant,
    /// `tally_hits_accepted_total` when it began: what was spooled meanwhile is the difference.
    accepted_before: u64,
    /// The last failure logged, so that a different one is logged too (at warn), not only the first.
    last_logged: String,
}

impl Writing {
    async fn run(mut self, mut reader: Reader, mut shutdown: watch::Receiver<bool>) {
        if let Ok(major) = insert::major_version(&self.client, CALL_TIMEOUT).await {
            self.dedup_token = major >= 22;
        }
        let mut batch = Batch::default();
        let mut first_seen: Option<Instant> = None;
        let mut outage: Option<Outage> = None;
        loop {
            let stopping = *shutdown.borrow();
            let (r, b, filled) = tokio::task::spawn_blocking({
                let n = self.batch_size;
                move || {
                    let result = reader.fill(&mut batch, n);
                    (reader, batch, result)
                }
            })
            .await
            .expect("the spool reader does not panic");
            reader = r;
            batch = b;
            self.gauges(&reader);
            if let Err(e) = filled {
                tracing::error!(error = %e, "spool: reading failed; retrying in a second");
                if stopping {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            if batch.is_empty() && !batch.segment_done {
                if stopping {
                    return; // everything is stored
                }
                tokio::select! {
                    () = reader.appended() => {}
                    _ = shutdown.changed() => {}
                    () = tokio::time::sleep(IDLE_TICK) => {}
                }
                continue;
            }
            let first = *first_seen.get_or_insert_with(Instant::now);
            let due = first + self.flush_every;
            let ready = batch.segment_done
                || batch.is_full(self.batch_size)
                || stopping
                || Instant::now() >= due;
            if !ready {
                tokio::select! {
                    () = tokio::time::sleep_until((Instant::now() + FILL_TICK).min(due)) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            if !batch.is_empty() {
                let (r, b, intended) = tokio::task::spawn_blocking(move || {
                    let result = reader.intend(&batch);
                    (reader, batch, result)
                })
                .await
                .expect("the spool reader does not panic");
                reader = r;
                batch = b;
                if let Err(e) = intended {
                    // Storing anyway: a crash before the commit could then store it twice.
                    tracing::warn!(error = %e, "spool: could not record the batch being stored");
                }
                self.store(&batch, &mut outage).await;
            }
            let (r, committed) = tokio::task::spawn_blocking(move || {
                let result = reader.commit(&batch);
                (reader, result)
            })
            .await
            .expect("the spool reader does not panic");
            reader = r;
            if let Err(e) = committed {
                // The batch is stored; at worst it is read again and recognised as stored.
                tracing::warn!(error = %e, "spool: could not record progress");
            }
            batch = Batch::default();
            first_seen = None;
            release_memory();
        }
    }

    fn gauges(&self, reader: &Reader) {
        let usage = reader.usage();
        self.metrics.spool_bytes.set(usage.bytes as i64);
        self.metrics.spool_segments.set(usage.segments as i64);
        let counted = self.metrics.spool_damaged_bytes.get();
        if usage.skipped > counted {
            self.metrics
                .spool_damaged_bytes
                .inc_by(usage.skipped - counted);
        }
    }

    /// Stores `batch`, retrying until it is stored. Returns only then (or when aborted at the
    /// shutdown timeout).
    async fn store(&self, batch: &Batch, outage: &mut Option<Outage>) {
        let name = BatchName::new(&self.instance.0, batch.seq, batch.start);
        let days = self.decode(batch, name.id);
        let total: usize = days.values().map(Vec::len).sum();
        for (day, rows) in &days {
            // Each day is its own insert (one partition: one part, stored whole or not).
            let query_id = format!("{}-{day}", name.query_id);
            // A batch an earlier process was storing when it stopped may be stored already.
            let mut unsure = batch.in_doubt;
            loop {
                let attempt = if unsure {
                    self.settle(&name, &query_id, *day, rows).await
                } else {
                    Ok(false)
                };
                let result = match attempt {
                    Ok(true) => Ok(()),
                    Ok(false) => {
                        let started = std::time::Instant::now();
                        let r = insert::insert_day(
                            &self.client,
                            rows,
                            &query_id,
                            self.dedup_token,
                            self.insert_timeout,
                        )
                        .await;
                        if r.is_ok() {
                            self.metrics
                                .write_seconds
                                .observe(started.elapsed().as_secs_f64());
                        }
                        r
                    }
                    Err(e) => Err(e),
                };
                match result {
                    Ok(()) => break,
                    Err(e) => {
                        unsure = true;
                        self.failed(&e, outage, rows.len());
                        self.wait_for_clickhouse().await;
                    }
                }
            }
        }
        self.metrics.written.inc_by(total as u64);
        if let Some(o) = outage.take() {
            self.status.set_store_ok(true);
            let spooled = self
                .metrics
                .accepted
                .get()
                .saturating_sub(o.accepted_before);
            tracing::info!(
                after_secs = o.since.elapsed().as_secs(),
                spooled_events = spooled,
                spool_bytes = self.metrics.spool_bytes.get(),
                spool_segments = self.metrics.spool_segments.get(),
                "writing to ClickHouse resumed"
            );
        }
    }

    /// After an attempt whose outcome is unknown: stops it if it still runs, and says whether
    /// its rows are stored.
    async fn settle(
        &self,
        name: &BatchName,
        query_id: &str,
        day: u32,
        rows: &[Event],
    ) -> Result<bool, Failure> {
        insert::kill(&self.client, query_id, CALL_TIMEOUT).await?;
        let mut sites: Vec<u32> = rows.iter().map(|e| e.site_id).collect();
        sites.sort_unstable();
        sites.dedup();
        let from = day * 86_400;
        let n = insert::count_stored(
            &self.client,
            name.id,
            &sites,
            from,
            from + 86_399,
            CALL_TIMEOUT,
        )
        .await?;
        let whole = n >= rows.len() as u64;
        if whole {
            tracing::info!(
                rows = n,
                query_id,
                "an insert whose answer was lost had been stored; not inserting it again"
            );
        } else if n > 0 {
            // Only on a cluster: a Distributed insert stores each shard's share as its own
            // part, so a failure can leave some shards with theirs. Inserting the whole batch
            // again is safe there: the replicated tables drop a block they already hold
            // (same rows, same hash), so the shards that have their share keep it once.
            tracing::info!(
                rows = n,
                of = rows.len(),
                query_id,
                "an insert whose answer was lost is stored on some shards only; inserting it again (the shards that have it drop the repeat)"
            );
        }
        Ok(whole)
    }

    fn failed(&self, e: &Failure, outage: &mut Option<Outage>, rows: usize) {
        self.metrics
            .write_errors
            .get_or_create(&ErrorKind { kind: e.kind() })
            .inc();
        match outage {
            None => {
                *outage = Some(Outage {
                    since: Instant::now(),
                    accepted_before: self.metrics.accepted.get(),
                    last_logged: e.to_string(),
                });
                self.status.set_store_ok(false);
                tracing::warn!(
                    error = %e,
                    events = rows,
                    "writing to ClickHouse stopped; hits are kept in the spool and written when \
                     it answers again"
                );
            }
            // A new kind of failure is news (ClickHouse answers now, but refuses); the same
            // one repeated every half second is not.
            Some(o) if o.last_logged != e.to_string() => {
                o.last_logged = e.to_string();
                tracing::warn!(error = %e, "writing to ClickHouse still fails");
            }
            Some(_) => tracing::debug!(error = %e, "writing to ClickHouse failed again"),
        }
    }

    /// Probes ClickHouse every half second until it answers.
    async fn wait_for_clickhouse(&self) {
        loop {
            tokio::time::sleep(PROBE_EVERY).await;
            let usage = self.appender.usage();
            self.metrics.spool_bytes.set(usage.bytes as i64);
            self.metrics.spool_segments.set(usage.segments as i64);
            match insert::probe(&self.client, CALL_TIMEOUT.min(PROBE_EVERY * 2)).await {
                Ok(()) => return,
                Err(e) => {
                    self.metrics
                        .write_errors
                        .get_or_create(&ErrorKind { kind: e.kind() })
                        .inc();
                }
            }
        }
    }

    /// The batch's events, each tagged with the batch id, grouped by UTC day. A record that
    /// does not decode is skipped and counted (it cannot be stored, and must not stop the rest).
    fn decode(&self, batch: &Batch, id: u64) -> BTreeMap<u32, Vec<Event>> {
        let mut days: BTreeMap<u32, Vec<Event>> = BTreeMap::new();
        for record in batch.records() {
            match rmp_serde::from_slice::<Event>(record) {
                Ok(mut e) => {
                    e.spool_batch = id;
                    days.entry(e.ts / 86_400).or_default().push(e);
                }
                Err(err) => {
                    self.metrics.spool_bad_records.inc();
                    tracing::error!(error = %err, "spool: a record is not an event; skipped");
                }
            }
        }
        days
    }
}

/// Gives the memory of the batch just written back to the system. A batch is the largest
/// thing tally allocates (up to `batch_size` decoded events and 16 MiB of records), and glibc
/// keeps freed pages in its arenas: without this, RSS under steady load stayed at the high-water
/// mark of the batches (measured in `benches/load.rs`). Once per batch, at most a few per second.
fn release_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory of the allocator's heaps to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}
