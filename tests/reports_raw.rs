//! The reports against a second computation: generated traffic of two sites (Berlin with a
//! five-minute visit timeout, New York with the default thirty) over the last six local days,
//! rolled up by the real `tally rollup`; then, for every day of the raw window, the answers of
//! `POST /api/v2/query` (from the daily aggregates, and once from the per-visit rows) must equal
//! what this test computes itself, in Rust, from the site's raw `events` rows (time, visitor key,
//! kind, URL), following the rules of a visit and not tally's SQL:
//!
//! * a visit is a run of one visitor key's hits on one site and local day with no gap longer than
//!   the site's timeout (a gap of exactly the timeout stays inside);
//! * heartbeats (`ping`) extend it (its duration runs from its first hit to its last) but a run
//!   of heartbeats alone is no visit;
//! * actions (the `events` metric) are page views, events, outlinks, downloads, site searches and
//!   content interactions; a bounce is a visit of exactly one page view and no other action;
//! * the entry and exit pages are the paths of the first and last page views (the smaller and
//!   the larger path when two share a second); by page, the bounce rate and duration are those
//!   of the visits that entered on it (docs/stats-api.md, "Scopes");
//! * by hour: visits, bounces and durations in the hour a visit began, page views and events in
//!   their own hour, a visitor in every hour it began a visit or did something in.
//!
//! The seed of the traffic is printed; `TALLY_REPORTS_SEED=<n>` makes the same choices again
//! (the times are relative to now, so the days they fall on move with the clock).

mod common;

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use chrono_tz::Tz;
use common::reports::{
    ALL, CHROME, Checks, FIREFOX, Hit, Visitor, What, ask, away_from_midnight, config_of,
    create_key, send, settings, tally, today, wait_stored,
};
use common::{Collector, query};
use serde_json::{Value, json};

/// A site of the test: id, host, zone, visit timeout.
struct Site {
    id: u32,
    host: &'static str,
    tz: Tz,
    timeout: u32,
}

const SITES: [Site; 2] = [
    Site {
        id: 1,
        host: "example.org",
        tz: chrono_tz::Europe::Berlin,
        timeout: 300,
    },
    Site {
        id: 2,
        host: "shop.example.net",
        tz: chrono_tz::America::New_York,
        timeout: 1800,
    },
];

fn config() -> String {
    let mut sites = String::new();
    for s in &SITES {
        sites.push_str(&format!(
            "[[sites]]\nid = {}\nname = \"{}\"\ndomains = [\"{}\"]\ntimezone = \"{}\"\nvisit_timeout = {}\n\n",
            s.id,
            s.host,
            s.host,
            s.tz.name(),
            s.timeout
        ));
    }
    settings(&format!(
        "[privacy]\ntrusted_proxies = [\"127.0.0.0/8\"]\n\n{sites}"
    ))
}

/// xorshift64*: reproducible traffic without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u32) -> u32 {
        (self.next() % u64::from(n.max(1))) as u32
    }

    fn percent(&mut self, p: u32) -> bool {
        self.below(100) < p
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u32) as usize]
    }
}

const PAGES: [&str; 6] = ["/", "/a", "/b", "/blog/one", "/blog/two", "/shop"];

/// A random hit kind, page views most often.
fn what(rng: &mut Rng) -> What {
    let page = rng.pick(&PAGES);
    match rng.below(100) {
        0..=49 => What::Page(page),
        50..=64 => What::Ping(page),
        65..=72 => What::Event("Video", rng.pick(&["play", "pause"]), "intro"),
        73..=76 => What::Outlink("https://other.example/x"),
        77..=80 => What::Download("https://example.org/file.pdf"),
        81..=84 => What::Search(rng.pick(&["hours", "prices"]), "Shop"),
        85..=88 => What::Content("Banner", "click"),
        89..=92 => What::Impression("Banner"),
        _ => What::Goal(rng.below(2) + 1),
    }
}

