//! The rollup: visits and daily aggregates, recomputed from the raw events.
//!
//! Nothing is counted per hit. A job recomputes whole days of every site from `events` (7 days
//! of raw rows) into staging tables and swaps each day into `visits`, `agg_daily`, `agg_hourly`
//! and `agg_breakdown` with `ALTER TABLE .. REPLACE PARTITION .. FROM` (atomic per table, on
//! ClickHouse 18.16 as on current releases). So the job can be repeated, interrupted or run by
//! several collectors at once: each run uses staging tables of its own, and a reader sees a
//! table's day either as it was or as recomputed, never empty or half-built.
//!
//! Days are the sites' local days (`[[sites]] timezone`). `tally serve` recomputes today and
//! yesterday every `[rollup] interval_secs` (hits may arrive up to 24 hours late);
//! `tally rollup` does it on demand. A day is final once its raw events are gone: the job then
//! refuses to touch it, so a day's aggregates are never rebuilt from a part of its events.

pub mod dimensions;
pub mod sql;
pub mod weeks;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use clickhouse::Row;
use serde::Deserialize;

use crate::config::{Config, SiteConfig};
use crate::metrics::Metrics;
use crate::store::Client;
use crate::store::cluster::{self, Shards};
use crate::time::{day_bounds, day_of, local_date};

/// The tables a day is swapped into, in the order they are swapped. `visits` holds one row per
/// visit; the others only counts (`agg_top`: the top lists of `agg_breakdown`).
pub const TABLES: [&str; 5] = [
    "visits",
    "agg_daily",
    "agg_hourly",
    "agg_breakdown",
    "agg_top",
];

/// Prefix of the staging tables; a leftover of a crashed run is dropped by a later run.
const STAGING_PREFIX: &str = "rollup_";

/// Staging tables older than this are leftovers of a run that died.
const STALE_STAGING_SECS: u32 = 3600;

/// Longest a single rollup statement may take before the run gives up (a day of a busy site
/// takes seconds; see docs/performance.md).
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(600);

/// How often `tally serve` recomputes the whole week of raw events rather than only today and
/// yesterday.
pub const WHOLE_WINDOW_EVERY: Duration = Duration::from_secs(6 * 3600);

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum RollupError {
    /// ClickHouse refused or failed a statement.
    #[error("ClickHouse: {0}")]
    ClickHouse(#[from] clickhouse::error::Error),
    /// A statement took longer than the rollup allows.
    #[error("a rollup statement took longer than {0:?}")]
    Timeout(Duration),
    /// The day cannot be recomputed (its raw events are gone, or it has not begun).
    #[error("{0}")]
    Refused(String),
    /// Raw events of the day vanished while it was being rolled up before they expire (another
    /// collector pruned them): the result was not swapped in, so the day keeps the rollup that
    /// collector made before dropping them.
    #[error("{0}")]
    RawDayGone(String),
}

/// What a rollup of one day did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayOutcome {
    /// The local date.
    pub date: NaiveDate,
    /// Sites recomputed from their raw events.
    pub recomputed: Vec<u32>,
    /// Visits of the recomputed sites.
    pub visits: u64,
    /// The most statements one site's visits took (more than one when its day had more raw
    /// events than `[rollup] max_events_per_pass`).
    pub slices: u32,
}

/// At most this many slices, whatever the configuration: a day needing more is better served
/// by a larger `max_events_per_pass` (each slice reads the day's raw events again).
const MAX_SLICES: u64 = 256;

/// A random name part for a run's staging tables, so runs of several collectors never meet.
fn run_id() -> u64 {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 8];
    // Should the system generator fail, the time and process id still tell runs apart.
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        return (u64::from(std::process::id()) << 32) | u64::from(nanos);
    }
    u64::from_ne_bytes(bytes)
}

#[derive(Row, Deserialize)]
struct Count {
    n: u64,
}

#[derive(Row, Deserialize)]
struct Name {
    name: String,
}

/// The rollup over one database, for the configured sites.
pub struct Rollup {
    client: Client,
    /// On a cluster: each shard computes the visits of its own visitors (`cluster::SHARDING_KEY`).
    shards: Option<Shards>,
    sites: Vec<SiteConfig>,
    windows: crate::prune::Windows,
    /// `[rollup] max_events_per_pass`.
    max_events_per_pass: u64,
}

