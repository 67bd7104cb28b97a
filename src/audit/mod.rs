//! `tally audit`: checks a live database against the configuration, so that an operator can
//! prove the promises of the privacy policy with one command. Each check names the table and
//! column it read; any violation makes the command fail.
//!
//! - `ip_truncated`: no stored address keeps more than the leading bytes `privacy.ip_bytes`
//!   allows (every address column, IPv4 and IPv6; [`patterns::keeps_too_much`] decides with
//!   tally's own truncation).
//! - `raw_retention`: no raw row older than `[retention] raw_days`: a row of `events` of UTC day
//!   D is gone by 00:00 UTC of day D + `raw_days`, a row of `visits` of a site's local day D by
//!   the UTC midnight after that day's first instant plus `raw_days` days.
//! - `aggregate_retention`: no aggregate day (or week, by its Monday) older than
//!   `aggregate_days` UTC days, today included.
//! - `secret_retention`: no day secret 48 hours after its day began (`expires` has passed, or
//!   the day began more than 48 hours ago even in the westernmost zone, UTC-12, whatever
//!   `expires` says).
//! - `no_email`, `no_ipv4`, `no_ipv6`, `no_click_id`: no value shaped like those in the free
//!   texts of [`columns`] ([`patterns`]: ClickHouse `match`, RE2).
//! - `pruner_ran`: a (not dry) run in `prune_runs` within the last two hours, and that run did
//!   not fail.
//!
//! Deleting is the pruner's work, which runs every `[retention] prune_interval_secs`; the
//! retention checks therefore allow a day to outlive its limit by [`Limits::grace`] (two hours,
//! or the interval plus a quarter of an hour if that is longer), the time the pruner has to
//! notice. Secrets are dropped by the collectors within a minute of their expiry and get
//! [`SECRET_GRACE`].
//!
//! Every query has a time limit (ClickHouse's `max_execution_time` and a timer around it) and
//! runs with `readonly = 2`: the audit changes nothing. A check whose query fails or times out
//! is reported as an error, which fails the audit like a violation.

pub mod columns;
pub mod patterns;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::NaiveDate;
use clickhouse::Row;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::store::Client;
use patterns::Kind;

/// The pruner must have run within this many seconds (unless its interval is longer).
pub const PRUNER_FRESHNESS_SECS: u32 = 2 * 3600;

/// Seconds a day secret may outlive its `expires` before the audit calls it a violation: the
/// collectors drop it within a minute of that instant.
pub const SECRET_GRACE: u32 = 600;

/// Distinct non-canonical addresses (or visit days) read per column at most; beyond that the
/// count is a lower bound ("at least").
const MAX_ROWS: u64 = 10_000;

/// One check of one column: the unit of the JSON output.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What is checked: `ip_truncated`, `raw_retention`, `aggregate_retention`,
    /// `secret_retention`, `no_email`, `no_ipv4`, `no_ipv6`, `no_click_id`, `pruner_ran`.
    pub name: &'static str,
    /// Whether the column keeps the promise (false also when it could not be checked).
    pub ok: bool,
    /// The table read.
    pub table: String,
    /// The column read.
    pub column: String,
    /// Rows that violate it (0 when ok).
    pub count: u64,
    /// `count` is a lower bound: more rows were not read.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub at_least: bool,
    /// One offending value, redacted (the personal data replaced by what it is).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub example: Option<String>,
    /// In words: what holds, or what does not.
    pub message: String,
    /// Why the column could not be checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Check {
    fn new(name: &'static str, table: &str, column: &str) -> Check {
        Check {
            name,
            ok: true,
            table: table.to_string(),
            column: column.to_string(),
            count: 0,
            at_least: false,
            example: None,
            message: String::new(),
            error: None,
        }
    }

    fn failed(mut self, error: String) -> Check {
        self.ok = false;
        self.message = "could not be checked".into();
        self.error = Some(error);
        self
    }
}