/// The gap before the next hit of a visitor: often right around the site's timeout, sometimes
/// none at all (two hits in one second).
fn gap(rng: &mut Rng, timeout: u32) -> u32 {
    match rng.below(10) {
        0 => 0,
        1 | 2 => 1 + rng.below(60),
        3 | 4 => 60 + rng.below(timeout - 60),
        5 => timeout - 1,
        6 => timeout,
        7 => timeout + 1,
        _ => timeout + rng.below(3 * 3600),
    }
}

/// Visitors of each of the last six local days (today up to now), with visits that cross the
/// local midnight now and then.
fn traffic(rng: &mut Rng, site: &Site, now: u32) -> Vec<Hit> {
    let mut hits = Vec::new();
    let today = tally::time::local_date(site.tz, now);
    let latest = now - 5;
    for back in 0..=5u64 {
        let day = today - chrono::Days::new(back);
        let (start, end) = tally::time::day_bounds(site.tz, day);
        let end = end.min(latest);
        if end <= start + 60 {
            continue;
        }
        for _ in 0..16 {
            let visitor = Visitor {
                id: rng.next(),
                ua: rng.pick(&[FIREFOX, CHROME]),
                ip: rng.pick(&["85.214.132.117", "8.8.8.8", "81.2.69.142"]),
            };
            for _ in 0..1 + rng.below(3) {
                let mut at = if back > 0 && rng.percent(15) {
                    // Minutes before midnight: the visit goes on into the next day.
                    end - 1 - rng.below(900)
                } else {
                    start + rng.below(end - start)
                };
                for _ in 0..1 + rng.below(6) {
                    if at > latest {
                        break;
                    }
                    hits.push(Hit {
                        site: site.id,
                        host: site.host,
                        visitor,
                        at,
                        what: what(rng),
                    });
                    at += gap(rng, site.timeout);
                }
            }
        }
    }
    hits
}

/// One stored event, as this test reads it back.
struct Row {
    t: u32,
    key: u64,
    kind: String,
    page: String,
}

/// A visit as this test computes it.
#[derive(Debug)]
struct Visit {
    key: u64,
    start: u32,
    end: u32,
    /// (time, path) of each page view.
    views: Vec<(u32, String)>,
    /// Times of the actions (page views and interactions).
    actions: Vec<u32>,
}

impl Visit {
    fn pageviews(&self) -> u64 {
        self.views.len() as u64
    }

    fn bounce(&self) -> bool {
        self.views.len() == 1 && self.actions.len() == 1
    }

    fn duration(&self) -> u64 {
        u64::from(self.end - self.start)
    }

    fn entry(&self) -> &str {
        &self.views.iter().min().unwrap().1
    }

    fn exit(&self) -> &str {
        &self.views.iter().max().unwrap().1
    }
}

const ACTIONS: [&str; 6] = [
    "pageview",
    "event",
    "outlink",
    "download",
    "search",
    "content_interaction",
];

/// The path of a stored URL, `/` when it has none.
fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.find('/').map_or("", |i| &rest[i..]);
    let path = path.split(['?', '#']).next().unwrap_or("");
    if path.is_empty() { "/" } else { path }.to_string()
}

/// Every visit of `rows` (one site's), by local day.
fn visits(rows: &[Row], site: &Site) -> BTreeMap<NaiveDate, Vec<Visit>> {
    let mut runs: BTreeMap<(NaiveDate, u64), Vec<&Row>> = BTreeMap::new();
    for r in rows {
        let day = tally::time::local_date(site.tz, r.t);
        runs.entry((day, r.key)).or_default().push(r);
    }
    let mut out: BTreeMap<NaiveDate, Vec<Visit>> = BTreeMap::new();
    for ((day, key), mut hits) in runs {
        hits.sort_by_key(|r| r.t);
        let mut groups: Vec<Vec<&Row>> = Vec::new();
        for h in hits {
            match groups.last_mut() {
                Some(g) if h.t - g.last().unwrap().t <= site.timeout => g.push(h),
                _ => groups.push(vec![h]),
            }
        }
        for g in groups {
            if g.iter().all(|h| h.kind == "ping") {
                continue;
            }
            out.entry(day).or_default().push(Visit {
                key,
                start: g[0].t,
                end: g.last().unwrap().t,
                views: g
                    .iter()
                    .filter(|h| h.kind == "pageview")
                    .map(|h| (h.t, h.page.clone()))
                    .collect(),
                actions: g
                    .iter()
                    .filter(|h| ACTIONS.contains(&h.kind.as_str()))
                    .map(|h| h.t)
                    .collect(),
            });
        }
    }
    out
}

