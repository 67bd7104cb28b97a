//! Data-subject requests with the real binary on a real ClickHouse: two visitors with the
//! tracker's `_id` on the same days; `tally subject export` gives exactly one visitor's rows of
//! the days that can still be linked, `tally subject erase` removes exactly those (the other
//! visitor's rows untouched), verifies, and recomputes the days' aggregates (one visitor fewer).
//! Rows of a day whose secret is gone are neither exported nor erased, and the command says so.

mod common;

use chrono_tz::Tz;
use common::Collector;
use common::reports::{
    Hit, Visitor, What, away_from_midnight, send, settings, tally, tally_command, wait_stored,
};
use serde_json::Value;

const ALICE: Visitor = Visitor {
    id: 0x0a11_ce00_0000_0001,
    ua: common::reports::FIREFOX,
    ip: "203.0.113.10",
};

const BOB: Visitor = Visitor {
    id: 0x0b0b_0000_0000_0002,
    ua: common::reports::FIREFOX,
    ip: "203.0.113.10",
};

fn berlin() -> Tz {
    "Europe/Berlin".parse().unwrap()
}

fn page(visitor: Visitor, at: u32, path: &'static str) -> Hit {
    Hit {
        site: 1,
        host: "example.org",
        visitor,
        at,
        what: What::Page(path),
    }
}

async fn sql(db: &str, q: &str) -> String {
    common::query(&q.replace("DB.", &format!("{db}."))).await
}

/// `(visitors, pageviews)` of site 1's local `date` in `agg_daily`.
async fn daily(db: &str, date: &str) -> (u64, u64) {
    let row = sql(
        db,
        &format!(
            "SELECT visitors, pageviews FROM DB.agg_daily WHERE site_id = 1 AND day = '{date}'"
        ),
    )
    .await;
    let mut it = row.split('\t').map(|v| v.parse::<u64>().unwrap());
    (it.next().unwrap(), it.next().unwrap())
}