impl Rollup {
    /// A rollup writing through `client` for the sites of `config`.
    pub fn new(client: Client, config: &Config) -> Self {
        // A day of a busy site takes longer than the minute reports may.
        let long = |c: Client| c.with_setting("max_execution_time", "600");
        Rollup {
            client: long(client),
            shards: Shards::of(&config.clickhouse).map(|s| s.map_clients(long)),
            sites: config.sites.clone(),
            windows: crate::prune::Windows::of(&config.retention),
            max_events_per_pass: config.rollup.max_events_per_pass,
        }
    }

    /// Whether every raw event of `site`'s local `date` is still stored at `now`: the pruner
    /// drops a UTC day of events once it is `[retention] raw_days` old, so the local day is
    /// whole while the UTC day its first second falls in is younger than that.
    pub fn recomputable(&self, site: &SiteConfig, date: NaiveDate, now: u32) -> bool {
        let (start, _) = day_bounds(site.tz(), date);
        day_of(start) >= self.windows.raw_keep_from(now) && date <= local_date(site.tz(), now)
    }

    /// Recomputes today and yesterday (in each site's time zone), then sums the weeks that
    /// became final ([`Rollup::compact_weeks`]).
    pub async fn run_recent(&self, now: u32) -> Result<Vec<DayOutcome>, RollupError> {
        let mut dates: Vec<NaiveDate> = self
            .sites
            .iter()
            .flat_map(|s| {
                let today = local_date(s.tz(), now);
                [today.pred_opt().unwrap_or(today), today]
            })
            .collect();
        dates.sort_unstable();
        dates.dedup();
        let mut out = Vec::new();
        for date in dates {
            out.push(self.run_day(date, None, now).await?);
        }
        self.compact_weeks(now).await?;
        Ok(out)
    }

    /// Recomputes every day whose raw events are still kept (a week), for every site or only
    /// `only`: after a collector was down, or to take in late hits of days before yesterday.
    /// Then sums the weeks that became final.
    pub async fn run_window(
        &self,
        now: u32,
        only: Option<u32>,
    ) -> Result<Vec<DayOutcome>, RollupError> {
        let mut day = crate::prune::visits_first_day(&self.sites, self.windows.raw_days, now);
        let last = self
            .sites
            .iter()
            .map(|s| local_date(s.tz(), now))
            .max()
            .unwrap_or(day);
        let mut out = Vec::new();
        while day <= last {
            let due = self
                .sites
                .iter()
                .filter(|s| only.is_none_or(|id| s.id == id))
                .any(|s| self.recomputable(s, day, now));
            if due {
                out.push(self.run_day(day, only, now).await?);
            }
            match day.succ_opt() {
                Some(next) => day = next,
                None => break,
            }
        }
        self.compact_weeks(now).await?;
        Ok(out)
    }

    /// Recomputes `date` for every configured site (or only `only`) whose raw events of that
    /// day are all still stored; the rows of every other site are carried over unchanged.
    pub async fn run_day(
        &self,
        date: NaiveDate,
        only: Option<u32>,
        now: u32,
    ) -> Result<DayOutcome, RollupError> {
        let chosen: Vec<&SiteConfig> = self
            .sites
            .iter()
            .filter(|s| only.is_none_or(|id| s.id == id))
            .collect();
        if let Some(id) = only
            && chosen.is_empty()
        {
            return Err(RollupError::Refused(format!("site {id} is not configured")));
        }
        let sites: Vec<&SiteConfig> = chosen
            .iter()
            .copied()
            .filter(|s| self.recomputable(s, date, now))
            .collect();
        if sites.is_empty() {
            return Err(RollupError::Refused(format!(
                "{date} is final for {}: its raw events are gone (kept {} days), or the day has not begun",
                if only.is_some() {
                    "this site"
                } else {
                    "every site"
                },
                self.windows.raw_days,
            )));
        }
        self.run_sites(date, &sites, &[], now).await
    }

