//! Retention: every table tally prunes keeps exactly its window (`[retention] raw_days`,
//! `aggregate_days`, day secrets 48 hours, sessions by expiry month, the pruner's own record),
//! whole partitions at a time, through the real `tally prune` and the schedule inside
//! `tally serve`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{Datelike, Days, NaiveDate};
use common::{Collector, SITE, clickhouse, query, tally_bin, unique_name, write_config};
use tally::config::Config;

/// 2026-11-24 10:00 UTC.
const NOW: u32 = 1_795_514_400;
const DAY: u32 = 86_400;

/// The ages (days before today, UTC) of the rows planted in every pruned table.
const AGES: [u32; 8] = [3, 6, 7, 8, 30, 179, 180, 181];

/// The tables of daily aggregates, partitioned by `day`.
const AGGREGATES: [&str; 4] = ["agg_daily", "agg_hourly", "agg_breakdown", "agg_top"];

/// The tables partitioned by the month their rows expire in.
const EXPIRING: [&str; 4] = [
    "sessions",
    "session_ends",
    "signin_tokens",
    "signin_token_uses",
];

/// A fresh database with every migration applied, the config for it (with `extra`), and a
/// client on it.
async fn migrated(prefix: &str, extra: &str) -> (String, Config, tally::store::Client) {
    let db = unique_name(prefix);
    let mut cfg = Config::from_table(extra.parse().unwrap()).unwrap();
    cfg.clickhouse.database = db.clone();
    tally::lifecycle::migrate_on(clickhouse().url(), &cfg)
        .await
        .unwrap();
    let client = tally::store::client(clickhouse().url(), &cfg.clickhouse);
    (db, cfg, client)
}

fn date(unix: u32) -> NaiveDate {
    tally::time::local_date(chrono_tz::UTC, unix)
}

fn days_before(today: NaiveDate, n: u32) -> NaiveDate {
    today - Days::new(u64::from(n))
}

fn monday(d: NaiveDate) -> NaiveDate {
    d - Days::new(u64::from(d.weekday().num_days_from_monday()))
}

