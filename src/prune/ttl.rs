//! The TTL backstop: on servers that support table TTLs (ClickHouse 19.6 and later), each
//! pruned table gets a `TTL` one day beyond its window, so that rows still go should the pruner
//! stop running. ClickHouse 18.16 has no TTL (a syntax error there): on it the pruner alone
//! enforces retention, and tally says so once.
//!
//! The TTL is set only when the table's current one differs (`system.tables.engine_full`), so a
//! restart changes nothing, and a changed window replaces it. Existing parts are not rewritten
//! for it (`materialize_ttl_after_modify = 0` where the server knows the setting): the pruner
//! drops the old partitions anyway, the TTL is for what comes.
//!
//! Sessions and sign-in tokens get none: the pruner keeps them until their expiry month is over,
//! a TTL a day after each expiry would delete them first instead of backing the pruner up.

use clickhouse::Row;
use serde::Deserialize;

use super::Windows;
use crate::store::Client;
use crate::store::cluster::{self, Shards};

/// The statement that sets `table`'s TTL to `expression` (tally's own constants and numbers,
/// never input).
fn alter_statement(table: &str, expression: &str) -> String {
    format!("ALTER TABLE {table} MODIFY TTL {expression}")
}

/// The first release with table TTLs and `ALTER TABLE .. MODIFY TTL`.
const FIRST_WITH_TTL: (u32, u32) = (19, 6);

/// The backstop's TTL expression for each table that gets one, for `windows`: one day after the
/// pruner's latest boundary, written as ClickHouse prints it back in `engine_full`.
pub fn expressions(windows: Windows) -> Vec<(&'static str, String)> {
    let raw = windows.raw_days + 1;
    let agg = windows.aggregate_days + 1;
    let mut out = vec![
        // A day's events go at 00:00 UTC of D + raw_days.
        ("events", format!("toStartOfDay(ts) + toIntervalDay({raw})")),
        // A local date's visits go at 00:00 UTC of L + raw_days at the latest (zones west of
        // UTC; earlier east of it).
        (
            "visits",
            format!("toDateTime(day, 'UTC') + toIntervalDay({raw})"),
        ),
    ];
    for table in ["agg_daily", "agg_hourly", "agg_breakdown", "agg_top"] {
        out.push((
            table,
            format!("toDateTime(day, 'UTC') + toIntervalDay({agg})"),
        ));
    }
    out.push((
        "agg_top_week",
        format!("toDateTime(week, 'UTC') + toIntervalDay({agg})"),
    ));
    out.push((
        "day_secrets",
        "toDateTime(expires, 'UTC') + toIntervalDay(1)".to_string(),
    ));
    out.push(("prune_runs", format!("run_at + toIntervalDay({agg})")));
    out
}

/// Whether a server reporting `version()` supports table TTLs.
pub fn supports_ttl(version: &str) -> bool {
    let mut parts = version.trim().split('.').map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= FIRST_WITH_TTL,
        _ => false,
    }
}

/// Whether a table whose `engine_full` is this already has the TTL `expression`.
fn has_ttl(engine_full: &str, expression: &str) -> bool {
    engine_full
        .split(" TTL ")
        .nth(1)
        .is_some_and(|rest| rest == expression || rest.starts_with(&format!("{expression} ")))
}

/// What [`backstop`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backstop {
    /// The server has no table TTL; the pruner alone enforces retention.
    Unsupported(String),
    /// Every table has its TTL; those listed were set now.
    Set(Vec<&'static str>),
    /// Something failed (logged); the pruner still enforces retention.
    Failed(String),
}

#[derive(Row, Deserialize)]
struct Version {
    v: String,
}

#[derive(Row, Deserialize)]
struct Engine {
    engine_full: String,
}

#[derive(Row, Deserialize)]
struct Count {
    n: u64,
}

/// Sets the TTL backstop where the server supports it, else logs that the pruner alone
/// enforces retention. Never fails: a problem is logged and returned.
///
/// On a cluster (`shards`), the tables every node holds get theirs through `client` and the
/// sharded ones through one replica of each shard, on their `_local` tables (a TTL set on one
/// replica is set on all: the replication carries it).
pub async fn backstop(client: &Client, windows: Windows, shards: Option<&Shards>) -> Backstop {
    let work = async {
        let Some(shards) = shards else {
            return set(client, windows, |t| Some(t.to_string())).await;
        };
        let whole = |t: &str| (!cluster::is_sharded(t)).then(|| t.to_string());
        let mut outcome = set(client, windows, whole).await?;
        for index in 0..shards.len() {
            let shard = match shards.reach(index).await {
                Ok(c) => c,
                Err(e) => return Ok(Backstop::Failed(e.to_string())),
            };
            let local = |t: &str| cluster::is_sharded(t).then(|| cluster::local_name(t));
            if let (Backstop::Set(all), Backstop::Set(more)) =
                (&mut outcome, set(&shard, windows, local).await?)
            {
                all.extend(more);
            }
        }
        Ok(outcome)
    };
    let outcome = match tokio::time::timeout(std::time::Duration::from_secs(120), work).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => Backstop::Failed(e.to_string()),
        Err(_) => Backstop::Failed("no answer within 120 s".into()),
    };
    match &outcome {
        Backstop::Unsupported(version) => tracing::info!(
            version,
            "this ClickHouse has no table TTL: the pruner alone enforces retention"
        ),
        Backstop::Set(tables) => tracing::info!(
            ?tables,
            "TTL backstop in place, one day beyond each retention window (tables listed: set now)"
        ),
        Backstop::Failed(e) => tracing::warn!(
            error = e,
            "could not set the TTL backstop: the pruner alone enforces retention"
        ),
    }
    outcome
}