    /// Recomputes `date` for the sites `ids` although the pruner is about to drop (some of) its
    /// raw events: the UTC days `raw` (`YYYYMMDD`, partitions of `events`) must still be there
    /// when the result is swapped in, else nothing is swapped ([`RollupError::RawDayGone`]).
    /// The pruner calls this only for dates whose raw events are all still stored.
    pub async fn run_day_before_drop(
        &self,
        date: NaiveDate,
        ids: &[u32],
        raw: &[u32],
        now: u32,
    ) -> Result<DayOutcome, RollupError> {
        let sites: Vec<&SiteConfig> = self.sites.iter().filter(|s| ids.contains(&s.id)).collect();
        if sites.is_empty() {
            return Err(RollupError::Refused(format!(
                "none of the sites {ids:?} is configured"
            )));
        }
        match self.run_sites(date, &sites, raw, now).await {
            Err(e @ (RollupError::ClickHouse(_) | RollupError::Timeout(_))) => {
                // A collector pruning at the same moment may have dropped the raw day and then
                // the date's own partitions under this run's feet; it rolled the date up first,
                // so that is not this run's failure.
                self.raw_days_still_there(&self.client, raw)
                    .await
                    .map_err(|gone| match gone {
                        RollupError::RawDayGone(why) => {
                            RollupError::RawDayGone(format!("{why} (and this run failed: {e})"))
                        }
                        other => other,
                    })?;
                Err(e)
            }
            other => other,
        }
    }

    async fn run_sites(
        &self,
        date: NaiveDate,
        sites: &[&SiteConfig],
        raw: &[u32],
        now: u32,
    ) -> Result<DayOutcome, RollupError> {
        let run = format!("{STAGING_PREFIX}{now}_{:016x}", run_id());
        let Some(shards) = &self.shards else {
            self.drop_stale_staging(&self.client, now).await?;
            let result = self.run_day_in(&run, date, sites, raw).await;
            // Whatever happened, the staging tables go (a failure to drop them is only logged:
            // a later run drops leftovers).
            for table in TABLES {
                self.drop_staging(&self.client, &format!("{run}_{table}"))
                    .await;
            }
            return result;
        };
        // On a cluster each shard makes the visits of its own visitors, from its own raw
        // events, into its own `visits_local` (exact: a visitor's hits are all on one shard);
        // then this node makes the aggregates from all shards' visits (`visits`, Distributed)
        // into the aggregate tables every node holds.
        let day = date.format("%Y-%m-%d").to_string();
        let ids: Vec<u32> = sites.iter().map(|s| s.id).collect();
        let mut slices = 1;
        for index in 0..shards.len() {
            let shard = shards
                .reach(index)
                .await
                .map_err(|e| RollupError::Refused(e.to_string()))?;
            self.drop_stale_staging(&shard, now).await?;
            let staging = format!("{run}_visits");
            let result = async {
                let took = self
                    .visits_into(&shard, &staging, &day, date, sites, &ids)
                    .await?;
                self.raw_days_still_there(&shard, raw).await?;
                self.swap(&shard, &cluster::local_name("visits"), &staging, &day)
                    .await?;
                Ok::<u32, RollupError>(took)
            }
            .await;
            self.drop_staging(&shard, &staging).await;
            slices = slices.max(result?);
        }
        self.drop_stale_staging(&self.client, now).await?;
        let result = self
            .aggregates_from(&run, &day, sites, &ids, "visits", &[])
            .await;
        for table in &TABLES[1..] {
            self.drop_staging(&self.client, &format!("{run}_{table}"))
                .await;
        }
        result?;
        let visits = self.count_visits("visits", &day, &ids).await?;
        Ok(DayOutcome {
            date,
            recomputed: ids,
            visits,
            slices,
        })
    }

    /// Creates `staging` shaped like `visits` on `client`'s node, holding the day's visits of
    /// other sites as they are and those of `sites` recomputed from the raw events: the day
    /// `visits` (or `visits_local`) gets by one swap. Returns the most statements a site took.
    async fn visits_into(
        &self,
        client: &Client,
        staging: &str,
        day: &str,
        date: NaiveDate,
        sites: &[&SiteConfig],
        ids: &[u32],
    ) -> Result<u32, RollupError> {
        self.carry_over(client, "visits", staging, day, ids).await?;
        let events = self.on_node("events");
        let mut most = 1;
        for site in sites {
            let tz = site.tz().name();
            let (start, end) = day_bounds(site.tz(), date);
            let slices = self.slices(client, &events, site.id, start, end).await?;
            most = most.max(slices);
            for slice in 0..slices {
                let select = sql::visits_select(&events, slices, slice);
                self.timed(
                    client
                        .query(&format!("INSERT INTO {staging} {select}"))
                        .bind(day)
                        .bind(tz)
                        .bind(site.visit_timeout)
                        .bind(tz)
                        .bind(site.id)
                        .bind(start)
                        .bind(end)
                        .execute(),
                )
                .await?;
            }
        }
        Ok(most)
    }

