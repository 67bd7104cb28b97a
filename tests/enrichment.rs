//! Enrichment through `tally serve`: location, device, referrer, campaign, URL hygiene, bots
//! and spam, stored in ClickHouse.

mod common;

use common::{Collector, http, query};

const CHROME_WIN: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

fn geo_db(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/geo")
        .join(name);
    assert!(
        path.is_file(),
        "missing {}: run tests/fixtures/fetch-geo.sh first",
        path.display()
    );
    path.display().to_string()
}

fn config(extra: &str, db: &str, full_ip: bool) -> String {
    format!(
        "[privacy]\ntrusted_proxies = [\"127.0.0.0/8\"]\nsensitive_params = [\"internal_ref\"]\n{extra}\n\
         [geo]\ndatabase = \"{}\"\nuse_full_ip = {full_ip}\n",
        geo_db(db)
    )
}

async fn send(c: &Collector, params: &[(&str, &str)], headers: &[(&str, &str)]) {
    let mut p = vec![("idsite", "1"), ("rec", "1"), ("send_image", "0")];
    p.extend_from_slice(params);
    let mut req = http().get(c.url("/matomo.php")).query(&p);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 204);
}

#[tokio::test]
async fn hits_are_stored_with_every_enriched_field() {
    let c = Collector::start(&config("", "GeoIP2-City-Test.mmdb", true));
    send(
        &c,
        &[
            ("url", "https://www.example.org/news?utm_campaign=spring&utm_source=newsletter&utm_medium=email&sessionid=abc123&email=jane%40example.com&internal_ref=x&page=2#comments"),
            ("action_name", "Contact jane.doe@example.com"),
            ("urlref", "https://www.google.com/search?q=privacy+analytics"),
        ],
        &[
            ("User-Agent", CHROME_WIN),
            ("X-Forwarded-For", "81.2.69.142"),
            ("Sec-CH-UA-Platform", "\"Windows\""),
            ("Sec-CH-UA-Platform-Version", "\"15.0.0\""),
        ],
    )
    .await;
    send(
        &c,
        &[
            ("url", "https://example.org/"),
            ("action_name", "search-visit"),
            ("urlref", "https://duckduckgo.com/?q=tally"),
        ],
        &[("User-Agent", IPHONE), ("X-Forwarded-For", "2.125.160.216")],
    )
    .await;
    assert_eq!(c.wait_for("1", 2).await, 2);
    let row = query(&format!(
        "SELECT ip, country, city, browser, browser_version, os, os_version, device, \
         referrer_type, referrer_name, referrer_keyword, campaign_name, campaign_source, \
         campaign_medium, url, title FROM {}.events WHERE title LIKE 'Contact%'",
        c.db
    ))
    .await;
    let f: Vec<&str> = row.split('\t').collect();
    assert_eq!(f[0], "81.2.0.0", "stored address stays truncated");
    assert_eq!(
        (f[1], f[2]),
        ("GB", "London"),
        "full-address lookup in memory"
    );
    assert_eq!((f[3], f[4]), ("Chrome", "131"));
    assert_eq!(
        (f[5], f[6]),
        ("Windows", "11"),
        "client hints refine Windows 10 to 11"
    );
    assert_eq!(f[7], "desktop");
    // A campaign in the page URL wins over the search referrer, as in Matomo.
    assert_eq!(f[8], "campaign");
    assert_eq!((f[11], f[12], f[13]), ("spring", "newsletter", "email"));
    assert_eq!(
        f[14],
        "https://www.example.org/news?utm_campaign=spring&utm_source=newsletter&utm_medium=email&page=2",
        "fragment, session id, e-mail and the configured parameter are gone"
    );
    assert_eq!(f[15], "Contact [email]");

    let row = query(&format!(
        "SELECT country, city, browser, os, device, referrer_type, referrer_name, referrer_keyword \
         FROM {}.events WHERE title = 'search-visit'",
        c.db
    ))
    .await;
    assert_eq!(
        row,
        "GB\tBoxford\tMobile Safari\tiOS\tmobile\tsearch\tDuckDuckGo\ttally"
    );
    assert!(
        !c.logs().contains("81.2.69.142"),
        "the full address is not logged"
    );
}

