//! Custom properties in reports (`event:props:KEY`, issue 13): raw events with `prop_keys` and
//! `prop_values` written straight into `events`, rolled up by the real `Rollup`, then asked
//! through the query engine; every answer must equal what this test computes itself, in Rust,
//! from the rows it inserted (visits cut at gaps over 30 minutes; an action counts under the
//! value of the key it carries, `(none)` without it).
//!
//! * a day 20 days ago (its visits dropped: only the aggregates are left), the day after it
//!   with no properties at all (every action under `(none)`), and the last two days (still in
//!   the raw window);
//! * breakdowns and `is` / `contains` filters answered from the aggregates on old days; a
//!   negated filter and a breakdown combined with the country from the per-visit rows on recent
//!   days, refused (400) on old ones;
//! * a day with more keys than the rollup keeps: a kept key is answered, a left-out one refused
//!   (answered from the visits on such a day inside the raw window);
//! * two keys in one query are refused;
//! * and the whole path once: Plausible's Events API into `tally serve`, `tally rollup`, the
//!   Stats API over HTTP.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{Days, NaiveDate};
use common::{clickhouse, query, unique_name};
use serde_json::{Value, json};
use tally::config::Config;
use tally::query::{Access, Engine};
use tally::rollup::Rollup;

/// One raw hit of the test.
#[derive(Debug, Clone)]
struct Hit {
    day: NaiveDate,
    /// Seconds after 08:00 UTC.
    secs: u32,
    visitor: u64,
    pageview: bool,
    country: &'static str,
    props: Vec<(String, String)>,
}

impl Hit {
    fn json(&self) -> String {
        let keys: Vec<&str> = self.props.iter().map(|p| p.0.as_str()).collect();
        let values: Vec<&str> = self.props.iter().map(|p| p.1.as_str()).collect();
        let t = 8 * 3600 + self.secs;
        let ts = format!(
            "{} {:02}:{:02}:{:02}",
            self.day,
            t / 3600,
            t / 60 % 60,
            t % 60
        );
        json!({
            "ts": ts,
            "site_id": 1,
            "kind": if self.pageview { "pageview" } else { "event" },
            "visitor_key": self.visitor,
            "url": format!("https://example.org/p{}", self.secs % 3),
            "ip": "203.0.0.0",
            "country": self.country,
            "event_category": if self.pageview { "" } else { "Video" },
            "event_action": if self.pageview { "" } else { "play" },
            "prop_keys": keys,
            "prop_values": values,
        })
        .to_string()
    }

    fn value(&self, key: &str) -> String {
        self.props
            .iter()
            .find(|p| p.0 == key)
            .map_or(String::new(), |p| p.1.clone())
    }
}

/// A small deterministic generator (the test needs variety, not randomness).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// A day's traffic: 30 visitors, some with two visits, hits with `author` and `plan` properties
/// (or none, with `with_props` false).
fn traffic(day: NaiveDate, seed: u64, with_props: bool) -> Vec<Hit> {
    let mut r = Lcg(seed);
    let mut out = Vec::new();
    for v in 0..30u64 {
        let visitor = seed * 1000 + v + 1;
        let country = if v % 3 == 0 { "de" } else { "fr" };
        let visits = 1 + r.next(2) as u32;
        for visit in 0..visits {
            let mut secs = visit * 7200 + r.next(600) as u32;
            for _ in 0..1 + r.next(4) {
                let mut props = Vec::new();
                if with_props {
                    match r.next(3) {
                        0 => props.push(("author".to_string(), "alice".to_string())),
                        1 => props.push(("author".to_string(), "bob".to_string())),
                        _ => {}
                    }
                    if r.next(2) == 0 {
                        props.push(("plan".to_string(), "pro".to_string()));
                    }
                }
                out.push(Hit {
                    day,
                    secs,
                    visitor,
                    pageview: r.next(3) != 0,
                    country,
                    props,
                });
                secs += 1 + r.next(900) as u32;
            }
        }
    }
    out
}

/// The figures of a group: visitors, visits, page views, events.
type Figures = [u64; 4];

