//! The rules of a visit (`tally::rollup::sql::VISITS_SELECT`), on hand-made raw events written
//! straight into `events` and rolled up by `Rollup::run_day` on the real ClickHouse: the edge
//! cases that generated traffic rarely hits, each with its expected row.
//!
//! * a visit that begins with a heartbeat starts at the heartbeat;
//! * two hits other than pings in its first second: referrer, campaign and location are those
//!   of the smaller URL;
//! * two page views in the same second: the entry page is the smaller path, the exit page the
//!   larger;
//! * a run of heartbeats alone more than the timeout after a visit is no visit, and bots are
//!   left out;
//! * goals and orders are no actions, but their labels and revenue are the visit's;
//! * a visitor with two visits of two values counts once under each value and once in a value
//!   both visits share (the breakdowns' visitor count);
//! * host names are the URLs' hosts, the same on 18.16 and current ClickHouse.

mod common;

use common::{clickhouse, query, unique_name};
use tally::config::Config;
use tally::rollup::Rollup;

/// 2026-11-24 10:00 UTC: the day rolled up, 2026-11-23 (UTC), is yesterday.
const NOW: u32 = 1_795_514_400;

const SITE: &str = r#"
[[sites]]
id = 1
name = "Example"
domains = ["example.org", "*.example.org"]
"#;

/// One raw hit as `JSONEachRow`: the time of day on 2026-11-23, the kind, the visitor key, the
/// URL and any other columns (`"col": value, ...`).
fn hit(hms: &str, kind: &str, visitor: u64, url: &str, more: &str) -> String {
    let more = if more.is_empty() {
        String::new()
    } else {
        format!(", {more}")
    };
    format!(
        r#"{{"ts": "2026-11-23 {hms}", "site_id": 1, "kind": "{kind}", "visitor_key": {visitor}, "url": "{url}", "ip": "203.0.0.0"{more}}}"#
    )
}

/// A fresh database with `rows` (`JSONEachRow`) in `events`, and 2026-11-23 of site 1 rolled
/// up; returns the database and the visits the rollup wrote.
async fn rolled_up(prefix: &str, rows: &str) -> (String, u64) {
    let done = rolled_up_with(prefix, rows, "").await;
    (done.db, done.visits)
}

