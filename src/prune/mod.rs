//! Retention: every table holding per-hit or per-visit rows keeps them `[retention] raw_days`,
//! the daily aggregates (counts only) `aggregate_days`, the secrets behind visitor keys 48 hours
//! from the start of their day, sessions and sign-in tokens until the month they expire in is
//! over, and the pruner's own record (`prune_runs`) no longer than the aggregates
//! (docs/retention.md has the table and the exact boundaries).
//!
//! Every such table is partitioned by day, expiry or month ([`rules::TABLES`]), so deleting is
//! one `DROP PARTITION` per expired partition: immediate, no mutation rewriting data, and a cost
//! that does not grow with the data kept. A run lists the partitions (`system.parts`), rolls up
//! the raw days about to go (so their aggregates are complete), drops, and records itself in
//! `prune_runs`. It is safe with several collectors at once (dropping a partition another one
//! dropped first is a no-op), safe to interrupt (each drop is atomic; the next run finishes the
//! rest), and never touches a partition inside its window.
//!
//! `tally serve` runs it at start and every `prune_interval_secs`; `tally prune [--dry-run]` on
//! demand. On servers that support it a table `TTL` one day beyond each window is a backstop
//! ([`ttl`]); the pruner stays the primary mechanism.

pub mod rules;
pub mod ttl;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use clickhouse::Row;
use serde::{Deserialize, Serialize};

use crate::config::{Config, SiteConfig};
use crate::metrics::Metrics;
use crate::rollup::{Rollup, RollupError};
use crate::store::Client;
use crate::store::cluster::{self, Shards};
use crate::time::{date_of, day_number};
pub use rules::{Cutoffs, Partition, PartitionKey, TABLES, Table, Windows, visits_first_day};

/// The raw window of the usual privacy policy (`[retention] raw_days` defaults to it).
pub const RAW_EVENT_DAYS: u32 = crate::config::POLICY_RAW_DAYS;

/// The aggregate window of the usual privacy policy (`[retention] aggregate_days` defaults to
/// it).
pub const AGGREGATE_DAYS: u32 = crate::config::POLICY_AGGREGATE_DAYS;

/// The tables of daily aggregates, counts only (`agg_top_week` by weeks: a week goes when its
/// Monday expires, so no week holds an expired day).
pub const AGGREGATE_TABLES: [&str; 5] = [
    "agg_daily",
    "agg_hourly",
    "agg_breakdown",
    "agg_top",
    "agg_top_week",
];

/// Longest a listing or a drop may take before the run gives up on that table (a drop is a
/// metadata change; seconds at most).
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(60);

/// Rows of the listing of one table's partitions at most (a few hundred are expected).
const MAX_PARTITIONS: u32 = 100_000;

#[derive(Row, Deserialize)]
struct Listed {
    partition: String,
    rows: u64,
}

#[derive(Row, Deserialize)]
struct Name {
    partition: String,
}

/// The partition values of `table` that hold rows, as ClickHouse prints them without quotes
/// (`2026-11-26` for a `Date`, `20261126` for `toYYYYMMDD`).
pub async fn partitions(
    client: &Client,
    table: &str,
) -> Result<Vec<String>, clickhouse::error::Error> {
    let parts = client
        .query(
            "SELECT DISTINCT partition FROM system.parts \
             WHERE database = currentDatabase() AND table = ? AND active",
        )
        .bind(table)
        .fetch_all::<Name>()
        .await?;
    Ok(parts
        .into_iter()
        .map(|p| p.partition.trim_matches('\'').to_string())
        .collect())
}

/// The days of a table partitioned by a `Date` column that hold rows.
pub async fn date_partitions(
    client: &Client,
    table: &str,
) -> Result<Vec<NaiveDate>, clickhouse::error::Error> {
    Ok(partitions(client, table)
        .await?
        .iter()
        // Anything that is not a date is not ours.
        .filter_map(|p| NaiveDate::parse_from_str(p, "%Y-%m-%d").ok())
        .collect())
}