/// The audit's answer.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Whether every check passed.
    pub ok: bool,
    /// The database audited.
    pub database: String,
    /// When (Unix seconds, UTC).
    pub checked_at: u32,
    /// `privacy.ip_bytes`.
    pub ip_bytes: u8,
    /// `[retention] raw_days`.
    pub raw_days: u32,
    /// `[retention] aggregate_days`.
    pub aggregate_days: u32,
    /// Every check, one per table and column.
    pub checks: Vec<Check>,
}

/// The instants the checks compare with, from the configuration and `now`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The audit's time (Unix seconds).
    pub now: u32,
    /// `privacy.ip_bytes`.
    pub ip_bytes: u8,
    /// `[retention] raw_days`.
    pub raw_days: u32,
    /// `[retention] aggregate_days`.
    pub aggregate_days: u32,
    /// Seconds the pruner has to delete what expired (and to run at all).
    pub grace: u32,
}

impl Limits {
    /// The limits of `cfg` at `now`.
    pub fn new(cfg: &Config, now: u32) -> Limits {
        let interval = u32::try_from(cfg.retention.prune_interval_secs).unwrap_or(u32::MAX);
        Limits {
            now,
            ip_bytes: cfg.privacy.ip_bytes,
            raw_days: cfg.retention.raw_days.max(1),
            aggregate_days: cfg.retention.aggregate_days.max(1),
            grace: PRUNER_FRESHNESS_SECS.max(interval.saturating_add(900)),
        }
    }

    /// The UTC day number the pruner must have caught up with: today's, `grace` ago.
    fn settled_day(&self) -> u32 {
        crate::time::day_of(self.now.saturating_sub(self.grace))
    }

    /// Raw events before this instant (00:00 UTC of the first day kept) violate.
    pub fn raw_cutoff(&self) -> u32 {
        (self.settled_day() + 1)
            .saturating_sub(self.raw_days)
            .saturating_mul(86_400)
    }

    /// Whether the visits of local day `day` in `tz` should be gone: its first instant's UTC
    /// day plus `raw_days` has begun (`grace` ago), as for the events they were made from.
    pub fn visit_day_expired(&self, tz: chrono_tz::Tz, day: NaiveDate) -> bool {
        let start = crate::time::start_of_day(tz, day);
        crate::time::day_of(start) + self.raw_days <= self.settled_day()
    }

    /// Visit days from this date on are never expired in any zone (a local date is at most a
    /// day ahead of the UTC one): what ClickHouse need not send.
    fn visits_bound(&self) -> NaiveDate {
        crate::time::date_of((self.settled_day() + 2).saturating_sub(self.raw_days))
    }

    /// The first aggregate day (or week's Monday) kept.
    pub fn aggregates_keep_from(&self) -> NaiveDate {
        crate::time::date_of((self.settled_day() + 1).saturating_sub(self.aggregate_days))
    }

    /// The pruner's last run must be at or after this instant.
    pub fn pruner_due(&self) -> u32 {
        self.now.saturating_sub(self.grace)
    }
}

/// Checks the database `client` reads against `cfg` at `now`; every query is limited to
/// `timeout`. Fails only when the database cannot be read at all.
pub async fn run(
    client: &Client,
    cfg: &Config,
    now: u32,
    timeout: Duration,
) -> anyhow::Result<Report> {
    let secs = timeout.as_secs().max(1);
    let auditor = Auditor {
        client: client
            .clone()
            .with_setting("readonly", "2")
            .with_setting("max_execution_time", secs.to_string()),
        cfg,
        limits: Limits::new(cfg, now),
        // ClickHouse stops the query itself; this timer is for a server that does not answer.
        timeout: Duration::from_secs(secs + 5),
        columns: BTreeMap::new(),
    };
    let auditor = auditor.discover().await?;
    let mut checks = Vec::new();
    checks.extend(auditor.addresses().await);
    checks.extend(auditor.raw_retention().await);
    checks.extend(auditor.aggregate_retention().await);
    checks.extend(auditor.secret_retention().await);
    checks.extend(auditor.personal_data().await);
    checks.push(auditor.pruner_ran().await);
    Ok(Report {
        ok: checks.iter().all(|c| c.ok),
        database: cfg.clickhouse.database.clone(),
        checked_at: now,
        ip_bytes: cfg.privacy.ip_bytes,
        raw_days: cfg.retention.raw_days,
        aggregate_days: cfg.retention.aggregate_days,
        checks,
    })
}

