//! Plausible's Events API (`POST /api/event`): every field and event name its script and API
//! send, several domains at once, `text/plain` bodies, refusals that store nothing, dropped
//! hits answered like stored ones, `X-Forwarded-For` from trusted and untrusted peers, CORS.
//! Real `tally serve` processes over HTTP, a real ClickHouse.

mod common;

use common::{Collector, SITE, http, query};
use serde_json::{Value, json};

/// Sites 1 (`example.org`), 2 (`other.net`, also `example.org`'s pages: a roll-up site) and 3.
const SITES: &str = r#"
[[sites]]
id = 1
name = "Example"
domains = ["example.org", "*.example.org"]

[[sites]]
id = 2
name = "Rollup"
domains = ["rollup.net", "example.org", "*.example.org"]

[[sites]]
id = 3
name = "Elsewhere"
domains = ["elsewhere.com"]
"#;

async fn post(c: &Collector, body: &Value, headers: &[(&str, &str)]) -> (u16, String) {
    post_raw(c, body.to_string(), "text/plain", headers).await
}

async fn post_raw(
    c: &Collector,
    body: String,
    content_type: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let mut req = http()
        .post(c.url("/api/event"))
        .header("Content-Type", content_type)
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

async fn rows(c: &Collector, columns: &str, filter: &str) -> String {
    query(&format!(
        "SELECT {columns} FROM {}.events WHERE {filter} ORDER BY site_id, kind, url FORMAT TSV",
        c.db
    ))
    .await
}

#[tokio::test]
async fn every_event_name_and_field_is_stored() {
    let c = Collector::start_raw(SITES);
    let cases = [
        // The script's short names, as text/plain.
        json!({"n": "pageview", "u": "https://example.org/a?utm_source=news&token=s3cret#top",
               "d": "example.org", "r": "https://www.google.com/", "v": 25,
               "p": {"author": "ann@example.com", "section": "docs"}}),
        // The API's long names.
        json!({"name": "Signup", "url": "https://example.org/b", "domain": "example.org",
               "referrer": null, "props": {"plan": "pro", "seats": 3, "trial": true},
               "revenue": {"amount": "12.50", "currency": "EUR"}, "interactive": false}),
        json!({"n": "Outbound Link: Click", "u": "https://example.org/c", "d": "example.org",
               "p": {"url": "https://partner.net/x?sessionid=abc"}}),
        json!({"n": "File Download", "u": "https://example.org/d", "d": "example.org",
               "p": {"url": "https://example.org/files/report.pdf"}}),
        json!({"n": "engagement", "u": "https://example.org/e", "d": "example.org",
               "sd": 64, "e": 5300, "p": {"section": "docs"}}),
        // The legacy `meta` as a JSON string, and `$`.
        json!({"n": "Purchase", "u": "https://example.org/f", "d": "example.org",
               "m": "{\"sku\":\"A-1\"}", "$": {"amount": 30, "currency": "USD"}}),
    ];
    for body in &cases {
        let (status, text) = post(&c, body, &[]).await;
        assert_eq!((status, text.as_str()), (202, "ok"), "{body}");
    }
    assert_eq!(c.wait_for("site_id = 1", 6).await, 6);
    let got = rows(
        &c,
        "kind, url, referrer, referrer_type, referrer_name, campaign_source, target_url, \
         event_name, revenue, prop_keys, prop_values, scroll_depth, visitor_key != 0, ip",
        "site_id = 1",
    )
    .await;
    let want = [
        "pageview\thttps://example.org/a?utm_source=news\thttps://www.google.com/\tcampaign\tnews\tnews\t\t\t\\N\t['author','section']\t['[email]','docs']\t\\N\t1\t127.0.0.0",
        "event\thttps://example.org/b\t\tdirect\t\t\t\tSignup\t12.5\t['plan','seats','trial']\t['pro','3','true']\t\\N\t1\t127.0.0.0",
        "event\thttps://example.org/f\t\tdirect\t\t\t\tPurchase\t30\t['sku']\t['A-1']\t\\N\t1\t127.0.0.0",
        "outlink\thttps://example.org/c\t\tdirect\t\t\thttps://partner.net/x\t\t\\N\t['url']\t['https://partner.net/x']\t\\N\t1\t127.0.0.0",
        "download\thttps://example.org/d\t\tdirect\t\t\thttps://example.org/files/report.pdf\t\t\\N\t['url']\t['https://example.org/files/report.pdf']\t\\N\t1\t127.0.0.0",
        "ping\thttps://example.org/e\t\t\t\t\t\t\t\\N\t[]\t[]\t64\t1\t127.0.0.0",
    ];
    let got_lines: Vec<&str> = got.lines().collect();
    assert_eq!(got_lines.len(), want.len(), "{got}");
    for w in want {
        assert!(got_lines.contains(&w), "missing row\n{w}\nin\n{got}");
    }
    // One visitor: the same daily key for every hit of this browser.
    let keys = query(&format!(
        "SELECT uniqExact(visitor_key) FROM {}.events WHERE site_id = 1",
        c.db
    ))
    .await;
    assert_eq!(keys.trim(), "1");
}

#[tokio::test]
async fn several_domains_store_one_hit_per_site() {
    let c = Collector::start_raw(SITES);
    let body = json!({"n": "pageview", "u": "https://blog.example.org/post",
                      "d": "example.org,rollup.net,unknown.io"});
    assert_eq!(post(&c, &body, &[]).await, (202, "ok".into()));
    assert_eq!(
        c.wait_for("url = 'https://blog.example.org/post'", 2).await,
        2
    );
    let got = rows(&c, "site_id, kind", "url = 'https://blog.example.org/post'").await;
    assert_eq!(got, "1\tpageview\n2\tpageview");
    // A page on none of one named site's domains refuses the whole request: nothing stored
    // for the other site either.
    let body = json!({"n": "pageview", "u": "https://example.org/half",
                      "d": "example.org,elsewhere.com"});
    let (status, text) = post(&c, &body, &[]).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("not a domain of site 3"), "{text}");
    c.barrier("after-half").await;
    assert_eq!(c.count("url = 'https://example.org/half'").await, 0);
}

