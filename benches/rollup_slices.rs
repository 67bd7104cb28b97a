//! The rollup's visits statement in slices of the visitors (`[rollup] max_events_per_pass`):
//! its peak memory and time on ClickHouse 18.16 for one day of 1,000,000 raw events, made in 1,
//! 2, 4, 8 and 16 slices. Figures in `docs/capacity.md` ("The visits statement in slices").
//!
//! `cargo bench --bench rollup_slices` (a ClickHouse of its own, with the query log on; about a
//! minute). The day is synthetic: 200,000 visitors with 5 hits each spread over the day (every
//! fifth visitor's hits heartbeats only, so no visit), 5,000 pages, a fifth of the hits from a
//! search engine. What is measured is ClickHouse's, read from `system.query_log`: tally's build
//! profile does not matter.

mod common;

use tally::config::Config;
use tally::rollup::Rollup;
use tally::store::embedded::{EmbeddedClickHouse, ServerOptions};

/// The day rolled up, and "now" for the rollup (the next day).
const DAY: &str = "2026-11-23";
const NOW: u32 = 1_795_514_400;
const EVENTS: u64 = 1_000_000;

/// One HTTP query; the answer trimmed.
async fn query(url: &str, sql: &str) -> String {
    let resp = reqwest::Client::new()
        .post(url)
        .body(sql.to_string())
        .send()
        .await
        .expect("ClickHouse answers");
    let ok = resp.status().is_success();
    let text = resp.text().await.expect("an answer");
    assert!(ok, "{sql}\n{text}");
    text.trim().to_string()
}

#[tokio::main]
async fn main() {
    let dir = tempfile::Builder::new()
        .prefix("tally-bench-slices-")
        .tempdir()
        .expect("temp dir")
        .keep();
    let options = ServerOptions {
        log_queries: true,
        ..ServerOptions::default()
    };
    let ch = EmbeddedClickHouse::start_with(&dir, true, &options).expect("a ClickHouse");
    let url = ch.url().to_string();
    println!(
        "machine: {} cores, load {}; ClickHouse {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        common::loadavg(),
        query(&url, "SELECT version()").await
    );
    println!("slices  max_events_per_pass  visits  peak memory of one statement  all statements");
    for slices in [1u64, 2, 4, 8, 16] {
        let max = if slices == 1 { 0 } else { EVENTS / slices };
        let db = format!("slices_{slices}");
        let mut cfg = Config::from_table(
            format!("{}\n[rollup]\nmax_events_per_pass = {max}\n", common::SITE)
                .parse()
                .expect("TOML"),
        )
        .expect("config");
        cfg.clickhouse.database = db.clone();
        tally::lifecycle::migrate_on(&url, &cfg)
            .await
            .expect("migrations");
        query(
            &url,
            &format!(
                "INSERT INTO {db}.events (ts, site_id, kind, visitor_key, url, title, referrer, ip, browser, os, country) \
                 SELECT toDateTime('{DAY} 00:00:00', 'UTC') + toUInt32(intDiv((number % 200000) * 2, 5)) \
                 + intDiv(number, 200000) * 60, 1, if(number % 5 = 4, 'ping', 'pageview'), \
                 cityHash64(number % 200000), concat('https://example.org/p/', toString(cityHash64(number) % 5000)), \
                 concat('Page ', toString(number % 5000)), if(intDiv(number, 200000) = 0, 'https://www.google.com/', ''), \
                 '203.0.0.0', 'Firefox', 'Linux', 'de' FROM system.numbers LIMIT {EVENTS}"
            ),
        )
        .await;
        let client = tally::store::client(&url, &cfg.clickhouse);
        let date = chrono::NaiveDate::parse_from_str(DAY, "%Y-%m-%d").expect("a date");
        let from = query(&url, "SELECT toUInt32(now())").await;
        let done = Rollup::new(client, &cfg)
            .run_day(date, Some(1), NOW)
            .await
            .expect("the rollup");
        let to = query(&url, "SELECT toUInt32(now()) + 1").await;
        assert_eq!(done.slices as u64, slices, "slices made");
        query(&url, "SYSTEM FLUSH LOGS").await;
        // The visits statements of this run: `INSERT INTO rollup_.._visits` with the visits
        // SELECT (not the copy of other sites' visits, which is `SELECT *`).
        let figures = query(
            &url,
            &format!(
                "SELECT formatReadableSize(max(memory_usage)), count(), sum(query_duration_ms) \
                 FROM system.query_log WHERE type = 2 \
                 AND event_time BETWEEN toDateTime({from}) AND toDateTime({to}) \
                 AND query LIKE 'INSERT INTO rollup_%_visits SELECT%' AND query NOT LIKE 'INSERT INTO rollup_%_visits SELECT * FROM%'"
            ),
        )
        .await;
        let f: Vec<&str> = figures.split('\t').collect();
        println!(
            "{slices:>6}  {max:>19}  {:>6}  {:>28}  {} statements, {} ms",
            done.visits, f[0], f[1], f[2]
        );
    }
}
