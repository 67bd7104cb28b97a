//! The secrets behind visitor keys, one per time zone and local date: created with the
//! system's secure generator, shared through ClickHouse (`day_secrets`) by every collector on
//! the same database, and deleted exactly 48 hours after their day began in their own zone.
//!
//! Collectors agree without coordination: each inserts a fresh secret for a (zone, day) that
//! has none, then all use the earliest-created one of that (zone, day), ties broken by the
//! secret itself. Tomorrow's secret is created a day ahead, so by the time it is used every
//! collector has long read the same one; a collector that lost a race re-reads on its next
//! refresh, within a minute.
//!
//! `day_secrets` is partitioned by `expires` (the day's first instant + 48 hours, Unix
//! seconds), so deleting is one `DROP PARTITION` of every partition whose `expires` has
//! passed: immediate, and right for every zone (a partition per UTC date would keep an eastern
//! zone's secret hours too long, or a western one's too short).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use clickhouse::Row;
use serde::{Deserialize, Serialize};

use super::visitor::{SECRET_LEN, Secret, VisitorKeys, ZoneDay};
use crate::store::Client;
use crate::time::DayNumber;

/// Longest wait between refreshes: secrets are re-read (and expired ones dropped) at least
/// this often, besides at every local midnight and every expiry.
const REFRESH_EVERY: Duration = Duration::from_secs(60);

/// A refresh that takes longer is abandoned (and counted as failed).
const REFRESH_TIMEOUT: Duration = Duration::from_secs(30);

/// Rows read per refresh at most: a few per zone and day are expected.
const MAX_ROWS: u32 = 10_000;

#[derive(Row, Deserialize)]
struct Stored {
    zone: String,
    day: u16,
    secret: String,
}

#[derive(Row, Serialize)]
struct NewSecret<'a> {
    zone: &'a str,
    day: u16,
    secret: String,
    created: u32,
    expires: u32,
}

#[derive(Row, Deserialize)]
struct Partition {
    partition: String,
}

/// Keeps [`VisitorKeys`] on the shared secrets of its zones' current days.
pub struct SecretStore {
    client: Client,
    keys: Arc<VisitorKeys>,
}

impl SecretStore {
    /// A store on `client`'s database feeding `keys`.
    pub fn new(client: Client, keys: Arc<VisitorKeys>) -> Self {
        SecretStore { client, keys }
    }

    /// Loads into the keys the secrets of every day [`VisitorKeys::held_days`] lists at `now`
    /// (yesterday, today and tomorrow of each zone), creating those missing, then deletes
    /// every secret whose 48 hours have passed. When the database cannot be read the keys keep
    /// their secrets, minus the expired ones.
    pub async fn refresh(&self, now: u32) -> Result<(), clickhouse::error::Error> {
        if let Err(e) = self.reload(now).await {
            self.keys.forget_expired(now);
            return Err(e);
        }
        self.prune(now).await
    }