#[tokio::test]
async fn application_json_and_cors() {
    let c = Collector::start_raw(SITES);
    let body =
        json!({"name": "pageview", "url": "https://example.org/json", "domain": "example.org"});
    let r = http()
        .post(c.url("/api/event"))
        .header("Content-Type", "application/json; charset=utf-8")
        .header("Origin", "https://example.org")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://example.org"
    );
    assert_eq!(r.text().await.unwrap(), "ok");
    assert_eq!(c.wait_for("url = 'https://example.org/json'", 1).await, 1);
    // Preflight from a site's page; none for a stranger.
    let pre = |origin: &'static str| {
        http()
            .request(reqwest::Method::OPTIONS, c.url("/api/event"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "content-type")
            .send()
    };
    let r = pre("https://www.example.org").await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://www.example.org"
    );
    assert!(
        r.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    let r = pre("https://evil.test").await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn malformed_and_oversize_bodies_store_nothing() {
    let c = Collector::start_raw(&format!("[limits]\nmax_body_bytes = 4096\n{SITE}"));
    let cases: Vec<(String, &str, u16, &str)> = vec![
        ("{not json".into(), "text/plain", 400, "JSON object"),
        ("[]".into(), "text/plain", 400, "JSON object"),
        (
            json!({"u": "https://example.org/m1", "d": "example.org"}).to_string(),
            "text/plain",
            400,
            "`name` is required",
        ),
        (
            json!({"n": "pageview", "d": "example.org"}).to_string(),
            "text/plain",
            400,
            "`url` is required",
        ),
        (
            json!({"n": "pageview", "u": "https://example.org/m2", "d": ""}).to_string(),
            "text/plain",
            400,
            "`domain`",
        ),
        (
            json!({"n": "engagement", "u": "https://example.org/m3", "d": "example.org"})
                .to_string(),
            "text/plain",
            400,
            "`sd` or `e`",
        ),
        (
            json!({"n": "x", "u": "https://example.org/m4", "d": "example.org",
                   "p": {"k": "v".repeat(2001)}})
            .to_string(),
            "text/plain",
            400,
            "2000 bytes",
        ),
        (
            json!({"n": "pageview", "u": "ftp://example.org/m5", "d": "example.org"}).to_string(),
            "text/plain",
            400,
            "http(s)",
        ),
        (
            // Refused as a Matomo hit for an unknown `idsite` is.
            json!({"n": "pageview", "u": "https://example.org/m8", "d": "unknown.io"}).to_string(),
            "text/plain",
            400,
            "no configured site has the domain",
        ),
        (
            json!({"n": "pageview", "u": "https://example.org/m6", "d": "example.org"}).to_string(),
            "application/x-www-form-urlencoded",
            415,
            "JSON",
        ),
        (
            json!({"n": "pageview", "u": "https://example.org/m7", "d": "example.org",
                   "p": {"pad": "x".repeat(5000)}})
            .to_string(),
            "text/plain",
            413,
            "larger than 4096 bytes",
        ),
    ];
    for (body, ct, status, reason) in cases {
        let (got, text) = post_raw(&c, body.clone(), ct, &[]).await;
        assert_eq!(got, status, "{body:.80}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{text}"));
        let msg = v["error"].as_str().unwrap();
        assert!(!msg.contains('\n') && msg.contains(reason), "{msg}");
    }
    c.barrier("after-malformed").await;
    assert_eq!(c.count("url LIKE 'https://example.org/m%'").await, 0);
}

