//! What expires when: every table tally stores rows in, how it is partitioned, and which of its
//! partitions have outlived their window at a given instant. Pure functions, no database: the
//! runner (`super`) lists the partitions and drops what these rules name.

use chrono::{Datelike, Days, NaiveDate};

use crate::config::{RetentionConfig, SiteConfig};
use crate::time::{DayNumber, date_of, day_bounds, day_number, day_of, local_date};

/// The retention windows in force (`[retention]` of the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    /// Days raw events and per-visit rows are kept: the UTC day of an event and the days after
    /// it, this many in all.
    pub raw_days: u32,
    /// Days the daily aggregates (and the pruner's own record) are kept.
    pub aggregate_days: u32,
}

impl Windows {
    /// The windows of a (validated) configuration.
    pub fn of(config: &RetentionConfig) -> Self {
        Windows {
            raw_days: config.raw_days,
            aggregate_days: config.aggregate_days,
        }
    }

    /// The first UTC day whose raw events are kept at `now`: today and the `raw_days - 1`
    /// before it. An event of day D is therefore dropped by the first run at or after 00:00 UTC
    /// of day D + `raw_days`.
    pub fn raw_keep_from(&self, now: u32) -> DayNumber {
        raw_keep_from(self.raw_days, now)
    }

    /// The first date of the aggregates kept at `now`: `aggregate_days` UTC dates back, today
    /// included (a site's local date is never ahead of the UTC date by more than one day).
    pub fn aggregates_keep_from(&self, now: u32) -> NaiveDate {
        let today = local_date(chrono_tz::UTC, now);
        today
            .checked_sub_days(Days::new(u64::from(self.aggregate_days.saturating_sub(1))))
            .unwrap_or(today)
    }
}

/// The first UTC day whose raw events are kept at `now` with a raw window of `raw_days`
/// (see [`Windows::raw_keep_from`]).
pub fn raw_keep_from(raw_days: u32, now: u32) -> DayNumber {
    day_of(now).saturating_sub(raw_days.saturating_sub(1))
}

/// The UTC days (inclusive) that the local `date` of `site` overlaps: one for a UTC site, two
/// for any other zone (the day before for zones east of UTC, the day after for zones west).
pub fn utc_days_of(site: &SiteConfig, date: NaiveDate) -> (DayNumber, DayNumber) {
    let (start, end) = day_bounds(site.tz(), date);
    (day_of(start), day_of(end.saturating_sub(1).max(start)))
}

/// The first local date whose per-visit rows are kept at `now`: the first whose raw events are
/// all still stored for *every* site (so a site east of UTC, whose day begins on the UTC day
/// before, does not keep its visits longer than their events). The query engine answers from
/// `visits` from this day on, and the pruner drops the days before it.
pub fn visits_first_day(sites: &[SiteConfig], raw_days: u32, now: u32) -> NaiveDate {
    let windows = Windows {
        raw_days,
        aggregate_days: raw_days,
    };
    let keep_from = windows.raw_keep_from(now);
    let whole = |s: &SiteConfig, date: NaiveDate| utc_days_of(s, date).0 >= keep_from;
    // Local days of any zone are within a day of the UTC date: start at the UTC date and walk
    // back while every site still has all its raw events.
    let mut day = local_date(chrono_tz::UTC, now);
    loop {
        let Some(before) = day.pred_opt() else {
            return day;
        };
        let all_whole = if sites.is_empty() {
            whole(&SiteConfig::utc_placeholder(), before)
        } else {
            sites.iter().all(|s| whole(s, before))
        };
        if !all_whole {
            return day;
        }
        day = before;
    }
}

/// How a table is partitioned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionKey {
    /// `toYYYYMMDD(ts)` of a UTC `DateTime`: `20261124`.
    UtcDay,
    /// A `Date` column: `2026-11-24` (a site's local date, or a week's Monday).
    Date,
    /// A `UInt32` Unix time: the instant the rows expire.
    ExpiresAt,
    /// `toYYYYMM(..)`: `202611`.
    Month,
}