struct Auditor<'a> {
    client: Client,
    cfg: &'a Config,
    limits: Limits,
    timeout: Duration,
    /// table → column → type, as the live database has them.
    columns: BTreeMap<String, BTreeMap<String, String>>,
}

#[derive(Row, Deserialize)]
struct ColumnRow {
    table: String,
    name: String,
    #[serde(rename = "type")]
    ty: String,
}

#[derive(Row, Deserialize)]
struct Old {
    n: u64,
    oldest: u32,
}

#[derive(Row, Deserialize)]
struct Address {
    a: String,
    n: u64,
}

#[derive(Row, Deserialize)]
struct VisitDay {
    site_id: u32,
    day: u16,
    n: u64,
}

#[derive(Row, Deserialize)]
struct Counts {
    counts: Vec<u64>,
}

#[derive(Row, Deserialize)]
struct Sample {
    v: String,
}

#[derive(Row, Deserialize)]
struct Runs {
    n: u64,
    last: u32,
    failed: u8,
    message: String,
}

impl Auditor<'_> {
    async fn fetch<T>(&self, q: clickhouse::query::Query) -> Result<Vec<T>, String>
    where
        T: clickhouse::RowOwned + clickhouse::RowRead,
    {
        match tokio::time::timeout(self.timeout, q.fetch_all::<T>()).await {
            Ok(Ok(rows)) => Ok(rows),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "no answer within {} seconds",
                self.timeout.as_secs()
            )),
        }
    }

    async fn fetch_one<T>(&self, q: clickhouse::query::Query) -> Result<T, String>
    where
        T: clickhouse::RowOwned + clickhouse::RowRead,
    {
        self.fetch::<T>(q)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| "no row returned".to_string())
    }

    async fn discover(mut self) -> anyhow::Result<Self> {
        let rows: Vec<ColumnRow> = self
            .fetch(self.client.query(
                "SELECT table, name, type FROM system.columns WHERE database = currentDatabase()",
            ))
            .await
            .map_err(|e| anyhow::anyhow!("cannot read the columns of the database: {e}"))?;
        for r in rows {
            // On a cluster this node also holds its share of a sharded table as `<name>_local`;
            // the Distributed table `<name>` reads every shard's share, so that is the one
            // checked (through it the audit sees all rows, not this node's part).
            if let Some(stem) = r.table.strip_suffix("_local")
                && crate::store::cluster::is_sharded(stem)
            {
                continue;
            }
            self.columns
                .entry(r.table)
                .or_default()
                .insert(r.name, r.ty);
        }
        Ok(self)
    }

    fn has(&self, table: &str, column: &str) -> bool {
        self.columns
            .get(table)
            .is_some_and(|c| c.contains_key(column))
    }

    fn column_type(&self, table: &str, column: &str) -> &str {
        self.columns
            .get(table)
            .and_then(|c| c.get(column))
            .map_or("", String::as_str)
    }

    async fn addresses(&self) -> Vec<Check> {
        let mut targets: BTreeSet<(String, String)> = columns::ADDRESS_COLUMNS
            .iter()
            .filter(|(t, c)| self.has(t, c))
            .map(|(t, c)| (t.to_string(), c.to_string()))
            .collect();
        for (table, cols) in &self.columns {
            for name in cols.keys() {
                if columns::looks_like_address(name) {
                    targets.insert((table.clone(), name.clone()));
                }
            }
        }
        let mut out = Vec::new();
        for (table, column) in targets {
            out.push(self.address_column(&table, &column).await);
        }
        out
    }

    async fn address_column(&self, table: &str, column: &str) -> Check {
        let check = Check::new("ip_truncated", table, column);
        if !columns::plain_identifier(table) || !columns::plain_identifier(column) {
            return check.failed("a name that cannot be written into SQL".into());
        }
        let ip_bytes = self.limits.ip_bytes;
        let from = if self.column_type(table, column).starts_with("Array(") {
            format!("{table} ARRAY JOIN {column} AS element")
        } else {
            table.to_string()
        };
        let value = if from.contains("ARRAY JOIN") {
            "element".to_string()
        } else {
            column.to_string()
        };
        // Canonical truncated texts are skipped by ClickHouse; everything else is judged here.
        let sql = format!(
            "WITH ? AS truncated SELECT toString({value}) AS a, count() AS n FROM {from} \
             WHERE a != '' AND NOT match(a, truncated) GROUP BY a ORDER BY n DESC LIMIT {MAX_ROWS}"
        );
        let rows: Vec<Address> = match self
            .fetch(
                self.client
                    .query(&sql)
                    .bind(patterns::truncated_pattern(ip_bytes)),
            )
            .await
        {
            Ok(rows) => rows,
            Err(e) => return check.failed(e),
        };
        let mut check = check;
        check.at_least = rows.len() as u64 >= MAX_ROWS;
        for r in &rows {
            if let Some(why) = patterns::keeps_too_much(&r.a, ip_bytes) {
                check.count += r.n;
                if check.example.is_none() {
                    check.example = Some(format!(
                        "{} ({why})",
                        patterns::redact_address(&r.a, ip_bytes)
                    ));
                }
            }
        }
        check.ok = check.count == 0;
        check.at_least &= !check.ok;
        check.message = if check.ok {
            format!(
                "no address keeps more than the allowed leading bytes (IPv4 /{}, IPv6 /{})",
                32 - 8 * u32::from(ip_bytes.clamp(1, 3)),
                match ip_bytes.clamp(1, 3) {
                    1 => 64,
                    2 => 48,
                    _ => 24,
                }
            )
        } else {
            "addresses keeping more than privacy.ip_bytes allows".into()
        };
        check
    }

    async fn raw_retention(&self) -> Vec<Check> {
        let mut out = Vec::new();
        if self.has("events", "ts") {
            let mut check = Check::new("raw_retention", "events", "ts");
            let cutoff = self.limits.raw_cutoff();
            let q = self
                .client
                .query(
                    "SELECT count() AS n, toUInt32(min(ts)) AS oldest FROM events \
                     WHERE ts < toDateTime(?)",
                )
                .bind(cutoff);
            check = match self.fetch_one::<Old>(q).await {
                Ok(old) => {
                    check.count = old.n;
                    check.ok = old.n == 0;
                    if !check.ok {
                        check.example = Some(format!(
                            "oldest row of {}",
                            crate::time::date_of(crate::time::day_of(old.oldest))
                        ));
                    }
                    check.message = format!(
                        "{} before {} (UTC; {} days kept)",
                        if check.ok { "no row" } else { "rows" },
                        crate::time::date_of(crate::time::day_of(cutoff)),
                        self.limits.raw_days
                    );
                    check
                }
                Err(e) => check.failed(e),
            };
            out.push(check);
        }
        if self.has("visits", "day") && self.has("visits", "site_id") {
            out.push(self.visits_retention().await);
        }
        out
    }

    async fn visits_retention(&self) -> Check {
        let check = Check::new("raw_retention", "visits", "day");
        let q = self
            .client
            .query(&format!(
                "SELECT site_id, day, count() AS n FROM visits WHERE day < toDate(?) \
                 GROUP BY site_id, day ORDER BY day LIMIT {MAX_ROWS}"
            ))
            .bind(self.limits.visits_bound().to_string());
        let rows: Vec<VisitDay> = match self.fetch(q).await {
            Ok(r) => r,
            Err(e) => return check.failed(e),
        };
        let mut check = check;
        for r in &rows {
            let tz = self.cfg.site(r.site_id).map_or(chrono_tz::UTC, |s| s.tz());
            let day = crate::time::date_of(u32::from(r.day));
            if self.limits.visit_day_expired(tz, day) {
                check.count += r.n;
                if check.example.is_none() {
                    check.example = Some(format!("site {}, local day {day}", r.site_id));
                }
            }
        }
        check.ok = check.count == 0;
        check.at_least = !check.ok && rows.len() as u64 >= MAX_ROWS;
        check.message = format!(
            "{} of a local day whose raw events are past {} days",
            if check.ok { "no visit" } else { "visits" },
            self.limits.raw_days
        );
        check
    }

    /// Rows of `table` whose `Date` column `column` is before `keep_from`.
    async fn old_days(
        &self,
        name: &'static str,
        table: &str,
        column: &str,
        keep_from: NaiveDate,
        what: &str,
    ) -> Check {
        let check = Check::new(name, table, column);
        let q = self
            .client
            .query(&format!(
                "SELECT count() AS n, toUInt32(min({column})) AS oldest FROM {table} \
                 WHERE {column} < toDate(?)"
            ))
            .bind(keep_from.to_string());
        match self.fetch_one::<Old>(q).await {
            Ok(old) => {
                let mut check = check;
                check.count = old.n;
                check.ok = old.n == 0;
                if !check.ok {
                    check.example = Some(format!(
                        "oldest {column} {}",
                        crate::time::date_of(old.oldest)
                    ));
                }
                check.message = format!(
                    "{} before {keep_from} ({what})",
                    if check.ok { "no row" } else { "rows" }
                );
                check
            }
            Err(e) => check.failed(e),
        }
    }

    async fn aggregate_retention(&self) -> Vec<Check> {
        let keep_from = self.limits.aggregates_keep_from();
        let what = format!("{} days kept", self.limits.aggregate_days);
        let mut out = Vec::new();
        for (table, column) in [
            ("agg_daily", "day"),
            ("agg_hourly", "day"),
            ("agg_breakdown", "day"),
            ("agg_top", "day"),
            ("agg_top_week", "week"),
        ] {
            if self.has(table, column) {
                out.push(
                    self.old_days("aggregate_retention", table, column, keep_from, &what)
                        .await,
                );
            }
        }
        out
    }

    async fn secret_retention(&self) -> Vec<Check> {
        if !self.has("day_secrets", "expires") || !self.has("day_secrets", "day") {
            return Vec::new();
        }
        let check = Check::new("secret_retention", "day_secrets", "day");
        let now = self.limits.now;
        // A day begins at most 12 hours after its UTC midnight (UTC-12) and its secret lives 48
        // hours from then: past that, no zone excuses it, whatever its `expires` says.
        let latest_end = (12 + 48) * 3600 + SECRET_GRACE;
        let q = self
            .client
            .query(
                "SELECT count() AS n, toUInt32(min(day)) AS oldest FROM day_secrets \
                 WHERE expires <= ? OR toUInt32(day) * 86400 + ? < ?",
            )
            .bind(now.saturating_sub(SECRET_GRACE))
            .bind(latest_end)
            .bind(now);
        let check = match self.fetch_one::<Old>(q).await {
            Ok(old) => {
                let mut check = check;
                check.count = old.n;
                check.ok = old.n == 0;
                if !check.ok {
                    check.example = Some(format!("secret of {}", crate::time::date_of(old.oldest)));
                }
                check.message = if check.ok {
                    "no secret of a day that began more than 48 hours ago".into()
                } else {
                    "secrets of days that began more than 48 hours ago".into()
                };
                check
            }
            Err(e) => check.failed(e),
        };
        vec![check]
    }

    async fn personal_data(&self) -> Vec<Check> {
        let mut out = Vec::new();
        for (table, cols) in columns::TEXT_COLUMNS {
            let present: Vec<&str> = cols
                .iter()
                .copied()
                .filter(|c| self.has(table, c))
                .collect();
            if !present.is_empty() {
                out.extend(self.texts(table, &present, false).await);
            }
        }
        for table in columns::VALUE_TABLES {
            if self.has(table, "value") && self.has(table, "dimension") {
                out.extend(self.texts(table, &["value"], true).await);
            }
        }
        out
    }

    /// The expression that is true for a row whose `column` matches the pattern bound as
    /// `p{k}` (an array column: any element).
    fn matches(&self, table: &str, column: &str, k: usize, by_dimension: bool) -> String {
        let ty = self.column_type(table, column);
        let m = if ty.starts_with("Array(Array(") {
            // Custom properties per action of a visit: any element of any element.
            format!("arrayExists(xs -> arrayExists(x -> match(x, p{k}), xs), {column})")
        } else if ty.starts_with("Array(") {
            format!("arrayExists(x -> match(x, p{k}), {column})")
        } else {
            format!("match({column}, p{k})")
        };
        if by_dimension {
            format!(
                "((has(dims, dimension) OR startsWith(dimension, '{}')) AND {m})",
                columns::PROPS_PREFIX
            )
        } else {
            m
        }
    }

    /// One scan of `table` counting, per column and [`Kind`], the rows matching.
    async fn texts(&self, table: &str, cols: &[&str], by_dimension: bool) -> Vec<Check> {
        let mut counts = Vec::new();
        for column in cols {
            for (k, _) in Kind::ALL.iter().enumerate() {
                counts.push(format!(
                    "countIf({})",
                    self.matches(table, column, k, by_dimension)
                ));
            }
        }
        let withs: Vec<String> = (0..Kind::ALL.len()).map(|k| format!("? AS p{k}")).collect();
        let dims = if by_dimension { ", ? AS dims" } else { "" };
        let sql = format!(
            "WITH {}{dims} SELECT [{}] AS counts FROM {table}",
            withs.join(", "),
            counts.join(", ")
        );
        let mut q = self.client.query(&sql);
        for kind in Kind::ALL {
            q = q.bind(kind.pattern());
        }
        if by_dimension {
            q = q.bind(columns::TEXT_DIMENSIONS.to_vec());
        }
        let found = match self.fetch_one::<Counts>(q).await {
            Ok(c) if c.counts.len() == counts.len() => c.counts,
            Ok(_) => {
                return self.all_failed(table, cols, "unexpected answer".into());
            }
            Err(e) => return self.all_failed(table, cols, e),
        };
        let mut out = Vec::new();
        for (i, column) in cols.iter().enumerate() {
            for (k, kind) in Kind::ALL.iter().enumerate() {
                let mut check = Check::new(kind.check_name(), table, column);
                check.count = found[i * Kind::ALL.len() + k];
                check.ok = check.count == 0;
                check.message = if check.ok {
                    format!("no {}", kind.what())
                } else {
                    format!("values containing {}", kind.a_what())
                };
                if !check.ok {
                    check.example = self.example(table, column, *kind, by_dimension).await;
                }
                out.push(check);
            }
        }
        out
    }

    fn all_failed(&self, table: &str, cols: &[&str], error: String) -> Vec<Check> {
        cols.iter()
            .flat_map(|column| {
                Kind::ALL
                    .iter()
                    .map(|kind| Check::new(kind.check_name(), table, column).failed(error.clone()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// One offending value, redacted; `None` if it cannot be read (the count stands).
    async fn example(
        &self,
        table: &str,
        column: &str,
        kind: Kind,
        by_dimension: bool,
    ) -> Option<String> {
        let ty = self.column_type(table, column);
        let array = ty.starts_with("Array(");
        let value = match (array, by_dimension) {
            (true, _) if ty.starts_with("Array(Array(") => format!(
                "arrayFirst(x -> match(x, p0), arrayFirst(xs -> arrayExists(x -> match(x, p0), xs), {column}))"
            ),
            (true, _) => format!("arrayFirst(x -> match(x, p0), {column})"),
            (false, true) => format!("concat(dimension, ': ', {column})"),
            (false, false) => column.to_string(),
        };
        let cond = self.matches(table, column, 0, by_dimension);
        let dims = if by_dimension { ", ? AS dims" } else { "" };
        let sql =
            format!("WITH ? AS p0{dims} SELECT {value} AS v FROM {table} WHERE {cond} LIMIT 1");
        let mut q = self.client.query(&sql).bind(kind.pattern());
        if by_dimension {
            q = q.bind(columns::TEXT_DIMENSIONS.to_vec());
        }
        let sample: Sample = self.fetch_one(q).await.ok()?;
        Some(patterns::redact(&sample.v))
    }

    async fn pruner_ran(&self) -> Check {
        let mut check = Check::new("pruner_ran", "prune_runs", "run_at");
        if !self.has("prune_runs", "run_at") {
            check.ok = false;
            check.message = "no table prune_runs: the schema is older than the pruner's \
                             record (run `tally migrate`)"
                .into();
            return check;
        }
        let q = self.client.query(
            "SELECT count() AS n, toUInt32(max(run_at)) AS last, argMax(failed, run_at) AS failed, \
             argMax(message, run_at) AS message FROM prune_runs WHERE dry_run = 0",
        );
        let runs: Runs = match self.fetch_one(q).await {
            Ok(r) => r,
            Err(e) => return check.failed(e),
        };
        let limit_h = f64::from(self.limits.grace) / 3600.0;
        let last = format_time(runs.last);
        if runs.n == 0 {
            check.ok = false;
            check.message = "the pruner has never run".into();
        } else if runs.last < self.limits.pruner_due() {
            check.ok = false;
            check.message = format!("the pruner last ran at {last}, more than {limit_h} hours ago");
        } else if runs.failed != 0 {
            check.ok = false;
            check.message = format!("the pruner's last run, at {last}, failed");
            check.example = Some(patterns::shorten(&runs.message, 160));
        } else {
            check.message = format!("the pruner last ran at {last}, within {limit_h} hours");
        }
        check
    }
}

/// `YYYY-MM-DD HH:MM:SS UTC`.
pub fn format_time(unix: u32) -> String {
    chrono::DateTime::from_timestamp(i64::from(unix), 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

impl Report {
    /// The report as one JSON object, for monitoring.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".into())
    }

    /// The short report for people: one line per check (the columns of a check that pass
    /// share one line; each violating column has its own), and a summary.
    pub fn human(&self) -> String {
        let mut out = format!(
            "tally audit of database {} at {} (privacy.ip_bytes = {}, raw data {} days, \
             aggregates {} days)\n",
            self.database,
            format_time(self.checked_at),
            self.ip_bytes,
            self.raw_days,
            self.aggregate_days
        );
        let mut names: Vec<&str> = Vec::new();
        for c in &self.checks {
            if !names.contains(&c.name) {
                names.push(c.name);
            }
        }
        for name in names {
            let checks: Vec<&Check> = self.checks.iter().filter(|c| c.name == name).collect();
            let passed: Vec<&&Check> = checks.iter().filter(|c| c.ok).collect();
            // Columns that pass alike share a line; differing messages get one each.
            let alike = passed.windows(2).all(|w| w[0].message == w[1].message);
            if passed.len() > 1 && alike {
                let tables: BTreeSet<&str> = passed.iter().map(|c| c.table.as_str()).collect();
                out.push_str(&format!(
                    "ok         {name}: {} in {} columns of {}\n",
                    passed[0].message,
                    passed.len(),
                    tables.into_iter().collect::<Vec<_>>().join(", ")
                ));
            } else {
                for c in passed {
                    out.push_str(&format!(
                        "ok         {name}: {}.{}: {}\n",
                        c.table, c.column, c.message
                    ));
                }
            }
            for c in checks.iter().filter(|c| !c.ok) {
                let label = if c.error.is_some() {
                    "ERROR    "
                } else {
                    "VIOLATION"
                };
                let mut line = format!("{label}  {name}: {}.{}: ", c.table, c.column);
                if c.count > 0 {
                    line.push_str(&format!(
                        "{}{} row{}, ",
                        if c.at_least { "at least " } else { "" },
                        c.count,
                        if c.count == 1 { "" } else { "s" }
                    ));
                }
                line.push_str(&c.message);
                if let Some(e) = &c.error {
                    line.push_str(&format!(": {e}"));
                }
                if let Some(x) = &c.example {
                    line.push_str(&format!("; e.g. {x}"));
                }
                out.push_str(&line);
                out.push('\n');
            }
        }
        let bad = self.checks.iter().filter(|c| !c.ok).count();
        if bad == 0 {
            out.push_str(&format!("all {} checks passed\n", self.checks.len()));
        } else {
            out.push_str(&format!("{bad} of {} checks failed\n", self.checks.len()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(now: u32) -> Limits {
        Limits {
            now,
            ip_bytes: 2,
            raw_days: 7,
            aggregate_days: 180,
            grace: 7200,
        }
    }

    const DAY: u32 = 86_400;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn an_event_of_day_d_may_stay_until_two_hours_into_day_d_plus_7() {
        let d = crate::time::day_number(date("2026-11-01"));
        let start = |day: u32| day * DAY;
        // Two hours into D+7: D is still allowed (the pruner may not have run yet).
        assert_eq!(limits(start(d + 7) + 7199).raw_cutoff(), start(d));
        // After that, every row of D violates.
        assert_eq!(limits(start(d + 7) + 7200).raw_cutoff(), start(d + 1));
        assert_eq!(limits(start(d + 8)).raw_cutoff(), start(d + 1));
    }

    #[test]
    fn visit_days_follow_their_zone() {
        let d = date("2026-11-01");
        let after = |days: u64, secs: u32| {
            let day = crate::time::day_number(d + chrono::Days::new(days));
            limits(day * DAY + secs)
        };
        let utc = chrono_tz::UTC;
        assert!(!after(7, 7199).visit_day_expired(utc, d));
        assert!(after(7, 7200).visit_day_expired(utc, d));
        // A day in UTC+14 began on the UTC day before: it goes a day earlier.
        let kiritimati: chrono_tz::Tz = "Pacific/Kiritimati".parse().unwrap();
        assert!(after(6, 7200).visit_day_expired(kiritimati, d));
        assert!(!after(6, 7200).visit_day_expired(utc, d));
        // The SQL bound never hides an expired day.
        for zone in [utc, kiritimati, "Etc/GMT+12".parse().unwrap()] {
            for h in 0..72 {
                let l = after(7, h * 3600);
                assert!(!l.visit_day_expired(zone, l.visits_bound()), "{zone} {h}");
            }
        }
    }

    #[test]
    fn aggregates_keep_180_days_today_included() {
        let today = date("2026-11-26");
        let l = limits(crate::time::day_number(today) * DAY + 7200);
        let first = l.aggregates_keep_from();
        assert_eq!((today - first).num_days(), 179);
        // Within the grace it is still yesterday's window.
        let early = limits(crate::time::day_number(today) * DAY + 60);
        assert_eq!((today - early.aggregates_keep_from()).num_days(), 180);
    }

    #[test]
    fn the_grace_covers_a_long_prune_interval() {
        let mut cfg = Config::from_table(toml::Table::new()).unwrap();
        assert_eq!(Limits::new(&cfg, 1_000_000).grace, 7200);
        cfg.retention.prune_interval_secs = 4 * 3600;
        assert_eq!(Limits::new(&cfg, 1_000_000).grace, 4 * 3600 + 900);
    }

    fn report(checks: Vec<Check>) -> Report {
        Report {
            ok: checks.iter().all(|c| c.ok),
            database: "tally".into(),
            checked_at: 1_790_000_000,
            ip_bytes: 2,
            raw_days: 7,
            aggregate_days: 180,
            checks,
        }
    }

    #[test]
    fn human_report_one_line_per_check_and_one_per_violation() {
        let mut bad = Check::new("no_email", "events", "url");
        bad.ok = false;
        bad.count = 3;
        bad.message = "values containing an e-mail address".into();
        bad.example = Some("/?u=[e-mail]".into());
        let mut good = Check::new("no_email", "events", "title");
        good.message = "no e-mail address".into();
        let mut other = Check::new("no_email", "visits", "pv_pages");
        other.message = "no e-mail address".into();
        let failed = Check::new("pruner_ran", "prune_runs", "run_at").failed("timeout".into());
        let r = report(vec![bad, good, other, failed]);
        let text = r.human();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert_eq!(
            lines[1],
            "ok         no_email: no e-mail address in 2 columns of events, visits"
        );
        assert_eq!(
            lines[2],
            "VIOLATION  no_email: events.url: 3 rows, values containing an e-mail address; e.g. /?u=[e-mail]"
        );
        assert!(
            lines[3].starts_with("ERROR      pruner_ran: prune_runs.run_at"),
            "{text}"
        );
        assert_eq!(lines[4], "2 of 4 checks failed");
        let json: serde_json::Value = serde_json::from_str(&r.json()).unwrap();
        assert_eq!(json["ok"], false);
        assert_eq!(json["checks"][0]["table"], "events");
        assert_eq!(json["checks"][0]["count"], 3);
        assert_eq!(json["checks"][3]["error"], "timeout");
    }
}
