//! The promise "two bytes of your IP address are masked", checked from the outside: after hits
//! arrive by every route an address can take, no column of any table, and no log line, holds
//! a full client address.

mod common;

use common::{Collector, clickhouse, http, query};

const TOKEN: &str = "audit-token-0123456789";

/// Full addresses sent in this test, each by a different route.
const FULL_IPS: &[&str] = &[
    "203.0.113.77",               // X-Forwarded-For from a trusted proxy
    "198.51.100.23",              // Forwarded (RFC 7239)
    "2001:db8:85a3:1234:5678::9", // IPv6 via X-Forwarded-For
    "192.0.2.155",                // cip with token_auth
    "100.64.33.44",               // cip in an authenticated bulk request
    "::ffff:203.0.113.99",        // IPv4-mapped IPv6
];

#[tokio::test]
async fn no_full_client_address_is_stored_or_logged() {
    let c = Collector::start(&format!(
        "token_auth = \"{TOKEN}\"\n[privacy]\ntrusted_proxies = [\"127.0.0.0/8\"]\n"
    ));
    let send = |header: &'static str, value: String, title: &'static str| {
        let url = c.url("/matomo.php");
        async move {
            let r = http()
                .get(url)
                .query(&[
                    ("idsite", "1"),
                    ("rec", "1"),
                    ("url", "https://example.org/audit"),
                    ("action_name", title),
                    ("send_image", "0"),
                ])
                .header(header, value)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 204);
        }
    };
    send("X-Forwarded-For", FULL_IPS[0].into(), "xff").await;
    send("Forwarded", format!("for={}", FULL_IPS[1]), "forwarded").await;
    send("X-Forwarded-For", FULL_IPS[2].into(), "ipv6").await;
    send("X-Forwarded-For", FULL_IPS[5].into(), "mapped").await;
    let r = http()
        .get(c.url("/matomo.php"))
        .query(&[
            ("idsite", "1"),
            ("rec", "1"),
            ("url", "https://example.org/audit"),
            ("action_name", "cip"),
            ("cip", FULL_IPS[3]),
            ("token_auth", TOKEN),
            ("send_image", "0"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let bulk = serde_json::json!({
        "token_auth": TOKEN,
        "requests": [format!(
            "?idsite=1&rec=1&url=https%3A%2F%2Fexample.org%2Faudit&action_name=bulk&cip={}",
            FULL_IPS[4]
        )],
    });
    let r = http()
        .post(c.url("/matomo.php"))
        .body(bulk.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(c.wait_for("1", 6).await, 6);

    // The truncated forms are what is stored...
    let ips = query(&format!(
        "SELECT title, ip FROM {}.events ORDER BY title",
        c.db
    ))
    .await;
    assert_eq!(
        ips,
        "bulk\t100.64.0.0\ncip\t192.0.0.0\nforwarded\t198.51.0.0\nipv6\t2001:db8:85a3::\nmapped\t203.0.0.0\nxff\t203.0.0.0"
    );

    // ...and no text column of any table on the server holds a full one.
    let columns = query(
        "SELECT database, table, name FROM system.columns \
         WHERE database NOT IN ('system') AND type LIKE '%String%'",
    )
    .await;
    let mut checked = 0;
    for line in columns.lines() {
        let mut f = line.split('\t');
        let (db, table, column) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
        for ip in FULL_IPS {
            let bare = ip.trim_start_matches("::ffff:");
            let hits = query(&format!(
                "SELECT count() FROM {db}.{table} WHERE position(toString(`{column}`), '{bare}') > 0"
            ))
            .await;
            assert_eq!(hits, "0", "{db}.{table}.{column} contains {bare}");
        }
        checked += 1;
    }
    assert!(
        checked >= 10,
        "expected to audit the events table's text columns, audited {checked}"
    );

    // Nor does the collector's own log, at debug level.
    let logs = c.logs();
    assert!(logs.contains("tally listening"), "log capture works");
    for ip in FULL_IPS {
        assert!(
            !logs.contains(ip.trim_start_matches("::ffff:")),
            "log contains {ip}"
        );
    }
    let _ = clickhouse();
}
