//! Retention: raw events are deleted when they are 7 days old.
//!
//! `events` is partitioned by day (`toYYYYMMDD(ts)`), so deleting a day is one
//! `DROP PARTITION`: immediate, no mutation rewriting data. Aggregates (180 days) have their own
//! tables once daily rollups exist; this module is where their pruning goes.

use std::time::Duration;

use clickhouse::Row;
use serde::Deserialize;

use crate::store::Client;
use crate::time::day_of;

/// Days a raw event is kept: the day of an event and the six after it. It is deleted when the
/// seventh day after it begins, so no raw event lives longer than 7 days.
pub const RAW_EVENT_DAYS: u32 = 7;

/// How often the pruner looks for expired days.
const EVERY: Duration = Duration::from_secs(3600);

#[derive(Row, Deserialize)]
struct Partition {
    partition: String,
}

/// Drops every day of `events` older than the retention period at `now`; returns the days
/// dropped (as `YYYYMMDD`).
pub async fn prune_events(client: &Client, now: u32) -> Result<Vec<u32>, clickhouse::error::Error> {
    let keep_from = yyyymmdd(day_of(now).saturating_sub(RAW_EVENT_DAYS - 1));
    let parts = client
        .query(
            "SELECT DISTINCT partition FROM system.parts \
             WHERE database = currentDatabase() AND table = 'events' AND active",
        )
        .fetch_all::<Partition>()
        .await?;
    let mut dropped = Vec::new();
    for p in parts {
        // Partition values of `toYYYYMMDD(ts)` are plain numbers; anything else is not ours.
        let Ok(day) = p.partition.trim_matches('\'').parse::<u32>() else {
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

/// Prunes at start and then every hour until the process ends.
pub fn spawn(client: Client) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(e) = prune_events(&client, crate::time::now_unix()).await {
                tracing::warn!(error = %e, "pruning expired events failed; retrying in an hour");
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