/// The partitions of `table` with their rows (active parts only), sorted by value.
async fn listed(client: &Client, table: &str) -> Result<Vec<Listed>, clickhouse::error::Error> {
    client
        .query(
            "SELECT partition, sum(rows) AS rows FROM system.parts \
             WHERE database = currentDatabase() AND table = ? AND active \
             GROUP BY partition ORDER BY partition LIMIT ?",
        )
        .bind(table)
        .bind(MAX_PARTITIONS)
        .fetch_all::<Listed>()
        .await
}

/// One partition a run dropped (or, in a dry run, would drop).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// The table.
    pub table: &'static str,
    /// The partition as ClickHouse prints it (`20261117`, `2026-11-17`, `202605`, ...).
    pub partition: String,
    /// Its rows when the run listed it (`system.parts`).
    pub rows: u64,
}

/// What one run did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Nothing was changed: `drops` is what a real run would drop.
    pub dry_run: bool,
    /// The instant the run pruned for.
    pub now: u32,
    /// Every partition dropped, by table in [`TABLES`] order, oldest first.
    pub drops: Vec<Dropped>,
    /// The local dates rolled up before their raw events went, with the sites.
    pub rolled_up: Vec<(NaiveDate, Vec<u32>)>,
    /// What went wrong (a failed rollup of an expiring day, a table that could not be listed or
    /// dropped from); empty for a clean run.
    pub problems: Vec<String>,
    /// The oldest partition kept per table (Unix seconds of its first instant), `None` for an
    /// empty table.
    pub oldest: Vec<(&'static str, Option<u32>)>,
}

impl Report {
    /// The partitions dropped from `table`.
    pub fn dropped_from(&self, table: &str) -> Vec<&str> {
        self.drops
            .iter()
            .filter(|d| d.table == table)
            .map(|d| d.partition.as_str())
            .collect()
    }

    /// Rows of every partition dropped.
    pub fn rows(&self) -> u64 {
        self.drops.iter().map(|d| d.rows).sum()
    }

    /// Whether anything went wrong.
    pub fn failed(&self) -> bool {
        !self.problems.is_empty()
    }
}

/// One row of `prune_runs`.
#[derive(Row, Serialize)]
struct RunRow {
    run_at: u32,
    collector: String,
    dry_run: u8,
    partitions: u32,
    rows: u64,
    failed: u8,
    message: String,
}

/// The pruner of one database, for the configured sites and retention.
pub struct Pruner {
    client: Client,
    /// On a cluster: the sharded tables' partitions are listed and dropped on every shard.
    shards: Option<Shards>,
    sites: Vec<SiteConfig>,
    windows: Windows,
    rollup: Rollup,
    collector: String,
    metrics: Option<Arc<Metrics>>,
}

impl Pruner {
    /// A pruner on `client`'s database driven by `config.retention` and `config.sites`.
    pub fn new(client: Client, config: &Config) -> Self {
        Pruner {
            rollup: Rollup::new(client.clone(), config),
            shards: Shards::of(&config.clickhouse),
            client,
            sites: config.sites.clone(),
            windows: Windows::of(&config.retention),
            collector: collector_name(),
            metrics: None,
        }
    }

    /// Counts what it drops into `metrics` (served at `/metrics`).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The windows it enforces.
    pub fn windows(&self) -> Windows {
        self.windows
    }

    /// The shards, on a cluster.
    pub fn shards(&self) -> Option<&Shards> {
        self.shards.as_ref()
    }

