//! Retention: raw events are deleted when they are 7 days old, the per-visit rows with them,
//! and the daily aggregates when they are 180 days old. The dashboard's sessions and one-time
//! sign-in tokens go by the month they expire in, once that month is over.
//!
//! Every table is partitioned by day (`events` by `toYYYYMMDD(ts)` in UTC, the report tables
//! by the site's local `day`), so deleting a day is one `DROP PARTITION`: immediate, no
//! mutation rewriting data.

use std::time::Duration;

use clickhouse::Row;
use serde::Deserialize;

use chrono::NaiveDate;

use crate::config::SiteConfig;
use crate::store::Client;
use crate::time::day_of;

/// Days a raw event is kept: the day of an event and the six after it. It is deleted when the
/// seventh day after it begins, so no raw event lives longer than 7 days.
pub const RAW_EVENT_DAYS: u32 = 7;

/// Days the daily aggregates are kept: the day itself and the 179 before it.
pub const AGGREGATE_DAYS: u32 = 180;

/// The tables of daily aggregates (`agg_top_week` by weeks: a week goes when its Monday
/// expires, so no week holds an expired day).
pub const AGGREGATE_TABLES: [&str; 5] = [
    "agg_daily",
    "agg_hourly",
    "agg_breakdown",
    "agg_top",
    "agg_top_week",
];

/// How often the pruner looks for expired days.
const EVERY: Duration = Duration::from_secs(3600);