#[tokio::test]
async fn visits_follow_their_rules_at_the_edges() {
    let search = r#""referrer_type": "search", "referrer_name": "Google", "referrer": "https://www.google.com/", "country": "fr""#;
    let website =
        r#""referrer_type": "website", "referrer": "https://news.example.net/1", "country": "it""#;
    let rows = [
        // Visitor 1, first visit: a heartbeat at 08:00 begins it.
        hit("08:00:00", "ping", 1, "https://example.org/a", ""),
        // 08:10: page views of /c (from a news site) and /a (from Google) and an event on /b in
        // one second: the first hit is the one of the smallest URL, .../a, wherever it comes;
        // the entry page is /a.
        hit(
            "08:10:00",
            "pageview",
            1,
            "https://www.example.org/c",
            website,
        ),
        hit(
            "08:10:00",
            "pageview",
            1,
            "https://docs.example.org/a",
            search,
        ),
        hit(
            "08:10:00",
            "event",
            1,
            "https://example.org/b",
            &format!(
                r#"{website}, "event_category": "Video", "event_action": "play", "event_name": "intro""#
            ),
        ),
        // 08:30: /y and /z in one second: the exit page is /z.
        hit("08:30:00", "pageview", 1, "https://example.org/y", ""),
        hit("08:30:00", "pageview", 1, "https://example.org/z", ""),
        // A heartbeat 25 minutes later extends the visit to 3,300 s.
        hit("08:55:00", "ping", 1, "https://example.org/y", ""),
        // 65 minutes later, heartbeats alone: no visit.
        hit("10:00:00", "ping", 1, "https://example.org/y", ""),
        hit("10:20:00", "ping", 1, "https://example.org/y", ""),
        // Visitor 1, second visit: a bounce from Germany, directly.
        hit(
            "11:00:00",
            "pageview",
            1,
            "https://blog.example.org",
            r#""referrer_type": "direct", "country": "de""#,
        ),
        // Visitor 2: a bot, left out.
        hit(
            "11:30:00",
            "pageview",
            2,
            "https://example.org/",
            r#""is_bot": 1"#,
        ),
        // Visitor 3: a page, a search, an outlink, a download (four actions), goal 7 and an
        // order (no actions; 12.5 + 30 revenue).
        hit(
            "12:00:00",
            "pageview",
            3,
            "https://example.org/shop",
            r#""country": "de""#,
        ),
        hit(
            "12:01:00",
            "search",
            3,
            "https://example.org/shop",
            r#""search_keyword": "shoes", "search_category": "Shop""#,
        ),
        hit(
            "12:02:00",
            "outlink",
            3,
            "https://example.org/shop",
            r#""target_url": "https://other.example/x""#,
        ),
        hit(
            "12:03:00",
            "download",
            3,
            "https://example.org/shop",
            r#""target_url": "https://example.org/f.pdf""#,
        ),
        hit(
            "12:04:00",
            "goal",
            3,
            "https://example.org/shop",
            r#""goal_id": 7, "revenue": 12.5"#,
        ),
        hit(
            "12:05:00",
            "ecommerce_order",
            3,
            "https://example.org/shop",
            r#""revenue": 30"#,
        ),
    ];
    let (db, visits) = rolled_up("rollup_visits", &rows.join("\n")).await;
    assert_eq!(visits, 3);

    let visits = query(&format!(
        "SELECT visitor_key, start, duration, pageviews, actions, interactions, bounce, \
         entry_page, exit_page, entry_hostname, exit_hostname, channel, source, referrer_type, \
         referrer_host, country, arraySort(pv_pages), arraySort(ev_actions), searches, outlinks, \
         downloads, arraySort(goals), revenue, action_hours \
         FROM {db}.visits ORDER BY visitor_key, start FORMAT TSV"
    ))
    .await;
    let want = [
        "1\t2026-11-23 08:00:00\t3300\t4\t5\t1\t0\t/a\t/z\tdocs.example.org\texample.org\t\
         Organic Search\tGoogle\tsearch\twww.google.com\tfr\t['/a','/c','/y','/z']\t['play']\t\
         []\t[]\t[]\t[]\t0\t[8,8,8,8,8]",
        "1\t2026-11-23 11:00:00\t0\t1\t1\t0\t1\t/\t/\tblog.example.org\tblog.example.org\t\
         Direct\t\tdirect\t\tde\t['/']\t[]\t[]\t[]\t[]\t[]\t0\t[11]",
        "3\t2026-11-23 12:00:00\t300\t1\t4\t3\t0\t/shop\t/shop\texample.org\texample.org\t\
         Direct\t\t\t\tde\t['/shop']\t[]\t['shoes']\t['https://other.example/x']\t\
         ['https://example.org/f.pdf']\t['7','ecommerce']\t42.5\t[12,12,12,12]",
    ];
    assert_eq!(visits, want.join("\n"));

    // Visitor 1's two visits are one visitor under the value they share (no browser) and one
    // under each country; visitor 3 adds one to Germany and to the shared value.
    let breakdown = query(&format!(
        "SELECT dimension, value, visitors, visits FROM {db}.agg_breakdown \
         WHERE dimension IN ('visit:country', 'visit:browser') ORDER BY dimension, value FORMAT TSV"
    ))
    .await;
    assert_eq!(
        breakdown,
        "visit:browser\t\t2\t3\nvisit:country\tde\t2\t2\nvisit:country\tfr\t1\t1"
    );
    assert_eq!(
        query(&format!(
            "SELECT visitors, visits, pageviews, events, bounces, duration FROM {db}.agg_daily FORMAT TSV"
        ))
        .await,
        "2\t3\t6\t10\t1\t3600"
    );
}

/// The query whose answer `tests/fixtures/rollup_hosts.tsv` pins, here on 18.16 and in
/// `tests/modern/check_rollup.py` on current ClickHouse: the host columns of each visit.
const HOSTS_QUERY: &str = "SELECT visitor_key, entry_hostname, exit_hostname, arraySort(pv_hosts), \
     channel, source, referrer_host FROM visits ORDER BY visitor_key FORMAT TSV";

