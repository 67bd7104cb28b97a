//! Retention: raw events older than 7 days are deleted, whole days at a time.

mod common;

use common::{clickhouse, query, unique_name};
use tally::config::Config;

/// 2026-11-24 10:00 UTC.
const NOW: u32 = 1_795_514_400;
const DAY: u32 = 86_400;

/// A fresh database with every migration applied, and a client on it.
async fn migrated(prefix: &str) -> (String, tally::store::Client) {
    let db = unique_name(prefix);
    let mut cfg = Config::from_table(toml::Table::new()).unwrap();
    cfg.clickhouse.database = db.clone();
    tally::lifecycle::migrate_on(clickhouse().url(), &cfg)
        .await
        .unwrap();
    (
        db,
        tally::store::client(clickhouse().url(), &cfg.clickhouse),
    )
}

#[tokio::test]
async fn raw_events_are_deleted_after_7_days() {
    let (db, client) = migrated("ret").await;
    // One event at 00:00:30 of each of the last 10 days (day 0 = today).
    let values: Vec<String> = (0..10)
        .map(|d| {
            let ts = NOW - NOW % DAY - d * DAY + 30;
            format!("({ts}, 1, 'pageview', 1, 'https://example.org/{d}', '203.0.0.0')")
        })
        .collect();
    query(&format!(
        "INSERT INTO {db}.events (ts, site_id, kind, visitor_key, url, ip) VALUES {}",
        values.join(", ")
    ))
    .await;
    assert_eq!(
        query(&format!("SELECT count() FROM {db}.events")).await,
        "10"
    );

    let dropped = tally::prune::prune_events(&client, NOW).await.unwrap();
    // Today and the six days before it stay; days 7, 8 and 9 ago are gone.
    assert_eq!(dropped, vec![20_261_115, 20_261_116, 20_261_117]);
    assert_eq!(
        query(&format!(
            "SELECT min(toDate(ts)), max(toDate(ts)), count() FROM {db}.events"
        ))
        .await,
        "2026-11-18\t2026-11-24\t7"
    );
    // A second run finds nothing more to do.
    assert!(
        tally::prune::prune_events(&client, NOW)
            .await
            .unwrap()
            .is_empty()
    );
    // At the start of the next day, the oldest remaining day (6 days before today) expires.
    let dropped = tally::prune::prune_events(&client, NOW - NOW % DAY + DAY)
        .await
        .unwrap();
    assert_eq!(dropped, vec![20_261_118]);
}

/// Per-visit rows go with their raw events; daily aggregates, counts only, stay 180 days.
#[tokio::test]
async fn visits_go_with_the_raw_events_and_aggregates_after_180_days() {
    let (db, client) = migrated("ret_agg").await;
    // NOW is 2026-11-24: one row for each of the last 200 days in every table.
    let days = |table: &str, cols: &str| {
        format!(
            "INSERT INTO {db}.{table} (day, site_id{cols}) SELECT toDate('2026-11-24') - number, 1{} FROM system.numbers LIMIT 200",
            if cols.is_empty() { "" } else { ", 1" }
        )
    };
    query(&days("visits", ", visitor_key")).await;
    for table in tally::prune::AGGREGATE_TABLES {
        if table == "agg_top_week" {
            // Weeks, by their Monday: the last 30 (2026-11-23 back to 2026-05-04).
            query(&format!(
                "INSERT INTO {db}.agg_top_week (week, site_id, visits) SELECT toMonday(toDate('2026-11-24')) - 7 * number, 1, 1 FROM system.numbers LIMIT 30"
            ))
            .await;
        } else {
            query(&days(table, ", visits")).await;
        }
    }
    let utc = tally::config::SiteConfig::utc_placeholder();
    let mut berlin = utc.clone();
    berlin.timezone = "Europe/Berlin".into();

    // With a UTC site, visits keep today and the six days before, as the raw events do.
    let dropped = tally::prune::prune_visits(&client, std::slice::from_ref(&utc), NOW)
        .await
        .unwrap();
    assert_eq!(dropped.len(), 193);
    assert_eq!(
        query(&format!("SELECT min(day), count() FROM {db}.visits")).await,
        "2026-11-18\t7"
    );
    // A site east of UTC begins its 18th on the 17th (UTC), whose raw events are gone: its
    // visits of the 18th go too, so no per-visit row outlives its events.
    let dropped = tally::prune::prune_visits(&client, &[utc, berlin], NOW)
        .await
        .unwrap();
    assert_eq!(
        dropped.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        ["2026-11-18"]
    );

    let dropped = tally::prune::prune_aggregates(&client, NOW).await.unwrap();
    for (table, days) in dropped {
        if table == "agg_top_week" {
            // A week goes with its Monday, so no week holds a day older than 180 days.
            assert_eq!(
                days.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
                ["2026-05-04", "2026-05-11", "2026-05-18", "2026-05-25"]
            );
            assert_eq!(
                query(&format!("SELECT min(week), count() FROM {db}.agg_top_week")).await,
                "2026-06-01\t26"
            );
            continue;
        }
        assert_eq!(days.len(), 20, "{table}");
        assert_eq!(
            query(&format!("SELECT min(day), count() FROM {db}.{table}")).await,
            "2026-05-29\t180",
            "{table}"
        );
    }
    assert!(
        tally::prune::prune_aggregates(&client, NOW)
            .await
            .unwrap()
            .iter()
            .all(|(_, d)| d.is_empty())
    );
}
