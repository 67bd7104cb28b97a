//! The daily secret behind visitor keys: created with the system's secure generator, shared
//! through ClickHouse by every collector on the same database, rotated at 00:00 UTC and deleted
//! 48 hours after its day began.
//!
//! Collectors agree without coordination: each inserts a fresh secret for a day that has none,
//! then all use the earliest-created one of that day (ties broken by the secret itself). A
//! collector that lost a race re-reads on its next refresh, within a minute.

use std::sync::Arc;
use std::time::Duration;

use clickhouse::Row;
use serde::{Deserialize, Serialize};

use super::visitor::{Secret, VisitorKeys};
use crate::store::Client;
use crate::time::day_of;

/// How often the secret is re-read (and old ones dropped) between day changes.
const REFRESH_EVERY: Duration = Duration::from_secs(60);

#[derive(Row, Deserialize)]
struct Stored {
    secret: String,
}

#[derive(Row, Serialize)]
struct NewSecret {
    day: u16,
    secret: String,
    created: u32,
}

#[derive(Row, Deserialize)]
struct Partition {
    partition: String,
}

/// Keeps [`VisitorKeys`] on the day's shared secret.
pub struct SecretStore {
    client: Client,
    keys: Arc<VisitorKeys>,
}

impl SecretStore {
    /// A store on `client`'s database feeding `keys`.
    pub fn new(client: Client, keys: Arc<VisitorKeys>) -> Self {
        SecretStore { client, keys }
    }

    /// Loads (creating it if needed) the secret of `now`'s day into the keys, and deletes the
    /// secrets of days that ended more than 24 hours ago.
    pub async fn refresh(&self, now: u32) -> Result<(), clickhouse::error::Error> {
        let day = day_of(now);
        let secret = match self.load(day).await? {
            Some(s) => s,
            None => {
                self.insert(day, now).await?;
                // Re-read: another collector may have inserted first; everyone takes the earliest.
                self.load(day)
                    .await?
                    .ok_or(clickhouse::error::Error::RowNotFound)?
            }
        };
        self.keys.rotate(secret);
        self.prune(day).await
    }

    /// Refreshes at every day change and every minute, until the process ends.
    pub fn spawn(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let now = crate::time::now_unix();
                let to_midnight = 86_400 - now % 86_400;
                let wait = REFRESH_EVERY.min(Duration::from_secs(u64::from(to_midnight)));
                tokio::time::sleep(wait).await;
                if let Err(e) = self.refresh(crate::time::now_unix()).await {
                    // Keys stay on the previous secret; a later refresh catches up.
                    tracing::warn!(error = %e, "refreshing the visitor secret failed");
                }
            }
        })
    }

    async fn load(&self, day: u32) -> Result<Option<Secret>, clickhouse::error::Error> {
        let row = self
            .client
            .query(
                "SELECT secret FROM visitor_secrets WHERE day = toDate(?) \
                 ORDER BY created, secret LIMIT 1",
            )
            .bind(date_string(day))
            .fetch_optional::<Stored>()
            .await?;
        Ok(row
            .and_then(|r| decode_hex(&r.secret))
            .map(|bytes| Secret::new(day, &bytes)))
    }

    async fn insert(&self, day: u32, now: u32) -> Result<(), clickhouse::error::Error> {
        let mut insert = self.client.insert::<NewSecret>("visitor_secrets").await?;
        insert
            .write(&NewSecret {
                day: u16::try_from(day).unwrap_or(u16::MAX),
                secret: encode_hex(&Secret::generate_bytes()),
                created: now,
            })
            .await?;
        insert.end().await
    }

    /// Drops every day's partition older than yesterday: the secret of day D lives until D+2
    /// begins, so yesterday's late hits can still be keyed consistently, and no longer.
    async fn prune(&self, today: u32) -> Result<(), clickhouse::error::Error> {
        let parts = self
            .client
            .query(
                "SELECT DISTINCT partition FROM system.parts \
                 WHERE database = currentDatabase() AND table = 'visitor_secrets' AND active",
            )
            .fetch_all::<Partition>()
            .await?;
        let keep_from = date_string(today.saturating_sub(1));
        for p in parts {
            // Partition values of a Date key print as 'YYYY-MM-DD' (quoted): ISO dates order
            // as strings.
            let date = p.partition.trim_matches('\'');
            if date < keep_from.as_str() && is_iso_date(date) {
                self.client
                    .query_raw(&format!(
                        "ALTER TABLE visitor_secrets DROP PARTITION '{date}'"
                    ))
                    .execute()
                    .await?;
                tracing::info!(day = date, "deleted visitor secret");
            }
        }
        Ok(())
    }
}

fn is_iso_date(s: &str) -> bool {
    s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        })
}

/// `YYYY-MM-DD` of a day number.
fn date_string(day: u32) -> String {
    chrono::DateTime::from_timestamp(i64::from(day) * 86_400, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
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
    fn helpers() {
        assert_eq!(date_string(0), "1970-01-01");
        assert_eq!(date_string(20_416), "2025-11-24");
        assert_eq!(
            decode_hex(&encode_hex(&[0, 1, 254, 255])),
            Some(vec![0, 1, 254, 255])
        );
        assert_eq!(decode_hex("zz"), None);
        assert!(is_iso_date("2025-11-24"));
        assert!(!is_iso_date("20251124"));
    }
}