/// What the engine should answer, computed from the hits: per group (`group` of a visit and an
/// action; `None` leaves the action out), each day's distinct visitors summed over the days.
/// `whole_visits` counts every action of a visit that has a counted action (a negated filter
/// selects visits, then all their actions count).
fn expected(
    hits: &[Hit],
    group: &dyn Fn(&Hit) -> Option<String>,
    whole_visits: bool,
) -> BTreeMap<String, Figures> {
    // Visits: per day and visitor, hits sorted by time, cut at gaps over 1,800 s.
    let mut by_visitor: BTreeMap<(NaiveDate, u64), Vec<&Hit>> = BTreeMap::new();
    for h in hits {
        by_visitor.entry((h.day, h.visitor)).or_default().push(h);
    }
    let mut out: BTreeMap<String, Figures> = BTreeMap::new();
    let mut visitors: BTreeSet<(String, NaiveDate, u64)> = BTreeSet::new();
    for ((day, visitor), mut hs) in by_visitor {
        hs.sort_by_key(|h| h.secs);
        let mut visits: Vec<Vec<&Hit>> = Vec::new();
        for h in hs {
            match visits.last_mut() {
                Some(v) if h.secs - v.last().unwrap().secs <= 1800 => v.push(h),
                _ => visits.push(vec![h]),
            }
        }
        for v in visits {
            let mut groups: BTreeMap<String, (u64, u64)> = BTreeMap::new();
            for h in &v {
                if let Some(g) = group(h) {
                    groups.entry(g).or_default();
                }
            }
            for (g, counts) in groups.iter_mut() {
                for h in &v {
                    if whole_visits || group(h).as_ref() == Some(g) {
                        counts.0 += u64::from(h.pageview);
                        counts.1 += 1;
                    }
                }
            }
            for (g, (pv, ev)) in groups {
                let f = out.entry(g.clone()).or_default();
                f[1] += 1;
                f[2] += pv;
                f[3] += ev;
                if visitors.insert((g.clone(), day, visitor)) {
                    f[0] += 1;
                }
            }
        }
    }
    out
}

fn label(v: String) -> String {
    if v.is_empty() { "(none)".into() } else { v }
}

/// The engine's rows as `dimension values joined by " / "` → figures.
fn rows(answer: &tally::query::Answer) -> BTreeMap<String, Figures> {
    answer
        .results
        .iter()
        .map(|r| {
            let n = |i: usize| r.metrics[i].as_u64().unwrap();
            (r.dimensions.join(" / "), [n(0), n(1), n(2), n(3)])
        })
        .collect()
}

fn body(range: (NaiveDate, NaiveDate), dims: &[&str], filters: Value) -> Value {
    json!({
        "site_id": 1,
        "metrics": ["visitors", "visits", "pageviews", "events"],
        "date_range": [range.0.to_string(), range.1.to_string()],
        "dimensions": dims,
        "filters": filters,
        "pagination": {"limit": 1000},
    })
}

async fn ask(engine: &Engine, body: &Value) -> Result<tally::query::Answer, String> {
    engine
        .run_at(body, &Access::All, tally::time::now_unix())
        .await
        .map_err(|e| format!("{} {}", e.status, e.message))
}

