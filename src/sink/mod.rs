//! Between the request path and ClickHouse: accepted events go into the disk spool
//! ([`crate::spool`]) before their hit is answered, and the [`writer`] stores them from there.
//!
//! The request path only calls [`Sink::enqueue`]: it encodes a request's events and appends
//! them in one write, so a bulk request is spooled whole or not at all, and never waits for
//! ClickHouse. It waits for the disk only in `fsync = "always"` ([`Sink::durable`]).

pub mod writer;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::event::Event;
use crate::metrics::Metrics;
use crate::spool::Appender;
use crate::spool::appender::{AppendError, Position};
use crate::spool::frame;
use crate::status::WriteStatus;

pub use writer::{Writer, start};

/// Why events were not accepted; the hit is answered 503.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The spool is at `[spool] max_bytes`: ClickHouse has been away long, or is too slow.
    Full,
    /// The spool cannot be written (directory gone, disk full, I/O error).
    Unwritable,
}

impl Refused {
    /// The reason label of `tally_requests_rejected_total`.
    pub fn reason(self) -> &'static str {
        match self {
            Refused::Full => "spool_full",
            Refused::Unwritable => "spool_unwritable",
        }
    }
    /// The one-line answer to the client.
    pub fn message(self) -> &'static str {
        match self {
            Refused::Full => "collector is overloaded (spool full); retry later",
            Refused::Unwritable => "collector cannot store hits right now; retry later",
        }
    }
}

/// Where a request's events ended in the spool, for [`Sink::durable`]; `None` when it had none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Spooled(Option<Position>);

/// The request path's handle on the spool, shared by all connections.
#[derive(Clone)]
pub struct Sink {
    appender: Arc<Appender>,
    metrics: Arc<Metrics>,
    status: Arc<WriteStatus>,
    refusals: Arc<Refusals>,
}

impl Sink {
    pub(crate) fn new(
        appender: Arc<Appender>,
        metrics: Arc<Metrics>,
        status: Arc<WriteStatus>,
    ) -> Sink {
        Sink {
            appender,
            metrics,
            status,
            refusals: Arc::new(Refusals::default()),
        }
    }

    /// Spools all `events`, or none of them.
    pub fn enqueue(&self, events: Vec<Event>) -> Result<Spooled, Refused> {
        if events.is_empty() {
            return Ok(Spooled(None));
        }
        let mut buf = Vec::with_capacity(events.len() * 1024);
        for event in &events {
            // Field names are written, so a segment left by an older version still decodes
            // after a column was added (missing fields take their defaults).
            if frame::encode_with(&mut buf, |out| rmp_serde::encode::write_named(out, event))
                .is_err()
            {
                // Plain data into a Vec: cannot fail; refuse rather than store a part.
                return Err(self.refuse(Refused::Unwritable, "an event did not encode"));
            }
        }
        match self.appender.append(&buf) {
            Ok(at) => {
                if self.status.spool_full() {
                    self.status.set_spool_full(false);
                }
                self.metrics.accepted.inc_by(events.len() as u64);
                // Current while the writer waits for ClickHouse too (one atomic store).
                self.metrics
                    .spool_bytes
                    .set(self.appender.usage().bytes as i64);
                Ok(Spooled(Some(at)))
            }
            Err(AppendError::Full) => Err(self.refuse(Refused::Full, "")),
            Err(AppendError::Unwritable(e)) => {
                Err(self.refuse(Refused::Unwritable, &e.to_string()))
            }
        }
    }

    /// Waits until the events are on the disk when `fsync = "always"`; at once otherwise.
    pub async fn durable(&self, spooled: Spooled) -> Result<(), Refused> {
        let Some(at) = spooled.0 else {
            return Ok(());
        };
        self.appender
            .durable(at)
            .await
            .map_err(|e| self.refuse(Refused::Unwritable, &e.to_string()))
    }

    /// Whether about `n` events would fit now: lets a large bulk request be refused before the
    /// work of validating and enriching it. [`Sink::enqueue`] still decides.
    pub fn has_room(&self, n: usize) -> bool {
        // A typical event is 0.5 to 1 KiB spooled.
        self.appender.has_room(n as u64 * 512)
    }

    fn refuse(&self, why: Refused, detail: &str) -> Refused {
        self.status.set_spool_full(true);
        self.refusals.log(why, detail);
        why
    }
}

/// Refusals are logged once per interval with how many there were, not once per hit.
#[derive(Default)]
struct Refusals {
    last_log: AtomicU64,
    since: AtomicU64,
}

const REFUSAL_LOG_EVERY_SECS: u64 = 10;

impl Refusals {
    fn log(&self, why: Refused, detail: &str) {
        let n = self.since.fetch_add(1, Ordering::Relaxed) + 1;
        let now = crate::time::now_unix() as u64;
        let last = self.last_log.load(Ordering::Relaxed);
        if now < last + REFUSAL_LOG_EVERY_SECS
            || self
                .last_log
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        self.since.fetch_sub(n, Ordering::Relaxed);
        match why {
            Refused::Full => tracing::error!(
                refused = n,
                "spool full: refusing hits with 503 until ClickHouse takes what the spool holds \
                 (raise [spool] max_bytes for longer outages)"
            ),
            Refused::Unwritable => tracing::error!(
                refused = n,
                error = detail,
                "spool cannot be written: refusing hits with 503"
            ),
        }
    }
}
