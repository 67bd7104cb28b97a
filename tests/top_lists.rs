//! Breakdowns answered from the top lists (`agg_top`, `agg_top_week`) equal the breakdowns summed
//! from every row of `agg_breakdown`, and the engine only answers from them what they prove.
//!
//! A long tail is generated straight into `agg_breakdown` (3,000 pages a day, most of them seen
//! by one or two visitors, coming and going), the lists are made by the rollup's own statements
//! and the final weeks summed by `Rollup::compact_weeks`. Each question is answered by the engine
//! and by a plain `GROUP BY` over `agg_breakdown`. Then `agg_breakdown` is emptied: what the top
//! lists answer must not change, and what they cannot prove must now come back empty (so it was
//! read from `agg_breakdown`).

mod common;

use std::sync::Arc;

use chrono::{Days, NaiveDate};
use common::{clickhouse, query, unique_name};
use serde_json::json;
use tally::config::Config;
use tally::query::{Access, Engine};
use tally::rollup::Rollup;
use tally::rollup::weeks::monday;

fn config(db: &str) -> Config {
    let tree: toml::Table = toml::from_str(
        r#"
[[sites]]
id = 1
name = "Long tail"
domains = ["tail.example"]
"#,
    )
    .unwrap();
    let mut cfg = Config::from_table(tree).unwrap();
    cfg.clickhouse.database = db.to_string();
    cfg
}

/// The expected rows: `(value, [visitors, visits, pageviews, events])` from every breakdown row.
async fn expected(
    db: &str,
    dimension: &str,
    range: (NaiveDate, NaiveDate),
    (metric, direction): (&str, &str),
    limit: u64,
    offset: u64,
) -> Vec<(String, [u64; 4])> {
    let order = format!(
        "{} {direction}",
        tally::query::sums::order_expr(metric).unwrap()
    );
    let tsv = query(&format!(
        "SELECT value, sum(visitors) AS visitors, sum(visits) AS visits, sum(pageviews) AS pageviews, \
         sum(events) AS events, sum(bounces) AS bounces \
         FROM {db}.agg_breakdown WHERE site_id = 1 AND dimension = '{dimension}' \
         AND day >= '{}' AND day <= '{}' GROUP BY value ORDER BY {order}, value LIMIT {limit} OFFSET {offset}",
        range.0, range.1
    ))
    .await;
    tsv.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let n = |i: usize| f[i].parse::<u64>().unwrap();
            (f[0].to_string(), [n(1), n(2), n(3), n(4)])
        })
        .collect()
}

async fn engine_rows(
    engine: &Engine,
    dimension: &str,
    range: (NaiveDate, NaiveDate),
    order: (&str, &str),
    limit: u64,
    offset: u64,
) -> Vec<(String, [u64; 4])> {
    let mut metrics = vec!["visitors", "visits", "pageviews", "events"];
    if !metrics.contains(&order.0) {
        metrics.push(order.0);
    }
    let body = json!({
        "site_id": 1,
        "metrics": metrics,
        "date_range": [range.0.to_string(), range.1.to_string()],
        "dimensions": [dimension],
        "order_by": [[order.0, order.1]],
        "pagination": {"limit": limit, "offset": offset},
    });
    ask(engine, &body)
        .await
        .results
        .iter()
        .map(|r| {
            let n = |i: usize| r.metrics[i].as_u64().unwrap();
            (r.dimensions[0].clone(), [n(0), n(1), n(2), n(3)])
        })
        .collect()
}

/// The engine's answer to `body`, as the Stats API would give it now.
async fn ask(engine: &Engine, body: &serde_json::Value) -> tally::query::Answer {
    engine
        .run_at(body, &Access::All, tally::time::now_unix())
        .await
        .unwrap_or_else(|e| panic!("{body}: {e:?}"))
}