    /// The name of `table` on the node a statement runs on: its `_local` table on a cluster
    /// shard for a sharded one, else itself.
    fn on_node(&self, table: &str) -> String {
        if self.shards.is_some() && cluster::is_sharded(table) {
            cluster::local_name(table)
        } else {
            table.to_string()
        }
    }

    /// In how many slices of its visitors `site`'s raw events between `start` and `end` are
    /// made into visits: enough that none holds more than `[rollup] max_events_per_pass`.
    async fn slices(
        &self,
        client: &Client,
        events: &str,
        site: u32,
        start: u32,
        end: u32,
    ) -> Result<u32, RollupError> {
        if self.max_events_per_pass == 0 {
            return Ok(1);
        }
        // Reads the primary key's range only: (site_id, ts).
        let n = self
            .timed(
                client
                    .query(&format!(
                        "SELECT count() AS n FROM {events} WHERE site_id = ? \
                         AND ts >= toDateTime(?) AND ts < toDateTime(?)"
                    ))
                    .bind(site)
                    .bind(start)
                    .bind(end)
                    .fetch_one::<Count>(),
            )
            .await?
            .n;
        Ok(n.div_ceil(self.max_events_per_pass).clamp(1, MAX_SLICES) as u32)
    }

    /// Creates `staging` shaped like `table` holding the day's rows of every site but `ids`, so
    /// that a swap replaces only those sites' rows.
    async fn carry_over(
        &self,
        client: &Client,
        table: &str,
        staging: &str,
        day: &str,
        ids: &[u32],
    ) -> Result<(), RollupError> {
        let source = self.on_node(table);
        let on_cluster = self.shards.is_some();
        self.execute(client, &cluster::staging_table(staging, table, on_cluster))
            .await?;
        self.timed(
            client
                .query(&format!(
                    "INSERT INTO {staging} SELECT * FROM {source} WHERE day = toDate(?) AND NOT has(?, site_id)"
                ))
                .bind(day)
                .bind(ids)
                .execute(),
        )
        .await
    }

    async fn count_visits(&self, visits: &str, day: &str, ids: &[u32]) -> Result<u64, RollupError> {
        Ok(self
            .timed(
                self.client
                    .query(&format!(
                        "SELECT count() AS n FROM {visits} WHERE day = toDate(?) AND has(?, site_id)"
                    ))
                    .bind(day)
                    .bind(ids)
                    .fetch_one::<Count>(),
            )
            .await?
            .n)
    }

    async fn run_day_in(
        &self,
        run: &str,
        date: NaiveDate,
        sites: &[&SiteConfig],
        raw: &[u32],
    ) -> Result<DayOutcome, RollupError> {
        let day = date.format("%Y-%m-%d").to_string();
        let ids: Vec<u32> = sites.iter().map(|s| s.id).collect();
        let visits = format!("{run}_visits");
        let slices = self
            .visits_into(&self.client, &visits, &day, date, sites, &ids)
            .await?;
        // The aggregates are swapped in only after the raw days are checked, and `visits`
        // last of all: a reader sees either the old day everywhere or the new one.
        self.aggregates_from(run, &day, sites, &ids, &visits, raw)
            .await?;
        let visits_rows = self.count_visits(&visits, &day, &ids).await?;
        self.swap(&self.client, "visits", &visits, &day).await?;
        Ok(DayOutcome {
            date,
            recomputed: ids,
            visits: visits_rows,
            slices,
        })
    }

