//! Schema migrations keep the rows an older tally stored.

mod common;

use common::{clickhouse, query, unique_name};
use tally::config::Config;
use tally::store::migrate::MIGRATIONS;

/// Rows written under the first schema (server-zone `DateTime`, six kinds) survive the rebuild
/// of `events` in migration 3 with the same instants and kinds, and land in UTC-day partitions.
#[tokio::test]
async fn migration_3_keeps_old_rows_and_moves_them_to_utc_days() {
    let db = unique_name("mig");
    query(&format!("CREATE DATABASE {db}")).await;
    // The database as tally 0.1 left it: migrations 1 and 2 only.
    for m in &MIGRATIONS[..2] {
        for statement in m.statements() {
            let sql = statement.replace("EXISTS events", &format!("EXISTS {db}.events"));
            let sql = sql.replace(
                "EXISTS visitor_secrets",
                &format!("EXISTS {db}.visitor_secrets"),
            );
            query(&sql).await;
        }
    }
    query(&format!(
        "CREATE TABLE {db}.schema_migrations (version UInt32, name String, applied_at DateTime) \
         ENGINE = MergeTree ORDER BY version"
    ))
    .await;
    query(&format!(
        "INSERT INTO {db}.schema_migrations VALUES (1, '{}', now()), (2, '{}', now())",
        MIGRATIONS[0].name, MIGRATIONS[1].name
    ))
    .await;
    // 2026-11-24 23:30:00 UTC and 2026-11-25 00:30:00 UTC.
    let (late, early) = (1_795_563_000u32, 1_795_566_600u32);
    query(&format!(
        "INSERT INTO {db}.events (ts, site_id, kind, visitor_key, url, ip, title) VALUES \
         ({late}, 1, 'ping', 7, 'https://example.org/a', '203.0.0.0', 'late'), \
         ({early}, 1, 'download', 8, 'https://example.org/b', '203.0.0.0', 'early')"
    ))
    .await;

    let mut cfg = Config::from_table(toml::Table::new()).unwrap();
    cfg.clickhouse.database = db.clone();
    let applied = tally::lifecycle::migrate_on(clickhouse().url(), &cfg)
        .await
        .unwrap();
    // 3 and every later one.
    let later: Vec<&str> = MIGRATIONS[2..].iter().map(|m| m.name).collect();
    assert_eq!(applied[0], "0003_events_utc_kinds.sql");
    assert_eq!(applied, later);

    let rows = query(&format!(
        "SELECT toUInt32(ts), kind, visitor_key, title, _partition_id, visitor_type \
         FROM {db}.events ORDER BY ts"
    ))
    .await;
    assert_eq!(
        rows,
        format!(
            "{late}\tping\t7\tlate\t20261124\tunknown\n{early}\tdownload\t8\tearly\t20261125\tunknown"
        )
    );
    assert_eq!(
        query(&format!(
            "SELECT type = 'DateTime(\\'UTC\\')' FROM system.columns \
             WHERE database = '{db}' AND table = 'events' AND name = 'ts'"
        ))
        .await,
        "1"
    );
    // Nothing of the copy is left behind.
    assert_eq!(
        query(&format!(
            "SELECT count() FROM system.tables WHERE database = '{db}' AND name LIKE 'events_%'"
        ))
        .await,
        "0"
    );
    // A second start applies nothing.
    let again = tally::lifecycle::migrate_on(clickhouse().url(), &cfg)
        .await
        .unwrap();
    assert!(again.is_empty());
}

/// A migration that adds columns, interrupted after its ALTER and before its ledger row, runs
/// again without failing (18.16 has no `ADD COLUMN IF NOT EXISTS`).
#[tokio::test]
async fn an_interrupted_add_column_migration_repeats() {
    let db = unique_name("migadd");
    let mut cfg = Config::from_table(toml::Table::new()).unwrap();
    cfg.clickhouse.database = db.clone();
    tally::lifecycle::migrate_on(clickhouse().url(), &cfg)
        .await
        .unwrap();
    let props = MIGRATIONS
        .iter()
        .find(|m| m.name == "0010_event_props.sql")
        .unwrap();
    // The ledger as if the run stopped right after the ALTER.
    query(&format!(
        "ALTER TABLE {db}.schema_migrations DELETE WHERE version = {}",
        props.version
    ))
    .await;
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !query(&format!(
        "SELECT count() FROM {db}.schema_migrations WHERE version = {}",
        props.version
    ))
    .await
    .starts_with('0')
    {
        assert!(
            std::time::Instant::now() < until,
            "the ledger row was not deleted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let applied = tally::lifecycle::migrate_on(clickhouse().url(), &cfg)
        .await
        .unwrap();
    assert_eq!(applied, vec![props.name]);
    let columns = query(&format!(
        "SELECT name FROM system.columns WHERE database = '{db}' AND table = 'events' \
         AND name IN ('prop_keys', 'prop_values', 'scroll_depth') ORDER BY name"
    ))
    .await;
    assert_eq!(columns.trim(), "prop_keys\nprop_values\nscroll_depth");
}