#[tokio::test]
async fn truncated_address_lookup_is_the_default() {
    // A real, full-coverage country database: the truncated /16 still resolves a country.
    let c = Collector::start(&config("", "geo-whois-asn-country.mmdb", false));
    send(
        &c,
        &[("url", "https://example.org/"), ("action_name", "de")],
        &[
            ("User-Agent", CHROME_WIN),
            ("X-Forwarded-For", "85.214.132.117"),
        ],
    )
    .await;
    assert_eq!(c.wait_for("1", 1).await, 1);
    assert_eq!(
        query(&format!("SELECT ip, country, city FROM {}.events", c.db)).await,
        "85.214.0.0\tDE\t"
    );
}

#[tokio::test]
async fn bots_and_referrer_spam_are_dropped_and_counted() {
    let c = Collector::start(&config("", "GeoIP2-City-Test.mmdb", false));
    let page = [("url", "https://example.org/"), ("action_name", "bot")];
    send(&c, &page, &[("User-Agent", GOOGLEBOT)]).await;
    send(
        &c,
        &page,
        &[(
            "User-Agent",
            "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        )],
    )
    .await;
    // Server-side senders (`curl`) and `bots=1` are kept: see tests/matomo_requests.rs.
    send(
        &c,
        &[
            page[0],
            ("action_name", "spam"),
            ("urlref", "http://www.semalt.com/crawler"),
        ],
        &[("User-Agent", CHROME_WIN)],
    )
    .await;
    c.barrier("after-bots").await;
    assert_eq!(c.count("1").await, 1, "only the barrier is stored");
    let metrics = c.text("/metrics").await;
    assert!(
        metrics.contains("tally_hits_dropped_total{reason=\"bot\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tally_hits_dropped_total{reason=\"referrer_spam\"} 1"),
        "{metrics}"
    );

    // With keep_bots they are stored, flagged.
    let keep = Collector::start(&config("keep_bots = true", "GeoIP2-City-Test.mmdb", false));
    send(&keep, &page, &[("User-Agent", GOOGLEBOT)]).await;
    assert_eq!(keep.wait_for("1", 1).await, 1);
    assert_eq!(
        query(&format!("SELECT is_bot, device FROM {}.events", keep.db)).await,
        "1\tbot"
    );
}

#[tokio::test]
async fn click_identifiers_are_not_stored() {
    // No geolocation needed here; the config's own sensitive_params still apply.
    let c = Collector::start("[privacy]\nsensitive_params = [\"internal_ref\"]\n");
    send(
        &c,
        &[
            ("url", "https://www.example.org/landing?gclid=Cj0KCQ&utm_campaign=spring&fbclid=IwAR0&page=2&_gl=1*x*_ga*MTIz&internal_ref=7&msclkid=abc"),
            ("action_name", "landing"),
            ("urlref", "https://l.facebook.com/l.php?u=x&fbclid=IwAR1&igshid=Zm9v&h=AT0"),
        ],
        &[],
    )
    .await;
    send(
        &c,
        &[
            ("url", "https://www.example.org/landing?page=2&yclid=5"),
            ("action_name", "outlink"),
            (
                "link",
                "https://shop.example.net/p?id=9&ttclid=E.C.P&li_fat_id=abc&mc_eid=d",
            ),
        ],
        &[],
    )
    .await;
    assert_eq!(c.wait_for("1", 2).await, 2);
    let rows = query(&format!(
        "SELECT title, url, referrer, target_url, campaign_name FROM {}.events ORDER BY title",
        c.db
    ))
    .await;
    assert_eq!(
        rows,
        "landing\thttps://www.example.org/landing?utm_campaign=spring&page=2\t\
         https://l.facebook.com/l.php?u=x&h=AT0\t\tspring\n\
         outlink\thttps://www.example.org/landing?page=2\t\t\
         https://shop.example.net/p?id=9\t"
    );
}
