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

/// One stored row as JSON, by column name.
type Row = serde_json::Map<String, serde_json::Value>;

/// The rows of `db.events`, oldest first.
async fn rows(db: &str) -> Vec<Row> {
    query(&format!(
        "SELECT * FROM {db}.events ORDER BY ts FORMAT JSONEachRow"
    ))
    .await
    .lines()
    .map(|l| serde_json::from_str(l).unwrap())
    .collect()
}

/// Through real collectors over HTTP. Each collector on a database of its own has a secret of
/// its own, as one database has on two days (the rotation itself is tested above): `day1` keys
/// the first day's hit, `day2` the second day's. The same browser, with the tracker's visitor
/// cookie and identical parameters, visits on both days; a different person of the same /16,
/// browser and language visits on day 2.
#[tokio::test]
async fn stored_rows_of_two_days_cannot_be_linked() {
    const TOKEN: &str = "link-token-0123456789";
    const COOKIE_ID: &str = "0123456789abcdef";
    let extra =
        format!("token_auth = \"{TOKEN}\"\n[privacy]\ntrusted_proxies = [\"127.0.0.0/8\"]\n");
    let day1 = Collector::start(&extra);
    let day2 = Collector::start(&extra);
    let now = tally::time::now_unix();
    // Last seen three days ago: `days_since_last_visit` is 3 for both people.
    let viewts_a = (now - 3 * DAY - 100).to_string();
    let viewts_b = (now - 3 * DAY - 2000).to_string();
    let send = |c: &Collector, xff: &'static str, id: &'static str, viewts: &str, at: u32| {
        let req = http()
            .get(c.url("/matomo.php"))
            .query(&[
                ("idsite", "1"),
                ("rec", "1"),
                ("url", "https://example.org/"),
                ("action_name", "Home"),
                ("res", "1280x720"),
                ("_id", id),
                ("_idvc", "2"),
                ("_viewts", viewts),
                ("cdt", &at.to_string()),
                ("token_auth", TOKEN),
                ("send_image", "0"),
            ])
            .header("X-Forwarded-For", xff)
            .header("Accept-Language", "de");
        async move {
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 204);
        }
    };
    let (t1, t2) = (now - 2 * DAY, now - DAY);
    send(&day1, "203.0.113.77", COOKIE_ID, &viewts_a, t1).await;
    // Day 2: the same browser twice, then someone else; told apart by their times.
    send(&day2, "203.0.113.77", COOKIE_ID, &viewts_a, t2).await;
    send(&day2, "203.0.113.77", COOKIE_ID, &viewts_a, t2 + 60).await;
    send(&day2, "203.0.45.6", "fedcba9876543210", &viewts_b, t2 + 120).await;
    assert_eq!(day1.wait_for("1", 1).await, 1);
    assert_eq!(day2.wait_for("1", 3).await, 3);
    let a1 = rows(&day1.db).await.remove(0);
    let day2_rows = rows(&day2.db).await;
    let (a2, a2_again, b2) = (&day2_rows[0], &day2_rows[1], &day2_rows[2]);

    // The key is per visitor within a day (so the comparison below means something)...
    assert_eq!(
        a2["visitor_key"], a2_again["visitor_key"],
        "same visitor, same day"
    );
    assert_ne!(
        a2["visitor_key"], b2["visitor_key"],
        "two visitors, one key"
    );
    // ...and differs between days.
    assert_ne!(
        a1["visitor_key"], a2["visitor_key"],
        "the key links the two days"
    );

    // Nothing stored carries the cookie id or the previous-visit timestamp.
    let cookie_decimal = u64::from_str_radix(COOKIE_ID, 16).unwrap().to_string();
    for row in [&a1, a2] {
        let text = serde_json::to_string(row).unwrap().to_lowercase();
        for secret in [COOKIE_ID, cookie_decimal.as_str(), viewts_a.as_str()] {
            assert!(!text.contains(secret), "{secret} stored: {text}");
        }
    }
    // Every column the two days' rows agree on, the other person's row agrees on as well: what
    // ties day 1 to day 2 ties any visitor of that /16, browser and language to them.
    assert!(a1.len() >= 40, "columns: {:?}", a1.keys());
    let mut shared = Vec::new();
    for (column, value) in &a1 {
        if column == "ts" || a2[column] != *value {
            continue;
        }
        assert_eq!(
            b2[column], *value,
            "column {column} links the two days' rows of one visitor"
        );
        shared.push(column.as_str());
    }
    // The comparison ran over real data: page, address and browser are what all three share.
    for column in ["url", "ip", "browser", "lang"] {
        assert!(shared.contains(&column), "{column} not shared: {shared:?}");
    }
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
