//! Visitor counting without persistent identifiers: one secret per time zone and local day in
//! ClickHouse, shared by collectors, deleted 48 hours after its day began in its zone; keys
//! that change at each site's local midnight and cannot link two days.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono_tz::Tz;
use common::{Collector, clickhouse, http, query, unique_name};
use serde_json::json;
use tally::config::Config;
use tally::enrich::secrets::SecretStore;
use tally::enrich::visitor::{Secret, VisitorInput, VisitorKeys};
use tally::privacy::TruncatedIp;
use tally::time::{local_date, start_of_day};

/// Counts the allocations of each thread, so a test can check that a code path makes none.
struct CountingAlloc;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

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

fn berlin() -> Tz {
    "Europe/Berlin".parse().unwrap()
}

/// Site 1 in Berlin, site 2 in UTC.
fn keys() -> Arc<VisitorKeys> {
    Arc::new(VisitorKeys::new([(1, berlin()), (2, chrono_tz::UTC)]))
}

fn visitor(site_id: u32) -> VisitorInput<'static> {
    VisitorInput {
        site_id,
        ip: TruncatedIp::new("203.0.113.77".parse().unwrap(), 2),
        user_agent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0",
        accept_language: "de",
        client_id: None,
    }
}

/// 2026-11-24 23:30 UTC, a Tuesday: already the 25th in Berlin.
const LATE_24TH: u32 = 1_795_563_000;
const HOUR: u32 = 3600;
const DAY: u32 = 86_400;

/// `zone  date  expires` of every stored secret, sorted.
async fn stored(db: &str) -> Vec<String> {
    query(&format!(
        "SELECT zone, day, expires, count() FROM {db}.day_secrets \
         GROUP BY zone, day, expires ORDER BY zone, day"
    ))
    .await
    .lines()
    .map(str::to_string)
    .collect()
}

/// The row `stored` lists for one secret of `zone`'s `date`: its expiry is the day's first
/// instant in that zone plus 48 hours.
fn row(tz: Tz, date: &str) -> String {
    let expires = start_of_day(tz, date.parse().unwrap()) + 48 * HOUR;
    format!("{}\t{date}\t{expires}\t1", tz.name())
}

#[tokio::test]
async fn one_secret_per_zone_and_day_shared_and_deleted_48_hours_after_its_midnight() {
    let (db, client) = migrated_db().await;
    // Two collectors on one database.
    let (keys_a, keys_b) = (keys(), keys());
    let a = SecretStore::new(client.clone(), keys_a.clone());
    let b = SecretStore::new(client.clone(), keys_b.clone());
    a.refresh(LATE_24TH).await.unwrap();
    b.refresh(LATE_24TH + 5).await.unwrap();
    for site in [1, 2] {
        assert_eq!(
            keys_a.key(LATE_24TH, &visitor(site)),
            keys_b.key(LATE_24TH, &visitor(site)),
            "collectors sharing a database must agree"
        );
    }
    // Yesterday, today and tomorrow of each zone, once each although both collectors looked;
    // each expiring 48 hours after the day began in its own zone.
    let (b24, b25, b26) = (
        row(berlin(), "2026-11-24"),
        row(berlin(), "2026-11-25"),
        row(berlin(), "2026-11-26"),
    );
    let utc = chrono_tz::UTC;
    let (u23, u24, u25) = (
        row(utc, "2026-11-23"),
        row(utc, "2026-11-24"),
        row(utc, "2026-11-25"),
    );
    assert_eq!(
        stored(&db).await,
        [b24.as_str(), &b25, &b26, &u23, &u24, &u25],
        "the second collector reuses the first one's secrets"
    );
    // Nothing was left of the UTC-day table of schema 2.
    assert_eq!(query(&format!("EXISTS {db}.visitor_secrets")).await, "0");

    // The key follows the hit's local day, yesterday's included (late hits).
    let key = |keys: &VisitorKeys, site: u32, at: u32| keys.key(at, &visitor(site)).unwrap();
    let utc_midnight = LATE_24TH + HOUR / 2;
    let berlin_midnight = LATE_24TH - HOUR / 2;
    let berlin_25th = key(&keys_a, 1, berlin_midnight);
    assert_eq!(berlin_25th, key(&keys_a, 1, utc_midnight + HOUR));
    assert_ne!(berlin_25th, key(&keys_a, 1, berlin_midnight - 1));
    let utc_24th = key(&keys_a, 2, berlin_midnight);
    assert_eq!(utc_24th, key(&keys_a, 2, utc_midnight - 1));
    assert_ne!(utc_24th, key(&keys_a, 2, utc_midnight));

    // Berlin's 24th began at 23:00 UTC on the 23rd: its secret is there one second before
    // 23:00 UTC on the 25th and gone at that second, while UTC's 24th, which began an hour
    // later, stays until 00:00 UTC on the 26th.
    let berlin_24th_gone = start_of_day(berlin(), "2026-11-24".parse().unwrap()) + 48 * HOUR;
    a.refresh(berlin_24th_gone - 1).await.unwrap();
    assert!(stored(&db).await.contains(&b24));
    a.refresh(berlin_24th_gone).await.unwrap();
    let now_stored = stored(&db).await;
    assert!(!now_stored.contains(&b24), "{now_stored:?}");
    assert!(now_stored.contains(&u24), "{now_stored:?}");
    // Berlin's 25th is now yesterday and UTC's 24th too: their late hits keep their keys.
    assert_eq!(berlin_25th, key(&keys_a, 1, utc_midnight + HOUR));
    assert_eq!(utc_24th, key(&keys_a, 2, utc_midnight - 1));

    a.refresh(utc_midnight + DAY).await.unwrap();
    let now_stored = stored(&db).await;
    assert!(!now_stored.contains(&u24), "{now_stored:?}");
    // Berlin's 25th stays until 23:00 UTC on the 26th; the new tomorrows are there.
    assert!(now_stored.contains(&b25), "{now_stored:?}");
    assert!(now_stored.contains(&row(berlin(), "2026-11-27")));
    assert!(now_stored.contains(&row(utc, "2026-11-26")));
    // And the collector no longer holds what the database deleted.
    assert!(keys_a.held().iter().all(|d| d.expires > utc_midnight + DAY));
    assert_ne!(utc_24th, key(&keys_a, 2, utc_midnight - 1));
}

