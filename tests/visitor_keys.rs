//! Visitor counting without persistent identifiers: the daily secret in ClickHouse, shared by
//! collectors, rotated daily and deleted after 48 hours; keys that cannot link two days.

mod common;

use std::sync::Arc;

use common::{Collector, clickhouse, http, query, unique_name};
use tally::config::Config;
use tally::enrich::secrets::SecretStore;
use tally::enrich::visitor::{Secret, VisitorInput, VisitorKeys};
use tally::privacy::TruncatedIp;

async fn migrated_db() -> (String, tally::store::Client) {
    let db = unique_name("vk");
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

fn keys() -> Arc<VisitorKeys> {
    Arc::new(VisitorKeys::new(Secret::new(0, &Secret::generate_bytes())))
}

fn visitor() -> VisitorInput<'static> {
    VisitorInput {
        site_id: 1,
        ip: TruncatedIp::new("203.0.113.77".parse().unwrap(), 2),
        user_agent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0",
        accept_language: "de",
        client_id: None,
    }
}

/// 2026-11-24 10:00 UTC, a Tuesday.
const DAY1_10AM: u32 = 1_795_514_400;
const DAY: u32 = 86_400;

#[tokio::test]
async fn shared_rotated_daily_and_deleted_after_48_hours() {
    let (db, client) = migrated_db().await;
    // Two collectors on one database.
    let (keys_a, keys_b) = (keys(), keys());
    let a = SecretStore::new(client.clone(), keys_a.clone());
    let b = SecretStore::new(client.clone(), keys_b.clone());
    a.refresh(DAY1_10AM).await.unwrap();
    b.refresh(DAY1_10AM + 5).await.unwrap();
    let day1 = keys_a.key(&visitor());
    assert_eq!(
        day1,
        keys_b.key(&visitor()),
        "collectors sharing a database must agree"
    );
    assert_eq!(
        query(&format!("SELECT count() FROM {db}.visitor_secrets")).await,
        "1",
        "the second collector reuses the first one's secret"
    );
    // Later the same day: same key.
    a.refresh(DAY1_10AM + 13 * 3600).await.unwrap();
    assert_eq!(keys_a.key(&visitor()), day1);

    // Next day: a new secret, a different key for the same person.
    a.refresh(DAY1_10AM + DAY).await.unwrap();
    b.refresh(DAY1_10AM + DAY).await.unwrap();
    let day2 = keys_a.key(&visitor());
    assert_ne!(day1, day2);
    assert_eq!(day2, keys_b.key(&visitor()));
    // Day 1's secret is kept while day 2 lasts (under 48 hours since day 1 began)...
    let day1_date = "2026-11-24";
    let count_day1 = || {
        let db = db.clone();
        async move {
            query(&format!(
                "SELECT count() FROM {db}.visitor_secrets WHERE day = toDate('{day1_date}')"
            ))
            .await
        }
    };
    assert_eq!(count_day1().await, "1");
    // ...and gone once day 3 begins, 48 hours after day 1 began.
    a.refresh(DAY1_10AM - 10 * 3600 + 2 * DAY).await.unwrap();
    assert_eq!(count_day1().await, "0");
    assert_eq!(
        query(&format!("SELECT count() FROM {db}.visitor_secrets")).await,
        "2",
        "day 2 and day 3 remain"
    );
}

#[tokio::test]
async fn stored_rows_of_two_days_cannot_be_linked() {
    use tally::ingest::hit::{self, RequestContext};
    use tally::ingest::params::Params;

    let (db, client) = migrated_db().await;
    let mut cfg: Config = Config::from_table(
        r#"
[[sites]]
id = 1
name = "x"
domains = ["example.org"]
"#
        .parse()
        .unwrap(),
    )
    .unwrap();
    cfg.clickhouse.database = db;
    let metrics = Arc::new(tally::metrics::Metrics::new());
    let (sink, _writer) = tally::sink::start(client.clone(), &cfg.sink, metrics.clone());
    let keys = keys();
    let secrets = SecretStore::new(client, keys.clone());
    let app = tally::state::App::new(cfg, metrics, sink, keys).unwrap();

    // The same browser, with the tracker's own visitor cookie, on two days.
    let query = "idsite=1&rec=1&url=https%3A%2F%2Fexample.org%2F&_id=0123456789abcdef&_idvc=2&_viewts=1795400000";
    let event_on = |now: u32| {
        let mut p = Params::default();
        p.extend(query.as_bytes(), &app.config.limits);
        let ctx = RequestContext {
            ip: TruncatedIp::new("203.0.113.77".parse().unwrap(), 2),
            user_agent: "Mozilla/5.0 Firefox/140.0",
            accept_language: "de",
            referer: "",
            model_header: None,
            now,
            authenticated: false,
            hints: Default::default(),
            location: None,
        };
        let (event, hit) = hit::build(&p, &ctx, &app).unwrap().unwrap();
        tally::pipeline::run(event, &hit, &app).unwrap().unwrap()
    };
    secrets.refresh(DAY1_10AM).await.unwrap();
    let first = event_on(DAY1_10AM);
    let again = event_on(DAY1_10AM + 60);
    assert_eq!(
        first.visitor_key, again.visitor_key,
        "same visitor, same day"
    );
    secrets.refresh(DAY1_10AM + DAY).await.unwrap();
    let next_day = event_on(DAY1_10AM + DAY);
    assert_ne!(first.visitor_key, next_day.visitor_key);

    // No stored field carries the cookie id or a previous-visit timestamp that would match
    // the other day's rows: the rows differ only where any two visitors' rows would.
    for e in [&first, &next_day] {
        let row = serde_json::to_string(e).unwrap();
        assert!(!row.to_lowercase().contains("0123456789abcdef"), "{row}");
        assert!(!row.contains("1795400000"), "{row}");
    }
    assert_eq!(first.days_since_last_visit, Some(1));
    assert_eq!(next_day.days_since_last_visit, Some(2));
    let mut a = first.clone();
    let mut b = next_day.clone();
    for e in [&mut a, &mut b] {
        e.ts = 0;
        e.visitor_key = 0;
        e.days_since_last_visit = None;
    }
    assert_eq!(a, b, "no other per-visitor field may link the two days");
}

#[tokio::test]
async fn two_collectors_on_one_database_count_one_visitor() {
    let db = unique_name("shared");
    let trusted = "[privacy]\ntrusted_proxies = [\"127.0.0.0/8\"]\n";
    let one = Collector::start_shared(&db, trusted);
    let two = Collector::start_shared(&db, trusted);
    for (c, title) in [(&one, "via-one"), (&two, "via-two")] {
        let r = http()
            .get(c.url("/matomo.php"))
            .query(&[
                ("idsite", "1"),
                ("rec", "1"),
                ("url", "https://example.org/"),
                ("action_name", title),
                ("send_image", "0"),
            ])
            .header("X-Forwarded-For", "198.51.100.7")
            .header("User-Agent", "Mozilla/5.0 Shared")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    }
    assert_eq!(one.wait_for("1", 2).await, 2);
    assert_eq!(
        query(&format!(
            "SELECT uniqExact(visitor_key), count() FROM {db}.events"
        ))
        .await,
        "1\t2"
    );
}
