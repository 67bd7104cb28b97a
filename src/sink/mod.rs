//! The bounded queue between the request path and ClickHouse, and the batch writer behind it.
//!
//! The request path only ever calls [`Sink::enqueue`], which never waits: it either reserves
//! room for all events of a request at once (so a bulk request is stored whole or not at all)
//! or refuses. The writer drains the queue in batches, flushing at `batch_size` events or
//! `flush_ms` after the first waiting event, whichever comes first.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::SinkConfig;
use crate::event::Event;
use crate::metrics::Metrics;
use crate::store::Client;

/// How often a filling batch takes what has arrived: bounds the added latency of a flush.
const FILL_TICK: Duration = Duration::from_millis(5);

/// The queue is full: ClickHouse is slower than the traffic, or down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull;

/// Sending side of the queue, shared by all connections.
#[derive(Clone)]
pub struct Sink {
    tx: mpsc::Sender<Event>,
    metrics: Arc<Metrics>,
}

impl Sink {
    /// Queues all `events`, or none of them.
    pub fn enqueue(&self, events: Vec<Event>) -> Result<(), QueueFull> {
        if events.is_empty() {
            return Ok(());
        }
        let permits = self
            .tx
            .try_reserve_many(events.len())
            .map_err(|_| QueueFull)?;
        let n = events.len();
        for (permit, event) in permits.zip(events) {
            permit.send(event);
        }
        self.metrics.accepted.inc_by(n as u64);
        self.metrics.queued.inc_by(n as i64);
        Ok(())
    }

    /// Whether `n` events would fit now: lets a large bulk request be refused before the work
    /// of validating and enriching it. [`Sink::enqueue`] still decides.
    pub fn has_room(&self, n: usize) -> bool {
        self.tx.capacity() >= n
    }
}

/// The writer task. Awaiting [`Writer::finish`] closes the queue and flushes what it holds.
pub struct Writer {
    handle: JoinHandle<()>,
    shutting_down: watch::Sender<bool>,
}

impl Writer {
    /// Tells the writer that the queue is closing: it stops retrying a failed batch forever
    /// and waits until everything queued is written (or given up on).
    pub async fn finish(self) {
        let _ = self.shutting_down.send(true);
        let _ = self.handle.await;
    }
}

/// Creates the queue and starts the writer on `client`'s `events` table.
pub fn start(client: Client, cfg: &SinkConfig, metrics: Arc<Metrics>) -> (Sink, Writer) {
    let (tx, rx) = mpsc::channel(cfg.queue_capacity);
    let (shutting_down, shutdown_rx) = watch::channel(false);
    let handle = tokio::spawn(run(
        rx,
        client,
        cfg.batch_size,
        cfg.flush_interval(),
        metrics.clone(),
        shutdown_rx,
    ));
    (
        Sink { tx, metrics },
        Writer {
            handle,
            shutting_down,
        },
    )
}

async fn run(
    mut rx: mpsc::Receiver<Event>,
    client: Client,
    batch_size: usize,
    flush_every: Duration,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut batch = Vec::with_capacity(batch_size);
    loop {
        let n = tokio::select! {
            n = rx.recv_many(&mut batch, batch_size) => n,
            // Closing refuses new events (the request path answers 503) but keeps what is
            // queued, which the following iterations drain.
            _ = shutdown.wait_for(|s| *s), if !rx.is_closed() => {
                rx.close();
                continue;
            }
        };
        if n == 0 {
            break; // closed and drained
        }
        let deadline = Instant::now() + flush_every;
        while batch.len() < batch_size && !rx.is_closed() {
            // Drain in short ticks instead of awaiting each event: a parked receiver is woken,
            // across threads, by every single send, and the request path pays for that wake
            // (measured: 8.0 -> 5.2 us per tracked hit, docs/performance.md).
            let tick = (Instant::now() + FILL_TICK).min(deadline);
            tokio::select! {
                _ = tokio::time::sleep_until(tick) => {}
                _ = shutdown.wait_for(|s| *s) => rx.close(),
            }
            while batch.len() < batch_size {
                match rx.try_recv() {
                    Ok(event) => batch.push(event),
                    Err(_) => break,
                }
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        write_with_retry(&client, &batch, &metrics, &shutdown).await;
        metrics.queued.dec_by(batch.len() as i64);
        batch.clear();
    }
}

/// Writes one batch, retrying with backoff while ClickHouse fails. A batch below ClickHouse's
/// block size is inserted atomically, so a retry never leaves half a batch behind. Once
/// shutting down, gives up after a few attempts so that a dead server cannot hold tally forever.
async fn write_with_retry(
    client: &Client,
    batch: &[Event],
    metrics: &Metrics,
    shutdown: &watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(200);
    let mut attempts_in_shutdown = 0;
    loop {
        match write(client, batch).await {
            Ok(()) => {
                metrics.written.inc_by(batch.len() as u64);
                return;
            }
            Err(e) => {
                metrics.write_errors.inc();
                tracing::warn!(error = %e, events = batch.len(), "writing events to ClickHouse failed; retrying");
            }
        }
        if *shutdown.borrow() {
            attempts_in_shutdown += 1;
            if attempts_in_shutdown >= 5 {
                metrics.lost.inc_by(batch.len() as u64);
                tracing::error!(
                    events = batch.len(),
                    "ClickHouse unreachable at shutdown; events lost"
                );
                return;
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

async fn write(client: &Client, batch: &[Event]) -> Result<(), clickhouse::error::Error> {
    let mut insert = client.insert::<Event>("events").await?;
    for event in batch {
        insert.write(event).await?;
    }
    insert.end().await
}