/// Sets the TTLs through `client` on the tables `name` maps to a table of that node (`None`:
/// not there).
async fn set(
    client: &Client,
    windows: Windows,
    name: impl Fn(&str) -> Option<String>,
) -> Result<Backstop, clickhouse::error::Error> {
    let version = client
        .query("SELECT version() AS v")
        .fetch_one::<Version>()
        .await?
        .v;
    if !supports_ttl(&version) {
        return Ok(Backstop::Unsupported(version));
    }
    // Without the setting (before 20.x) a changed TTL is applied on merges only anyway.
    let no_rewrite = client
        .query(
            "SELECT count() AS n FROM system.settings WHERE name = 'materialize_ttl_after_modify'",
        )
        .fetch_one::<Count>()
        .await?
        .n
        > 0;
    let mut changed = Vec::new();
    for (schema_table, expression) in expressions(windows) {
        let Some(table) = name(schema_table) else {
            continue;
        };
        let table = table.as_str();
        let engine = client
            .query(
                "SELECT engine_full FROM system.tables \
                 WHERE database = currentDatabase() AND name = ?",
            )
            .bind(table)
            .fetch_optional::<Engine>()
            .await?;
        let Some(engine) = engine else {
            continue;
        };
        if has_ttl(&engine.engine_full, &expression) {
            continue;
        }
        let mut alter = client.query(&alter_statement(table, &expression));
        if no_rewrite {
            alter = alter.with_setting("materialize_ttl_after_modify", "0");
        }
        alter.execute().await?;
        changed.push(schema_table);
    }
    Ok(Backstop::Set(changed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert!(!supports_ttl("18.16.1"));
        assert!(!supports_ttl("19.5.3.8"));
        assert!(supports_ttl("19.6.2.11"));
        assert!(supports_ttl("26.9.2.1"));
        assert!(!supports_ttl(""));
        assert!(!supports_ttl("x.y"));
    }

    #[test]
    fn one_day_beyond_each_window() {
        let e = expressions(Windows {
            raw_days: 7,
            aggregate_days: 180,
        });
        let get = |t: &str| e.iter().find(|(n, _)| *n == t).unwrap().1.clone();
        assert_eq!(get("events"), "toStartOfDay(ts) + toIntervalDay(8)");
        assert_eq!(get("visits"), "toDateTime(day, 'UTC') + toIntervalDay(8)");
        assert_eq!(
            get("agg_breakdown"),
            "toDateTime(day, 'UTC') + toIntervalDay(181)"
        );
        assert_eq!(
            get("day_secrets"),
            "toDateTime(expires, 'UTC') + toIntervalDay(1)"
        );
        assert_eq!(get("prune_runs"), "run_at + toIntervalDay(181)");
        // Every table the pruner keeps by a day window has one.
        for t in super::super::TABLES {
            let expected = !matches!(t.lifetime, super::super::rules::Lifetime::ExpiryMonth);
            assert_eq!(e.iter().any(|(n, _)| *n == t.name), expected, "{}", t.name);
        }
    }

    /// 18.16, the test server, never receives these statements (it has no TTL), so they are
    /// handed to the check on current ClickHouse (`tests/modern/check_schema.py --captured`)
    /// as if captured from a server: there they run on the migrated schema, with their setting.
    #[test]
    fn the_statements_go_to_the_modern_check() {
        let Some(dir) = std::env::var_os("TALLYTEST_SQL_CAPTURE_DIR") else {
            return;
        };
        let mut lines = String::new();
        for windows in [
            Windows {
                raw_days: 7,
                aggregate_days: 180,
            },
            Windows {
                raw_days: 3,
                aggregate_days: 30,
            },
        ] {
            for (table, expression) in expressions(windows) {
                let line = serde_json::json!({
                    "query": alter_statement(table, &expression),
                    "settings": ["materialize_ttl_after_modify"],
                    "errors": [],
                });
                lines.push_str(&line.to_string());
                lines.push('\n');
            }
        }
        std::fs::write(
            std::path::Path::new(&dir).join("queries-ttl-backstop.jsonl"),
            lines,
        )
        .unwrap();
    }

    #[test]
    fn an_existing_ttl_is_recognised() {
        let full = "MergeTree PARTITION BY toYYYYMMDD(ts) ORDER BY ts TTL toStartOfDay(ts) + toIntervalDay(8) SETTINGS index_granularity = 8192";
        assert!(has_ttl(full, "toStartOfDay(ts) + toIntervalDay(8)"));
        assert!(!has_ttl(full, "toStartOfDay(ts) + toIntervalDay(4)"));
        assert!(!has_ttl(
            "MergeTree PARTITION BY day ORDER BY day SETTINGS index_granularity = 8192",
            "toDateTime(day, 'UTC') + toIntervalDay(8)"
        ));
        // 8 is not 80.
        assert!(!has_ttl(
            "MergeTree ORDER BY ts TTL toStartOfDay(ts) + toIntervalDay(80)",
            "toStartOfDay(ts) + toIntervalDay(8)"
        ));
    }
}