/// Request headers of a case.
type Headers<'a> = Vec<(&'a str, &'a str)>;

#[tokio::test]
async fn dropped_hits_are_answered_like_stored_ones() {
    let c = Collector::start(
        "[privacy]\nexclude_ips = [\"127.0.0.0/8\"]\ntrusted_proxies = [\"10.0.0.0/8\"]",
    );
    let c2 = Collector::start("");
    let pv = |path: &str| json!({"n": "pageview", "u": format!("https://example.org/{path}"), "d": "example.org"});
    // Stored, for comparison.
    let stored = post(&c2, &pv("kept"), &[]).await;
    assert_eq!(stored, (202, "ok".into()));
    let drops: Vec<(Value, Headers, &Collector)> = vec![
        (pv("dnt"), vec![("DNT", "1")], &c2),
        (pv("gpc"), vec![("Sec-GPC", "1")], &c2),
        (pv("optout"), vec![("Cookie", "tally_ignore=1")], &c2),
        (
            pv("matomo-optout"),
            vec![("Cookie", "matomo_ignore=1")],
            &c2,
        ),
        (
            pv("bot"),
            vec![(
                "User-Agent",
                "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            )],
            &c2,
        ),
        // The excluded address (the socket's own).
        (pv("excluded"), vec![], &c),
    ];
    for (body, headers, collector) in &drops {
        let got = post(collector, body, headers).await;
        assert_eq!(got, stored, "{body}");
    }
    c2.barrier("after-drops").await;
    assert_eq!(c2.count("url = 'https://example.org/kept'").await, 1);
    assert_eq!(
        c2.count("url NOT IN ('https://example.org/kept', 'https://example.org/barrier')")
            .await,
        0
    );
    assert_eq!(c.count("1").await, 0);
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    let trusting = Collector::start("[privacy]\ntrusted_proxies = [\"127.0.0.0/8\"]");
    let wary = Collector::start("");
    let body = json!({"n": "pageview", "u": "https://example.org/xff", "d": "example.org"});
    let xff = [("X-Forwarded-For", "198.51.100.23, 203.0.113.77")];
    assert_eq!(post(&trusting, &body, &xff).await.0, 202);
    assert_eq!(post(&wary, &body, &xff).await.0, 202);
    assert_eq!(
        trusting
            .wait_for("url = 'https://example.org/xff'", 1)
            .await,
        1
    );
    assert_eq!(wary.wait_for("url = 'https://example.org/xff'", 1).await, 1);
    // The last hop not a trusted proxy, truncated on arrival; the socket's peer otherwise.
    assert_eq!(rows(&trusting, "ip", "1").await, "203.0.0.0");
    assert_eq!(rows(&wary, "ip", "1").await, "127.0.0.0");
}