/// Which window a table's rows live by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// Raw hits: `raw_days` UTC days.
    Raw,
    /// Per-visit rows: as long as every raw event of their local date is kept.
    Visits,
    /// Counts only, no visitor key: `aggregate_days`.
    Aggregates,
    /// The secrets behind visitor keys: until their `expires` (48 hours after their day began).
    Secret,
    /// Sessions and sign-in tokens: the month they expire in, once it is over.
    ExpiryMonth,
    /// The pruner's own record: a month goes once its first day is older than
    /// `aggregate_days`, so no row of it is older than that.
    RunMonth,
}

/// A table the pruner looks after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    /// Its name.
    pub name: &'static str,
    /// Its partition key.
    pub key: PartitionKey,
    /// How long its rows live.
    pub lifetime: Lifetime,
}

const fn table(name: &'static str, key: PartitionKey, lifetime: Lifetime) -> Table {
    Table {
        name,
        key,
        lifetime,
    }
}

/// Every partitioned table of `schema/`, in the order the pruner drops from them (raw events
/// first: the rollup has just read them). The tables left out are not per-visitor and not
/// partitioned: accounts, API keys, shared links and their revocations live until an operator
/// removes them, `schema_migrations` for good (see docs/retention.md).
pub const TABLES: [Table; 13] = [
    table("events", PartitionKey::UtcDay, Lifetime::Raw),
    table("visits", PartitionKey::Date, Lifetime::Visits),
    table("agg_daily", PartitionKey::Date, Lifetime::Aggregates),
    table("agg_hourly", PartitionKey::Date, Lifetime::Aggregates),
    table("agg_breakdown", PartitionKey::Date, Lifetime::Aggregates),
    table("agg_top", PartitionKey::Date, Lifetime::Aggregates),
    // By weeks: a week goes when its Monday expires, so no week holds an expired day.
    table("agg_top_week", PartitionKey::Date, Lifetime::Aggregates),
    table("day_secrets", PartitionKey::ExpiresAt, Lifetime::Secret),
    table("sessions", PartitionKey::Month, Lifetime::ExpiryMonth),
    table("session_ends", PartitionKey::Month, Lifetime::ExpiryMonth),
    table("signin_tokens", PartitionKey::Month, Lifetime::ExpiryMonth),
    table(
        "signin_token_uses",
        PartitionKey::Month,
        Lifetime::ExpiryMonth,
    ),
    table("prune_runs", PartitionKey::Month, Lifetime::RunMonth),
];

/// The table named `name`, if the pruner looks after it.
pub fn table_named(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.name == name)
}

/// A partition value as ClickHouse prints it in `system.parts` (quotes removed), read by the
/// table's key; `None` for anything tally did not write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partition {
    /// A day (UTC or local) or a week's Monday.
    Day(NaiveDate),
    /// An instant (Unix seconds).
    At(u32),
    /// A month, by its first day.
    Month(NaiveDate),
}

impl Partition {
    /// Reads `value` as a partition of a table keyed by `key`.
    pub fn parse(key: PartitionKey, value: &str) -> Option<Partition> {
        let value = value.trim_matches('\'');
        match key {
            PartitionKey::UtcDay => NaiveDate::parse_from_str(value, "%Y%m%d")
                .ok()
                .filter(|_| value.len() == 8)
                .map(Partition::Day),
            PartitionKey::Date => NaiveDate::parse_from_str(value, "%Y-%m-%d")
                .ok()
                .map(Partition::Day),
            PartitionKey::ExpiresAt => value.parse().ok().map(Partition::At),
            PartitionKey::Month => {
                let n: u32 = value.parse().ok().filter(|_| value.len() == 6)?;
                NaiveDate::from_ymd_opt((n / 100) as i32, n % 100, 1).map(Partition::Month)
            }
        }
    }

    /// Unix seconds of the first instant the partition's rows can be from (UTC): the day's or
    /// month's 00:00 UTC; for a secret, the start of its day (48 hours before it expires).
    pub fn begins(&self) -> u32 {
        match self {
            Partition::Day(d) | Partition::Month(d) => day_number(*d).saturating_mul(86_400),
            Partition::At(expires) => expires.saturating_sub(48 * 3600),
        }
    }
}

