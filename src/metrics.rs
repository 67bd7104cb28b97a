//! Prometheus metrics: what was accepted, dropped (and why), refused, written and lost.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// A label naming a reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    /// The reason.
    pub reason: &'static str,
}

/// A label naming an HTTP status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Status {
    /// The status code.
    pub status: u16,
}

/// A label naming a kind of failure.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorKind {
    /// The kind.
    pub kind: &'static str,
}

/// A label naming a table.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TableLabel {
    /// The table.
    pub table: &'static str,
}

/// A label naming what a connection was waiting for.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabel {
    /// `header`, `idle` or `body`.
    pub phase: &'static str,
}

/// All counters of a collector.
pub struct Metrics {
    registry: Registry,
    /// Hits accepted into the queue.
    pub accepted: Counter,
    /// Hits dropped on purpose (opt-out, DNT, bot, spam, ...), by reason; the client got 204.
    pub dropped: Family<Reason, Counter>,
    /// Requests refused with a 4xx/503, by reason.
    pub rejected: Family<Reason, Counter>,
    /// Events written to ClickHouse.
    pub written: Counter,
    /// Failed ClickHouse calls of the writer (each retried), by kind: `timeout`,
    /// `connection`, `server`.
    pub write_errors: Family<ErrorKind, Counter>,
    /// Seconds each successful insert took.
    pub write_seconds: Histogram,
    /// Bytes in the spool (events not yet stored, plus segment headers).
    pub spool_bytes: Gauge,
    /// Segment files in the spool.
    pub spool_segments: Gauge,
    /// Damaged bytes skipped when reading the spool (torn writes, damaged files).
    pub spool_damaged_bytes: Counter,
    /// Records in the spool that did not decode as an event (skipped).
    pub spool_bad_records: Counter,
    /// Rollup runs that failed.
    pub rollup_failures: Counter,
    /// Unix time of the last rollup run that succeeded (0: none yet).
    pub rollup_last_success: Gauge,
    /// Stats API queries (`POST /api/v2/query`), by the status of the answer.
    pub api_requests: Family<Status, Counter>,
    /// Partitions the pruner dropped, by table.
    pub pruned_partitions: Family<TableLabel, Counter>,
    /// Rows in the partitions the pruner dropped, by table.
    pub pruned_rows: Family<TableLabel, Counter>,
    /// Unix time of the first instant of the oldest partition kept, by table (absent: empty).
    pub oldest_retained: Family<TableLabel, Gauge>,
    /// Pruner runs that had a problem (see `prune_runs.message`).
    pub prune_failures: Counter,
    /// Unix time of the pruner's last run (0: none yet).
    pub prune_last_run: Gauge,
    /// Connections open now, on every listener.
    pub connections_open: Gauge,
    /// Times a connection could not be taken at once: the connection limit was reached (it
    /// waits in the kernel's backlog) or accepting failed (out of file descriptors).
    pub connections_refused: Counter,
    /// Connections closed because a client was too slow, by what it was waiting for.
    pub connections_timed_out: Family<PhaseLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric under the `tally_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tally");
        let m = Metrics {
            registry: Registry::default(),
            accepted: Counter::default(),
            dropped: Family::default(),
            rejected: Family::default(),
            written: Counter::default(),
            write_errors: Family::default(),
            write_seconds: Histogram::new([
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            spool_bytes: Gauge::default(),
            spool_segments: Gauge::default(),
            spool_damaged_bytes: Counter::default(),
            spool_bad_records: Counter::default(),
            rollup_failures: Counter::default(),
            rollup_last_success: Gauge::default(),
            api_requests: Family::default(),
            pruned_partitions: Family::default(),
            pruned_rows: Family::default(),
            oldest_retained: Family::default(),
            prune_failures: Counter::default(),
            prune_last_run: Gauge::default(),
            connections_open: Gauge::default(),
            connections_refused: Counter::default(),
            connections_timed_out: Family::default(),
        };
        registry.register(
            "hits_accepted",
            "Hits accepted for storage",
            m.accepted.clone(),
        );
        registry.register(
            "hits_dropped",
            "Hits not stored on purpose, by reason",
            m.dropped.clone(),
        );
        registry.register(
            "requests_rejected",
            "Requests refused with an error status, by reason",
            m.rejected.clone(),
        );
        registry.register(
            "events_written",
            "Events written to ClickHouse",
            m.written.clone(),
        );
        registry.register(
            "write_errors",
            "Failed ClickHouse calls of the writer (retried), by kind",
            m.write_errors.clone(),
        );
        registry.register(
            "write_seconds",
            "Duration of successful inserts into ClickHouse",
            m.write_seconds.clone(),
        );
        registry.register(
            "spool_bytes",
            "Bytes in the disk spool: events not yet stored in ClickHouse",
            m.spool_bytes.clone(),
        );
        registry.register(
            "spool_segments",
            "Segment files in the disk spool",
            m.spool_segments.clone(),
        );
        registry.register(
            "spool_damaged_bytes",
            "Damaged bytes skipped when reading the spool (torn writes, damaged files)",
            m.spool_damaged_bytes.clone(),
        );
        registry.register(
            "spool_bad_records",
            "Spool records that did not decode as an event (skipped)",
            m.spool_bad_records.clone(),
        );
        registry.register(
            "rollup_failures",
            "Rollup runs that failed (the reports keep the previous numbers)",
            m.rollup_failures.clone(),
        );
        registry.register(
            "rollup_last_success_seconds",
            "Unix time of the last successful rollup run",
            m.rollup_last_success.clone(),
        );
        registry.register(
            "api_requests",
            "Stats API queries (POST /api/v2/query), by answer status",
            m.api_requests.clone(),
        );
        registry.register(
            "pruned_partitions",
            "Expired partitions the pruner dropped, by table",
            m.pruned_partitions.clone(),
        );
        registry.register(
            "pruned_rows",
            "Rows in the expired partitions the pruner dropped, by table",
            m.pruned_rows.clone(),
        );
        registry.register(
            "retention_oldest_seconds",
            "Unix time of the first instant of the oldest partition kept, by table",
            m.oldest_retained.clone(),
        );
        registry.register(
            "prune_failures",
            "Pruner runs that had a problem (a failed rollup of an expiring day, a failed drop)",
            m.prune_failures.clone(),
        );
        registry.register(
            "prune_last_run_seconds",
            "Unix time of the pruner's last run",
            m.prune_last_run.clone(),
        );
        registry.register(
            "connections_open",
            "Connections open now",
            m.connections_open.clone(),
        );
        registry.register(
            "connections_refused",
            "Times a connection could not be taken at once (connection limit reached, accept failed)",
            m.connections_refused.clone(),
        );
        registry.register(
            "connections_timed_out",
            "Connections closed because the client was too slow, by phase (header, idle, body)",
            m.connections_timed_out.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Counts a purposeful drop.
    pub fn drop_for(&self, reason: &'static str) {
        self.dropped.get_or_create(&Reason { reason }).inc();
    }

    /// Counts a refused request.
    pub fn reject_for(&self, reason: &'static str) {
        self.rejected.get_or_create(&Reason { reason }).inc();
    }

    /// Records a successful rollup run at `now`.
    pub fn rollup_succeeded(&self, now: u32) {
        self.rollup_last_success.set(i64::from(now));
    }

    /// Counts a failed rollup run.
    pub fn rollup_failed(&self) {
        self.rollup_failures.inc();
    }

    /// Counts a Stats API query answered with `status`.
    pub fn api_request(&self, status: u16) {
        self.api_requests.get_or_create(&Status { status }).inc();
    }

    /// Counts a partition of `rows` rows the pruner dropped from `table`.
    pub fn pruned(&self, table: &'static str, rows: u64) {
        let label = TableLabel { table };
        self.pruned_partitions.get_or_create(&label).inc();
        self.pruned_rows.get_or_create(&label).inc_by(rows);
    }

    /// Sets the oldest retained instant of `table` (`None`: the table is empty).
    pub fn oldest_retained(&self, table: &'static str, begins: Option<u32>) {
        let label = TableLabel { table };
        match begins {
            Some(t) => {
                self.oldest_retained.get_or_create(&label).set(i64::from(t));
            }
            None => {
                self.oldest_retained.remove(&label);
            }
        }
    }

    /// Records a pruner run at `now`.
    pub fn prune_ran(&self, now: u32, failed: bool) {
        self.prune_last_run.set(i64::from(now));
        if failed {
            self.prune_failures.inc();
        }
    }

    /// Counts a connection closed (or a request refused) because the client was too slow in
    /// `phase` (`header`, `idle`, `body`).
    pub fn timed_out(&self, phase: &'static str) {
        self.connections_timed_out
            .get_or_create(&PhaseLabel { phase })
            .inc();
    }

    /// How many hits were dropped for `reason` so far.
    pub fn dropped_count(&self, reason: &'static str) -> u64 {
        self.dropped.get_or_create(&Reason { reason }).get()
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