#[tokio::test]
async fn export_and_erase_one_visitor_of_two() {
    let tz = berlin();
    // Hits "today" go into the last quarter hour; keep today and yesterday what they are.
    away_from_midnight(&[tz], 1200, 900).await;
    let c = Collector::start_raw(&settings(
        "[[sites]]\nid = 1\nname = \"Example\"\ndomains = [\"example.org\"]\n\
         timezone = \"Europe/Berlin\"\nvisitor_cookie = true\n",
    ));
    let now = tally::time::now_unix();
    let today = tally::time::local_date(tz, now);
    let yesterday = tally::time::local_date(tz, now - 86_400);
    let t = now - 600;
    let y = now - 86_400;
    // Three days ago: the secret of that day is gone (an ephemeral one keyed these hits).
    let old = now - 3 * 86_400;
    let hits = vec![
        page(ALICE, t, "/a/1"),
        page(ALICE, t + 60, "/a/2"),
        page(ALICE, t + 120, "/a/3"),
        page(BOB, t + 30, "/b/1"),
        page(BOB, t + 90, "/b/2"),
        page(ALICE, y, "/a/4"),
        page(ALICE, y + 60, "/a/5"),
        page(BOB, y + 30, "/b/3"),
        page(ALICE, old, "/a/old"),
        page(BOB, old + 60, "/b/old"),
    ];
    send(&c, &hits).await;
    wait_stored(&c.db, hits.len() as u64).await;
    tally(&c, &["rollup", "--site", "1"]).await;
    assert_eq!(daily(&c.db, &today.to_string()).await, (2, 5));
    assert_eq!(daily(&c.db, &yesterday.to_string()).await, (2, 3));

    // Export: exactly Alice's rows of today and yesterday, nothing of Bob's, not the old day.
    let out = tally(
        &c,
        &[
            "subject",
            "export",
            "--site",
            "1",
            "--visitor-id",
            "0a11ce0000000001",
        ],
    )
    .await;
    let doc: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(doc["visitor_id"], "0a11ce0000000001");
    let days = doc["days"].as_array().unwrap();
    let dates: Vec<&str> = days.iter().map(|d| d["date"].as_str().unwrap()).collect();
    assert_eq!(dates, [yesterday.to_string(), today.to_string()]);
    let urls = |d: &Value| -> Vec<String> {
        d["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["url"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        urls(&days[0]),
        ["https://example.org/a/4", "https://example.org/a/5"]
    );
    assert_eq!(
        urls(&days[1]),
        [
            "https://example.org/a/1",
            "https://example.org/a/2",
            "https://example.org/a/3"
        ]
    );
    for d in days {
        let visits = d["visits"].as_array().unwrap();
        assert_eq!(visits.len(), 1, "{d}");
        assert!(
            visits[0]["entry_page"].as_str().unwrap().starts_with("/a/"),
            "{d}"
        );
        // Every column of the row is there, as stored.
        assert!(d["events"][0].get("ip").is_some() && d["events"][0].get("browser").is_some());
    }
    let note = doc["not_linkable"].as_str().unwrap();
    assert!(note.contains("2 raw events of site 1"), "{note}");

    // Bob's export has his rows only.
    let bob: Value = serde_json::from_str(
        &tally(
            &c,
            &[
                "subject",
                "export",
                "--site",
                "1",
                "--visitor-id",
                "0b0b000000000002",
            ],
        )
        .await,
    )
    .unwrap();
    let bob_urls: Vec<String> = bob["days"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(urls)
        .collect();
    assert_eq!(bob_urls.len(), 3, "{bob_urls:?}");
    assert!(bob_urls.iter().all(|u| u.contains("/b/")), "{bob_urls:?}");

    // Erase Alice.
    let before_bob = sql(
        &c.db,
        "SELECT count() FROM DB.events WHERE url LIKE '%/b/%'",
    )
    .await;
    let out = tally(
        &c,
        &[
            "subject",
            "erase",
            "--site",
            "1",
            "--visitor-id",
            "0A11CE0000000001",
        ],
    )
    .await;
    assert!(
        out.contains(&format!(
            "{today}: erased 3 event row(s) and 1 visit row(s)"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "{yesterday}: erased 2 event row(s) and 1 visit row(s)"
        )),
        "{out}"
    );
    assert!(
        out.contains("verified: no row of this visitor is left"),
        "{out}"
    );
    assert!(out.contains("2 raw events of site 1"), "{out}");
    assert_eq!(
        sql(&c.db, "SELECT url FROM DB.events WHERE url LIKE '%/a/%'").await,
        "https://example.org/a/old",
        "only the row that can no longer be linked is left"
    );
    assert_eq!(
        sql(
            &c.db,
            "SELECT count() FROM DB.events WHERE url LIKE '%/b/%'"
        )
        .await,
        before_bob
    );
    assert_eq!(
        sql(&c.db, &format!("SELECT count() FROM DB.visits WHERE entry_page LIKE '/a/%' AND day >= '{yesterday}'")).await,
        "0"
    );
    assert_eq!(
        sql(&c.db, &format!("SELECT count() FROM DB.visits WHERE entry_page LIKE '/b/%' AND day >= '{yesterday}'")).await,
        "2"
    );
    // The days' aggregates no longer count her: one visitor fewer, her page views gone.
    assert_eq!(daily(&c.db, &today.to_string()).await, (1, 2));
    assert_eq!(daily(&c.db, &yesterday.to_string()).await, (1, 1));
    assert_eq!(
        sql(&c.db, &format!("SELECT count() FROM DB.agg_breakdown WHERE dimension = 'event:page' AND value LIKE '/a/%' AND day >= '{yesterday}'")).await,
        "0"
    );

    // Again: nothing left to erase; her export is empty.
    let out = tally(
        &c,
        &[
            "subject",
            "erase",
            "--site",
            "1",
            "--visitor-id",
            "0a11ce0000000001",
        ],
    )
    .await;
    assert!(out.contains("nothing stored for this visitor"), "{out}");
    let doc: Value = serde_json::from_str(
        &tally(
            &c,
            &[
                "subject",
                "export",
                "--site",
                "1",
                "--visitor-id",
                "0a11ce0000000001",
            ],
        )
        .await,
    )
    .unwrap();
    assert!(
        doc["days"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| urls(d).is_empty())
    );

    // A malformed id or an unknown site is refused, with a reason.
    for args in [
        ["subject", "export", "--site", "1", "--visitor-id", "alice"],
        [
            "subject",
            "erase",
            "--site",
            "9",
            "--visitor-id",
            "0a11ce0000000001",
        ],
    ] {
        let out = tally_command(&c, &args).output().await.unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("not a visitor id") || err.contains("site 9 is not configured"),
            "{err}"
        );
    }
}