/// Collectors that raced to create a day's secret all settle on the earliest created, ties
/// broken by the secret; a row that is not a secret tally wrote is passed over.
#[tokio::test]
async fn collectors_agree_on_the_earliest_secret_of_a_day() {
    let (db, client) = migrated_db().await;
    let (keys_a, keys_b) = (keys(), keys());
    let a = SecretStore::new(client.clone(), keys_a.clone());
    let b = SecretStore::new(client.clone(), keys_b.clone());
    a.refresh(LATE_24TH).await.unwrap();
    let first = keys_a.key(LATE_24TH, &visitor(1)).unwrap();
    // Berlin's 25th: what other collectors wrote, earlier and later than `a`.
    let expires = start_of_day(berlin(), "2026-11-25".parse().unwrap()) + 48 * HOUR;
    let hex = |last: u8| {
        let mut bytes = [0u8; 32];
        bytes[31] = last;
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let insert = |secret: String, created: u32| {
        let db = db.clone();
        async move {
            query(&format!(
                "INSERT INTO {db}.day_secrets VALUES \
                 ('Europe/Berlin', toDate('2026-11-25'), '{secret}', {created}, {expires})"
            ))
            .await;
        }
    };
    insert(hex(2), LATE_24TH - 100).await;
    insert(hex(1), LATE_24TH - 100).await;
    insert(hex(0), LATE_24TH + 100).await;
    insert("not hex".into(), LATE_24TH - 200).await;
    b.refresh(LATE_24TH + 5).await.unwrap();
    a.refresh(LATE_24TH + 60).await.unwrap();
    let expected = {
        let mut bytes = [0u8; 32];
        bytes[31] = 1;
        tally::enrich::visitor::key_with(&Secret::new(&bytes), &visitor(1))
    };
    assert_eq!(keys_a.key(LATE_24TH, &visitor(1)), Ok(expected));
    assert_eq!(keys_b.key(LATE_24TH, &visitor(1)), Ok(expected));
    assert_ne!(first, expected);
    // No collector added a secret for a day that had one.
    assert_eq!(
        query(&format!(
            "SELECT count() FROM {db}.day_secrets WHERE zone = 'Europe/Berlin' AND day = '2026-11-25'"
        ))
        .await,
        "5"
    );
}

#[test]
fn keying_a_hit_of_a_held_day_allocates_nothing() {
    let keys = VisitorKeys::new([(1, berlin()), (2, chrono_tz::UTC)]);
    let now = LATE_24TH;
    keys.install(
        now,
        keys.held_days(now)
            .into_iter()
            .map(|d| (d, Secret::generate())),
    );
    let input = visitor(1);
    let mut sum = 0u64;
    let before = allocations();
    for i in 0..1000 {
        let at = now - DAY + i * 60;
        let (v, o) = keys
            .with_secret(1, at, |s| {
                (
                    tally::enrich::visitor::key_with(s, &input),
                    tally::enrich::visitor::order_key_with(s, 1, "order-1"),
                )
            })
            .unwrap();
        sum = sum.wrapping_add(v ^ o);
    }
    assert_eq!(allocations() - before, 0, "allocations on the hot path");
    // The counter does count: a day without a stored secret makes an ephemeral one.
    let before = allocations();
    sum = sum.wrapping_add(keys.key(now - 5 * DAY, &input).unwrap());
    assert!(allocations() > before);
    assert_ne!(sum, 0);
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

/// Through a real collector over HTTP: the same browser, with the tracker's visitor cookie and
/// identical parameters, visits yesterday and today; a different person of the same /16,
/// browser and language visits today.
#[tokio::test]
async fn stored_rows_of_two_days_cannot_be_linked() {
    const TOKEN: &str = "link-token-0123456789";
    const COOKIE_ID: &str = "0123456789abcdef";
    let extra =
        format!("token_auth = \"{TOKEN}\"\n[privacy]\ntrusted_proxies = [\"127.0.0.0/8\"]\n");
    let c = Collector::start(&extra);
    let now = tally::time::now_unix();
    // Last seen three days ago: `days_since_last_visit` is 3 for both people today.
    let viewts_a = (now - 3 * DAY - 400).to_string();
    let viewts_b = (now - 3 * DAY - 2000).to_string();
    let send = |xff: &'static str, id: &'static str, viewts: &str, at: u32| {
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
    // The site is in UTC: `now - DAY` is yesterday, `now - 300` today.
    let (t1, t2) = (now - DAY, now - 300);
    send("203.0.113.77", COOKIE_ID, &viewts_a, t1).await;
    // Today: the same browser twice, then someone else; told apart by their times.
    send("203.0.113.77", COOKIE_ID, &viewts_a, t2).await;
    send("203.0.113.77", COOKIE_ID, &viewts_a, t2 + 60).await;
    send("203.0.45.6", "fedcba9876543210", &viewts_b, t2 + 120).await;
    assert_eq!(c.wait_for("1", 4).await, 4);
    let all = rows(&c.db).await;
    let (a1, a2, a2_again, b2) = (&all[0], &all[1], &all[2], &all[3]);

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
    for row in [a1, a2] {
        let text = serde_json::to_string(row).unwrap().to_lowercase();
        for secret in [COOKIE_ID, cookie_decimal.as_str(), viewts_a.as_str()] {
            assert!(!text.contains(secret), "{secret} stored: {text}");
        }
    }
    // Every column the two days' rows agree on, the other person's row agrees on as well: what
    // ties day 1 to day 2 ties any visitor of that /16, browser and language to them.
    assert!(a1.len() >= 40, "columns: {:?}", a1.keys());
    let mut shared = Vec::new();
    for (column, value) in a1 {
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

/// Through a real collector: site 1 in Berlin, site 2 in UTC; one visitor (same address,
/// browser and language, no cookie) on both, at times sent with `cdt`. Around 00:00 UTC the
/// Berlin site keeps one key and the UTC site gets two; around Berlin's midnight it is the other
/// way round. A day older than its secret is keyed with a secret never stored.
#[tokio::test]
async fn keys_change_at_each_sites_local_midnight() {
    const TOKEN: &str = "zone-token-0123456789";
    // Both edges need a minute of the new day behind them: wait out the rare minute after
    // either midnight rather than send a hit from the future.
    let (utc_mid, berlin_mid) = loop {
        let now = tally::time::now_unix();
        let utc_mid = now - now % DAY;
        let berlin_mid = start_of_day(berlin(), local_date(berlin(), now));
        if now - utc_mid >= 70 && now - berlin_mid >= 70 {
            break (utc_mid, berlin_mid);
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    };
    let extra = format!(
        "token_auth = \"{TOKEN}\"\n[privacy]\ntrusted_proxies = [\"127.0.0.0/8\"]\n\
         [[sites]]\nid = 1\nname = \"Berlin\"\ndomains = [\"example.org\"]\n\
         timezone = \"Europe/Berlin\"\n\
         [[sites]]\nid = 2\nname = \"London\"\ndomains = [\"example.com\"]\n"
    );
    let c = Collector::start_raw(&extra);
    let send = |site: u32, at: u32| {
        let host = if site == 1 {
            "example.org"
        } else {
            "example.com"
        };
        let req = http()
            .get(c.url("/matomo.php"))
            .query(&[
                ("idsite", site.to_string().as_str()),
                ("rec", "1"),
                ("url", &format!("https://{host}/")),
                ("cdt", &at.to_string()),
                ("token_auth", TOKEN),
                ("send_image", "0"),
            ])
            .header("X-Forwarded-For", "203.0.113.77")
            .header(
                "User-Agent",
                "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0",
            )
            .header("Accept-Language", "de");
        async move {
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 204);
        }
    };
    let times = [utc_mid - 60, utc_mid + 60, berlin_mid - 60, berlin_mid + 60];
    for site in [1, 2] {
        for at in times {
            send(site, at).await;
        }
    }
    // An old day, as Matomo's log importer sends it: two hits of one visit in one bulk request.
    let old = tally::time::now_unix() - 4 * DAY;
    let hit = |at: u32| json!({"idsite": 1, "rec": 1, "url": "https://example.org/old", "cdt": at.to_string()});
    let r = http()
        .post(c.url("/matomo.php"))
        .header("X-Forwarded-For", "203.0.113.77")
        .header(
            "User-Agent",
            "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0",
        )
        .header("Accept-Language", "de")
        .body(json!({"token_auth": TOKEN, "requests": [hit(old), hit(old + 60)]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(c.wait_for("1", 10).await, 10);

    let key_of: HashMap<(u32, u32), String> = query(&format!(
        "SELECT site_id, toUInt32(ts), visitor_key FROM {}.events",
        c.db
    ))
    .await
    .lines()
    .map(|l| {
        let f: Vec<&str> = l.split('\t').collect();
        (
            (f[0].parse().unwrap(), f[1].parse().unwrap()),
            f[2].to_string(),
        )
    })
    .collect();
    let key = |site: u32, at: u32| key_of[&(site, at)].clone();
    // Berlin: 00:00 UTC is 01:00 or 02:00 local, inside one local day.
    assert_eq!(
        key(1, utc_mid - 60),
        key(1, utc_mid + 60),
        "the Berlin site split a local day at 00:00 UTC"
    );
    assert_ne!(
        key(1, berlin_mid - 60),
        key(1, berlin_mid + 60),
        "the Berlin site linked two local days"
    );
    // UTC: 00:00 UTC is its midnight; Berlin's midnight is 22:00 or 23:00 of one UTC day.
    assert_ne!(key(2, utc_mid - 60), key(2, utc_mid + 60));
    assert_eq!(key(2, berlin_mid - 60), key(2, berlin_mid + 60));

    // Every edge hit used a stored secret of its zone's yesterday or today: those are stored,
    // with the day's own expiry, and so are tomorrow's.
    let rows = stored(&c.db).await;
    for (tz, at) in [
        (berlin(), berlin_mid - 60),
        (berlin(), berlin_mid + 60),
        (berlin(), utc_mid),
        (chrono_tz::UTC, utc_mid - 60),
        (chrono_tz::UTC, utc_mid + 60),
        (chrono_tz::UTC, berlin_mid),
        (berlin(), berlin_mid + DAY),
        (chrono_tz::UTC, utc_mid + DAY),
    ] {
        let date = local_date(tz, at).to_string();
        assert!(rows.contains(&row(tz, &date)), "{date} {tz}: {rows:?}");
    }
    // The old day: keyed consistently within the import, unlike any other day, and its
    // secret was never stored.
    assert_eq!(key(1, old), key(1, old + 60));
    for at in times {
        assert_ne!(key(1, old), key(1, at));
    }
    let old_date = local_date(berlin(), old).to_string();
    assert!(
        !rows.iter().any(|r| r.contains(&old_date)),
        "{old_date} stored: {rows:?}"
    );
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