#[tokio::test]
async fn custom_properties_are_reported_inside_and_outside_the_raw_window() {
    let db = unique_name("props");
    let mut cfg = Config::from_table(
        r#"
[[sites]]
id = 1
name = "Example"
domains = ["example.org"]
"#
        .parse()
        .unwrap(),
    )
    .unwrap();
    cfg.clickhouse.database = db.clone();
    tally::lifecycle::migrate_on(clickhouse().url(), &cfg)
        .await
        .unwrap();
    let client = tally::store::client(clickhouse().url(), &cfg.clickhouse);
    let rollup = Rollup::new(client.clone(), &cfg);
    let now = tally::time::now_unix();
    let today = tally::time::local_date(chrono_tz::UTC, now);
    let old = today - Days::new(20);
    let bare = today - Days::new(19);
    let many = today - Days::new(18);
    let recent = (today - Days::new(2), today - Days::new(1));

    let mut old_hits = traffic(old, 1, true);
    old_hits.extend(traffic(bare, 2, false));
    // More keys than a day keeps: k000..k099 on two actions, k100..k103 on one.
    let many_keys = |n: usize| -> Vec<(String, String)> {
        (0..n)
            .map(|i| (format!("k{i:03}"), format!("v{}", i % 2)))
            .collect()
    };
    let many_hits = vec![
        Hit {
            day: many,
            secs: 0,
            visitor: 9001,
            pageview: true,
            country: "de",
            props: many_keys(104),
        },
        Hit {
            day: many,
            secs: 60,
            visitor: 9001,
            pageview: false,
            country: "de",
            props: many_keys(100),
        },
    ];
    let mut recent_hits = traffic(recent.0, 3, true);
    recent_hits.extend(traffic(recent.1, 4, true));
    // The same many keys on a day still in the raw window.
    let many_recent = today - Days::new(3);
    let many_recent_hits: Vec<Hit> = many_hits
        .iter()
        .map(|h| Hit {
            day: many_recent,
            ..h.clone()
        })
        .collect();
    let all: Vec<&Hit> = old_hits
        .iter()
        .chain(&many_hits)
        .chain(&recent_hits)
        .chain(&many_recent_hits)
        .collect();
    let rows_json: Vec<String> = all.iter().map(|h| h.json()).collect();
    query(&format!(
        "INSERT INTO {db}.events FORMAT JSONEachRow {}",
        rows_json.join("\n")
    ))
    .await;

    // The old days are rolled up while they were recent, then their visits dropped, as the
    // pruner does: only the aggregates answer for them.
    for day in [old, bare, many] {
        let then = tally::time::local_date(chrono_tz::UTC, now) - day;
        let at = now - u32::try_from(then.num_seconds()).unwrap() + 3600;
        rollup.run_day(day, Some(1), at).await.unwrap();
        query(&format!("ALTER TABLE {db}.visits DROP PARTITION '{day}'")).await;
    }
    for day in [many_recent, recent.0, recent.1] {
        rollup.run_day(day, Some(1), now).await.unwrap();
    }
    let engine = Engine::new(client, Arc::new(cfg.clone()));
    let author = |h: &Hit| Some(h.value("author"));

    // Breakdowns, from the aggregates, on every span.
    for (range, hits) in [
        (
            (old, old),
            old_hits
                .iter()
                .filter(|h| h.day == old)
                .cloned()
                .collect::<Vec<_>>(),
        ),
        ((old, bare), old_hits.clone()),
        (recent, recent_hits.clone()),
    ] {
        let want: BTreeMap<String, Figures> = expected(&hits, &author, false)
            .into_iter()
            .map(|(k, v)| (label(k), v))
            .collect();
        let got = ask(&engine, &body(range, &["event:props:author"], json!([])))
            .await
            .unwrap();
        assert_eq!(rows(&got), want, "by author over {range:?}");
        let mut with_total = body(range, &["event:props:author"], json!([]));
        with_total["include"] = json!({"total_rows": true});
        let total = ask(&engine, &with_total).await.unwrap();
        assert_eq!(total.meta["total_rows"], json!(want.len()));
        assert_eq!(got.columns[0], "event:props:author");
        assert_eq!(got.query["dimensions"], json!(["event:props:author"]));
        assert!(want.len() >= 2, "{want:?}");
    }
    // On the day without properties, everything is (none).
    let bare_only: Vec<Hit> = old_hits.iter().filter(|h| h.day == bare).cloned().collect();
    let got = ask(
        &engine,
        &body((bare, bare), &["event:props:plan"], json!([])),
    )
    .await
    .unwrap();
    let want = expected(&bare_only, &|_| Some("(none)".into()), false);
    assert_eq!(rows(&got), want);

    // Filters answered from the aggregates: one value a day.
    for (range, hits) in [((old, bare), &old_hits), (recent, &recent_hits)] {
        for (filter, pick) in [
            (
                json!([["is", "event:props:author", ["alice"]]]),
                Box::new(|h: &Hit| (h.value("author") == "alice").then(String::new))
                    as Box<dyn Fn(&Hit) -> Option<String>>,
            ),
            (
                json!([["contains", "event:props:author", ["li"]]]),
                Box::new(|h: &Hit| h.value("author").contains("li").then(String::new)),
            ),
            (
                json!([["is", "event:props:plan", ["(none)"]]]),
                Box::new(|h: &Hit| h.value("plan").is_empty().then(String::new)),
            ),
        ] {
            let got = ask(&engine, &body(range, &[], filter.clone()))
                .await
                .unwrap();
            let want = expected(hits, pick.as_ref(), false);
            assert_eq!(rows(&got), want, "{filter} over {range:?}");
        }
    }

    // What the aggregates cannot say exactly: from the visits on recent days...
    let not_alice = json!([["is_not", "event:props:author", ["alice"]]]);
    let got = ask(&engine, &body(recent, &[], not_alice.clone()))
        .await
        .unwrap();
    let no_alice_visits = |hits: &[Hit]| {
        // Visits without any alice action: group them all under "".
        let mut by_visit: BTreeMap<(NaiveDate, u64, u32), Vec<&Hit>> = BTreeMap::new();
        let mut sorted: Vec<&Hit> = hits.iter().collect();
        sorted.sort_by_key(|h| (h.day, h.visitor, h.secs));
        let mut start = BTreeMap::new();
        let mut last: BTreeMap<(NaiveDate, u64), u32> = BTreeMap::new();
        for h in sorted {
            let k = (h.day, h.visitor);
            let s = match last.get(&k) {
                Some(&l) if h.secs - l <= 1800 => start[&k],
                _ => h.secs,
            };
            start.insert(k, s);
            last.insert(k, h.secs);
            by_visit.entry((h.day, h.visitor, s)).or_default().push(h);
        }
        let keep: Vec<Hit> = by_visit
            .values()
            .filter(|v| v.iter().all(|h| h.value("author") != "alice"))
            .flat_map(|v| v.iter().map(|h| (*h).clone()))
            .collect();
        expected(&keep, &|_| Some(String::new()), true)
    };
    assert_eq!(rows(&got), no_alice_visits(&recent_hits), "{not_alice}");
    let by_country = ask(
        &engine,
        &body(recent, &["event:props:author", "visit:country"], json!([])),
    )
    .await
    .unwrap();
    let want: BTreeMap<String, Figures> = expected(
        &recent_hits,
        &|h: &Hit| Some(format!("{} / {}", label(h.value("author")), h.country)),
        false,
    );
    assert_eq!(rows(&by_country), want, "by author and country");

    // ... and refused on old days.
    for b in [
        body((old, bare), &[], not_alice.clone()),
        body(
            (old, bare),
            &["event:props:author", "visit:country"],
            json!([]),
        ),
    ] {
        let e = ask(&engine, &b).await.unwrap_err();
        assert!(
            e.starts_with("400 This query cannot be answered exactly"),
            "{e}"
        );
    }

    // A day with more keys than kept: a kept key is answered, a left-out one refused.
    let got = ask(
        &engine,
        &body((many, many), &["event:props:k007"], json!([])),
    )
    .await
    .unwrap();
    assert_eq!(
        rows(&got),
        BTreeMap::from([("v1".to_string(), [1, 1, 1, 2])])
    );
    let e = ask(
        &engine,
        &body((old, many), &["event:props:k102"], json!([])),
    )
    .await
    .unwrap_err();
    assert!(
        e.starts_with("400") && e.contains(&format!("on {many} the site sent more than 100")),
        "{e}"
    );
    assert_eq!(
        query(&format!(
            "SELECT events FROM {db}.agg_breakdown WHERE dimension = 'event:props' AND value = '(keys left out)'"
        ))
        .await,
        "4\n4"
    );
    // Inside the raw window the visits answer for a left-out key.
    let got = ask(
        &engine,
        &body((many_recent, many_recent), &["event:props:k102"], json!([])),
    )
    .await
    .unwrap();
    assert_eq!(
        rows(&got),
        BTreeMap::from([
            ("(none)".to_string(), [1, 1, 0, 1]),
            ("v0".to_string(), [1, 1, 1, 1]),
        ])
    );

    // One property per query.
    let e = ask(
        &engine,
        &body(
            recent,
            &["event:props:author"],
            json!([["is", "event:props:plan", ["pro"]]]),
        ),
    )
    .await
    .unwrap_err();
    assert!(e.contains("one custom property per query"), "{e}");
}