/// The six sums of a set of visits (and what they count for one page: its views).
#[derive(Default, Debug, Clone, PartialEq)]
struct Sums {
    visitors: BTreeSet<u64>,
    visits: u64,
    pageviews: u64,
    events: u64,
    bounces: u64,
    duration: u64,
}

impl Sums {
    fn add_visit(&mut self, v: &Visit) {
        self.visitors.insert(v.key);
        self.visits += 1;
        self.bounces += u64::from(v.bounce());
        self.duration += v.duration();
    }

    /// The metrics as the API shows them: rates rounded to whole numbers, views per visit to
    /// two places, `null` for a rate of no visits.
    fn metric(&self, name: &str) -> Value {
        let ratio = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
        let value = match name {
            "visitors" => return json!(self.visitors.len()),
            "visits" => return json!(self.visits),
            "pageviews" => return json!(self.pageviews),
            "events" => return json!(self.events),
            "views_per_visit" => {
                ratio(self.pageviews, self.visits).map(|r| (r * 100.0).round() / 100.0)
            }
            "bounce_rate" => ratio(self.bounces * 100, self.visits).map(f64::round),
            "visit_duration" => ratio(self.duration, self.visits).map(f64::round),
            other => panic!("no metric {other}"),
        };
        match value {
            Some(v) if v.fract() == 0.0 => json!(v as i64),
            Some(v) => json!(v),
            None => Value::Null,
        }
    }

    fn row(&self, dims: &[String], metrics: &[&str]) -> Value {
        let mut row: Vec<Value> = dims.iter().map(|d| json!(d)).collect();
        row.extend(metrics.iter().map(|m| self.metric(m)));
        Value::Array(row)
    }
}

/// The day's totals.
fn day_sums(visits: &[Visit]) -> Sums {
    let mut s = Sums::default();
    for v in visits {
        s.add_visit(v);
        s.pageviews += v.pageviews();
        s.events += v.actions.len() as u64;
    }
    s
}

/// Per page: the visits that viewed it, and its views (which are also its events).
fn by_page(visits: &[Visit]) -> BTreeMap<String, Sums> {
    let mut out: BTreeMap<String, Sums> = BTreeMap::new();
    for v in visits {
        let pages: BTreeSet<&String> = v.views.iter().map(|(_, p)| p).collect();
        for page in pages {
            let s = out.entry(page.clone()).or_default();
            s.add_visit(v);
            let n = v.views.iter().filter(|(_, p)| p == page).count() as u64;
            s.pageviews += n;
            s.events += n;
        }
    }
    out
}

/// Per value of a property of the whole visit (entry page, exit page).
fn by_visit(visits: &[Visit], value: impl Fn(&Visit) -> Option<String>) -> BTreeMap<String, Sums> {
    let mut out: BTreeMap<String, Sums> = BTreeMap::new();
    for v in visits {
        let key = value(v).unwrap_or_else(|| "(none)".into());
        let s = out.entry(key).or_default();
        s.add_visit(v);
        s.pageviews += v.pageviews();
        s.events += v.actions.len() as u64;
    }
    out
}

/// Per local hour, labelled as `time:hour` labels it.
fn by_hour(visits: &[Visit], tz: Tz) -> BTreeMap<String, Sums> {
    let label = |t: u32| common::reports::hour_label(tz, t);
    let mut out: BTreeMap<String, Sums> = BTreeMap::new();
    for v in visits {
        let began = out.entry(label(v.start)).or_default();
        began.visits += 1;
        began.bounces += u64::from(v.bounce());
        began.duration += v.duration();
        began.visitors.insert(v.key);
        for &t in &v.actions {
            let s = out.entry(label(t)).or_default();
            s.events += 1;
            s.visitors.insert(v.key);
        }
        for (t, _) in &v.views {
            out.entry(label(*t)).or_default().pageviews += 1;
        }
    }
    out
}

