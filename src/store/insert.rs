//! Inserting a batch of events once, even when an attempt's outcome is unknown.
//!
//! An insert that times out or loses its connection may still have been stored: ClickHouse
//! can have the whole block when the answer is lost. Retrying blindly would store it twice.
//! So every row carries its batch's id (`events.spool_batch`), every attempt its own
//! `query_id`, and after a failure the writer first stops any attempt still running on the
//! server (`KILL QUERY ... SYNC`) and then counts the rows with the id before it tries again.
//!
//! Each insert holds rows of one UTC day only: `events` is partitioned by day, and an insert
//! into one partition below `max_insert_block_size` rows is one part, written whole or not at
//! all. So a count is either all of the rows or none.
//!
//! On ClickHouse 22 and later the insert also carries `insert_deduplication_token`: a
//! replicated table (or one with `non_replicated_deduplication_window`) then drops a repeated
//! block itself, which covers a retry by another collector replaying the same spool copy.

use std::time::Duration;

use ring::digest;

use super::Client;
use crate::event::Event;

/// The name of one insert: the id its rows carry and the `query_id` of its attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchName {
    /// Stored in `events.spool_batch`.
    pub id: u64,
    /// `query_id` prefix of its inserts: `tally-<instance>-<segment>-<offset>`.
    pub query_id: String,
}

impl BatchName {
    /// The name of the batch that begins at `offset` of spool segment `segment` of the spool
    /// `instance`: the same bytes read again after a restart get the same name.
    pub fn new(instance: &str, segment: u64, offset: u64) -> BatchName {
        let text = format!("{instance}-{segment}-{offset}");
        let d = digest::digest(&digest::SHA256, text.as_bytes());
        let mut id = [0u8; 8];
        id.copy_from_slice(&d.as_ref()[..8]);
        // 0 means "stored before batch ids".
        let id = u64::from_le_bytes(id).max(1);
        BatchName {
            id,
            query_id: format!("tally-{text}"),
        }
    }
}

/// What went wrong talking to ClickHouse, by kind (the `kind` label of
/// `tally_write_errors_total`).
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// No answer in time: the server is hung or overloaded.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// No connection, or it broke.
    #[error("connection: {0}")]
    Connection(String),
    /// The server answered with an error.
    #[error("server: {0}")]
    Server(String),
}

impl Failure {
    /// The metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::Timeout(_) => "timeout",
            Failure::Connection(_) => "connection",
            Failure::Server(_) => "server",
        }
    }

    fn of(e: clickhouse::error::Error) -> Failure {
        use clickhouse::error::Error as E;
        match e {
            E::Network(_) => Failure::Connection(e.to_string()),
            E::TimedOut => Failure::Timeout(Duration::ZERO),
            other => Failure::Server(other.to_string()),
        }
    }
}

async fn within<T>(
    limit: Duration,
    f: impl std::future::Future<Output = Result<T, clickhouse::error::Error>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(limit, f).await {
        Ok(r) => r.map_err(Failure::of),
        Err(_) => Err(Failure::Timeout(limit)),
    }
}

/// Inserts rows of one UTC day, all carrying `name`'s id, as one insert named `query_id`.
pub async fn insert_day(
    client: &Client,
    rows: &[Event],
    query_id: &str,
    dedup_token: bool,
    timeout: Duration,
) -> Result<(), Failure> {
    let attempt = async {
        let mut insert = client
            .insert::<Event>("events")
            .await?
            .with_timeouts(Some(timeout), Some(timeout))
            .with_setting("query_id", query_id);
        if dedup_token {
            insert = insert.with_setting("insert_deduplication_token", query_id);
        }
        for row in rows {
            insert.write(row).await?;
        }
        insert.end().await
    };
    within(timeout, attempt).await
}

/// Stops an attempt of `query_id` still running on the server and waits until it has stopped,
/// so that a count afterwards cannot be overtaken by it.
pub async fn kill(client: &Client, query_id: &str, timeout: Duration) -> Result<(), Failure> {
    within(
        timeout,
        client
            .query("KILL QUERY WHERE query_id = ? SYNC")
            .bind(query_id)
            .execute(),
    )
    .await
}

/// Rows of batch `id` stored in `[from, to]` (Unix seconds, one UTC day) for `sites`.
pub async fn count_stored(
    client: &Client,
    id: u64,
    sites: &[u32],
    from: u32,
    to: u32,
    timeout: Duration,
) -> Result<u64, Failure> {
    // The time bounds let ClickHouse read one partition, not the table. (`site_id IN ?` with
    // an array bound is refused by 18.16: "Type mismatch in IN or VALUES section".)
    within(
        timeout,
        client
            .query(
                "SELECT count() FROM events WHERE has(?, site_id) AND ts >= toDateTime(?, 'UTC') \
                 AND ts <= toDateTime(?, 'UTC') AND spool_batch = ?",
            )
            .bind(sites)
            .bind(from)
            .bind(to)
            .bind(id)
            .fetch_one::<u64>(),
    )
    .await
}

/// Whether the server answers, within `timeout`; a query rather than `/ping`, so that wrong
/// credentials or a missing database count as down too.
pub async fn probe(client: &Client, timeout: Duration) -> Result<(), Failure> {
    within(timeout, client.query("SELECT 1").fetch_one::<u8>())
        .await
        .map(drop)
}

/// The server's major version (`18` for 18.16), to know which settings it has.
pub async fn major_version(client: &Client, timeout: Duration) -> Result<u32, Failure> {
    let v = within(
        timeout,
        client.query("SELECT version()").fetch_one::<String>(),
    )
    .await?;
    v.split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .ok_or_else(|| Failure::Server(format!("unexpected version {v:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable_and_distinct() {
        let a = BatchName::new("ab", 1, 16);
        assert_eq!(a, BatchName::new("ab", 1, 16));
        assert_eq!(a.query_id, "tally-ab-1-16");
        assert_ne!(a.id, BatchName::new("ab", 1, 17).id);
        assert_ne!(a.id, BatchName::new("ac", 1, 16).id);
        assert_ne!(a.id, 0);
    }
}