/// The whole path: Plausible's Events API into a real `tally serve`, `tally rollup`, and the
/// Stats API over HTTP.
#[tokio::test]
async fn properties_sent_to_the_events_api_are_reported() {
    let c = common::Collector::start("");
    let events = [
        json!({"n": "pageview", "u": "https://example.org/a", "d": "example.org", "p": {"author": "ann"}}),
        json!({"n": "Signup", "u": "https://example.org/a", "d": "example.org", "p": {"author": "bob", "plan": "pro"}}),
        json!({"n": "pageview", "u": "https://example.org/b", "d": "example.org"}),
    ];
    for e in &events {
        let r = common::http()
            .post(c.url("/api/event"))
            .header("Content-Type", "text/plain")
            .header("User-Agent", common::reports::CHROME)
            .body(e.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 202);
        // One second apart, so the order of the visit is the order sent.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    assert_eq!(c.wait_for("1", 3).await, 3);
    common::reports::tally(&c, &["rollup"]).await;
    let key = common::reports::create_key(&c, &[1]).await;
    let answer = common::reports::ask(
        &c,
        &key,
        &json!({"site_id": "example.org", "metrics": ["visitors", "visits", "pageviews", "events"],
                "date_range": "day", "dimensions": ["event:props:author"]}),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let got: BTreeMap<String, Value> = answer.json()["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["dimensions"][0].as_str().unwrap().to_string(),
                r["metrics"].clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        BTreeMap::from([
            ("(none)".to_string(), json!([1, 1, 1, 1])),
            ("ann".to_string(), json!([1, 1, 1, 1])),
            ("bob".to_string(), json!([1, 1, 0, 1])),
        ])
    );
    let answer = common::reports::ask(
        &c,
        &key,
        &json!({"site_id": "example.org", "metrics": ["visitors", "events"], "date_range": "day",
                "filters": [["is", "event:props:plan", ["pro"]]]}),
    )
    .await;
    assert_eq!(
        answer.json()["results"][0]["metrics"],
        json!([1, 1]),
        "{}",
        answer.text
    );
}