/// Host names are the URL's host whatever ClickHouse runs the rollup
/// (`tests/fixtures/rollup_hosts.jsonl`): hosts with `~` or `=`, without a dot (`localhost`,
/// with a port), after user info, an IPv6 host. `domain()` gave an empty host for most of them
/// on ClickHouse 26 (so a referral counted under the direct visits' empty value), and on 18.16
/// the user name (`user`) and `[` for the last two.
#[tokio::test]
async fn hosts_are_the_urls_hosts() {
    let (db, visits) = rolled_up("rollup_hosts", include_str!("fixtures/rollup_hosts.jsonl")).await;
    assert_eq!(visits, 6);

    let visits = query(&HOSTS_QUERY.replace("FROM visits", &format!("FROM {db}.visits"))).await;
    assert_eq!(
        visits,
        include_str!("fixtures/rollup_hosts.tsv").trim_end_matches('\n'),
        "{HOSTS_QUERY}"
    );

    // The breakdowns take the same values: one visit each, the direct one alone under ''.
    let breakdown = query(&format!(
        "SELECT dimension, value, visits FROM {db}.agg_breakdown \
         WHERE dimension IN ('visit:referrer', 'visit:source', 'event:hostname') \
         ORDER BY dimension, value FORMAT TSV"
    ))
    .await;
    assert_eq!(
        breakdown,
        "event:hostname\ta=b.example.org\t1\n\
         event:hostname\texample.org\t3\n\
         event:hostname\tlocalhost\t1\n\
         event:hostname\tshop.example.org\t2\n\
         visit:referrer\t\t1\n\
         visit:referrer\t[2001:db8::1]\t1\n\
         visit:referrer\tnews~1.example.net\t1\n\
         visit:referrer\twww.google.com\t1\n\
         visit:referrer\twww.mail~box.example\t1\n\
         visit:referrer\twww.partner.example\t1\n\
         visit:source\t\t1\n\
         visit:source\tGoogle\t1\n\
         visit:source\t[2001:db8::1]\t1\n\
         visit:source\tmail~box.example\t1\n\
         visit:source\tnews~1.example.net\t1\n\
         visit:source\tpartner.example\t1"
    );
}

/// A day with more raw events than `[rollup] max_events_per_pass` is made into visits in slices
/// of its visitors: the visits and every aggregate are those of one statement.
#[tokio::test]
async fn a_day_made_in_slices_equals_the_day_made_at_once() {
    // 40 visitors, each with a few page views, an event and a heartbeat; a third come back
    // after more than the visit timeout for a second visit.
    let mut rows = Vec::new();
    for v in 1..=40u64 {
        let h = 6 + v % 12;
        for (i, page) in ["a", "b", "c"]
            .iter()
            .enumerate()
            .take(1 + (v % 3) as usize)
        {
            rows.push(hit(
                &format!("{h:02}:{:02}:00", i * 3),
                "pageview",
                v,
                &format!("https://example.org/{page}"),
                r#""country": "de""#,
            ));
        }
        rows.push(hit(
            &format!("{h:02}:20:00"),
            "event",
            v,
            "https://example.org/a",
            r#""event_category": "video", "event_action": "play""#,
        ));
        rows.push(hit(
            &format!("{h:02}:21:00"),
            "ping",
            v,
            "https://example.org/a",
            "",
        ));
        if v % 3 == 0 {
            rows.push(hit(
                &format!("{:02}:30:00", h + 3),
                "pageview",
                v,
                "https://example.org/d",
                "",
            ));
        }
    }
    let rows = rows.join("\n");
    let at_once = rolled_up_with("slices_one", &rows, "").await;
    let sliced = rolled_up_with("slices_many", &rows, "[rollup]\nmax_events_per_pass = 7\n").await;
    assert_eq!(at_once.slices, 1);
    assert!(sliced.slices > 10, "{} slices", sliced.slices);
    assert_eq!(at_once.visits, 53, "40 visits and 13 second ones");
    assert_eq!(sliced.visits, at_once.visits);
    for table in [
        "visits",
        "agg_daily",
        "agg_hourly",
        "agg_breakdown",
        "agg_top",
    ] {
        let all = |db: &str| format!("SELECT * FROM {db}.{table} ORDER BY tuple(*) FORMAT TSV");
        let (a, b) = (
            query(&all(&at_once.db)).await,
            query(&all(&sliced.db)).await,
        );
        assert!(!a.is_empty(), "{table} is empty");
        assert_eq!(a, b, "{table}: one statement and slices differ");
    }
}

/// What [`rolled_up_with`] made.
struct RolledUp {
    db: String,
    visits: u64,
    slices: u32,
}

/// As [`rolled_up`], with `extra` configuration.
async fn rolled_up_with(prefix: &str, rows: &str, extra: &str) -> RolledUp {
    let db = unique_name(prefix);
    let mut cfg = Config::from_table(format!("{SITE}\n{extra}").parse().unwrap()).unwrap();
    cfg.clickhouse.database = db.clone();
    tally::lifecycle::migrate_on(clickhouse().url(), &cfg)
        .await
        .unwrap();
    query(&format!(
        "INSERT INTO {db}.events FORMAT JSONEachRow {rows}"
    ))
    .await;
    let client = tally::store::client(clickhouse().url(), &cfg.clickhouse);
    let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
    let done = Rollup::new(client, &cfg)
        .run_day(date, Some(1), NOW)
        .await
        .unwrap();
    RolledUp {
        db,
        visits: done.visits,
        slices: done.slices,
    }
}