    /// Makes the day's aggregates of `sites` from the visits in `visits` into staging tables
    /// and swaps them into the aggregate tables (every table of [`TABLES`] but `visits`).
    /// Before the swap it checks that the raw days `raw` are still whole (on a cluster each
    /// shard checked its own before its visits were swapped in, and `raw` is empty).
    async fn aggregates_from(
        &self,
        run: &str,
        day: &str,
        sites: &[&SiteConfig],
        ids: &[u32],
        visits: &str,
        raw: &[u32],
    ) -> Result<(), RollupError> {
        let day = day.to_string();
        let staging = |table: &str| format!("{run}_{table}");
        for table in &TABLES[1..] {
            self.carry_over(&self.client, table, &staging(table), &day, ids)
                .await?;
        }
        let from_visits = [
            sql::daily_insert(&staging("agg_daily"), visits),
            sql::hourly_insert(&staging("agg_hourly"), visits),
            sql::per_visit_breakdown_insert(&staging("agg_breakdown"), visits),
            sql::per_action_breakdown_insert(&staging("agg_breakdown"), visits),
        ];
        // The top lists are made from the finished breakdowns, so they come last.
        let from_breakdowns = sql::top_list_inserts(
            &staging("agg_top"),
            &staging("agg_breakdown"),
            "day = toDate(?) AND has(?, site_id)",
        );
        for insert in from_visits.iter().chain([&sql::props_all_actions_insert(
            &staging("agg_breakdown"),
            visits,
        )]) {
            self.timed(self.client.query(insert).bind(&day).bind(ids).execute())
                .await?;
        }
        for site in sites {
            self.props_breakdown(visits, &staging("agg_breakdown"), &day, site.id)
                .await?;
        }
        for insert in &from_breakdowns {
            self.timed(self.client.query(insert).bind(&day).bind(ids).execute())
                .await?;
        }
        // The staging tables were filled from the raw days as they were then; if one of them
        // has gone since (another collector's pruner), the result may lack its events.
        // Checked after the inserts: a day dropped after this check was read whole.
        self.raw_days_still_there(&self.client, raw).await?;
        for table in &TABLES[1..] {
            self.swap(&self.client, table, &staging(table), &day)
                .await?;
        }
        Ok(())
    }

    /// Writes one site's day broken down by its custom properties into `target`: the
    /// [`sql::PROP_KEYS_PER_DAY`] keys on the most actions, and a row saying how many were left
    /// out if any were (docs/reports.md, "Custom properties").
    async fn props_breakdown(
        &self,
        visits: &str,
        target: &str,
        day: &str,
        site: u32,
    ) -> Result<(), RollupError> {
        #[derive(Row, Deserialize)]
        struct Key {
            key: String,
        }
        let mut keys: Vec<String> = self
            .timed(
                self.client
                    .query(&sql::prop_keys_select(visits))
                    .bind(day)
                    .bind(site)
                    .fetch_all::<Key>(),
            )
            .await?
            .into_iter()
            .map(|k| k.key)
            .collect();
        if keys.is_empty() {
            return Ok(());
        }
        if keys.len() > sql::PROP_KEYS_PER_DAY {
            keys.truncate(sql::PROP_KEYS_PER_DAY);
            #[derive(Row, Deserialize)]
            struct Total {
                n: u64,
            }
            let total = self
                .timed(
                    self.client
                        .query(&format!(
                            "SELECT uniqExact(key) AS n FROM ({})",
                            sql::prop_keys_of_day(visits)
                        ))
                        .bind(day)
                        .bind(site)
                        .fetch_one::<Total>(),
                )
                .await?
                .n;
            let left_out = total.saturating_sub(keys.len() as u64);
            self.timed(
                self.client
                    .query(&format!(
                        "INSERT INTO {target} (day, site_id, dimension, value, visitors, visits, pageviews, events, bounces, duration) \
                         SELECT toDate(?), ?, ?, ?, 0, 0, 0, ?, 0, 0"
                    ))
                    .bind(day)
                    .bind(site)
                    .bind(sql::PROPS_DIMENSION)
                    .bind(sql::PROP_KEYS_LEFT_OUT)
                    .bind(left_out)
                    .execute(),
            )
            .await?;
        }
        self.timed(
            self.client
                .query(&sql::props_breakdown_insert(target, visits))
                .bind(&keys)
                .bind(day)
                .bind(site)
                .execute(),
        )
        .await?;
        Ok(())
    }