    /// Refreshes at every local midnight of the zones, at every expiry of a held secret, and
    /// at least every minute, until the process ends.
    pub fn spawn(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let now = crate::time::now_unix();
                let until_change = self.keys.next_change(now).saturating_sub(now).max(1);
                let wait = REFRESH_EVERY.min(Duration::from_secs(u64::from(until_change)));
                tokio::time::sleep(wait).await;
                let now = crate::time::now_unix();
                match tokio::time::timeout(REFRESH_TIMEOUT, self.refresh(now)).await {
                    Ok(Ok(())) => {}
                    // The keys stay on the secrets they have (minus expired ones); a later
                    // refresh catches up.
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "refreshing the visitor secrets failed")
                    }
                    Err(_) => {
                        self.keys.forget_expired(crate::time::now_unix());
                        tracing::warn!(
                            timeout_s = REFRESH_TIMEOUT.as_secs(),
                            "refreshing the visitor secrets timed out"
                        );
                    }
                }
            }
        })
    }

    async fn reload(&self, now: u32) -> Result<(), clickhouse::error::Error> {
        let wanted = self.keys.held_days(now);
        let mut stored = self.load(now).await?;
        let missing: Vec<&ZoneDay> = wanted
            .iter()
            .filter(|d| !stored.contains_key(&(self.zone_name(d), d.day)))
            .collect();
        if !missing.is_empty() {
            self.insert(&missing, now).await?;
            // Re-read: another collector may have inserted first; everyone takes the earliest.
            stored = self.load(now).await?;
        }
        let found: Vec<(ZoneDay, Secret)> = wanted
            .iter()
            .filter_map(|d| {
                let secret = stored.get(&(self.zone_name(d), d.day))?;
                Some((*d, secret.clone()))
            })
            .collect();
        if found.len() < wanted.len() {
            // Only if rows vanished between insert and read (a concurrent prune with a clock
            // far ahead): those days get ephemeral secrets until the next refresh.
            tracing::warn!(
                missing = wanted.len() - found.len(),
                "visitor secrets not found after inserting them"
            );
        }
        self.keys.install(now, found);
        Ok(())
    }

    fn zone_name(&self, day: &ZoneDay) -> &'static str {
        self.keys.zones().get(day.zone).map_or("", |tz| tz.name())
    }

    /// The secret in use for each (zone, day) of the keys' zones not expired at `now`: the
    /// earliest created, ties broken by the secret.
    async fn load(
        &self,
        now: u32,
    ) -> Result<HashMap<(&'static str, DayNumber), Secret>, clickhouse::error::Error> {
        let zones: Vec<&'static str> = self.keys.zones().iter().map(|z| z.name()).collect();
        let rows = self
            .client
            .query(
                "SELECT zone, toUInt16(day) AS day, secret FROM day_secrets \
                 WHERE expires > ? AND has(?, zone) \
                 ORDER BY zone, day, created, secret LIMIT ?",
            )
            .bind(now)
            .bind(&zones)
            .bind(MAX_ROWS)
            .fetch_all::<Stored>()
            .await?;
        let mut secrets = HashMap::new();
        for row in rows {
            let Some(&zone) = zones.iter().find(|z| **z == row.zone) else {
                continue;
            };
            let key = (zone, DayNumber::from(row.day));
            if secrets.contains_key(&key) {
                continue; // a later one of the same day: the earliest is in use
            }
            match decode_hex(&row.secret).filter(|b| b.len() == SECRET_LEN) {
                Some(bytes) => {
                    secrets.insert(key, Secret::new(&bytes));
                }
                // Not one tally wrote; the day's next secret takes its place.
                None => tracing::warn!(zone, day = row.day, "ignoring a malformed visitor secret"),
            }
        }
        Ok(secrets)
    }

    async fn insert(&self, days: &[&ZoneDay], now: u32) -> Result<(), clickhouse::error::Error> {
        let mut insert = self.client.insert::<NewSecret>("day_secrets").await?;
        for d in days {
            insert
                .write(&NewSecret {
                    zone: self.zone_name(d),
                    // `Date` ends in 2149, past the end of the u32 times tally handles.
                    day: u16::try_from(d.day).unwrap_or(u16::MAX),
                    secret: encode_hex(&Secret::generate_bytes()),
                    created: now,
                    expires: d.expires,
                })
                .await?;
        }
        insert.end().await
    }

    /// Drops every partition whose `expires` is not after `now`: each secret is gone 48 hours
    /// after its day began in its zone (or at the first refresh after that instant).
    async fn prune(&self, now: u32) -> Result<(), clickhouse::error::Error> {
        let parts = self
            .client
            .query(
                "SELECT DISTINCT partition FROM system.parts \
                 WHERE database = currentDatabase() AND table = 'day_secrets' AND active",
            )
            .fetch_all::<Partition>()
            .await?;
        for p in parts {
            // The partition key is a UInt32; anything else is not ours.
            let Ok(expires) = p.partition.trim_matches('\'').parse::<u32>() else {
                continue;
            };
            if expires <= now {
                self.client
                    .query_raw(&format!("ALTER TABLE day_secrets DROP PARTITION {expires}"))
                    .execute()
                    .await?;
                tracing::info!(
                    expires,
                    "deleted visitor secrets of days that began 48 hours ago"
                );
            }
        }
        Ok(())
    }
}

/// Every stored secret of `zone` whose 48 hours have not passed at `now`, as (local day,
/// secret), oldest day first: the one each day uses, and any that lost the race between
/// collectors (hits of the minute before the loser re-read were keyed with it). What a
/// data-subject request needs to find a visitor's keys of the days that can still be linked
/// (`tally subject`); a day missing here can no longer be linked to anyone.
pub async fn stored_for_zone(
    client: &Client,
    zone: &str,
    now: u32,
) -> Result<Vec<(DayNumber, Secret)>, clickhouse::error::Error> {
    let rows = client
        .query(
            "SELECT zone, toUInt16(day) AS day, secret FROM day_secrets \
             WHERE expires > ? AND zone = ? ORDER BY day, created, secret LIMIT ?",
        )
        .bind(now)
        .bind(zone)
        .bind(MAX_ROWS)
        .fetch_all::<Stored>()
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let bytes = decode_hex(&row.secret).filter(|b| b.len() == SECRET_LEN)?;
            Some((DayNumber::from(row.day), Secret::new(&bytes)))
        })
        .collect())
}

fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex() {
        assert_eq!(
            decode_hex(&encode_hex(&[0, 1, 254, 255])),
            Some(vec![0, 1, 254, 255])
        );
        assert_eq!(decode_hex("zz"), None);
        assert_eq!(decode_hex("abc"), None);
        assert_eq!(encode_hex(&Secret::generate_bytes()).len(), 2 * SECRET_LEN);
    }
}