/// Plants one row per age in every pruned table, as of `now`: raw and per-visit rows and
/// aggregates (with 999 page views, so a rollup that replaced them shows) on day `today - age`
/// at noon, the week of that day, a day secret of that day (and of today and yesterday, which
/// are kept), sessions and tokens expiring `age` days ago (and one in 30 days), and pruner runs
/// `age` days ago.
async fn plant(db: &str, now: u32, ages: &[u32]) {
    let today = date(now);
    let mut days = Vec::new();
    for &n in ages {
        let d = days_before(today, n);
        let noon = tally::time::day_number(d) * DAY + 12 * 3600;
        days.push((n, d, noon));
    }
    let each = |f: &dyn Fn(u32, NaiveDate, u32) -> String| {
        days.iter()
            .map(|&(n, d, noon)| f(n, d, noon))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let statements = [
        format!(
            "INSERT INTO {db}.events (ts, site_id, kind, visitor_key, url, ip) VALUES {}",
            each(&|n, _, noon| format!(
                "({noon}, 1, 'pageview', {n}, 'https://example.org/{n}', '203.0.0.0')"
            ))
        ),
        format!(
            "INSERT INTO {db}.visits (day, site_id, visitor_key, pageviews) VALUES {}",
            each(&|n, d, _| format!("('{d}', 1, {n}, 1)"))
        ),
        format!(
            "INSERT INTO {db}.agg_daily (day, site_id, visits, pageviews) VALUES {}",
            each(&|_, d, _| format!("('{d}', 1, 999, 999)"))
        ),
        format!(
            "INSERT INTO {db}.agg_hourly (day, site_id, hour, pageviews) VALUES {}",
            each(&|_, d, _| format!("('{d}', 1, 12, 999)"))
        ),
        format!(
            "INSERT INTO {db}.agg_breakdown (day, site_id, dimension, value, pageviews) VALUES {}",
            each(&|_, d, _| format!("('{d}', 1, 'event:page', '/x', 999)"))
        ),
        format!(
            "INSERT INTO {db}.agg_top (day, site_id, dimension, listed, value, pageviews) VALUES {}",
            each(&|_, d, _| format!("('{d}', 1, 'event:page', 1, '/x', 999)"))
        ),
        format!(
            "INSERT INTO {db}.agg_top_week (week, site_id, dimension, listed, value, pageviews) VALUES {}",
            each(&|_, d, _| format!("('{}', 1, 'event:page', 1, '/x', 999)", monday(d)))
        ),
        format!(
            "INSERT INTO {db}.day_secrets (zone, day, secret, created, expires) VALUES {}, {}",
            each(&|_, d, noon| format!(
                "('UTC', '{d}', 'ab', {now}, {})",
                noon - 12 * 3600 + 2 * DAY
            )),
            [0u32, 1]
                .iter()
                .map(|&n| {
                    let d = days_before(today, n);
                    let start = tally::time::day_number(d) * DAY;
                    format!("('UTC', '{d}', 'ab', {now}, {})", start + 2 * DAY)
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
        format!(
            "INSERT INTO {db}.prune_runs (run_at, collector, dry_run, partitions, rows, failed, message) VALUES {}",
            each(&|n, _, _| format!("({}, 'planted', 0, 0, 0, 0, 'age {n}')", now - n * DAY))
        ),
    ];
    for s in statements {
        query(&s).await;
    }
    let expiries: Vec<u32> = ages
        .iter()
        .map(|n| now - n * DAY)
        .chain([now + 30 * DAY])
        .collect();
    for (table, cols) in [
        ("sessions", "'h', 'u', 1, now(), toDateTime(?)"),
        ("session_ends", "'h', now(), toDateTime(?)"),
        ("signin_tokens", "'h', 'u', toDateTime(?)"),
        ("signin_token_uses", "'h', 'n', now(), toDateTime(?)"),
    ] {
        for e in &expiries {
            query(&format!(
                "INSERT INTO {db}.{table} SELECT {}",
                cols.replace('?', &e.to_string())
            ))
            .await;
        }
    }
}

/// Every partition of every table of `db` with its rows (`system.parts`, active parts).
async fn snapshot(db: &str) -> BTreeMap<String, BTreeMap<String, u64>> {
    let text = query(&format!(
        "SELECT table, partition, sum(rows) FROM system.parts \
         WHERE database = '{db}' AND active GROUP BY table, partition ORDER BY table, partition"
    ))
    .await;
    let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        out.entry(f[0].to_string())
            .or_default()
            .insert(f[1].trim_matches('\'').to_string(), f[2].parse().unwrap());
    }
    out
}

/// The partitions a `tally prune` printed (`dropped` or `would drop`), with their rows.
fn listed(stdout: &str) -> BTreeSet<(String, String, u64)> {
    stdout
        .lines()
        .filter_map(|l| {
            let rest = l
                .strip_prefix("dropped ")
                .or_else(|| l.strip_prefix("would drop "))?;
            let f: Vec<&str> = rest.split_whitespace().collect();
            // TABLE partition P N rows
            (f.len() == 5 && f[1] == "partition" && f[4] == "rows")
                .then(|| (f[0].to_string(), f[2].to_string(), f[3].parse().unwrap()))
        })
        .collect()
}

/// `tally prune <args> --config <config>`: exit status, stdout, stderr.
fn tally_prune(config: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(tally_bin())
        .arg("prune")
        .args(args)
        .arg("--config")
        .arg(config)
        .env("TALLY_GEO_AUTO", "false")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The ages (days before `today`) of the dates in `partitions` (`YYYYMMDD` or `YYYY-MM-DD`).
fn ages_of(today: NaiveDate, partitions: Option<&BTreeMap<String, u64>>) -> BTreeSet<u32> {
    partitions
        .into_iter()
        .flat_map(|p| p.keys())
        .map(|p| {
            let d = NaiveDate::parse_from_str(p, "%Y%m%d")
                .or_else(|_| NaiveDate::parse_from_str(p, "%Y-%m-%d"))
                .unwrap();
            u32::try_from((today - d).num_days()).unwrap()
        })
        .collect()
}

/// Runs `f` away from midnight UTC: the ages of planted rows must not shift under a test.
async fn away_from_midnight() {
    common::reports::away_from_midnight(&[chrono_tz::UTC], 30, 300).await;
}

/// Checks that after a real prune of `db` (config `config`, windows `raw` and `agg` days) at
/// about `now`, exactly the expected partitions of the planted rows remain.
async fn assert_windows_kept(db: &str, now: u32, raw: u32, agg: u32) {
    let today = date(now);
    let snap = snapshot(db).await;
    let expect = |keep: &dyn Fn(u32) -> bool| -> BTreeSet<u32> {
        AGES.iter().copied().filter(|&n| keep(n)).collect()
    };
    assert_eq!(
        ages_of(today, snap.get("events")),
        expect(&|n| n < raw),
        "events"
    );
    assert_eq!(
        ages_of(today, snap.get("visits")),
        expect(&|n| n < raw),
        "visits"
    );
    for table in AGGREGATES {
        assert_eq!(
            ages_of(today, snap.get(table)),
            expect(&|n| n < agg),
            "{table}"
        );
    }
    // Weeks: kept while their Monday is within the window, so no week holds an expired day.
    let first_kept = days_before(today, agg - 1);
    let weeks: BTreeSet<String> = AGES
        .iter()
        .map(|&n| monday(days_before(today, n)))
        .filter(|m| *m >= first_kept)
        .map(|m| m.to_string())
        .collect();
    assert_eq!(
        snap.get("agg_top_week")
            .map(|p| p.keys().cloned().collect::<BTreeSet<_>>())
            .unwrap_or_default(),
        weeks,
        "agg_top_week"
    );
    // Secrets: only today's and yesterday's (48 hours from the start of their day).
    let secrets = query(&format!(
        "SELECT groupArray(toString(day)) FROM (SELECT day FROM {db}.day_secrets ORDER BY day)"
    ))
    .await;
    assert_eq!(
        secrets,
        format!("['{}','{}']", days_before(today, 1), days_before(today, 0)),
        "day_secrets"
    );
    // Sessions and tokens: months before the current one are over.
    let this_month = today.with_day(1).unwrap();
    let live = AGES
        .iter()
        .filter(|&&n| date(now - n * DAY) >= this_month)
        .count()
        + 1;
    for table in EXPIRING {
        assert_eq!(
            query(&format!("SELECT count() FROM {db}.{table}")).await,
            live.to_string(),
            "{table}"
        );
    }
    // The pruner's record: a month goes once its first day is older than the aggregates.
    let runs: BTreeSet<u32> = AGES
        .iter()
        .copied()
        .filter(|&n| date(now - n * DAY).with_day(1).unwrap() >= first_kept)
        .collect();
    let kept_runs: BTreeSet<u32> = query(&format!(
        "SELECT substring(message, 5) FROM {db}.prune_runs WHERE collector = 'planted'"
    ))
    .await
    .lines()
    .filter(|l| !l.is_empty())
    .map(|l| l.parse().unwrap())
    .collect();
    assert_eq!(kept_runs, runs, "prune_runs");
}

/// Back-dated rows in every pruned table -> `tally prune --dry-run` changes nothing and lists
/// what `tally prune` then drops; exactly the expected days remain; the raw days were rolled
/// up before they went; a second run changes nothing; each run is recorded.
#[tokio::test]
async fn tally_prune_keeps_exactly_each_window() {
    away_from_midnight().await;
    let dir = tempfile::tempdir().unwrap();
    let db = unique_name("prune_cli");
    let config = write_config(dir.path(), &db, SITE);
    let (ok, _, err) = tally_prune(&config, &["--dry-run"]);
    assert!(ok, "{err}");
    let started = tally::time::now_unix();
    plant(&db, started, &AGES).await;
    let before = snapshot(&db).await;

    let (ok, dry_out, err) = tally_prune(&config, &["--dry-run"]);
    assert!(ok, "{err}");
    let would = listed(&dry_out);
    let mut after_dry = snapshot(&db).await;
    // The dry run's own record is the only change.
    let runs_before = before.get("prune_runs").cloned().unwrap_or_default();
    let runs_after = after_dry.remove("prune_runs").unwrap_or_default();
    let mut without_runs = before.clone();
    without_runs.remove("prune_runs");
    assert_eq!(
        after_dry, without_runs,
        "a dry run changed data:\n{dry_out}"
    );
    assert_eq!(
        runs_after.values().sum::<u64>(),
        runs_before.values().sum::<u64>() + 1
    );
    assert!(!would.is_empty(), "{dry_out}");
    // Each listed partition with its rows as ClickHouse counts them.
    for (table, partition, rows) in &would {
        assert_eq!(
            before.get(table).and_then(|p| p.get(partition)),
            Some(rows),
            "{table} {partition}"
        );
    }

    let (ok, out, err) = tally_prune(&config, &[]);
    assert!(ok, "{out}{err}");
    // On 18.16 there is no TTL: the pruner says it alone enforces retention.
    assert!(err.contains("the pruner alone enforces retention"), "{err}");
    let dropped = listed(&out);
    // The same partitions as the dry run, except the dry run's own record (rows changed).
    let key = |s: &BTreeSet<(String, String, u64)>| -> BTreeSet<(String, String)> {
        s.iter().map(|(t, p, _)| (t.clone(), p.clone())).collect()
    };
    assert_eq!(key(&dropped), key(&would), "{dry_out}\n---\n{out}");
    assert_windows_kept(&db, started, 7, 180).await;

    // The raw days that went (7 days old and older) were rolled up first: their aggregates
    // are recomputed (one page view each); the days still in the raw window keep the planted
    // 999.
    let today = date(started);
    for (n, pageviews) in [
        (3, "999"),
        (6, "999"),
        (7, "1"),
        (8, "1"),
        (30, "1"),
        (179, "1"),
    ] {
        assert_eq!(
            query(&format!(
                "SELECT sum(pageviews) FROM {db}.agg_daily WHERE day = '{}'",
                days_before(today, n)
            ))
            .await,
            pageviews,
            "agg_daily {n} days ago"
        );
    }
    // Days whose aggregates expire as well are not rolled up for nothing.
    for n in [7, 8, 30, 179] {
        assert!(
            out.contains(&format!("rolled up {} ", days_before(today, n))),
            "{out}"
        );
    }
    assert!(
        !out.contains(&format!("rolled up {} ", days_before(today, 180))),
        "{out}"
    );

    // Twice changes nothing.
    let settled = snapshot(&db).await;
    let (ok, out2, err) = tally_prune(&config, &[]);
    assert!(ok, "{err}");
    assert!(listed(&out2).is_empty(), "{out2}");
    assert!(out2.contains("nothing dropped"), "{out2}");
    let mut again = snapshot(&db).await;
    let mut settled_without_runs = settled.clone();
    again.remove("prune_runs");
    settled_without_runs.remove("prune_runs");
    assert_eq!(again, settled_without_runs);

    // Every run is recorded: two dry runs (one before the rows were planted), two real ones.
    let host = tally::prune::collector_name();
    let mut recorded: Vec<String> = query(&format!(
        "SELECT dry_run, partitions, rows, failed, collector = '{host}' FROM {db}.prune_runs \
         WHERE collector != 'planted'"
    ))
    .await
    .lines()
    .map(str::to_string)
    .collect();
    recorded.sort();
    let mut expected = vec![
        "0\t0\t0\t0\t1".to_string(),
        format!(
            "0\t{}\t{}\t0\t1",
            dropped.len(),
            dropped.iter().map(|w| w.2).sum::<u64>()
        ),
        "1\t0\t0\t0\t1".to_string(),
        format!(
            "1\t{}\t{}\t0\t1",
            would.len(),
            would.iter().map(|w| w.2).sum::<u64>()
        ),
    ];
    expected.sort();
    assert_eq!(recorded, expected);
}

/// Windows shorter than the policy's are honoured.
#[tokio::test]
async fn shorter_windows_are_honoured() {
    away_from_midnight().await;
    let dir = tempfile::tempdir().unwrap();
    let db = unique_name("prune_short");
    let config = write_config(
        dir.path(),
        &db,
        &format!("[retention]\nraw_days = 3\naggregate_days = 30\n{SITE}"),
    );
    let (ok, _, err) = tally_prune(&config, &["--dry-run"]);
    assert!(ok, "{err}");
    let started = tally::time::now_unix();
    plant(&db, started, &AGES).await;
    let (ok, out, err) = tally_prune(&config, &[]);
    assert!(ok, "{out}{err}");
    assert_windows_kept(&db, started, 3, 30).await;
}

/// Several collectors pruning at once: a partition already dropped by one is no error to the
/// other, and together they leave exactly the windows.
#[tokio::test]
async fn two_pruners_at_once() {
    away_from_midnight().await;
    let dir = tempfile::tempdir().unwrap();
    let db = unique_name("prune_twice");
    let config = write_config(dir.path(), &db, SITE);
    let (ok, _, err) = tally_prune(&config, &["--dry-run"]);
    assert!(ok, "{err}");
    let started = tally::time::now_unix();
    plant(&db, started, &AGES).await;
    let spawn = || {
        Command::new(tally_bin())
            .args(["prune", "--config"])
            .arg(&config)
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    for child in [a, b] {
        common::succeeded(&child.wait_with_output().unwrap());
    }
    // What makes it safe: a partition that is not there is dropped without complaint.
    query(&format!("ALTER TABLE {db}.events DROP PARTITION 20000101")).await;
    query(&format!(
        "ALTER TABLE {db}.agg_daily DROP PARTITION '2000-01-01'"
    ))
    .await;
    assert_windows_kept(&db, started, 7, 180).await;
}

/// A raw day whose rollup fails is still dropped at its limit, and the run says so: an error
/// in the log, a non-zero exit, `failed = 1` and the reason in `prune_runs`.
#[tokio::test]
async fn a_failed_rollup_is_loud_and_the_day_still_goes() {
    away_from_midnight().await;
    let dir = tempfile::tempdir().unwrap();
    // `provoked_`: the SQL check on current ClickHouse (tests/modern/check_schema.py) expects
    // the test server to reject statements in this database.
    let db = unique_name("provoked_prune_fail");
    let config = write_config(dir.path(), &db, SITE);
    let (ok, _, err) = tally_prune(&config, &["--dry-run"]);
    assert!(ok, "{err}");
    let started = tally::time::now_unix();
    plant(&db, started, &[3, 8]).await;
    // The rollup cannot make its staging copy of a missing table.
    query(&format!("DROP TABLE {db}.agg_hourly")).await;
    let (ok, out, err) = tally_prune(&config, &[]);
    assert!(!ok, "{out}{err}");
    assert!(err.contains("ROLLUP OF A DAY FAILED"), "{err}");
    assert!(out.contains("PROBLEM: rollup of"), "{out}");
    let today = date(started);
    assert_eq!(
        ages_of(today, snapshot(&db).await.get("events")),
        BTreeSet::from([3])
    );
    assert_eq!(
        query(&format!(
            "SELECT failed, message LIKE '%rollup of {}%failed%' FROM {db}.prune_runs \
             WHERE collector != 'planted' AND dry_run = 0",
            days_before(today, 8)
        ))
        .await,
        "1\t1"
    );
}

/// The pruner inside `tally serve` runs at start and every `prune_interval_secs`: rows planted
/// after the collector started are dropped by the schedule, each run recorded and counted.
#[tokio::test]
async fn the_schedule_inside_serve_prunes() {
    away_from_midnight().await;
    let c = Collector::start("[retention]\nprune_interval_secs = 1\n");
    let db = c.db.clone();
    // Wait for the run at start, so that the rows below can only go by the schedule.
    let start = Instant::now();
    while query(&format!(
        "SELECT count() FROM {db}.prune_runs WHERE dry_run = 0"
    ))
    .await
        == "0"
    {
        assert!(start.elapsed() < Duration::from_secs(30), "{}", c.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let now = tally::time::now_unix();
    plant(&db, now, &[3, 8, 181]).await;
    let today = date(now);
    let start = Instant::now();
    loop {
        let snap = snapshot(&db).await;
        let done = ages_of(today, snap.get("events")) == BTreeSet::from([3])
            && ages_of(today, snap.get("visits")) == BTreeSet::from([3])
            && ages_of(today, snap.get("agg_daily")) == BTreeSet::from([3, 8]);
        if done {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the schedule did not prune: {snap:?}\n{}",
            c.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Each run is recorded when it ends: wait for the one that dropped and the one after it.
    let start = Instant::now();
    loop {
        let runs: u64 = query(&format!(
            "SELECT count() FROM {db}.prune_runs WHERE dry_run = 0 AND collector != 'planted'"
        ))
        .await
        .parse()
        .unwrap();
        if runs >= 3 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{runs} runs recorded"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let metrics = c.text("/metrics").await;
    assert!(
        metrics.contains("tally_pruned_partitions_total{table=\"events\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tally_pruned_rows_total{table=\"events\"} 2"),
        "{metrics}"
    );
    let oldest = tally::time::day_number(days_before(today, 3)) * DAY;
    assert!(
        metrics.contains(&format!(
            "tally_retention_oldest_seconds{{table=\"events\"}} {oldest}"
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains("tally_prune_last_run_seconds "),
        "{metrics}"
    );
    assert!(
        c.logs().contains("the pruner alone enforces retention"),
        "{}",
        c.logs()
    );
}

/// At the last second of a day nothing inside the windows is touched; at the first second of
/// the next, exactly the day that left each window goes.
#[tokio::test]
async fn the_boundary_is_exact() {
    let (db, cfg, client) = migrated("ret_edge", SITE).await;
    let midnight = NOW - NOW % DAY; // 2026-11-24 00:00 UTC
    let today = date(midnight);
    // Raw: the 17th goes at 00:00 on the 24th (7 days: 17th..23rd), the 18th stays.
    let (last_raw, first_raw) = (days_before(today, 7), days_before(today, 6));
    let (last_agg, first_agg) = (days_before(today, 180), days_before(today, 179));
    let stamp = |d: NaiveDate, hms: &str| format!("toDateTime('{d} {hms}', 'UTC')");
    query(&format!(
        "INSERT INTO {db}.events (ts, site_id, kind, visitor_key, url, ip) VALUES \
         ({}, 1, 'pageview', 1, 'https://example.org/', '203.0.0.0'), \
         ({}, 1, 'pageview', 2, 'https://example.org/', '203.0.0.0')",
        stamp(last_raw, "23:59:59"),
        stamp(first_raw, "00:00:00")
    ))
    .await;
    query(&format!(
        "INSERT INTO {db}.visits (day, site_id, visitor_key) VALUES ('{last_raw}', 1, 1), ('{first_raw}', 1, 2)"
    ))
    .await;
    query(&format!(
        "INSERT INTO {db}.agg_daily (day, site_id, visits) VALUES ('{last_agg}', 1, 1), ('{first_agg}', 1, 1)"
    ))
    .await;
    let pruner = tally::prune::Pruner::new(client, &cfg);
    let before = pruner.run(midnight - 1, false).await;
    assert!(before.drops.is_empty() && !before.failed(), "{before:?}");
    let at = pruner.run(midnight, false).await;
    assert!(!at.failed(), "{at:?}");
    let yyyymmdd = |d: NaiveDate| d.format("%Y%m%d").to_string();
    assert_eq!(at.dropped_from("events"), [yyyymmdd(last_raw)]);
    assert_eq!(at.dropped_from("visits"), [last_raw.to_string()]);
    assert_eq!(at.dropped_from("agg_daily"), [last_agg.to_string()]);
    assert_eq!(
        query(&format!(
            "SELECT toDate(ts) FROM {db}.events UNION ALL SELECT day FROM {db}.visits \
             UNION ALL SELECT day FROM {db}.agg_daily WHERE visits = 1 AND day < '{last_raw}'"
        ))
        .await
        .lines()
        .collect::<BTreeSet<_>>(),
        BTreeSet::from([
            first_raw.to_string().as_str(),
            first_agg.to_string().as_str()
        ])
    );
}

/// Per-visit rows go with their raw events, for every site's zone: a site east of UTC begins
/// its date on the UTC day before, so its visits of that date go when that UTC day does.
#[tokio::test]
async fn visits_go_with_the_raw_events_of_every_zone() {
    let berlin = format!("{SITE}\ntimezone = \"Europe/Berlin\"\n");
    let (db, cfg, client) = migrated("ret_zone", &berlin).await;
    query(&format!(
        "INSERT INTO {db}.visits (day, site_id, visitor_key) SELECT toDate('2026-11-24') - number, 1, 1 FROM system.numbers LIMIT 10"
    ))
    .await;
    let report = tally::prune::Pruner::new(client, &cfg)
        .run(NOW, false)
        .await;
    assert!(!report.failed(), "{report:?}");
    // NOW is 2026-11-24: raw events of the 18th (UTC) on are kept, and Berlin's 18th began at
    // 23:00 UTC on the 17th, so visits of the 19th on stay.
    assert_eq!(
        query(&format!("SELECT min(day), count() FROM {db}.visits")).await,
        "2026-11-19\t6"
    );
}

/// A raw day that was never rolled up is rolled up by the pruner before it goes, and the visits
/// that rollup writes (as old as the raw day) go in the same run: none is left for the next.
#[tokio::test]
async fn a_day_first_rolled_up_by_the_pruner_leaves_no_visits() {
    let (db, cfg, client) = migrated("ret_first", SITE).await;
    let midnight = NOW - NOW % DAY;
    let gone = days_before(date(midnight), 7);
    query(&format!(
        "INSERT INTO {db}.events (ts, site_id, kind, visitor_key, url, ip) VALUES \
         (toDateTime('{gone} 12:00:00', 'UTC'), 1, 'pageview', 1, 'https://example.org/', '203.0.0.0')"
    ))
    .await;
    let report = tally::prune::Pruner::new(client, &cfg)
        .run(midnight, false)
        .await;
    assert!(!report.failed(), "{report:?}");
    assert_eq!(report.rolled_up.len(), 1, "{report:?}");
    assert_eq!(
        query(&format!(
            "SELECT (SELECT count() FROM {db}.events), (SELECT count() FROM {db}.visits), \
             (SELECT sum(pageviews) FROM {db}.agg_daily WHERE day = '{gone}')"
        ))
        .await,
        "0\t0\t1"
    );
}