    /// Swaps `partition` of `table` for the rows of `staging` (which holds that partition
    /// only), atomically; returns the rows swapped in.
    async fn swap(
        &self,
        client: &Client,
        table: &str,
        staging: &str,
        partition: &str,
    ) -> Result<u64, RollupError> {
        let rows = self
            .timed(
                client
                    .query(&format!("SELECT count() AS n FROM {staging}"))
                    .fetch_one::<Count>(),
            )
            .await?
            .n;
        // Current ClickHouse refuses to replace a partition with an empty one; an empty
        // partition is a dropped one.
        let swap = if rows > 0 {
            format!("ALTER TABLE {table} REPLACE PARTITION ? FROM {staging}")
        } else {
            format!("ALTER TABLE {table} DROP PARTITION ?")
        };
        self.timed(client.query(&swap).bind(partition).execute())
            .await?;
        Ok(rows)
    }

    /// Fails with [`RollupError::RawDayGone`] unless every partition `raw` of the raw events
    /// on `client`'s node (`events`, or `events_local` on a cluster) still holds rows.
    async fn raw_days_still_there(&self, client: &Client, raw: &[u32]) -> Result<(), RollupError> {
        if raw.is_empty() {
            return Ok(());
        }
        let table = self.on_node("events");
        let present = self
            .timed(
                client
                    .query(
                        "SELECT count(DISTINCT partition) AS n FROM system.parts \
                         WHERE database = currentDatabase() AND table = ? AND active \
                         AND has(?, partition)",
                    )
                    .bind(table)
                    .bind(raw.iter().map(u32::to_string).collect::<Vec<_>>())
                    .fetch_one::<Count>(),
            )
            .await?
            .n;
        if present < raw.len() as u64 {
            return Err(RollupError::RawDayGone(format!(
                "raw days {raw:?} were dropped while being rolled up"
            )));
        }
        Ok(())
    }

    /// Drops a staging table of this run; a failure is only logged (a later run drops
    /// leftovers).
    async fn drop_staging(&self, client: &Client, staging: &str) {
        if let Err(e) = self
            .execute(client, &format!("DROP TABLE IF EXISTS {staging}"))
            .await
        {
            tracing::warn!(error = %e, table = staging, "could not drop a staging table");
        }
    }

    /// Drops staging tables of runs that started over an hour ago: they died mid-way.
    async fn drop_stale_staging(&self, client: &Client, now: u32) -> Result<(), RollupError> {
        let names = self
            .timed(
                client
                    .query(
                        "SELECT name FROM system.tables \
                         WHERE database = currentDatabase() AND startsWith(name, ?)",
                    )
                    .bind(STAGING_PREFIX)
                    .fetch_all::<Name>(),
            )
            .await?;
        for Name { name } in names {
            let started = name
                .strip_prefix(STAGING_PREFIX)
                .and_then(|rest| rest.split('_').next())
                .and_then(|t| t.parse::<u32>().ok());
            let plain = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if plain && started.is_some_and(|t| t + STALE_STAGING_SECS < now) {
                self.execute(client, &format!("DROP TABLE IF EXISTS {name}"))
                    .await?;
                tracing::info!(
                    table = name,
                    "dropped a staging table left by a failed rollup"
                );
            }
        }
        Ok(())
    }

    async fn execute(&self, client: &Client, statement: &str) -> Result<(), RollupError> {
        self.timed(client.query(statement).execute()).await
    }

    async fn timed<T>(
        &self,
        f: impl Future<Output = Result<T, clickhouse::error::Error>>,
    ) -> Result<T, RollupError> {
        match tokio::time::timeout(STATEMENT_TIMEOUT, f).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(RollupError::Timeout(STATEMENT_TIMEOUT)),
        }
    }

    /// Runs [`Rollup::run_recent`] now and then every `every`, until the process ends.
    pub fn spawn(
        self: Arc<Self>,
        every: Duration,
        metrics: Arc<Metrics>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let began = Instant::now();
                match self.run_recent(crate::time::now_unix()).await {
                    Ok(days) => {
                        metrics.rollup_succeeded(crate::time::now_unix());
                        let visits: u64 = days.iter().map(|d| d.visits).sum();
                        tracing::debug!(days = days.len(), visits, took = ?began.elapsed(), "rollup done");
                    }
                    Err(e) => {
                        metrics.rollup_failed();
                        tracing::warn!(error = %e, "rollup failed; the reports keep the previous numbers until the next run");
                    }
                }
                tokio::time::sleep(every).await;
            }
        })
    }
}