#[derive(Row, Deserialize)]
struct Partition {
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
        .fetch_all::<Partition>()
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

/// Drops every day of `events` older than the retention period at `now`; returns the days
/// dropped (as `YYYYMMDD`).
pub async fn prune_events(client: &Client, now: u32) -> Result<Vec<u32>, clickhouse::error::Error> {
    let keep_from = yyyymmdd(day_of(now).saturating_sub(RAW_EVENT_DAYS - 1));
    let mut dropped = Vec::new();
    for p in partitions(client, "events").await? {
        // Partition values of `toYYYYMMDD(ts)` are plain numbers; anything else is not ours.
        let Ok(day) = p.parse::<u32>() else {
            continue;
        };
        if day < keep_from {
            client
                .query_raw(&format!("ALTER TABLE events DROP PARTITION {day}"))
                .execute()
                .await?;
            tracing::info!(day, "deleted raw events of an expired day");
            dropped.push(day);
        }
    }
    dropped.sort_unstable();
    Ok(dropped)
}

/// The first local date whose per-visit rows are kept at `now`: the first whose raw events are
/// all still stored for *every* site (so a site east of UTC, whose day begins on the UTC day
/// before, does not keep its visits longer than their events). The query engine answers from
/// `visits` from this day on, and the pruner drops the days before it.
pub fn visits_first_day(sites: &[SiteConfig], now: u32) -> NaiveDate {
    let utc_today = crate::time::local_date(chrono_tz::UTC, now);
    // Local days of any zone are within a day of the UTC date; start two days later than the
    // raw window could allow and walk back while every site still has its raw events.
    let mut day = utc_today;
    loop {
        let Some(before) = day.pred_opt() else {
            return day;
        };
        let whole = |s: &SiteConfig| {
            let (start, _) = crate::time::day_bounds(s.tz(), before);
            day_of(start) + RAW_EVENT_DAYS > day_of(now)
        };
        let whole = if sites.is_empty() {
            whole(&SiteConfig::utc_placeholder())
        } else {
            sites.iter().all(whole)
        };
        if !whole {
            return day;
        }
        day = before;
    }
}

/// Drops every day of `visits` before [`visits_first_day`]; returns the days dropped.
pub async fn prune_visits(
    client: &Client,
    sites: &[SiteConfig],
    now: u32,
) -> Result<Vec<NaiveDate>, clickhouse::error::Error> {
    drop_days_before(client, "visits", visits_first_day(sites, now)).await
}

/// The first day of the aggregates kept at `now`: [`AGGREGATE_DAYS`] UTC days back, today
/// included. A week of `agg_top_week` is kept while its Monday is not before it.
pub fn aggregates_keep_from(now: u32) -> NaiveDate {
    let today = crate::time::local_date(chrono_tz::UTC, now);
    today
        .checked_sub_days(chrono::Days::new(u64::from(AGGREGATE_DAYS - 1)))
        .unwrap_or(today)
}

/// Drops every day of the aggregate tables older than [`AGGREGATE_DAYS`] (by UTC date; a
/// local date is never ahead of it by more than one day); returns the days dropped per table.
pub async fn prune_aggregates(
    client: &Client,
    now: u32,
) -> Result<Vec<(&'static str, Vec<NaiveDate>)>, clickhouse::error::Error> {
    let keep_from = aggregates_keep_from(now);
    let mut out = Vec::new();
    for table in AGGREGATE_TABLES {
        out.push((table, drop_days_before(client, table, keep_from).await?));
    }
    Ok(out)
}

/// Drops the partitions of a table partitioned by a `Date` column whose day is before
/// `keep_from`.
async fn drop_days_before(
    client: &Client,
    table: &'static str,
    keep_from: NaiveDate,
) -> Result<Vec<NaiveDate>, clickhouse::error::Error> {
    let mut dropped = Vec::new();
    for day in date_partitions(client, table).await? {
        if day < keep_from {
            client
                .query(&format!("ALTER TABLE {table} DROP PARTITION ?"))
                .bind(day.to_string())
                .execute()
                .await?;
            tracing::info!(table, %day, "deleted an expired day");
            dropped.push(day);
        }
    }
    dropped.sort_unstable();
    Ok(dropped)
}

/// The account tables partitioned by the month their rows expire (`schema/0008_accounts.sql`).
pub const EXPIRING_TABLES: [&str; 4] = [
    "sessions",
    "session_ends",
    "signin_tokens",
    "signin_token_uses",
];

/// Drops the months of the sessions and one-time sign-in tokens (and their sign-outs and uses)
/// that ended before the current UTC month: every row in them has expired. Returns the
/// partitions dropped per table (as `YYYYMM`).
pub async fn prune_expired_accounts(
    client: &Client,
    now: u32,
) -> Result<Vec<(&'static str, Vec<u32>)>, clickhouse::error::Error> {
    use chrono::Datelike;
    let today = crate::time::local_date(chrono_tz::UTC, now);
    let this_month = today.year() as u32 * 100 + today.month();
    let mut out = Vec::new();
    for table in EXPIRING_TABLES {
        let mut dropped = Vec::new();
        for p in partitions(client, table).await? {
            let Ok(month) = p.parse::<u32>() else {
                continue;
            };
            if month < this_month {
                client
                    .query_raw(&format!("ALTER TABLE {table} DROP PARTITION {month}"))
                    .execute()
                    .await?;
                tracing::info!(
                    table,
                    month,
                    "deleted a month of expired sessions or tokens"
                );
                dropped.push(month);
            }
        }
        dropped.sort_unstable();
        out.push((table, dropped));
    }
    Ok(out)
}

/// Prunes at start and then every hour until the process ends.
pub fn spawn(client: Client, sites: Vec<SiteConfig>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let now = crate::time::now_unix();
            if let Err(e) = prune_events(&client, now).await {
                tracing::warn!(error = %e, "pruning expired events failed; retrying in an hour");
            }
            if let Err(e) = prune_visits(&client, &sites, now).await {
                tracing::warn!(error = %e, "pruning expired visits failed; retrying in an hour");
            }
            if let Err(e) = prune_aggregates(&client, now).await {
                tracing::warn!(error = %e, "pruning expired aggregates failed; retrying in an hour");
            }
            if let Err(e) = prune_expired_accounts(&client, now).await {
                tracing::warn!(error = %e, "pruning expired sessions failed; retrying in an hour");
            }
            tokio::time::sleep(EVERY).await;
        }
    })
}

/// `YYYYMMDD` of a day number (days since 1970, UTC).
fn yyyymmdd(day: u32) -> u32 {
    chrono::DateTime::from_timestamp(i64::from(day) * 86_400, 0)
        .map(|d| d.format("%Y%m%d").to_string().parse().unwrap_or(0))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_numbers() {
        assert_eq!(yyyymmdd(0), 19_700_101);
        assert_eq!(yyyymmdd(20_781), 20_261_124);
    }
}