/// The rows of a breakdown in the API's order: visitors, descending, then the value.
fn rows(groups: &BTreeMap<String, Sums>, metrics: &[&str]) -> Value {
    let mut list: Vec<(&String, &Sums)> = groups.iter().collect();
    list.sort_by(|a, b| {
        b.1.visitors
            .len()
            .cmp(&a.1.visitors.len())
            .then(a.0.cmp(b.0))
    });
    list.into_iter()
        .map(|(k, s)| s.row(std::slice::from_ref(k), metrics))
        .collect()
}

/// The rows of a time breakdown: ascending.
fn time_rows(groups: &BTreeMap<String, Sums>, metrics: &[&str]) -> Value {
    groups
        .iter()
        .map(|(k, s)| s.row(std::slice::from_ref(k), metrics))
        .collect()
}

#[tokio::test]
async fn aggregates_equal_visits_computed_from_the_raw_events() {
    let seed = std::env::var("TALLY_REPORTS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x7a11_5eed_u64);
    eprintln!("traffic seed {seed} (TALLY_REPORTS_SEED)");
    let mut rng = Rng(seed | 1);
    // The days rolled up are counted from today: it must stay today until the rollup has run.
    let zones: Vec<Tz> = SITES.iter().map(|s| s.tz).collect();
    away_from_midnight(&zones, 0, 120).await;
    let c = Collector::start_raw(&config());
    let key = create_key(&c, &[1, 2]).await;
    let now = tally::time::now_unix();
    let hits: Vec<Hit> = SITES
        .iter()
        .flat_map(|s| traffic(&mut rng, s, now))
        .collect();
    send(&c, &hits).await;
    wait_stored(&c.db, hits.len() as u64).await;
    // `tally rollup` alone recomputes yesterday and today; the days before one by one.
    let days: BTreeSet<NaiveDate> = SITES
        .iter()
        .flat_map(|s| (0..=5u64).map(|back| today(s.tz) - chrono::Days::new(back)))
        .collect();
    for day in days {
        tally(&c, &["rollup", "--day", &day.to_string()]).await;
    }

    let stored = query(&format!(
        "SELECT site_id, toUInt32(ts), visitor_key, kind, url FROM {}.events WHERE is_bot = 0",
        c.db
    ))
    .await;
    let mut per_site: BTreeMap<u32, Vec<Row>> = BTreeMap::new();
    for line in stored.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        per_site
            .entry(f[0].parse().unwrap())
            .or_default()
            .push(Row {
                t: f[1].parse().unwrap(),
                key: f[2].parse().unwrap(),
                kind: f[3].to_string(),
                page: path_of(f[4]),
            });
    }
    // The first local day the engine answers from per-visit rows: the same for every site (a
    // day whose raw events are whole for all of them), so right after midnight UTC the oldest
    // local day of a site west of UTC is already outside it.
    let configured = tally::config::Config::load(Some(&config_of(&c))).expect("the test's config");
    let visits_from = tally::prune::visits_first_day(&configured.sites, 7, tally::time::now_unix());
    let mut checks = Checks::default();
    let mut compared_days = 0;
    for site in &SITES {
        let rows_of_site = per_site.remove(&site.id).unwrap_or_default();
        let days = visits(&rows_of_site, site);
        let today = today(site.tz);
        let first = today - chrono::Days::new(6);
        let range = json!([first.to_string(), today.to_string()]);
        let name = site.tz.name();

        // Every day of the raw window at once, by day; and its total (visitors summed).
        let mut q = json!({"site_id": site.id, "metrics": ALL, "date_range": range,
                           "dimensions": ["time:day"]});
        let want: Value = days
            .iter()
            .map(|(d, v)| day_sums(v).row(&[d.to_string()], &ALL))
            .collect();
        checks.eq(
            &format!("{name}: by day"),
            ask(&c, &key, &q).await.rows(),
            want,
        );
        q["dimensions"] = json!([]);
        let visitors: usize = days.values().map(|v| day_sums(v).visitors.len()).sum();
        let total = ask(&c, &key, &q).await.rows();
        checks.eq(
            &format!("{name}: the week's visitors are the sum of the days'"),
            total[0][0].clone(),
            json!(visitors),
        );

        for (day, visits) in &days {
            compared_days += 1;
            let on = json!([day.to_string(), day.to_string()]);
            let ask_by = async |dims: Value, metrics: &[&str], filters: Value| {
                let q = json!({"site_id": site.id, "metrics": metrics, "date_range": on,
                               "dimensions": dims, "filters": filters});
                ask(&c, &key, &q).await.rows()
            };
            let summary: Value = json!([day_sums(visits).row(&[], &ALL)]);
            checks.eq(
                &format!("{name} {day}: summary"),
                ask_by(json!([]), &ALL, json!([])).await,
                summary,
            );
            // By page, bounce rate and duration are those of the visits that entered on it.
            let entries = by_visit(visits, |v| {
                (!v.views.is_empty()).then(|| v.entry().to_string())
            });
            let page_metrics = [
                "visitors",
                "visits",
                "pageviews",
                "events",
                "bounce_rate",
                "visit_duration",
            ];
            let pages: Value = rows(&by_page(visits), &page_metrics[..4])
                .as_array()
                .unwrap()
                .iter()
                .map(|row| {
                    let mut row = row.as_array().unwrap().clone();
                    let page = row[0].as_str().unwrap();
                    let entered = entries.get(page).cloned().unwrap_or_default();
                    row.push(entered.metric("bounce_rate"));
                    row.push(entered.metric("visit_duration"));
                    Value::Array(row)
                })
                .collect();
            checks.eq(
                &format!("{name} {day}: by page"),
                ask_by(json!(["event:page"]), &page_metrics, json!([])).await,
                pages.clone(),
            );
            // The same from the per-visit rows: no stored breakdown holds browser and page.
            if *day >= visits_from {
                checks.eq(
                    &format!("{name} {day}: by page, from the visits"),
                    ask_by(
                        json!(["event:page"]),
                        &page_metrics,
                        json!([["is_not", "visit:browser", ["Opera"]]]),
                    )
                    .await,
                    pages,
                );
            }
            let entry_metrics = ["visitors", "visits", "bounce_rate", "visit_duration"];
            checks.eq(
                &format!("{name} {day}: by entry page"),
                ask_by(json!(["visit:entry_page"]), &entry_metrics, json!([])).await,
                rows(
                    &by_visit(visits, |v| {
                        (!v.views.is_empty()).then(|| v.entry().to_string())
                    }),
                    &entry_metrics,
                ),
            );
            checks.eq(
                &format!("{name} {day}: by exit page"),
                ask_by(
                    json!(["visit:exit_page"]),
                    &["visitors", "visits"],
                    json!([]),
                )
                .await,
                rows(
                    &by_visit(visits, |v| {
                        (!v.views.is_empty()).then(|| v.exit().to_string())
                    }),
                    &["visitors", "visits"],
                ),
            );
            let hour_metrics = [
                "visitors",
                "visits",
                "pageviews",
                "events",
                "bounce_rate",
                "visit_duration",
            ];
            checks.eq(
                &format!("{name} {day}: by hour"),
                ask_by(json!(["time:hour"]), &hour_metrics, json!([])).await,
                time_rows(&by_hour(visits, site.tz), &hour_metrics),
            );
        }
    }
    checks.holds(
        "the traffic covers days",
        compared_days >= 10,
        &format!("only {compared_days} site-days had visits"),
    );
    eprintln!(
        "{} hits, {compared_days} site-days, {} checks passed",
        hits.len(),
        checks.passed()
    );
    checks.finish();
}