    /// The nodes holding `table`'s rows, each with the table's name there: this node, or on a
    /// cluster one replica of each shard with the `_local` table for a sharded one (a partition
    /// dropped on one replica is dropped on all by the replication).
    async fn holders(&self, table: &str) -> Result<Vec<(Client, String)>, String> {
        match &self.shards {
            Some(shards) if cluster::is_sharded(table) => {
                let mut out = Vec::with_capacity(shards.len());
                for index in 0..shards.len() {
                    let client = shards.reach(index).await.map_err(|e| e.to_string())?;
                    out.push((client, cluster::local_name(table)));
                }
                Ok(out)
            }
            _ => Ok(vec![(self.client.clone(), table.to_string())]),
        }
    }

    /// [`listed`] over every node holding `table`'s rows, rows summed per partition.
    async fn listed_everywhere(&self, table: &str) -> Result<Vec<Listed>, String> {
        let mut all: BTreeMap<String, u64> = BTreeMap::new();
        for (client, name) in self.holders(table).await? {
            for p in self
                .timed(listed(&client, &name))
                .await
                .map_err(|e| e.to_string())?
            {
                *all.entry(p.partition).or_default() += p.rows;
            }
        }
        Ok(all
            .into_iter()
            .map(|(partition, rows)| Listed { partition, rows })
            .collect())
    }