/// The limits of one run at one instant: everything before them has expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoffs {
    /// The instant of the run.
    pub now: u32,
    /// The first UTC day of raw events kept.
    pub raw_from: NaiveDate,
    /// The first local date of per-visit rows kept.
    pub visits_from: NaiveDate,
    /// The first date (or Monday) of aggregates kept.
    pub aggregates_from: NaiveDate,
    /// The first day of the current UTC month.
    pub this_month: NaiveDate,
}

impl Cutoffs {
    /// The limits at `now` for these windows and sites.
    pub fn at(windows: Windows, sites: &[SiteConfig], now: u32) -> Self {
        let today = local_date(chrono_tz::UTC, now);
        Cutoffs {
            now,
            raw_from: date_of(windows.raw_keep_from(now)),
            visits_from: visits_first_day(sites, windows.raw_days, now),
            aggregates_from: windows.aggregates_keep_from(now),
            this_month: today.with_day(1).unwrap_or(today),
        }
    }

    /// Whether `partition` of `table` has expired; `None` when the value is not one tally
    /// wrote (such a partition is never touched).
    pub fn expired(&self, table: &Table, value: &str) -> Option<bool> {
        let p = Partition::parse(table.key, value)?;
        Some(match (table.lifetime, p) {
            (Lifetime::Raw, Partition::Day(d)) => d < self.raw_from,
            (Lifetime::Visits, Partition::Day(d)) => d < self.visits_from,
            (Lifetime::Aggregates, Partition::Day(d)) => d < self.aggregates_from,
            (Lifetime::Secret, Partition::At(expires)) => expires <= self.now,
            (Lifetime::ExpiryMonth, Partition::Month(m)) => m < self.this_month,
            (Lifetime::RunMonth, Partition::Month(m)) => m < self.aggregates_from,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-24 10:00 UTC.
    const NOW: u32 = 1_795_514_400;
    const DAY: u32 = 86_400;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn site(tz: &str) -> SiteConfig {
        let mut s = SiteConfig::utc_placeholder();
        s.timezone = tz.into();
        s
    }

    const POLICY: Windows = Windows {
        raw_days: 7,
        aggregate_days: 180,
    };

    #[test]
    fn raw_days_end_at_utc_midnight() {
        let t = |name| *table_named(name).unwrap();
        let start_of_today = NOW - NOW % DAY;
        // At the last second of a day, the day 6 before is kept; at the first second of the
        // next, it goes.
        let before = Cutoffs::at(POLICY, &[], start_of_today - 1);
        assert_eq!(before.expired(&t("events"), "20261117"), Some(false));
        assert_eq!(before.expired(&t("events"), "20261116"), Some(true));
        let after = Cutoffs::at(POLICY, &[], start_of_today);
        assert_eq!(after.expired(&t("events"), "20261117"), Some(true));
        assert_eq!(after.expired(&t("events"), "20261118"), Some(false));
        // Shorter windows are honoured.
        let three = Windows {
            raw_days: 3,
            aggregate_days: 30,
        };
        let c = Cutoffs::at(three, &[], NOW);
        assert_eq!(c.raw_from, d("2026-11-22"));
        assert_eq!(c.aggregates_from, d("2026-10-26"));
        // Not ours: never touched.
        assert_eq!(c.expired(&t("events"), "tuple()"), None);
        assert_eq!(c.expired(&t("events"), "2026-11-01"), None);
    }

    #[test]
    fn every_table_by_its_own_rule() {
        let t = |name| *table_named(name).unwrap();
        let c = Cutoffs::at(POLICY, &[], NOW);
        assert_eq!(c.visits_from, d("2026-11-18"));
        assert_eq!(c.aggregates_from, d("2026-05-29"));
        assert_eq!(c.this_month, d("2026-11-01"));
        assert_eq!(c.expired(&t("visits"), "2026-11-17"), Some(true));
        assert_eq!(c.expired(&t("visits"), "2026-11-18"), Some(false));
        assert_eq!(c.expired(&t("agg_daily"), "2026-05-28"), Some(true));
        assert_eq!(c.expired(&t("agg_daily"), "2026-05-29"), Some(false));
        assert_eq!(c.expired(&t("agg_top_week"), "2026-05-25"), Some(true));
        assert_eq!(c.expired(&t("agg_top_week"), "2026-06-01"), Some(false));
        assert_eq!(c.expired(&t("day_secrets"), &NOW.to_string()), Some(true));
        assert_eq!(
            c.expired(&t("day_secrets"), &(NOW + 1).to_string()),
            Some(false)
        );
        assert_eq!(c.expired(&t("sessions"), "202610"), Some(true));
        assert_eq!(c.expired(&t("sessions"), "202611"), Some(false));
        // The pruner's record: May began before the window's first day (May 29), so it goes
        // whole; June stays.
        assert_eq!(c.expired(&t("prune_runs"), "202605"), Some(true));
        assert_eq!(c.expired(&t("prune_runs"), "202606"), Some(false));
    }

    #[test]
    fn visits_wait_for_every_zone() {
        // Berlin's 18th began at 23:00 UTC on the 17th, whose raw events are gone at NOW.
        assert_eq!(
            visits_first_day(&[site("UTC"), site("Europe/Berlin")], 7, NOW),
            d("2026-11-19")
        );
        // New York's 18th lies within the 18th and 19th UTC: kept.
        assert_eq!(
            visits_first_day(&[site("America/New_York")], 7, NOW),
            d("2026-11-18")
        );
        assert_eq!(utc_days_of(&site("UTC"), d("2026-11-18")), (20_775, 20_775));
        assert_eq!(
            utc_days_of(&site("Europe/Berlin"), d("2026-11-18")),
            (20_774, 20_775)
        );
    }

    /// Every table a migration leaves behind is either pruned here or named as not pruned, and
    /// docs/retention.md names each with its lifetime: a new table cannot be forgotten.
    #[test]
    fn every_table_of_the_schema_has_a_lifetime() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut created = std::collections::BTreeSet::new();
        let mut files: Vec<_> = std::fs::read_dir(root.join("schema"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(file).unwrap();
            for line in text.lines().filter(|l| !l.trim_start().starts_with("--")) {
                let words: Vec<&str> = line.split_whitespace().collect();
                if let Some(name) = match words.as_slice() {
                    ["CREATE", "TABLE", "IF", "NOT", "EXISTS", name, ..]
                    | ["CREATE", "TABLE", name, ..] => Some(*name),
                    _ => None,
                } {
                    created.insert(name.trim_end_matches('(').to_string());
                }
                if let ["DROP", "TABLE", .., name] = words.as_slice() {
                    created.remove(name.trim_end_matches(';'));
                }
            }
        }
        // Migration 0003 rebuilds `events` under another name and renames it back.
        created.remove("events_0003");
        const NOT_PRUNED: [&str; 5] = [
            "users",
            "api_keys",
            "api_key_revocations",
            "shared_links",
            "shared_link_revocations",
        ];
        let known: std::collections::BTreeSet<String> = TABLES
            .iter()
            .map(|t| t.name)
            .chain(NOT_PRUNED)
            .map(String::from)
            .collect();
        assert_eq!(created, known);
        let doc = std::fs::read_to_string(root.join("docs/retention.md")).unwrap();
        for name in known.iter().chain(&["schema_migrations".to_string()]) {
            assert!(
                doc.contains(&format!("`{name}`")),
                "docs/retention.md lacks {name}"
            );
        }
    }

    #[test]
    fn partitions_begin() {
        assert_eq!(
            Partition::parse(PartitionKey::UtcDay, "20261124")
                .unwrap()
                .begins(),
            NOW - NOW % DAY
        );
        assert_eq!(
            Partition::parse(PartitionKey::Month, "202611"),
            Some(Partition::Month(d("2026-11-01")))
        );
        assert_eq!(Partition::parse(PartitionKey::Month, "20261"), None);
        assert_eq!(
            Partition::parse(PartitionKey::ExpiresAt, "1795514400")
                .unwrap()
                .begins(),
            NOW - 48 * 3600
        );
        assert_eq!(
            Partition::parse(PartitionKey::Date, "'2026-11-24'"),
            Some(Partition::Day(d("2026-11-24")))
        );
    }
}