/// A page breakdown with the previous period: per row the value, its visitors and page views,
/// and theirs in the previous period.
async fn compared(
    engine: &Engine,
    range: (NaiveDate, NaiveDate),
) -> Vec<(String, Vec<Option<u64>>)> {
    let body = json!({
        "site_id": 1,
        "metrics": ["visitors", "pageviews"],
        "date_range": [range.0.to_string(), range.1.to_string()],
        "dimensions": ["event:page"],
        "include": {"comparisons": {"mode": "previous_period"}},
        "pagination": {"limit": 20},
    });
    ask(engine, &body)
        .await
        .results
        .iter()
        .map(|r| {
            let c = r.comparison.as_ref().expect("a comparison");
            let mut n: Vec<Option<u64>> = r.metrics.iter().map(|m| m.as_u64()).collect();
            n.extend(c.metrics.iter().map(|m| m.as_u64()));
            (r.dimensions[0].clone(), n)
        })
        .collect()
}

/// One question: dimension, range, order (API and SQL), limit, offset, and whether the top
/// lists prove it.
struct Case {
    dimension: &'static str,
    range: (NaiveDate, NaiveDate),
    order: (&'static str, &'static str),
    limit: u64,
    offset: u64,
    from_lists: bool,
}

#[tokio::test]
async fn top_lists_answer_exactly_what_they_prove() {
    let db = unique_name("top");
    let cfg = config(&db);
    tally::lifecycle::migrate_on(clickhouse().url(), &cfg)
        .await
        .unwrap();
    let client = tally::store::client(clickhouse().url(), &cfg.clickhouse);
    let now = tally::time::now_unix();
    let today = tally::time::local_date(chrono_tz::UTC, now);
    // Five whole weeks and the three days before them, all final (over a week old).
    let start = monday(today - Days::new(63));
    let first = start - Days::new(3);
    let last = start + Days::new(34);

    // Pages: a few popular ones, then a long tail of values seen by one or two visitors, each
    // there on about 4 days in 5. Countries: 30 values, every one listed.
    query(&format!(
        "INSERT INTO {db}.agg_breakdown (day, site_id, dimension, value, visitors, visits, pageviews, events, bounces, duration) \
         SELECT day, 1, 'event:page', concat('/p/', toString(n)), v, v + h % 3, 2 * (v + h % 3) + h % 5, \
                2 * (v + h % 3) + h % 5 + h % 7, intDiv(v + h % 3, 3), 30 * v \
         FROM (SELECT toDate('{first}') + intDiv(number, 3000) AS day, number % 3000 AS n, \
                      intHash32(number) AS h, \
                      toUInt32(1 + floor(2000 / pow(n + 1, 1.1) * (0.6 + (h % 1000) / 1250))) AS v \
               FROM system.numbers LIMIT 114000) \
         WHERE n < 100 OR h % 5 != 0"
    ))
    .await;
    query(&format!(
        "INSERT INTO {db}.agg_breakdown (day, site_id, dimension, value, visitors, visits, pageviews, events, bounces, duration) \
         SELECT toDate('{first}') + intDiv(number, 30) AS day, 1, 'visit:country', concat('c', toString(number % 30)), \
                1 + number % 30 * 7 % 11, 1 + number % 30 * 7 % 11, 3 + number % 13, 4 + number % 13, number % 2, 60 \
         FROM system.numbers LIMIT 1140"
    ))
    .await;
    // Entry pages: the same as pages, so that a page's bounce rate (that of the visits entering
    // on it) can come from their lists.
    query(&format!(
        "INSERT INTO {db}.agg_breakdown SELECT day, site_id, 'visit:entry_page', value, visitors, visits, \
         pageviews, events, bounces, duration FROM {db}.agg_breakdown WHERE dimension = 'event:page'"
    ))
    .await;
    // Titles: the same as pages, and a new page, the most visited of all on the last five days and
    // absent before. On the days before, it may as well have been in the rest for all the
    // lists know: over the whole range it cannot be vouched for, over the five days it can.
    query(&format!(
        "INSERT INTO {db}.agg_breakdown SELECT day, site_id, 'event:title', value, visitors, visits, \
         pageviews, events, bounces, duration FROM {db}.agg_breakdown WHERE dimension = 'event:page'"
    ))
    .await;
    query(&format!(
        "INSERT INTO {db}.agg_breakdown (day, site_id, dimension, value, visitors, visits, pageviews, events, bounces, duration) \
         SELECT toDate('{last}') - number, 1, 'event:title', '/new', 5000, 5000, 9000, 9000, 100, 1000 \
         FROM system.numbers LIMIT 5"
    ))
    .await;
    let mut day = first;
    while day <= last {
        // Through tally's client (its database), as the rollup sends them.
        for insert in tally::rollup::sql::top_list_inserts(
            "agg_top",
            "agg_breakdown",
            "day = toDate(?) AND has(?, site_id)",
        ) {
            client
                .query(&insert)
                .bind(day.to_string())
                .bind(vec![1u32])
                .execute()
                .await
                .unwrap();
        }
        day = day.succ_opt().unwrap();
    }
    // Lists have at most 1,000 values (fewer where values tie at the edge), and the pages had a
    // rest every day.
    assert_eq!(
        query(&format!(
            "SELECT max(c) BETWEEN 500 AND 1000, countIf(dimension != 'visit:country' AND r = 1), countIf(dimension = 'visit:country' AND r = 1) \
             FROM (SELECT day, dimension, countIf(listed = 1) AS c, countIf(listed = 0) AS r FROM {db}.agg_top GROUP BY day, dimension)"
        ))
        .await,
        "1\t114\t0"
    );

    // The migration's own statements make the same lists for the days rolled up before it.
    let snapshot =
        format!("SELECT groupArray(r) FROM (SELECT tuple(*) AS r FROM {db}.agg_top ORDER BY r)");
    let made = query(&snapshot).await;
    query(&format!("TRUNCATE TABLE {db}.agg_top")).await;
    let migration = tally::store::migrate::MIGRATIONS
        .iter()
        .find(|m| m.version == 7)
        .unwrap();
    for statement in migration.statements().filter(|s| s.starts_with("INSERT")) {
        client.query(&statement).execute().await.unwrap();
    }
    assert_eq!(query(&snapshot).await, made);

    let rollup = Rollup::new(client.clone(), &cfg);
    let weeks = rollup.compact_weeks(now).await.unwrap();
    assert_eq!(weeks.len(), 6, "{weeks:?}");
    assert!(
        rollup.compact_weeks(now).await.unwrap().is_empty(),
        "each week is summed once"
    );

    let engine = Engine::new(client.clone(), Arc::new(cfg.clone()));
    let whole = (first, last);
    let (pages, titles, countries) = ("event:page", "event:title", "visit:country");
    let two_weeks_of_days = (start + Days::new(2), start + Days::new(12));
    let one_week = (start, start + Days::new(6));
    let five_days = (last - Days::new(4), last);
    let case = |dimension, range, order: &'static str, limit, offset, from_lists| {
        let (metric, direction) = order.split_once(' ').unwrap();
        Case {
            dimension,
            range,
            order: (metric, direction),
            limit,
            offset,
            from_lists,
        }
    };
    #[rustfmt::skip]
    let cases = [
        // Five weeks from agg_top_week, three days from agg_top.
        case(pages, whole, "visitors desc", 10, 0, true),
        case(pages, whole, "visitors desc", 100, 0, true),
        case(pages, whole, "pageviews desc", 20, 5, true),
        case(pages, whole, "events desc", 50, 0, true),
        case(pages, whole, "visits desc", 10, 0, true),
        // Days only, inside two weeks; one summed week alone.
        case(pages, two_weeks_of_days, "visitors desc", 25, 0, true),
        case(pages, one_week, "visitors desc", 10, 0, true),
        // What the lists cannot prove: deep pages, ascending orders, rates.
        case(pages, whole, "visitors desc", 100, 2000, false),
        case(pages, whole, "visitors asc", 10, 0, false),
        case(pages, whole, "bounce_rate asc", 10, 0, false),
        // A value missing from some lists on days with a rest, and too big to be left out.
        case(titles, whole, "visitors desc", 10, 0, false),
        case(titles, five_days, "visitors desc", 10, 0, true),
        // Every value listed every day: any order.
        case(countries, whole, "bounce_rate desc", 7, 3, true),
        case(countries, whole, "visitors asc", 100, 0, true),
    ];
    let mut answers = Vec::new();
    for c in &cases {
        let want = expected(&db, c.dimension, c.range, c.order, c.limit, c.offset).await;
        assert!(!want.is_empty());
        let got = engine_rows(&engine, c.dimension, c.range, c.order, c.limit, c.offset).await;
        assert_eq!(
            got, want,
            "{} {:?} {:?} {} {}",
            c.dimension, c.range, c.order, c.limit, c.offset
        );
        answers.push(got);
    }

    // Every country is listed every day: the lists count the rows too.
    let countries_counted = json!({
        "site_id": 1,
        "metrics": ["visitors"],
        "date_range": [first.to_string(), last.to_string()],
        "dimensions": ["visit:country"],
        "include": {"total_rows": true},
        "pagination": {"limit": 5},
    });
    let total = |a: tally::query::Answer| a.meta["total_rows"].clone();
    assert_eq!(total(ask(&engine, &countries_counted).await), 30);

    // Bounce rates by page are those of the visits entering on each page.
    let bounces = |range: (NaiveDate, NaiveDate)| {
        json!({
            "site_id": 1,
            "metrics": ["visitors", "bounce_rate"],
            "date_range": [range.0.to_string(), range.1.to_string()],
            "dimensions": ["event:page"],
            "pagination": {"limit": 10},
        })
    };
    let entered: Vec<(String, Vec<serde_json::Value>)> = ask(&engine, &bounces(whole))
        .await
        .results
        .into_iter()
        .map(|r| (r.dimensions[0].clone(), r.metrics))
        .collect();
    for (page, metrics) in &entered {
        let rate = query(&format!(
            "SELECT round(100 * sum(bounces) / sum(visits)) FROM {db}.agg_breakdown WHERE site_id = 1 \
             AND dimension = 'visit:entry_page' AND value = '{page}' AND day >= '{first}' AND day <= '{last}'"
        ))
        .await;
        assert_eq!(metrics[1].to_string(), rate, "{page}");
    }

    // Two weeks compared with the two before: this period's rows from the lists, the previous
    // period's figures of the same values from the lists too (each is listed on every day).
    let later = (start + Days::new(14), start + Days::new(27));
    let with_previous = compared(&engine, later).await;
    assert_eq!(with_previous.len(), 20);
    for (value, n) in &with_previous {
        let before = query(&format!(
            "SELECT sum(visitors), sum(pageviews) FROM {db}.agg_breakdown WHERE site_id = 1 \
             AND dimension = 'event:page' AND value = '{value}' AND day >= '{}' AND day <= '{}'",
            start,
            start + Days::new(13)
        ))
        .await;
        assert_eq!(
            format!("{}\t{}", n[2].unwrap(), n[3].unwrap()),
            before,
            "{value} in the previous period"
        );
    }

    // Without agg_breakdown, only what the lists prove is still answered, unchanged.
    query(&format!("TRUNCATE TABLE {db}.agg_breakdown")).await;
    for (c, before) in cases.iter().zip(&answers) {
        let got = engine_rows(&engine, c.dimension, c.range, c.order, c.limit, c.offset).await;
        if c.from_lists {
            assert_eq!(&got, before, "{} {:?} {:?}", c.dimension, c.range, c.order);
        } else {
            assert!(
                got.is_empty(),
                "{} {:?} {:?} came from the lists",
                c.dimension,
                c.range,
                c.order
            );
        }
    }
    assert_eq!(compared(&engine, later).await, with_previous);
    let again: Vec<(String, Vec<serde_json::Value>)> = ask(&engine, &bounces(whole))
        .await
        .results
        .into_iter()
        .map(|r| (r.dimensions[0].clone(), r.metrics))
        .collect();
    assert_eq!(again, entered);
    assert_eq!(total(ask(&engine, &countries_counted).await), 30);
}