    /// Prunes every table for the instant `now` (a dry run changes nothing), then records the
    /// run in `prune_runs`. Never fails as a whole: what went wrong is in the report's
    /// `problems` (and in the record, `failed = 1`), and everything else is still done.
    pub async fn run(&self, now: u32, dry_run: bool) -> Report {
        let cutoffs = Cutoffs::at(self.windows, &self.sites, now);
        let mut report = Report {
            dry_run,
            now,
            ..Report::default()
        };
        // The raw days about to go are rolled up first, and only then is every table listed:
        // the rollup writes the visits of those days, which have expired as well and so must
        // go in this same run, not linger until the next one.
        if !dry_run && let Some(events) = TABLES.iter().find(|t| t.name == "events") {
            match self.listed_everywhere(events.name).await {
                Ok(parts) => {
                    let expiring: Vec<NaiveDate> = parts
                        .iter()
                        .filter(|p| cutoffs.expired(events, &p.partition) == Some(true))
                        .filter_map(|p| {
                            match Partition::parse(PartitionKey::UtcDay, &p.partition) {
                                Some(Partition::Day(d)) => Some(d),
                                _ => None,
                            }
                        })
                        .collect();
                    self.roll_up_before_drop(&expiring, &cutoffs, now, &mut report)
                        .await;
                }
                Err(e) => report.problem(format!("listing the partitions of events: {e}")),
            }
        }
        // What has expired, per table.
        let mut plan: Vec<(&'static Table, Vec<Listed>, Option<u32>)> = Vec::new();
        for table in &TABLES {
            match self.listed_everywhere(table.name).await {
                Ok(parts) => {
                    let (expired, kept): (Vec<Listed>, Vec<Listed>) = parts
                        .into_iter()
                        .filter(|p| cutoffs.expired(table, &p.partition).is_some())
                        .partition(|p| cutoffs.expired(table, &p.partition) == Some(true));
                    let oldest = kept
                        .iter()
                        .filter_map(|p| Partition::parse(table.key, &p.partition))
                        .map(|p| p.begins())
                        .min();
                    plan.push((table, expired, oldest));
                }
                Err(e) => report.problem(format!("listing the partitions of {}: {e}", table.name)),
            }
        }
        for (table, parts, oldest) in plan {
            for part in parts {
                if !dry_run && let Err(e) = self.drop(table, &part.partition).await {
                    report.problem(format!(
                        "dropping partition {} of {}: {e}",
                        part.partition, table.name
                    ));
                    continue;
                }
                tracing::info!(
                    table = table.name,
                    partition = part.partition,
                    rows = part.rows,
                    dry_run,
                    "{} an expired partition",
                    if dry_run { "would drop" } else { "dropped" }
                );
                if !dry_run && let Some(m) = &self.metrics {
                    m.pruned(table.name, part.rows);
                }
                report.drops.push(Dropped {
                    table: table.name,
                    partition: part.partition,
                    rows: part.rows,
                });
            }
            if let Some(m) = &self.metrics {
                m.oldest_retained(table.name, oldest);
            }
            report.oldest.push((table.name, oldest));
        }
        if let Err(e) = self.record(&report).await {
            report.problem(format!("recording the run in prune_runs: {e}"));
        }
        if let Some(m) = &self.metrics {
            m.prune_ran(now, report.failed());
        }
        report
    }

    /// Rolls up, for every site, each local date whose raw events are about to go in part and
    /// are still all stored, so that its aggregates hold every event; a failure is logged as an
    /// error and reported, and the days are dropped anyway (the window is the promise).
    ///
    /// `expiring` are the UTC days about to be dropped; a local date is whole when every UTC
    /// day it overlaps before the raw window is among them (a day dropped by an earlier run had
    /// its dates rolled up then). Dates whose aggregates have expired too (a collector that was
    /// down for months) are not rolled up: the result would go at once. Before swapping its
    /// result in, the rollup checks that none of those days vanished meanwhile (another
    /// collector pruning at the same moment), so a date is never replaced by a count of part
    /// of its events.
    async fn roll_up_before_drop(
        &self,
        expiring: &[NaiveDate],
        cutoffs: &Cutoffs,
        now: u32,
        report: &mut Report,
    ) {
        let raw_from = cutoffs.raw_from;
        let (Some(first), Some(last)) = (expiring.iter().min(), expiring.iter().max()) else {
            return;
        };
        let gone: BTreeSet<u32> = expiring.iter().map(|d| day_number(*d)).collect();
        let keep_from = day_number(raw_from);
        let mut dates: BTreeMap<NaiveDate, (Vec<u32>, BTreeSet<u32>)> = BTreeMap::new();
        for site in &self.sites {
            let mut date = first.pred_opt().unwrap_or(*first);
            while date <= last.succ_opt().unwrap_or(*last) {
                let (a, b) = rules::utc_days_of(site, date);
                let touched = (a..=b).any(|d| gone.contains(&d));
                let whole = (a..=b).all(|d| d >= keep_from || gone.contains(&d));
                if touched && whole && date >= cutoffs.aggregates_from {
                    let entry = dates.entry(date).or_default();
                    entry.0.push(site.id);
                    entry.1.extend((a..=b).filter(|d| gone.contains(d)));
                }
                match date.succ_opt() {
                    Some(next) => date = next,
                    None => break,
                }
            }
        }
        for (date, (sites, raw_days)) in dates {
            let raw: Vec<u32> = raw_days.iter().map(|d| yyyymmdd(date_of(*d))).collect();
            match self
                .rollup
                .run_day_before_drop(date, &sites, &raw, now)
                .await
            {
                Ok(outcome) => {
                    tracing::info!(%date, ?sites, visits = outcome.visits, "rolled up a day before its raw events go");
                    report.rolled_up.push((date, sites));
                }
                Err(RollupError::RawDayGone(why)) => tracing::warn!(
                    %date,
                    ?sites,
                    why,
                    "not rolling up a day: another collector dropped its raw events first (and rolled it up before)"
                ),
                Err(e) => {
                    tracing::error!(
                        %date,
                        ?sites,
                        error = %e,
                        "THE ROLLUP OF A DAY FAILED BEFORE ITS RAW EVENTS EXPIRED: its reports miss what the last successful rollup did not count; the raw events are deleted anyway, as the retention window demands"
                    );
                    report.problem(format!(
                        "rollup of {date} for site(s) {sites:?} failed before its raw events were dropped: {e}"
                    ));
                }
            }
        }
    }

    async fn drop(&self, table: &Table, partition: &str) -> Result<(), String> {
        // On a cluster a shard may lack the partition; dropping it there changes nothing.
        for (client, name) in self.holders(table.name).await? {
            // Numbers go in as they are; dates as a bound string literal. Values are
            // ClickHouse's own, already parsed by `Partition::parse`, never user input.
            let query = match table.key {
                PartitionKey::Date => client
                    .query(&format!("ALTER TABLE {name} DROP PARTITION ?"))
                    .bind(partition),
                _ => {
                    let n: u64 = partition.parse().map_err(|_| "not a number".to_string())?;
                    client.query(&format!("ALTER TABLE {name} DROP PARTITION {n}"))
                }
            };
            self.timed(query.execute())
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    async fn record(&self, report: &Report) -> Result<(), String> {
        let message = if report.problems.is_empty() {
            let tables: BTreeSet<&str> = report.drops.iter().map(|d| d.table).collect();
            format!(
                "{} partition(s) of {} table(s){}",
                report.drops.len(),
                tables.len(),
                if tables.is_empty() {
                    String::new()
                } else {
                    format!(": {}", tables.into_iter().collect::<Vec<_>>().join(", "))
                }
            )
        } else {
            report.problems.join("; ")
        };
        let row = RunRow {
            run_at: report.now,
            collector: self.collector.clone(),
            dry_run: u8::from(report.dry_run),
            partitions: u32::try_from(report.drops.len()).unwrap_or(u32::MAX),
            rows: report.rows(),
            failed: u8::from(report.failed()),
            // A message is for people; thousands of problems need not all be kept.
            message: message.chars().take(4000).collect(),
        };
        let write = async {
            let mut insert = self.client.insert::<RunRow>("prune_runs").await?;
            insert.write(&row).await?;
            insert.end().await
        };
        self.timed(write).await.map_err(|e| e.to_string())
    }

    async fn timed<T>(
        &self,
        f: impl Future<Output = Result<T, clickhouse::error::Error>>,
    ) -> Result<T, clickhouse::error::Error> {
        match tokio::time::timeout(STATEMENT_TIMEOUT, f).await {
            Ok(r) => r,
            Err(_) => Err(clickhouse::error::Error::Custom(format!(
                "no answer within {STATEMENT_TIMEOUT:?}"
            ))),
        }
    }

    /// Sets the TTL backstop (once, where the server supports it), prunes at once and then every
    /// `every`, until the process ends.
    pub fn spawn(self, every: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            ttl::backstop(&self.client, self.windows, self.shards.as_ref()).await;
            loop {
                let report = self.run(crate::time::now_unix(), false).await;
                if report.failed() {
                    tracing::warn!(
                        problems = ?report.problems,
                        retry_in = ?every,
                        "the pruner ran with problems"
                    );
                } else {
                    tracing::info!(
                        partitions = report.drops.len(),
                        rows = report.rows(),
                        "pruner run done"
                    );
                }
                tokio::time::sleep(every).await;
            }
        })
    }
}

impl Report {
    fn problem(&mut self, what: String) {
        tracing::warn!(problem = what, "pruner");
        self.problems.push(what);
    }
}

/// The host name of this machine, as `prune_runs.collector` names it.
pub fn collector_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .find(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

/// `YYYYMMDD` of a date: the value of `toYYYYMMDD`.
fn yyyymmdd(date: NaiveDate) -> u32 {
    date.format("%Y%m%d").to_string().parse().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_numbers() {
        assert_eq!(yyyymmdd(date_of(0)), 19_700_101);
        assert_eq!(yyyymmdd(date_of(20_781)), 20_261_124);
    }

    #[test]
    fn the_aggregate_tables_are_those_kept_by_the_aggregate_window() {
        let by_rule: Vec<&str> = TABLES
            .iter()
            .filter(|t| t.lifetime == rules::Lifetime::Aggregates)
            .map(|t| t.name)
            .collect();
        assert_eq!(by_rule, AGGREGATE_TABLES);
    }

    #[test]
    fn a_host_name_is_found() {
        assert!(!collector_name().is_empty());
    }
}
